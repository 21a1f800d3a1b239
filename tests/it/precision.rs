//! Quiet on what real libraries save, loud on attacks: name resolution before judging, usage-aware
//! allow rules, content that is not a model, TorchScript judged as TorchScript.

use crate::common::Asm;
use picklescan_rs::internals::file::{scan_path, FileOptions};
use picklescan_rs::internals::pickle::vm::NoHooks;
use picklescan_rs::{Finding, Scanner, Usage, Verdict};
use std::path::Path;

fn scan(data: &[u8]) -> Vec<Finding> {
    Scanner::default().scan_pickles(data, &mut NoHooks).findings
}

fn verdict(f: &[Finding]) -> Verdict {
    picklescan_rs::finding::verdict_of(f)
}

fn globals(f: &[Finding]) -> Vec<&str> {
    f.iter().filter_map(|x| x.global.as_deref()).collect()
}

/// `getattr(module.Class, attr)(args…)` at protocol 2.
fn getattr_call(module: &str, class: &str, attr: &str, arg: &str) -> Vec<u8> {
    Asm::new()
        .proto(2)
        .global("builtins", "getattr")
        .global(module, class)
        .unicode(attr)
        .op(0x86) // TUPLE2
        .reduce()
        .unicode(arg)
        .tuple1()
        .reduce()
        .stop()
        .build()
}

#[test]
fn a_method_reference_pickled_through_getattr_is_judged_as_the_method() {
    // How zoneinfo (and pandas timestamps with a time zone) pickle: ZoneInfo._unpickle.
    let f = scan(&getattr_call("zoneinfo", "ZoneInfo", "_unpickle", "UTC"));
    assert_eq!(verdict(&f), Verdict::Clean, "{f:#?}");
    // The same shape reaching os.system is dangerous, and names what it reaches.
    let f = scan(&getattr_call("posix", "stat", "__self__", "x"));
    assert_eq!(verdict(&f), Verdict::Dangerous, "{f:#?}");
    let f = scan(&getattr_call("builtins", "object", "__subclasses__", "x"));
    assert_eq!(verdict(&f), Verdict::Dangerous, "{f:#?}");
    assert!(
        globals(&f).contains(&"builtins.object.__subclasses__"),
        "{f:#?}"
    );
    // A method of an allowed class that real saves never reference is unknown, not allowed.
    let f = scan(&getattr_call("zoneinfo", "ZoneInfo", "clear_cache", "x"));
    assert_eq!(verdict(&f), Verdict::Suspicious, "{f:#?}");
    assert!(globals(&f).contains(&"zoneinfo.ZoneInfo.clear_cache"));
}

#[test]
fn getattr_whose_name_cannot_be_known_stays_dangerous() {
    // getattr(posixpath, <a computed string>): the name is the result of a call.
    let p = Asm::new()
        .proto(2)
        .global("builtins", "getattr")
        .global("collections", "OrderedDict")
        .global("builtins", "str")
        .unicode("keys")
        .tuple1()
        .reduce()
        .op(0x86)
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(verdict(&f), Verdict::Dangerous, "{f:#?}");
    assert!(f.iter().any(|x| x.rule == "PS400"), "{f:#?}");
}

#[test]
fn partial_is_judged_by_the_function_it_calls() {
    let p = Asm::new()
        .proto(2)
        .global("functools", "partial")
        .global("posix", "system")
        .unicode("echo pwned")
        .op(0x86)
        .reduce()
        .op(b')')
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(verdict(&f), Verdict::Dangerous);
    let call = f
        .iter()
        .find(|x| x.usage == Usage::Called)
        .and_then(|x| x.call.as_deref())
        .unwrap_or_default();
    assert!(call.contains("⇒ posix.system('echo pwned')"), "{f:#?}");
    // partial(allowed reconstructor)() is as clean as calling it.
    let p = Asm::new()
        .proto(2)
        .global("functools", "partial")
        .global("collections", "OrderedDict")
        .tuple1()
        .reduce()
        .op(b')')
        .reduce()
        .stop()
        .build();
    assert_eq!(verdict(&scan(&p)), Verdict::Clean, "{:#?}", scan(&p));
}

#[test]
fn allow_rules_allow_only_the_usages_real_saves_show() {
    // torch.save(model) instantiates Linear and sets its state: clean (see the ecosystem corpus).
    // Calling it with arguments is not what a save does.
    let p = Asm::new()
        .proto(2)
        .global("torch.nn.modules.linear", "Linear")
        .int(100000)
        .int(100000)
        .op(0x86)
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(verdict(&f), Verdict::Suspicious, "{f:#?}");
    assert_eq!(f[0].rule, "PS001");
    assert!(
        f[0].message.contains("allows it only as"),
        "{}",
        f[0].message
    );
}

#[test]
fn reconstructors_are_judged_by_what_they_build() {
    // copyreg._reconstructor(C, object, None) is an instantiation of C ...
    let p = Asm::new()
        .proto(2)
        .global("copy_reg", "_reconstructor")
        .global("collections", "OrderedDict")
        .global("__builtin__", "object")
        .op(b'N')
        .op(0x87)
        .reduce()
        .stop()
        .build();
    assert_eq!(verdict(&scan(&p)), Verdict::Clean, "{:#?}", scan(&p));
    // ... and with a function instead of a class, or a dangerous base, what it reaches.
    let p = Asm::new()
        .proto(2)
        .global("copy_reg", "_reconstructor")
        .global("collections", "OrderedDict")
        .global("subprocess", "Popen")
        .op(b'N')
        .op(0x87)
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(verdict(&f), Verdict::Dangerous, "{f:#?}");
    assert!(globals(&f).contains(&"subprocess.Popen"));
}

#[test]
fn http_and_urllib_are_denied_by_their_clients_only() {
    let value = |m: &str, n: &str| {
        let p = Asm::new().proto(2).global(m, n).stop().build();
        verdict(&scan(&p))
    };
    // What pickle.dumps(http.HTTPStatus.OK) and of urllib.parse.urlparse(…) write.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ecosystem/benign/stdlib");
    for f in [
        "http_status.p2.pkl",
        "http_status.p5.pkl",
        "parse_result.p2.pkl",
        "parse_result.p4.pkl",
    ] {
        let r = scan_path(
            &Scanner::default(),
            &corpus.join(f),
            &FileOptions::default(),
        );
        assert_eq!(r.verdict, Verdict::Clean, "{f}: {r:#?}");
    }
    assert_eq!(value("http.client", "HTTPSConnection"), Verdict::Dangerous);
    assert_eq!(value("urllib.request", "urlopen"), Verdict::Dangerous);
    assert_eq!(value("urllib", "urlretrieve"), Verdict::Dangerous);
    assert_eq!(value("http.server", "HTTPServer"), Verdict::Dangerous);
}

#[test]
fn text_and_images_are_not_models_unless_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        scan_path(&Scanner::default(), &p, &FileOptions::default())
    };
    for (name, data) in [
        ("README.md", &b"# A model\n"[..]),
        ("config.json", b"{\"hidden_size\": 16}"),
        (
            "CMakeLists.txt",
            b"cmake_minimum_required(VERSION 3.20)\nproject(x)\n",
        ),
        ("notes.txt", b"(a) one\n"),
        ("empty.py", b""),
        // The shard indexes of every sharded checkpoint on the hub.
        (
            "model.safetensors.index.json",
            b"{\"metadata\": {}, \"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\"}}",
        ),
        (
            "pytorch_model.bin.index.json",
            b"{\"weight_map\": {\"a\": \"pytorch_model-00001-of-00002.bin\"}}",
        ),
    ] {
        let r = write(name, data);
        assert_eq!(r.verdict, Verdict::Clean, "{name}: {r:#?}");
        assert!(r.is_not_a_model(), "{name}: {}", r.format);
    }
    // The same text named as a model is not a model format anyone can load: suspicious.
    let r = write("weights.pt", b"# A model\n");
    assert_eq!(r.verdict, Verdict::Suspicious);
    assert!(r.findings.iter().any(|f| f.rule == "PS913"));
    let r = write("weights.bin", b"{\"weight_map\": {}}");
    assert_eq!(r.verdict, Verdict::Suspicious, "JSON named as a model");
    // Text that imports something a loader would import is judged as a pickle.
    let r = write("notes.txt", b"cposix\nsystem\n(S'echo'\ntR.");
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn torchscript_archives_are_judged_by_their_code() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let scan = |p: &str| {
        scan_path(
            &Scanner::default(),
            &corpus.join(p),
            &FileOptions::default(),
        )
    };
    let clean = scan("benign/torchscript_linear.pt");
    assert_eq!(clean.verdict, Verdict::Clean, "{clean:#?}");
    let bad = scan("ecosystem/attacks/torchscript_from_file.pt");
    assert_eq!(bad.verdict, Verdict::Dangerous, "{bad:#?}");
    let f = bad.findings.iter().find(|f| f.rule == "PS940").unwrap();
    assert!(f.call.as_deref().unwrap_or("").contains("/etc/passwd"));
    let foreign = scan("ecosystem/attacks/torchscript_foreign_op.pt");
    assert!(
        foreign.findings.iter().any(|f| f.rule == "PS941"),
        "{foreign:#?}"
    );
}

/// `torch.storage._load_from_bytes(b)` (how `pickle.dumps(tensor)` writes a storage) is judged by
/// the archive `b` holds: clean when it is a storage, dangerous when it runs something; one bytes
/// object shared by many calls through the memo is scanned once.
#[test]
fn a_nested_torch_archive_is_judged_by_its_content() {
    let call_with = |payload: &[u8], calls: usize| {
        let mut p = Asm::new()
            .proto(2)
            .global("torch.storage", "_load_from_bytes")
            .binput(0)
            .raw(b"B")
            .raw(&(payload.len() as u32).to_le_bytes())
            .raw(payload)
            .binput(1)
            .tuple1()
            .reduce();
        for _ in 1..calls {
            p = p.raw(b"0").binget(0).binget(1).tuple1().reduce();
        }
        let data = p.stop().build();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pkl");
        std::fs::write(&path, data).unwrap();
        scan_path(&Scanner::default(), &path, &FileOptions::default())
    };
    let storage = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/benign/torch_state_dict_legacy.pt"),
    )
    .unwrap();
    let r = call_with(&storage, 1);
    assert_eq!(r.verdict, Verdict::Clean, "{r:#?}");
    let r = call_with(&crate::common::evil_pickle(), 1);
    assert_eq!(r.verdict, Verdict::Dangerous, "{r:#?}");
    assert!(
        r.findings
            .iter()
            .any(|f| f.global.as_deref() == Some("posix.system")
                && f.member
                    .as_deref()
                    .is_some_and(|m| m.starts_with("_load_from_bytes@"))),
        "{r:#?}"
    );
    // 2,000 calls sharing the archive through the memo: every one of them is cleared.
    let r = call_with(&storage, 2000);
    assert_eq!(r.verdict, Verdict::Clean, "{:#?}", r.findings.first());
}

#[test]
fn safetensors_files_are_clean_whatever_byte_their_header_length_starts_with() {
    // The first byte of a safetensors file is the low byte of its header length: for about one
    // file in 30 it is a pickle opcode (`P`, `(`, `0`, `X`, `h`, `p`, `\x80`, …). Those files
    // are not pickles that act.
    let dir = tempfile::tempdir().unwrap();
    let mut flagged = Vec::new();
    for len in (8..=2048u64).step_by(8) {
        let mut header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.to_vec();
        if header.len() as u64 > len {
            continue;
        }
        header.resize(len as usize, b' ');
        let mut file = len.to_le_bytes().to_vec();
        file.extend_from_slice(&header);
        // Tensor bytes with a newline: a `P` line ends there (random weights have them).
        file.extend_from_slice(&[0x0a, 0, 0, 0, 0, 0, 0x80, 0x3f]);
        let p = dir.path().join("model.safetensors");
        std::fs::write(&p, &file).unwrap();
        let r = scan_path(&Scanner::default(), &p, &FileOptions::default());
        if r.verdict != Verdict::Clean {
            flagged.push((
                len & 0xff,
                r.findings
                    .iter()
                    .map(|f| f.rule.clone())
                    .collect::<Vec<_>>(),
            ));
        }
    }
    assert!(flagged.is_empty(), "{flagged:?}");
}

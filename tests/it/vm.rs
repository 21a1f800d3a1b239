//! The symbolic machine and the scanner on hand-assembled streams: events, name resolution,
//! broken streams and budgets.

use crate::common::Asm;
use picklescan_rs::internals::pickle::vm::NoHooks;
use picklescan_rs::{Finding, Limits, Scanner, Usage, Verdict};

fn scan(data: &[u8]) -> Vec<Finding> {
    Scanner::default().scan_pickles(data, &mut NoHooks).findings
}

fn with_global<'a>(f: &'a [Finding], global: &str) -> Vec<&'a Finding> {
    f.iter()
        .filter(|x| x.global.as_deref() == Some(global))
        .collect()
}

fn verdict(f: &[Finding]) -> Verdict {
    picklescan_rs::finding::verdict_of(f)
}

#[test]
fn reduce_is_reported_as_call_with_rendered_arguments() {
    let p = Asm::new()
        .proto(2)
        .global("posix", "system")
        .unicode("echo pwned")
        .tuple1()
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    let hits = with_global(&f, "posix.system");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].usage, Usage::Called);
    assert_eq!(hits[0].call.as_deref(), Some("posix.system('echo pwned')"));
    assert_eq!(hits[0].offset, Some(29));
}

#[test]
fn stack_global_operands_through_memo_are_followed() {
    let p = Asm::new()
        .proto(4)
        .unicode("os")
        .memoize()
        .unicode("system")
        .memoize()
        .op(b'0')
        .op(b'0')
        .binget(0)
        .binget(1)
        .stack_global()
        .unicode("true")
        .tuple1()
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(
        with_global(&f, "os.system")[0].call.as_deref(),
        Some("os.system('true')")
    );
}

#[test]
fn dotted_names_keep_the_whole_attribute_path() {
    let p = Asm::new()
        .proto(4)
        .unicode("torch.serialization")
        .unicode("os.system")
        .stack_global()
        .unicode("true")
        .tuple1()
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(
        with_global(&f, "torch.serialization.os.system").len(),
        1,
        "{f:#?}"
    );
}

#[test]
fn python2_names_are_mapped_below_protocol_3() {
    let p = Asm::new()
        .proto(2)
        .global("__builtin__", "eval")
        .string0("1")
        .tuple1()
        .reduce()
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(with_global(&f, "builtins.eval").len(), 1, "{f:#?}");
}

#[test]
fn inst_obj_newobj_build_and_methods_are_uses() {
    // INST subprocess.Popen(['true'])
    let p = Asm::new()
        .mark()
        .raw(b"(S'true'\nl")
        .inst("subprocess", "Popen")
        .stop()
        .build();
    let f = scan(&p);
    assert_eq!(
        with_global(&f, "subprocess.Popen")[0].usage,
        Usage::Instantiated
    );
    assert_eq!(
        with_global(&f, "subprocess.Popen")[0].call.as_deref(),
        Some("subprocess.Popen(['true'])")
    );

    // NEWOBJ then BUILD then SETITEM on the created object.
    let p = Asm::new()
        .proto(2)
        .global("mylib", "Thing")
        .op(b')')
        .op(0x81)
        .op(b'}')
        .op(b'b')
        .unicode("k")
        .unicode("v")
        .op(b's')
        .stop()
        .build();
    let f = scan(&p);
    let usages: Vec<Usage> = with_global(&f, "mylib.Thing")
        .iter()
        .map(|x| x.usage)
        .collect();
    assert!(usages.contains(&Usage::Instantiated), "{f:#?}");
    assert!(usages.contains(&Usage::StateSet), "{f:#?}");
    assert!(usages.contains(&Usage::MethodOnObject), "{f:#?}");
}

#[test]
fn plain_data_at_protocol_0_is_clean() {
    let p = b"(dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naV\\u00e9t\\u00e9\np3\naI00\nasS'b'\np4\ng2\ns.";
    let f = scan(p);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn call_before_a_corrupt_byte_is_still_reported() {
    let p = Asm::new()
        .proto(2)
        .global("posix", "system")
        .unicode("echo pwned")
        .tuple1()
        .reduce()
        .op(0xff)
        .build();
    let f = scan(&p);
    assert_eq!(with_global(&f, "posix.system").len(), 1);
    assert!(f.iter().any(|x| x.rule == "PS900"), "{f:#?}");
    assert!(verdict(&f) >= Verdict::Suspicious);
}

#[test]
fn truncated_stream_is_never_clean() {
    let p = Asm::new().proto(4).unicode("hello").stop().build();
    for cut in 0..p.len() - 1 {
        let f = scan(&p[..cut]);
        assert!(verdict(&f) >= Verdict::Suspicious, "cut at {cut}: {f:#?}");
    }
    assert!(scan(&p).is_empty());
}

#[test]
fn extension_opcodes_and_computed_names_are_flagged() {
    let f = scan(
        &Asm::new()
            .proto(2)
            .raw(&[0x82, 7])
            .op(b')')
            .reduce()
            .stop()
            .build(),
    );
    assert!(f.iter().any(|x| x.rule == "PS903"), "{f:#?}");

    // STACK_GLOBAL whose module name is the result of a call.
    let p = Asm::new()
        .proto(4)
        .unicode("builtins")
        .unicode("str")
        .stack_global()
        .unicode("os")
        .tuple1()
        .reduce()
        .unicode("system")
        .stack_global()
        .stop()
        .build();
    let f = scan(&p);
    assert!(f.iter().any(|x| x.rule == "PS904"), "{f:#?}");
}

#[test]
fn second_pickle_after_stop_is_scanned_and_garbage_is_reported() {
    let benign = Asm::new().proto(2).int(5).stop().build();
    let evil = Asm::new()
        .proto(2)
        .global("posix", "system")
        .unicode("true")
        .tuple1()
        .reduce()
        .stop()
        .build();
    let f = scan(&[benign.clone(), evil].concat());
    assert_eq!(with_global(&f, "posix.system").len(), 1);
    let f = scan(&[benign, vec![0xff, 0xfe]].concat());
    assert!(f.iter().any(|x| x.rule == "PS906"), "{f:#?}");
}

#[test]
fn billion_laughs_is_bounded() {
    // Ten levels, each a list holding the previous level ten times.
    let mut a = Asm::new().proto(4).unicode("lol").memoize();
    for level in 0..10u8 {
        a = a.op(b']').memoize().mark();
        for _ in 0..10 {
            a = a.binget(level * 2);
        }
        a = a.op(b'e');
        a = a.binput(level * 2 + 2).op(b'0');
        a = a.binget(level * 2 + 2);
    }
    let p = a.stop().build();
    let start = std::time::Instant::now();
    let f = scan(&p);
    assert!(start.elapsed().as_secs_f64() < 1.0);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn deep_marks_hit_the_budget() {
    let p = vec![b'('; 100_000];
    let f = scan(&p);
    assert!(f.iter().any(|x| x.rule == "PS902"), "{f:#?}");
    let limits = Limits {
        max_ops: 10,
        ..Limits::default()
    };
    let s = Scanner::new(Default::default(), limits);
    let f = s.scan_pickles(&[b'N'; 100], &mut NoHooks).findings;
    assert!(f.iter().any(|x| x.rule == "PS902"), "{f:#?}");
}

#[test]
fn huge_declared_lengths_do_not_allocate() {
    for op in [0x8d_u8, 0x8e, 0x96] {
        let mut p = vec![0x80, 4, op];
        p.extend(u64::MAX.to_le_bytes());
        p.extend(b"abc");
        let f = scan(&p);
        assert!(f.iter().any(|x| x.rule == "PS901"), "{f:#?}");
    }
    let f = scan(&[0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0x7f, 1]);
    assert!(f.iter().any(|x| x.rule == "PS901"), "{f:#?}");
}

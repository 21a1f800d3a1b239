//! Tests of the rule engine and the embedded rule data.

use picklescan_rs::finding::Severity;
use picklescan_rs::internals::names::fix_imports;
use picklescan_rs::rules::{ids, Action, Judgement, RuleSet};
use std::collections::BTreeSet;

fn builtin() -> RuleSet {
    RuleSet::builtin()
}

/// The id of the rule a global judges to, with `S:`/`D:` for safe/dangerous, or `unknown`.
fn verdict(set: &RuleSet, module: &str, name: &str) -> String {
    match set.judge(module, name) {
        Judgement::Safe(r) => format!("S:{}", r.id),
        Judgement::Dangerous(r) => format!("D:{}", r.id),
        Judgement::Unknown => "unknown".into(),
        Judgement::OtherUse(r) => format!("O:{}", r.id),
    }
}

/// Every allow and deny rule with one global it must match. Deleting or renumbering a rule in
/// `rules/` fails `every_rule_is_in_the_table` or `table_examples_judge_to_their_rule`.
const GLOBAL_RULES: &[(&str, &str, &str)] = &[
    ("PS010", "torch._utils", "_rebuild_tensor_v2"),
    ("PS011", "torch", "FloatStorage"),
    ("PS012", "torch", "float32"),
    ("PS013", "torch", "per_tensor_affine"),
    ("PS014", "torch.cuda", "FloatTensor"),
    ("PS015", "torch.jit._pickle", "build_intlist"),
    ("PS024", "numpy.matrixlib.defmatrix", "matrix"),
    ("PS025", "numpy.core._internal", "_reconstruct"),
    ("PS041", "joblib.numpy_pickle", "NDArrayWrapper"),
    ("PS020", "numpy.core.multiarray", "_reconstruct"),
    ("PS021", "numpy.dtypes", "Float32DType"),
    ("PS022", "numpy", "float64"),
    ("PS023", "numpy.random._pickle", "__randomstate_ctor"),
    ("PS030", "builtins", "set"),
    ("PS031", "collections", "OrderedDict"),
    ("PS032", "_codecs", "encode"),
    ("PS033", "copyreg", "_reconstructor"),
    ("PS034", "argparse", "Namespace"),
    ("PS035", "datetime", "datetime"),
    ("PS040", "joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("PS100", "builtins", "eval"),
    ("PS101", "os", "system"),
    ("PS102", "runpy", "_run_code"),
    ("PS103", "ctypes", "CDLL"),
    ("PS104", "types", "CodeType"),
    ("PS105", "atexit", "register"),
    ("PS200", "builtins", "open"),
    ("PS201", "shutil", "rmtree"),
    ("PS202", "logging", "FileHandler"),
    ("PS203", "glob", "glob"),
    ("PS300", "socket", "socket"),
    ("PS301", "urllib.request", "urlopen"),
    ("PS302", "pandas", "read_csv"),
    ("PS400", "builtins", "getattr"),
    ("PS401", "functools", "partial"),
    ("PS402", "importlib", "import_module"),
    ("PS403", "numpy", "__builtins__"),
    ("PS404", "ast", "parse"),
    ("PS405", "copyreg", "add_extension"),
    ("PS406", "picklescan.scanner", "scan_pickle_bytes"),
    ("PS407", "pip", "main"),
    ("PS408", "base64", "b64decode"),
    ("PS500", "pickle", "loads"),
    ("PS501", "torch", "load"),
    ("PS502", "yaml", "unsafe_load"),
    ("PS503", "torch.hub", "load"),
];

/// Every anomaly rule with its severity.
const ANOMALY_RULES: &[(&str, Severity)] = &[
    ("PS000", Severity::Info),
    ("PS001", Severity::Medium),
    ("PS900", Severity::Medium),
    ("PS901", Severity::Medium),
    ("PS902", Severity::Medium),
    ("PS903", Severity::High),
    ("PS904", Severity::High),
    ("PS905", Severity::Medium),
    ("PS906", Severity::Low),
    ("PS907", Severity::Medium),
    ("PS908", Severity::Medium),
    ("PS910", Severity::Medium),
    ("PS911", Severity::Medium),
    ("PS912", Severity::Medium),
    ("PS913", Severity::Medium),
    ("PS914", Severity::Medium),
    ("PS915", Severity::Medium),
    ("PS916", Severity::Medium),
    ("PS917", Severity::Medium),
    ("PS918", Severity::Medium),
    ("PS919", Severity::Medium),
    ("PS920", Severity::Medium),
    ("PS921", Severity::Medium),
    ("PS922", Severity::Medium),
    ("PS923", Severity::Medium),
    ("PS924", Severity::High),
    ("PS940", Severity::High),
    ("PS941", Severity::Medium),
    ("PS942", Severity::Medium),
    ("PS943", Severity::High),
    // Model formats other than pickles (rules/formats.toml).
    ("PS960", Severity::Critical),
    ("PS961", Severity::Critical),
    ("PS962", Severity::Medium),
    ("PS963", Severity::Medium),
    ("PS965", Severity::High),
    ("PS966", Severity::Medium),
    ("PS967", Severity::Medium),
    ("PS968", Severity::Critical),
    ("PS969", Severity::Medium),
    ("PS970", Severity::High),
    ("PS971", Severity::Medium),
    ("PS972", Severity::Medium),
    ("PS973", Severity::Low),
    ("PS975", Severity::Medium),
    ("PS976", Severity::Medium),
    ("PS978", Severity::Medium),
    ("PS980", Severity::Medium),
    ("PS981", Severity::Critical),
    ("PS982", Severity::Medium),
    ("PS983", Severity::High),
    ("PS984", Severity::Critical),
    ("PS985", Severity::High),
    ("PS986", Severity::Medium),
    ("PS987", Severity::Medium),
    ("PS990", Severity::Critical),
    ("PS991", Severity::Medium),
];

#[test]
fn builtin_files_parse() {
    // Each file on its own, but for the aliases its examples may be spelt with.
    let (aliases_origin, aliases) = RuleSet::builtin_files()[0];
    assert_eq!(aliases_origin, "rules/aliases.toml");
    for (origin, text) in RuleSet::builtin_files() {
        let mut set = RuleSet::default();
        set.add_str(aliases_origin, aliases).unwrap();
        if *origin != aliases_origin {
            set.add_str(origin, text).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(!builtin().rules().is_empty());
}

/// The built-in set is read from JSON written by `build.rs`; it must say exactly what the TOML
/// files say.
#[test]
fn builtin_json_matches_toml() {
    let mut from_toml = RuleSet::default();
    for (origin, text) in RuleSet::builtin_files() {
        from_toml
            .add_str(origin, text)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let from_json = builtin();
    assert_eq!(from_json.rules(), from_toml.rules());
    assert_eq!(from_json.aliases(), from_toml.aliases());
    assert_eq!(from_json.fingerprint(), from_toml.fingerprint());
}

#[test]
fn ids_unique_and_rules_documented() {
    let set = builtin();
    let mut seen = BTreeSet::new();
    for rule in set.rules() {
        assert!(seen.insert(rule.id.clone()), "duplicate id {}", rule.id);
        assert!(
            !rule.rationale.trim().is_empty(),
            "{} has no rationale",
            rule.id
        );
        assert!(!rule.examples.is_empty(), "{} has no example", rule.id);
        assert!(!rule.references.is_empty(), "{} has no reference", rule.id);
        let range_ok = match rule.action {
            Action::Allow if rule.origin.starts_with("rules/allow/gen/") => {
                rule.id.as_str() >= "PS600" && rule.id.as_str() < "PS800"
            }
            Action::Allow => rule.id.as_str() >= "PS010" && rule.id.as_str() < "PS100",
            Action::Deny => rule.id.as_str() >= "PS100" && rule.id.as_str() < "PS900",
            Action::Anomaly => {
                rule.id == "PS000" || rule.id == "PS001" || rule.id.as_str() >= "PS900"
            }
        };
        assert!(range_ok, "{} is outside the range of its action", rule.id);
        if rule.action == Action::Allow {
            assert_eq!(rule.severity, Severity::Info);
        }
    }
}

#[test]
fn every_rule_is_in_the_table() {
    let set = builtin();
    // Generated allow rules are held by their own examples (`self_check`) and the ecosystem
    // corpus; their ids follow the libraries the generator found.
    let in_data: BTreeSet<&str> = set
        .rules()
        .iter()
        .filter(|r| !r.origin.starts_with("rules/allow/gen/"))
        .map(|r| r.id.as_str())
        .collect();
    let in_table: BTreeSet<&str> = GLOBAL_RULES
        .iter()
        .map(|(id, _, _)| *id)
        .chain(ANOMALY_RULES.iter().map(|(id, _)| *id))
        .collect();
    assert_eq!(in_data, in_table);
}

#[test]
fn table_examples_judge_to_their_rule() {
    let set = builtin();
    for (id, module, name) in GLOBAL_RULES {
        let rule = set.get(id).unwrap_or_else(|| panic!("{id} missing"));
        let want = match rule.action {
            Action::Allow => format!("S:{id}"),
            _ => format!("D:{id}"),
        };
        assert_eq!(verdict(&set, module, name), want, "{module}.{name}");
    }
    for (id, severity) in ANOMALY_RULES {
        let rule = set.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(rule.action, Action::Anomaly, "{id}");
        assert_eq!(rule.severity, *severity, "{id}");
    }
}

/// The id registry against the rule files, both ways: every id the code emits has exactly one
/// anomaly rule, and every anomaly rule is one the code emits.
#[test]
fn the_id_registry_and_the_rule_files_agree() {
    let set = builtin();
    for id in ids::ALL {
        let rule = set.get(id).unwrap_or_else(|| panic!("{id} has no rule"));
        assert_eq!(rule.action, Action::Anomaly, "{id}");
    }
    for rule in set.rules().iter().filter(|r| r.action == Action::Anomaly) {
        assert!(
            ids::ALL.contains(&rule.id.as_str()),
            "{} is in no code path (not in ids::ALL)",
            rule.id
        );
    }
    let mut with_policy = set.clone();
    with_policy
        .add_str(
            "rules/policy/anomalies.toml",
            picklescan_rs::policy::RULES_FILE,
        )
        .unwrap();
    let policy_ids: Vec<&str> = with_policy
        .rules()
        .iter()
        .filter(|r| r.origin == "rules/policy/anomalies.toml")
        .map(|r| r.id.as_str())
        .collect();
    let mut want: Vec<&str> = ids::POLICY.to_vec();
    want.sort();
    let mut got = policy_ids.clone();
    got.sort();
    assert_eq!(got, want, "rules/policy/anomalies.toml and ids::POLICY");
    let mut all: Vec<&str> = ids::ALL.iter().chain(ids::POLICY).copied().collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "an id is registered twice");
}

#[test]
fn rule_examples_judge_to_their_rule_and_no_allow_is_shadowed() {
    let problems = builtin().self_check();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn fix_imports_tables() {
    let f = |m: &str, n: &str| fix_imports(m, n);
    let p = |m: &str, n: &str| (m.to_string(), n.to_string());
    assert_eq!(f("__builtin__", "eval"), p("builtins", "eval"));
    assert_eq!(
        f("copy_reg", "_reconstructor"),
        p("copyreg", "_reconstructor")
    );
    assert_eq!(f("commands", "getoutput"), p("subprocess", "getoutput"));
    assert_eq!(f("__builtin__", "xrange"), p("builtins", "range"));
    assert_eq!(f("__builtin__", "intern"), p("sys", "intern"));
    assert_eq!(f("exceptions", "StandardError"), p("builtins", "Exception"));
    assert_eq!(f("exceptions", "ValueError"), p("builtins", "ValueError"));
    assert_eq!(f("urllib", "urlopen"), p("urllib.request", "urlopen"));
    assert_eq!(f("urllib", "foo"), p("urllib", "foo"));
    assert_eq!(f("cPickle", "loads"), p("pickle", "loads"));
    assert_eq!(f("dbm", "open"), p("dbm.ndbm", "open"));
    assert_eq!(
        f("multiprocessing", "TimeoutError"),
        p("multiprocessing.context", "TimeoutError")
    );
    assert_eq!(
        f("torch._utils", "_rebuild_tensor_v2"),
        p("torch._utils", "_rebuild_tensor_v2")
    );
}

#[test]
fn judge_applies_fix_imports_and_aliases() {
    let set = builtin();
    assert_eq!(verdict(&set, "__builtin__", "eval"), "D:PS100");
    assert_eq!(verdict(&set, "__builtin__", "set"), "S:PS030");
    assert_eq!(verdict(&set, "copy_reg", "_reconstructor"), "S:PS033");
    assert_eq!(verdict(&set, "commands", "getoutput"), "D:PS101");
    assert_eq!(verdict(&set, "posix", "system"), "D:PS101");
    assert_eq!(verdict(&set, "nt", "system"), "D:PS101");
    assert_eq!(verdict(&set, "os", "system"), "D:PS101");
    assert_eq!(verdict(&set, "posixpath", "join"), "D:PS101");
    assert_eq!(verdict(&set, "_pickle", "loads"), "D:PS500");
    assert_eq!(verdict(&set, "cPickle", "loads"), "D:PS500");
    assert_eq!(verdict(&set, "_operator", "attrgetter"), "D:PS400");
    assert_eq!(verdict(&set, "_functools", "partial"), "D:PS401");
    assert_eq!(verdict(&set, "_io", "FileIO"), "D:PS200");
    assert_eq!(verdict(&set, "io", "FileIO"), "D:PS200");
    assert_eq!(verdict(&set, "__builtin__", "reduce"), "D:PS401");
    assert_eq!(
        verdict(&set, "numpy._core.multiarray", "_reconstruct"),
        "S:PS020"
    );
    // `_codecs` and `codecs` are distinct on purpose.
    assert_eq!(verdict(&set, "_codecs", "encode"), "S:PS032");
    assert_eq!(verdict(&set, "codecs", "encode"), "D:PS408");
    assert_eq!(verdict(&set, "codecs", "open"), "D:PS200");
}

#[test]
fn dotted_names_walk_attributes() {
    let set = builtin();
    assert_eq!(verdict(&set, "torch.serialization", "os.system"), "D:PS101");
    assert_eq!(verdict(&set, "sysconfig", "os.system"), "D:PS101");
    assert_eq!(verdict(&set, "site", "os.system"), "D:PS101");
    assert_eq!(verdict(&set, "collections", "_sys.modules"), "D:PS402");
    // Both `__builtins__` (PS403) and `eval` (PS100) are critical; the earlier rule is reported.
    assert_eq!(verdict(&set, "numpy", "__builtins__.eval"), "D:PS100");
    assert_eq!(verdict(&set, "numpy", "__builtins__.getattr"), "D:PS403");
    assert_eq!(verdict(&set, "builtins", "getattr"), "D:PS400");
    assert_eq!(verdict(&set, "torch", "serialization.load"), "D:PS501");
    assert_eq!(verdict(&set, "torch", "hub.load"), "D:PS503");
    assert_eq!(verdict(&set, "statistics", "mean.__globals__"), "D:PS403");
    assert_eq!(verdict(&set, "logging", "os.system"), "D:PS101");
    assert_eq!(
        verdict(&set, "code", "InteractiveInterpreter.runcode"),
        "D:PS102"
    );
    // An allowlisted object reached through a dotted name is not itself allowlisted.
    assert_eq!(
        verdict(&set, "torch", "_utils._rebuild_tensor_v2"),
        "unknown"
    );
    assert_eq!(verdict(&set, "builtins", "set.union"), "unknown");
    assert_eq!(verdict(&set, "builtins", "set.__init__"), "D:PS403");
    assert_eq!(
        verdict(&set, "collections", "OrderedDict.__reduce__"),
        "D:PS403"
    );
    // Whole modules include submodules and names below them.
    assert_eq!(verdict(&set, "os.path", "join"), "D:PS101");
    assert_eq!(verdict(&set, "os", "path.join"), "D:PS101");
    assert_eq!(verdict(&set, "subprocess", "Popen.communicate"), "D:PS101");
    // Module components other than the first are not matched as modules of their own
    // (`numpy.random._pickle` is not `_pickle`), except through dangerous attribute names.
    assert_eq!(
        verdict(&set, "scipy.signal._ltisys", "TransferFunction"),
        "unknown"
    );
    assert_eq!(verdict(&set, "mylib.os", "Thing"), "unknown");
    assert_eq!(verdict(&set, "mylib.__dict__", "x"), "D:PS403");
}

#[test]
fn most_severe_then_most_specific_wins() {
    let set = builtin();
    // operator is denied whole (high); attrgetter is critical.
    assert_eq!(verdict(&set, "operator", "attrgetter"), "D:PS400");
    assert_eq!(verdict(&set, "operator", "add"), "D:PS401");
    // pandas.io is dataframe I/O, pandas.io.pickle is a nested loader (both high).
    assert_eq!(verdict(&set, "pandas.io.pickle", "read_pickle"), "D:PS501");
    assert_eq!(verdict(&set, "pandas.io.parsers", "read_csv"), "D:PS302");
    // a dotted path through a high rule into a critical one reports the critical one.
    assert_eq!(verdict(&set, "shutil", "os.system"), "D:PS101");
}

#[test]
fn unknown_and_safe() {
    let set = builtin();
    assert_eq!(verdict(&set, "mylib.model", "MyModel"), "unknown");
    assert_eq!(verdict(&set, "__main__", "MyModel"), "unknown");
    // Allowed by the generated torch allowlist, for the usages torch.save(model) shows.
    assert!(verdict(&set, "torch.nn.modules.linear", "Linear").starts_with("S:PS7"));
    assert_eq!(
        verdict(&set, "torch.nn.modules.linear", "LinearOfNoSuchName"),
        "unknown"
    );
    assert_eq!(
        verdict(&set, "torch._utils", "_rebuild_tensor_v2"),
        "S:PS010"
    );
    assert_eq!(verdict(&set, "collections", "OrderedDict"), "S:PS031");
    assert_eq!(
        verdict(&set, "numpy.core.multiarray", "_reconstruct"),
        "S:PS020"
    );
    assert_eq!(
        verdict(&set, "numpy._core.multiarray", "_reconstruct"),
        "S:PS020"
    );
    assert_eq!(verdict(&set, "numpy.core.multiarray", "scalar"), "S:PS020");
    assert_eq!(verdict(&set, "argparse", "Namespace"), "S:PS034");
    assert_eq!(
        verdict(&set, "torch.serialization", "_get_layout"),
        "S:PS010"
    );
    for dtype in [
        "float64",
        "float32",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "complex128",
        "complex64",
        "complex32",
        "qint8",
        "qint32",
        "quint8",
        "quint4x2",
        "quint2x4",
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e5m2fnuz",
        "float8_e4m3fnuz",
        "float8_e8m0fnu",
        "float4_e2m1fn_x2",
        "bits8",
        "bits16",
        "bits1x8",
        "bits2x4",
        "bits4x2",
        "uint16",
        "uint32",
        "uint64",
        "uint1",
        "uint2",
        "uint3",
        "uint4",
        "uint5",
        "uint6",
        "uint7",
        "int1",
        "int2",
        "int3",
        "int4",
        "int5",
        "int6",
        "int7",
    ] {
        assert_eq!(verdict(&set, "torch", dtype), "S:PS012", "torch.{dtype}");
    }
}

#[test]
fn malformed_names() {
    let set = builtin();
    assert_eq!(verdict(&set, "", "system"), "D:PS921");
    assert_eq!(verdict(&set, "mylib", ""), "D:PS921");
    assert_eq!(verdict(&set, "mylib..x", "y"), "D:PS921");
    assert_eq!(verdict(&set, "mylib", "a..b"), "D:PS921");
    assert_eq!(verdict(&set, "mylib ", "X"), "D:PS922");
    assert_eq!(verdict(&set, "mylib", "X\0"), "D:PS922");
    assert_eq!(verdict(&set, "my-lib", "X"), "D:PS922");
    // A deny match is reported before the name anomaly.
    assert_eq!(verdict(&set, "os", "system\0"), "D:PS101");
    assert_eq!(verdict(&set, "os.", "system"), "D:PS101");
    // Unicode identifiers are identifiers.
    assert_eq!(verdict(&set, "mylib", "名前"), "unknown");
}

#[test]
fn user_rules_add_allow_and_deny() {
    let mut set = builtin();
    let before = set.fingerprint();
    set.add_str(
        "user.toml",
        r#"
[[rule]]
id = "PS800"
name = "no-mylib-loader"
action = "deny"
severity = "high"
rationale = "mylib.loader fetches code."
references = ["https://example.invalid/advisory"]
examples = ["mylib.loader:fetch"]
modules = ["mylib.loader"]

[[rule]]
id = "PS090"
name = "mylib-model"
action = "allow"
severity = "info"
rationale = "Our own inert model class."
references = ["https://example.invalid/review"]
examples = ["mylib.model:MyModel"]
[rule.globals]
"mylib.model" = ["MyModel"]
"#,
    )
    .unwrap();
    assert_eq!(verdict(&set, "mylib.loader", "fetch"), "D:PS800");
    assert_eq!(verdict(&set, "mylib.model", "MyModel"), "S:PS090");
    assert_eq!(set.get("PS800").unwrap().origin, "user.toml");
    assert_ne!(set.fingerprint(), before);
    assert_eq!(set.self_check(), Vec::<String>::new());
}

#[test]
fn user_allow_cannot_override_deny() {
    let mut set = builtin();
    set.add_str(
        "user.toml",
        r#"
[[rule]]
id = "PS091"
name = "allow-system"
action = "allow"
severity = "info"
rationale = "wrong"
references = ["x"]
examples = ["os:system"]
[rule.globals]
os = ["system"]
"#,
    )
    .unwrap();
    assert_eq!(verdict(&set, "os", "system"), "D:PS101");
    let problems = set.self_check();
    assert!(problems.iter().any(|p| p.contains("PS091")), "{problems:?}");
    // Loaded, with a warning that the entry has no effect.
    assert!(
        set.warnings().iter().any(|w| w.contains("PS091")),
        "{:?}",
        set.warnings()
    );
}

#[test]
fn a_user_rule_whose_examples_do_not_match_it_is_refused() {
    let mut set = builtin();
    let fp = set.fingerprint();
    let err = set
        .add_str(
            "user.toml",
            r#"
[[rule]]
id = "PS092"
name = "allow-mine"
action = "allow"
severity = "info"
rationale = "reviewed"
references = ["x"]
examples = ["mylib.model:OtherModel"]
[rule.globals]
"mylib.model" = ["MyModel"]
"#,
        )
        .unwrap_err();
    assert!(
        err.message.contains("example `mylib.model:OtherModel`"),
        "{err}"
    );
    assert_eq!(set.fingerprint(), fp, "a refused file changes nothing");
}

fn load_err(text: &str) -> String {
    let mut set = builtin();
    let fp = set.fingerprint();
    let n = set.rules().len();
    let e = set.add_str("bad.toml", text).unwrap_err();
    assert_eq!(
        set.rules().len(),
        n,
        "a failed load must not change the set"
    );
    assert_eq!(set.fingerprint(), fp);
    assert_eq!(e.file, "bad.toml");
    e.to_string()
}

const MINIMAL: &str = r#"
[[rule]]
id = "PS801"
name = "x"
action = "deny"
severity = "high"
rationale = "r"
examples = ["a:b"]
modules = ["a"]
"#;

#[test]
fn bad_rule_files_are_clear_errors() {
    let e = load_err(&MINIMAL.replace("modules = [\"a\"]", "modules = [\"a\"]\ncolour = \"red\""));
    assert!(
        e.starts_with("bad.toml: ") && e.contains("unknown field `colour`"),
        "{e}"
    );
    let e = load_err("[[rule]]\nid = ");
    assert!(e.starts_with("bad.toml: "), "{e}");
    let e = load_err(&MINIMAL.replace("PS801", "PS101"));
    assert!(e.contains("PS101") && e.contains("already used"), "{e}");
    let e = load_err(&MINIMAL.replace("PS801", "X1"));
    assert!(e.contains("X1"), "{e}");
    let e = load_err(&MINIMAL.replace("name = \"x\"", "name = \"Not Kebab\""));
    assert!(e.contains("kebab"), "{e}");
    let e = load_err(&MINIMAL.replace("examples = [\"a:b\"]", "examples = []"));
    assert!(e.contains("example"), "{e}");
    let e = load_err(&MINIMAL.replace("examples = [\"a:b\"]", "examples = [\"a.b\"]"));
    assert!(e.contains("module:name"), "{e}");
    let e = load_err(&MINIMAL.replace("severity = \"high\"", "severity = \"severe\""));
    assert!(e.contains("severe"), "{e}");
    let e = load_err(&MINIMAL.replace("modules = [\"a\"]", "modules = [\"a b\"]"));
    assert!(e.contains("a b"), "{e}");
    let e = load_err(&MINIMAL.replace("modules = [\"a\"]", "[rule.globals]\na = [\"*\"]"));
    assert!(e.contains("wildcard"), "{e}");
    let e = load_err(&MINIMAL.replace("action = \"deny\"", "action = \"allow\""));
    assert!(e.contains("allow rule"), "{e}");
    let e = load_err(&MINIMAL.replace("action = \"deny\"", "action = \"anomaly\""));
    assert!(e.contains("anomaly rule"), "{e}");
    let e = load_err("[aliases]\nfoo = \"os\"\nbar = \"foo\"\n");
    assert!(e.contains("itself an alias"), "{e}");
    let e = load_err("[aliases]\nposix = \"sys\"\n");
    assert!(e.contains("conflicts"), "{e}");
}

#[test]
fn add_file_reads_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, MINIMAL).unwrap();
    let mut set = builtin();
    set.add_file(&good).unwrap();
    assert_eq!(verdict(&set, "a", "b"), "D:PS801");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, MINIMAL.replace("rationale", "reason")).unwrap();
    let e = builtin().add_file(&bad).unwrap_err();
    assert_eq!(e.file, bad.display().to_string());
    assert!(e.message.contains("reason"), "{e}");

    let missing = dir.path().join("missing.toml");
    let e = builtin().add_file(&missing).unwrap_err();
    assert!(
        e.to_string().contains("missing.toml") && e.message.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn fingerprint_is_stable_sha256() {
    let a = builtin().fingerprint();
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a, builtin().fingerprint());
    assert_ne!(a, RuleSet::default().fingerprint());
}

#[test]
fn docs_table_is_in_sync() {
    const BEGIN: &str =
        "<!-- BEGIN GENERATED RULE TABLE (cargo test; UPDATE_RULES_DOC=1 rewrites) -->\n";
    const END: &str = "<!-- END GENERATED RULE TABLE -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md");
    let doc = std::fs::read_to_string(path).expect("docs/rules.md");
    let start = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = doc.find(END).expect("end marker");
    let want = builtin().markdown_table();
    if doc[start..end] != want {
        if std::env::var_os("UPDATE_RULES_DOC").is_some() {
            let new = format!("{}{}{}", &doc[..start], want, &doc[end..]);
            std::fs::write(path, new).unwrap();
        } else {
            panic!(
                "docs/rules.md rule table is stale; run UPDATE_RULES_DOC=1 cargo test --test it rules::"
            );
        }
    }
}

/// Globals the peers (picklescan 1.0.5, modelscan 0.8.8, fickling 0.1.12, ModelAudit 0.2.54)
/// flag, and known bypasses from their issue trackers: every one must be dangerous here.
/// Deliberate narrowings are listed in docs/rules.md.
const PEER_DANGEROUS: &[&str] = &[
    // picklescan
    "__builtin__:eval",
    "__builtin__:compile",
    "__builtin__:getattr",
    "__builtin__:apply",
    "__builtin__:exec",
    "__builtin__:open",
    "__builtin__:breakpoint",
    "builtins:eval",
    "builtins:compile",
    "builtins:getattr",
    "builtins:apply",
    "builtins:exec",
    "builtins:open",
    "builtins:breakpoint",
    "cloudpickle.cloudpickle:_builtin_type",
    "cloudpickle.cloudpickle:_make_function",
    "cloudpickle.cloudpickle:_function_setstate",
    "cloudpickle.cloudpickle:_make_cell",
    "cloudpickle.cloudpickle:_make_empty_cell",
    "cloudpickle.cloudpickle:subimport",
    "types:CodeType",
    "aiohttp:request",
    "asyncio:run",
    "bdb:Bdb",
    "commands:getoutput",
    "ctypes:CDLL",
    "httplib:HTTPConnection",
    "numpy.f2py:compile",
    "numpy.testing._private.utils:runstring",
    "nt:system",
    "posix:system",
    "os:system",
    "requests.api:get",
    "runpy:run_path",
    "shutil:rmtree",
    "socket:socket",
    "ssl:wrap_socket",
    "subprocess:run",
    "sys:modules",
    "cProfile:run",
    "cProfile:runctx",
    "distutils.file_util:write_file",
    "pdb:run",
    "pickle:loads",
    "_pickle:loads",
    "pip:main",
    "pty:spawn",
    "profile:Profile.run",
    "pydoc:locate",
    "test.support:run",
    "timeit:timeit",
    "urllib.request:urlopen",
    "uuid:_get_command_stdout",
    "venv:create",
    "webbrowser:open",
    "_osx_support:_read_output",
    "_aix_support:_read_cmd_output",
    "_pyrepl.pager:pipe_pager",
    "functools:partial",
    "logging:FileHandler",
    "_io:FileIO",
    "operator:attrgetter",
    "operator:itemgetter",
    "operator:methodcaller",
    "_operator:attrgetter",
    "code:InteractiveInterpreter.runcode",
    "doctest:debug_script",
    "ensurepip:_run_pip",
    "idlelib.autocomplete:AutoComplete.get_entity",
    "idlelib.calltip:Calltip.fetch_tip",
    "idlelib.debugobj:ObjectTreeItem.SetText",
    "idlelib.pyshell:ModifiedInterpreter.runcommand",
    "idlelib.run:Executive.runcode",
    "imaplib:IMAP4_stream",
    "lib2to3.pgen2.grammar:Grammar.loads",
    "lib2to3.pgen2.pgen:ParserGenerator.make_label",
    "pkgutil:resolve_name",
    "torch._dynamo.guards:GuardBuilder.get",
    "torch._inductor.codecache:compile_file",
    "torch.fx.experimental.symbolic_shapes:ShapeEnv.evaluate_guards_expression",
    "torch.jit.unsupported_tensor_ops:execWrapper",
    "torch.serialization:load",
    "torch.utils._config_module:ConfigModule.load_config",
    "torch.utils.bottleneck.__main__:run_cprofile",
    "torch.utils.bottleneck.__main__:run_autograd_prof",
    "torch.utils.collect_env:run",
    "torch.utils.data.datapipes.utils.decoder:basichandlers",
    "trace:Trace.run",
    "trace:Trace.runctx",
    // modelscan
    "builtins:__import__",
    "aiohttp.client:ClientSession",
    "http.client:HTTPSConnection",
    // fickling (modules flagged wholesale, sampled where narrowed)
    "__builtins__:eval",
    "_posixsubprocess:fork_exec",
    "multiprocessing:Process",
    "codeop:compile_command",
    "marshal:loads",
    "_frozen_importlib:_load",
    "_frozen_importlib_external:SourceFileLoader",
    "_imp:create_dynamic",
    "zipimport:zipimporter",
    "gc:get_objects",
    "site:addsitedir",
    "unittest:main",
    "inspect:getattr_static",
    "http.server:HTTPServer",
    "urllib2:urlopen",
    "smtplib:SMTP",
    "ftplib:FTP",
    "poplib:POP3",
    "telnetlib:Telnet",
    "nntplib:NNTP",
    "_ctypes:dlopen",
    "dill:loads",
    "joblib:load",
    "tempfile:mkstemp",
    "filecmp:cmp",
    "pexpect:spawn",
    "socketserver:TCPServer",
    "xmlrpc.server:SimpleXMLRPCServer",
    "signal:signal",
    "_signal:signal",
    "threading:Thread",
    "_thread:start_new_thread",
    "atexit:register",
    "sqlite3:connect",
    "_sqlite3:connect",
    "fileinput:input",
    "glob:glob",
    "platform:popen",
    "linecache:getline",
    "compileall:compile_dir",
    "py_compile:compile",
    "mmap:mmap",
    "select:select",
    "selectors:DefaultSelector",
    "logging.config:fileConfig",
    "syslog:syslog",
    "tarfile:open",
    "zipfile:ZipFile",
    "shelve:open",
    "torch.hub:load",
    "torch._dynamo:optimize",
    "torch._inductor:compile",
    "torch:compile",
    "numpy.distutils:exec_command",
    "torch:load",
    "torch.storage:_load_from_bytes",
    "torch.distributed.elastic.rendezvous.api:basichandlers",
    "io:open",
    "io:FileIO",
    "_io:open",
    // ModelAudit
    "builtins:delattr",
    "builtins:dir",
    "builtins:execfile",
    "builtins:exit",
    "builtins:filter",
    "builtins:globals",
    "builtins:hasattr",
    "builtins:input",
    "builtins:locals",
    "builtins:map",
    "builtins:quit",
    "builtins:raw_input",
    "builtins:reload",
    "builtins:setattr",
    "builtins:staticmethod",
    "builtins:vars",
    "builtins:classmethod.__get__",
    "builtins:property.__get__",
    "dill._dill:_create_code",
    "ntpath:join",
    "posixpath:join",
    "requests:get",
    "urllib:urlopen",
    "xmlrpc.client:ServerProxy",
    "_functools:partial",
    "_functools:reduce",
    "_io:FileIO.write",
    "_io:TextIOWrapper.write",
    "_tkinter:TkappType.call",
    "_xxsubinterpreters:run_string",
    "argparse:FileType",
    "base64:b64decode",
    "base64:decode",
    "codecs:StreamReaderWriter.write",
    "codecs:decode",
    "codecs:open",
    "collections:eval",
    "concurrent.futures:ProcessPoolExecutor.submit",
    "contextlib:ExitStack.enter_context",
    "contextvars:Context.run",
    "copyreg:add_extension",
    "copyreg:remove_extension",
    "csv:DictWriter.writerows",
    "dataclasses:_create_fn",
    "dill:load_session",
    "dotenv:set_key",
    "dotenv.cli:set_key",
    "faulthandler:_sigabrt",
    "functools:cache",
    "functools:cached_property.__get__",
    "functools:cmp_to_key",
    "functools:lru_cache",
    "functools:reduce",
    "functools:singledispatch",
    "functools:partialmethod",
    "gc:get_referrers",
    "inspect:currentframe",
    "inspect:getmembers",
    "itertools:accumulate",
    "itertools:dropwhile",
    "itertools:filterfalse",
    "itertools:groupby",
    "itertools:starmap",
    "itertools:takewhile",
    "joblib:_pickle_load",
    "logging:Logger.log",
    "logging:StreamHandler.emit",
    "logging:warning",
    "logging.handlers:WatchedFileHandler",
    "mailbox:mbox.add",
    "mailcap:findmatch",
    "numpy:load",
    "numpy:savetxt",
    "numpy.f2py.crackfortran:getlincoef",
    "numpy.lib._npyio_impl:savetxt",
    "operator:call",
    "pathlib:Path.open",
    "pathlib:Path.write_bytes",
    "pathlib:PosixPath.write_text",
    "pip._internal:main",
    "pip._vendor.distlib.scripts:ScriptMaker",
    "pipes:Template.open",
    "pkgutil:get_importer",
    "pkgutil:walk_packages",
    "resource:setrlimit",
    "sched:scheduler.run",
    "setuptools._distutils.spawn:spawn",
    "site:main",
    "string:Formatter.get_field",
    "tempfile:NamedTemporaryFile",
    "tempfile:mktemp",
    "test.support.script_helper:assert_python_ok",
    "torch.hub:load_state_dict_from_url",
    "torch._dynamo.guards.GuardBuilder:get",
    "torch.fx.experimental.symbolic_shapes.ShapeEnv:evaluate_guards_expression",
    "torch.utils._config_module.ConfigModule:load_config",
    "types:ClassMethodDescriptorType.__get__",
    "types:DynamicClassAttribute.__get__",
    "types:FrameType.f_builtins.__get__",
    "types:FunctionType",
    "types:MethodType",
    "types:GetSetDescriptorType.__get__",
    "typing:_eval_type",
    "typing:get_type_hints",
    "unittest:TestLoader.discover",
    "unittest:defaultTestLoader.loadTestsFromNames",
    "unittest.loader:TestLoader.loadTestsFromName",
    "unittest.mock:MagicMock",
    "unittest.mock:patch.dict",
    "uuid:_arp_getnode",
    "uuid:_ifconfig_getnode",
    "uuid:_ip_getnode",
    "uuid:_lanscan_getnode",
    "uuid:_netstat_getnode",
    "uuid:_popen",
    "uuid:getnode",
    "weakref:finalize",
    "yaml:CLoader",
    "yaml:Loader",
    "yaml:load_all",
    "yaml.loader:UnsafeLoader",
    "zipfile:PyZipFile",
    "statistics:__getattribute__",
    "statistics:mean.__getattribute__",
    "site:logging.config.dictConfig",
    "sysconfig:prefix.os.system",
    // Bypasses from issue trackers
    "importlib:import_module",
    "importlib.util:find_spec",
    "multiprocessing.util:spawnv_passfds",
    "mlflow.projects.backend.local:_run_entry_point",
    "pandas:read_csv",
    "numpy:__builtins__",
    "builtins:__dict__.get",
];

#[test]
fn peer_lists_are_covered() {
    let set = builtin();
    let missed: Vec<&str> = PEER_DANGEROUS
        .iter()
        .copied()
        .filter(|g| {
            let (m, n) = g.split_once(':').unwrap();
            !matches!(set.judge(m, n), Judgement::Dangerous(_))
        })
        .collect();
    assert!(missed.is_empty(), "not dangerous: {missed:?}");
}

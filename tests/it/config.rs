//! Configuration files: every kind of entry, the pyproject form, discovery, and errors.

use crate::common::Asm;
use picklescan_rs::config::{self, Config};
use picklescan_rs::policy::{FailOn, Mode};
use picklescan_rs::rules::RuleSet;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picklescan-rs"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A pickle that calls `module.name()`.
fn calls(module: &str, name: &str) -> Vec<u8> {
    Asm::new()
        .proto(2)
        .global(module, name)
        .op(b')')
        .reduce()
        .stop()
        .build()
}

fn run(args: &[&str], paths: &[&Path]) -> (i32, Value, String) {
    let out: Output = bin()
        .args(args)
        .args(["--format", "json"])
        .args(paths)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        doc,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verdict_of<'a>(doc: &'a Value, file: &Path) -> &'a str {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == file.display().to_string())
        .and_then(|f| f["verdict"].as_str())
        .unwrap_or_else(|| panic!("{} not in {doc}", file.display()))
}

const FULL: &str = r#"
# Every kind of entry.
policy = "default"
fail_on = "suspicious"
rules = ["team-rules.toml"]

[severity]
PS906 = "info"          # trailing bytes after the pickle: fine here

[[suppress]]
rule = "PS001"
paths = ["vendor/**"]
reason = "vendored models, reviewed"

[[suppress]]
rule = "PS903"          # never matches: reported as unused
paths = ["nowhere/*"]

[aliases]
acme_compat = "acme.models"

[[rule]]
id = "PS801"
name = "acme-models"
action = "allow"
severity = "info"
rationale = "Our own model classes."
examples = ["acme.models:Net"]
[rule.globals]
"acme.models" = ["Net"]

[[rule]]
id = "PS802"
name = "acme-backdoor"
action = "deny"
severity = "critical"
rationale = "Runs shell commands."
examples = ["acme.tools:shell"]
[rule.globals]
"acme.tools" = ["shell"]
"#;

const TEAM_RULES: &str = r#"
[[rule]]
id = "PS803"
name = "team-deny"
action = "deny"
severity = "high"
rationale = "Writes files."
examples = ["teamlib.io:dump"]
[rule.globals]
"teamlib.io" = ["dump"]
"#;

#[test]
fn the_text_report_gives_the_reason_of_the_rule_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "team-rules.toml", TEAM_RULES.as_bytes());
    let team = write(root, "dump.pkl", &calls("teamlib.io", "dump"));
    let builtin = write(root, "system.pkl", &calls("posix", "system"));
    let out = bin()
        .current_dir(root)
        .args(["--no-config", "--rules", "team-rules.toml"])
        .args([&team, &builtin])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // A user rule's finding shows the user rule's rationale; a built-in one its own.
    assert!(text.contains("PS803"), "{text}");
    assert!(
        text.contains("why: Writes files (picklescan-rs rule PS803)"),
        "{text}"
    );
    assert!(text.matches("why: ").count() >= 2, "{text}");
}

#[test]
fn every_kind_of_entry_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".picklescan.toml", FULL.as_bytes());
    write(root, "team-rules.toml", TEAM_RULES.as_bytes());
    let allowed = write(root, "models/net.pkl", &calls("acme.models", "Net"));
    let aliased = write(root, "models/net_compat.pkl", &calls("acme_compat", "Net"));
    let denied = write(root, "models/shell.pkl", &calls("acme.tools", "shell"));
    let team = write(root, "models/dump.pkl", &calls("teamlib.io", "dump"));
    let vendored = write(root, "vendor/x/other.pkl", &calls("other.lib", "Thing"));
    let unknown = write(root, "models/other.pkl", &calls("other.lib", "Thing"));
    let mut trailing = calls("acme.models", "Net");
    trailing.extend_from_slice(b"\xff\xfe trailing");
    let trailing = write(root, "models/trailing.pkl", &trailing);

    let (code, doc, stderr) = run(
        &[],
        &[
            &allowed, &aliased, &denied, &team, &vendored, &unknown, &trailing,
        ],
    );
    assert_eq!(verdict_of(&doc, &allowed), "clean", "inline allow rule");
    assert_eq!(verdict_of(&doc, &aliased), "clean", "inline alias");
    assert_eq!(verdict_of(&doc, &denied), "dangerous", "inline deny rule");
    assert_eq!(
        verdict_of(&doc, &team),
        "dangerous",
        "rule file named by the config"
    );
    assert_eq!(
        verdict_of(&doc, &vendored),
        "clean",
        "suppressed in vendor/**"
    );
    assert_eq!(
        verdict_of(&doc, &unknown),
        "suspicious",
        "suppression is path-bound"
    );
    assert_eq!(
        verdict_of(&doc, &trailing),
        "clean",
        "severity override to info"
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("PS903") && stderr.contains("matched no finding"),
        "unused suppression warned: {stderr}"
    );
    assert!(
        !stderr.contains("PS001 in vendor"),
        "used suppression not warned: {stderr}"
    );
    let denied_rule = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == denied.display().to_string())
        .unwrap()["findings"][0]["rule"]
        .clone();
    assert_eq!(denied_rule, "PS802");

    // The library gives the same answers.
    let cfg = Config::load(&root.join(".picklescan.toml")).unwrap();
    let mut rules = RuleSet::builtin();
    cfg.apply_rules(&mut rules).unwrap();
    assert!(rules.get("PS801").is_some() && rules.get("PS803").is_some());
    let policy = cfg.policy(None, None);
    assert_eq!(policy.mode, Mode::Default);
    assert_eq!(policy.fail_on, FailOn::Suspicious);
    assert_eq!(policy.suppressions.len(), 2);
}

#[test]
fn policy_and_threshold_from_the_config_and_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        ".picklescan.toml",
        b"policy = \"strict\"\nfail_on = \"dangerous\"\n",
    );
    let unknown = write(root, "m.pkl", &calls("other.lib", "Thing"));
    // strict: an unknown import is dangerous.
    let (code, doc, _) = run(&[], &[&unknown]);
    assert_eq!(verdict_of(&doc, &unknown), "dangerous");
    assert_eq!(code, 1);
    // Flags win over the file: default policy, and suspicious exits 0 under fail_on dangerous.
    let (code, doc, _) = run(&["--policy", "default"], &[&unknown]);
    assert_eq!(verdict_of(&doc, &unknown), "suspicious");
    assert_eq!(code, 0, "fail_on = dangerous from the file");
    let (code, _, _) = run(
        &["--policy", "default", "--fail-on", "suspicious"],
        &[&unknown],
    );
    assert_eq!(code, 2);
    // --no-config ignores the file.
    let (code, doc, _) = run(&["--no-config"], &[&unknown]);
    assert_eq!(verdict_of(&doc, &unknown), "suspicious");
    assert_eq!(code, 2);
    // A dangerous file still fails under --fail-on dangerous.
    let evil = write(root, "evil.pkl", &calls("os", "system"));
    let (code, _, _) = run(&["--no-config", "--fail-on", "dangerous"], &[&evil]);
    assert_eq!(code, 1);
}

#[test]
fn pyproject_table_and_discovery_by_walking_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "pyproject.toml",
        br#"[project]
name = "demo"

[tool.black]
line-length = 100

[tool.picklescan-rs]
policy = "strict"

[[tool.picklescan-rs.suppress]]
rule = "PS001"
paths = ["data/safe/**"]
"#,
    );
    let deep = write(root, "a/b/c/m.pkl", &calls("other.lib", "Thing"));
    let safe = write(root, "data/safe/s.pkl", &calls("other.lib", "Thing"));
    assert_eq!(config::discover(&deep), Some(root.join("pyproject.toml")));
    let (code, doc, _) = run(&[], &[&deep]);
    assert_eq!(
        verdict_of(&doc, &deep),
        "dangerous",
        "strict from pyproject"
    );
    assert_eq!(code, 1);
    let (code, doc, _) = run(&[], &[&safe]);
    assert_eq!(verdict_of(&doc, &safe), "clean");
    assert_eq!(code, 0);

    // A nearer .picklescan.toml wins over a farther pyproject.toml.
    write(root, "a/.picklescan.toml", b"policy = \"default\"\n");
    assert_eq!(
        config::discover(&deep),
        Some(root.join("a/.picklescan.toml"))
    );
    let (code, doc, _) = run(&[], &[&deep]);
    assert_eq!(verdict_of(&doc, &deep), "suspicious");
    assert_eq!(code, 2);
    // Discovery from a folder argument.
    assert_eq!(
        config::discover(&root.join("a/b")),
        Some(root.join("a/.picklescan.toml"))
    );

    // A pyproject.toml without the table is skipped.
    let other = tempfile::tempdir().unwrap();
    write(other.path(), "pyproject.toml", b"[project]\nname = \"x\"\n");
    let f = write(other.path(), "x/m.pkl", &calls("other.lib", "Thing"));
    let found = config::discover(&f);
    assert!(
        found.as_ref().is_none_or(|p| !p.starts_with(other.path())),
        "{found:?}"
    );
}

/// Run with `--config` on a broken file: exit 3 and the error, which must name `file:line:`.
fn broken(text: &str, line: usize, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "bad.toml", text.as_bytes());
    let m = write(dir.path(), "m.pkl", &calls("collections", "OrderedDict"));
    let out = bin().arg("--config").arg(&cfg).arg(&m).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}: {stderr}");
    let at = format!("{}:{line}:", cfg.display());
    assert!(stderr.contains(&at), "expected {at} in: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
}

#[test]
fn invalid_configurations_name_file_and_line() {
    broken(
        "policy = \"strict\"\n\nfail_on = \"dangerous\"\ncolour = true\n",
        4,
        "colour",
    );
    broken("policy = \"paranoid\"\n", 1, "paranoid");
    broken("[severity]\nPS001 = \"severe\"\n", 2, "severe");
    broken("[severity]\nPS001 = \"low\"\nPS777 = \"low\"\n", 3, "PS777");
    broken("\n[[suppress]]\nrule = \"PS999\"\n", 3, "PS999");
    broken(
        "[[suppress]]\nrule = \"PS001\"\npath = [\"x\"]\n",
        3,
        "path",
    );
    broken(
        "[[suppress]]\nrule = \"PS001\"\npaths = [\"a[\"]\n",
        3,
        "glob",
    );
    broken("policy = \"strict\nfail_on = 1\n", 1, "");
    broken(
        "policy = \"default\"\n\n[[rule]]\nid = \"PS101\"\nname = \"dup\"\naction = \"deny\"\n\
         severity = \"high\"\nrationale = \"x\"\nexamples = [\"a.b:c\"]\n[rule.globals]\n\"a.b\" = [\"c\"]\n",
        3,
        "PS101",
    );
    // pyproject errors name the pyproject line.
    let dir = tempfile::tempdir().unwrap();
    let py = write(
        dir.path(),
        "pyproject.toml",
        b"[project]\nname = \"x\"\n\n[tool.picklescan-rs]\npolicy = \"strict\"\nbogus = 1\n",
    );
    let e = Config::load(&py).unwrap_err();
    assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
    // A missing file is an error too.
    let out = bin()
        .args(["--config", "/nonexistent/x.toml", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

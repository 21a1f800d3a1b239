//! The command line end to end: exit codes, JSON and SARIF output, folders and excludes.

use crate::common::{benign_pickle as benign, evil_pickle as evil, Asm};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picklescan-rs"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

fn unknown() -> Vec<u8> {
    Asm::new()
        .proto(2)
        .global("mylib.model", "MyModel")
        .op(b')')
        .op(0x81)
        .stop()
        .build()
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn exit_codes_follow_the_most_serious_file() {
    let d = tempfile::tempdir().unwrap();
    let ok = write(d.path(), "ok.pkl", &benign());
    let bad = write(d.path(), "bad.pkl", &evil());
    let sus = write(d.path(), "sus.pkl", &unknown());
    let missing = d.path().join("missing.pkl");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    assert_eq!(run(&[&s(&ok)]).0, 0);
    assert_eq!(run(&[&s(&sus)]).0, 2);
    assert_eq!(run(&[&s(&bad), &s(&ok)]).0, 1);
    assert_eq!(run(&[&s(&missing)]).0, 3);
    assert_eq!(run(&[&s(&missing), &s(&sus)]).0, 3);
    assert_eq!(run(&[&s(&missing), &s(&bad)]).0, 1);
    assert_eq!(run(&["--format", "yaml", &s(&ok)]).0, 3);
}

#[test]
fn text_output_names_the_call_and_is_plain_when_piped() {
    let d = tempfile::tempdir().unwrap();
    let bad = write(d.path(), "bad.pkl", &evil());
    let (_, out) = run(&[bad.to_str().unwrap()]);
    assert!(out.contains("posix.system('echo pwned')"), "{out}");
    assert!(
        !out.contains("\x1b["),
        "colour codes in piped output: {out:?}"
    );
}

#[test]
fn json_report_has_the_documented_fields() {
    let d = tempfile::tempdir().unwrap();
    let bad = write(d.path(), "bad.pkl", &evil());
    let (code, out) = run(&["--format", "json", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 1);
    let file = &v["files"][0];
    assert_eq!(file["path"], bad.to_str().unwrap());
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);
    let f = &file["findings"][0];
    for key in ["rule", "severity", "global", "usage", "offset", "call"] {
        assert!(!f[key].is_null(), "missing {key} in {f}");
    }
    assert_eq!(f["global"], "posix.system");
    assert_eq!(f["usage"], "called");
    assert_eq!(v["summary"]["files"], 1);
}

#[test]
fn folders_are_walked_and_excludes_apply() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a/ok.pkl", &benign());
    write(d.path(), "a/b/bad.pkl", &evil());
    write(d.path(), "skip/bad.pkl", &evil());
    let (code, out) = run(&[
        "--format",
        "json",
        "--exclude",
        "skip",
        d.path().to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.iter().all(|p| !p.contains("skip")));
    assert_eq!(code, 1);
    let (code, _) = run(&["--exclude", "bad.pkl", d.path().to_str().unwrap()]);
    assert_eq!(code, 0);
}

/// The official SARIF 2.1.0 schema, as shipped in the `serde-sarif` crate (a dev-dependency, so
/// cargo has it in its registry).
fn sarif_schema() -> Value {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cargo")
        });
    let src = home.join("registry").join("src");
    for index in std::fs::read_dir(&src).expect("cargo registry sources") {
        let index = index.unwrap().path();
        for krate in std::fs::read_dir(&index).unwrap() {
            let krate = krate.unwrap().path();
            let name = krate.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("serde-sarif-") {
                let schema = krate.join("src").join("schema.json");
                if let Ok(text) = std::fs::read_to_string(&schema) {
                    return serde_json::from_str(&text).unwrap();
                }
            }
        }
    }
    panic!(
        "the SARIF 2.1.0 schema from the serde-sarif crate was not found under {}",
        src.display()
    );
}

#[test]
fn sarif_output_validates_against_the_official_schema() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "bad.pkl", &evil());
    write(d.path(), "sus.pkl", &unknown());
    write(d.path(), "ok.pkl", &benign());
    let (_, out) = run(&[
        "--format",
        "sarif",
        d.path().to_str().unwrap(),
        d.path().join("nope").to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let schema = sarif_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Typed view of the same document.
    let typed: serde_sarif::sarif::Sarif = serde_json::from_str(&out).unwrap();
    let results = typed.runs[0].results.as_ref().unwrap();
    assert!(results.len() >= 3, "{out}");
    let run = &doc["runs"][0];
    let bad = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["properties"]["global"] == "posix.system")
        .unwrap();
    assert_eq!(bad["level"], "error");
    // A validator that accepts everything would make this test worthless.
    let mut broken = doc.clone();
    broken["version"] = Value::from("9.9");
    assert!(!validator.is_valid(&broken));
}

/// A SavedModel is a folder: each one gets a verdict, the worst of its files', in the text and
/// the JSON report; the exit code is the worst model's.
#[test]
fn a_savedmodel_folder_gets_one_verdict() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/formats/savedmodel");
    let (code, out) = run(&["--format", "json", root.to_str().unwrap()]);
    assert_eq!(code, 1, "an attack among them");
    let v: Value = serde_json::from_str(&out).unwrap();
    let models = v["models"].as_array().unwrap();
    let folders = std::fs::read_dir(&root).unwrap().count();
    assert_eq!(models.len(), folders, "one entry per SavedModel folder");
    for m in models {
        let name = m["path"].as_str().unwrap().rsplit('/').next().unwrap();
        let expected = if name.starts_with("attack_") {
            "dangerous"
        } else if name.starts_with("damaged_") {
            "suspicious"
        } else if name == "module_dense" {
            "clean"
        } else {
            // The worst of the folder's files' verdicts.
            v["files"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["path"].as_str().unwrap().contains(&format!("/{name}/")))
                .map(|f| f["verdict"].as_str().unwrap())
                .max_by_key(|v| {
                    ["clean", "suspicious", "dangerous"]
                        .iter()
                        .position(|x| x == v)
                })
                .unwrap()
        };
        assert_eq!(m["verdict"], expected, "{name}");
        assert_eq!(m["format"], "tf-savedmodel");
        assert!(m["files"].as_u64().unwrap() >= 3, "{name}");
    }
    let one = root.join("attack_read_file");
    let (code, out) = run(&[one.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("attack_read_file/: dangerous (tf-savedmodel folder, 4 files)"),
        "{out}"
    );
}

//! Converts the embedded rule files (`rules/**/*.toml`) to JSON at build time. The rules are
//! read at every start of the program, and the same rules parse several times faster from JSON
//! than from TOML (about 0.3 ms against 1.5 ms for the built-in set). The TOML files stay the
//! source; `src/rules/builtin.rs` embeds both and validates the JSON with the same code.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=rules");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    convert_dir(Path::new("rules"), &out.join("rules"));
}

fn convert_dir(dir: &Path, out: &Path) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("readable rules directory").path();
        if path.is_dir() {
            convert_dir(&path, &out.join(path.file_name().expect("a named entry")));
        } else if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let value: toml::Value =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let json = serde_json::to_string(&value).expect("TOML values convert to JSON");
            std::fs::create_dir_all(out).expect("writable OUT_DIR");
            let target = out.join(path.with_extension("json").file_name().expect("a file"));
            std::fs::write(&target, json).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        }
    }
}

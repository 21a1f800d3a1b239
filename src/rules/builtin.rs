//! The rule files embedded in the binary.

use super::{RuleSet, RuleText};
use std::borrow::Cow;
use std::sync::OnceLock;

/// Lists every embedded rule file once: `FILES` holds the TOML texts (the source, shown and
/// fingerprinted), `JSON` the same files converted by `build.rs` (what is parsed).
macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        /// Every embedded rule file: path relative to the repository root, and its text.
        pub(crate) const FILES: &[(&str, &str)] = &[
            $((concat!($path, ".toml"), include_str!(concat!("../../", $path, ".toml")))),*
        ];
        const JSON: &[&str] = &[
            $(include_str!(concat!(env!("OUT_DIR"), "/", $path, ".json"))),*
        ];
    };
}

embedded!(
    "rules/aliases",
    "rules/anomalies",
    "rules/formats",
    "rules/allow/torch",
    "rules/allow/numpy",
    "rules/allow/stdlib",
    "rules/allow/joblib",
    "rules/deny/code-execution",
    "rules/deny/file-system",
    "rules/deny/network",
    "rules/deny/import-machinery",
    "rules/deny/nested-loaders",
);

/// The embedded rule set, parsed once per process.
pub(crate) fn builtin() -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = RuleSet::default();
        let sources = FILES
            .iter()
            .zip(JSON)
            .map(|((origin, text), json)| RuleText {
                origin: origin.to_string(),
                toml: Cow::Borrowed(*text),
                json: Some(json),
            })
            .collect();
        // The embedded files are checked by tests/rules.rs (`builtin_files_parse`, `builtin_json_matches_toml`); a failure
        // here is a build of broken data, not a runtime condition.
        if let Err(e) = set.add_sources(sources) {
            panic!("embedded rule files are invalid: {e}");
        }
        set
    })
}

//! The rule files embedded in the binary.

use super::{RuleSet, RuleText};
use std::borrow::Cow;
use std::sync::OnceLock;

// `FILES` (the TOML texts: the source, shown and fingerprinted) and `JSON` (the same files
// converted by `build.rs`: what is parsed), listed by `build.rs` from `rules/`.
include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

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

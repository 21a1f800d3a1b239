//! The rule files embedded in the binary.

use super::RuleSet;
use std::borrow::Cow;
use std::sync::OnceLock;

/// Every embedded rule file: path relative to the repository root, and its text.
pub(crate) const FILES: &[(&str, &str)] = &[
    (
        "rules/aliases.toml",
        include_str!("../../rules/aliases.toml"),
    ),
    (
        "rules/anomalies.toml",
        include_str!("../../rules/anomalies.toml"),
    ),
    (
        "rules/allow/torch.toml",
        include_str!("../../rules/allow/torch.toml"),
    ),
    (
        "rules/allow/numpy.toml",
        include_str!("../../rules/allow/numpy.toml"),
    ),
    (
        "rules/allow/stdlib.toml",
        include_str!("../../rules/allow/stdlib.toml"),
    ),
    (
        "rules/allow/joblib.toml",
        include_str!("../../rules/allow/joblib.toml"),
    ),
    (
        "rules/deny/code-execution.toml",
        include_str!("../../rules/deny/code-execution.toml"),
    ),
    (
        "rules/deny/file-system.toml",
        include_str!("../../rules/deny/file-system.toml"),
    ),
    (
        "rules/deny/network.toml",
        include_str!("../../rules/deny/network.toml"),
    ),
    (
        "rules/deny/import-machinery.toml",
        include_str!("../../rules/deny/import-machinery.toml"),
    ),
    (
        "rules/deny/nested-loaders.toml",
        include_str!("../../rules/deny/nested-loaders.toml"),
    ),
];

/// The embedded rule set, parsed once per process.
pub(crate) fn builtin() -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = RuleSet::default();
        let sources = FILES
            .iter()
            .map(|(origin, text)| (origin.to_string(), Cow::Borrowed(*text)))
            .collect();
        // The embedded files are checked by tests/rules.rs (`builtin_files_parse`); a failure
        // here is a build of broken data, not a runtime condition.
        if let Err(e) = set.add_sources(sources) {
            panic!("embedded rule files are invalid: {e}");
        }
        set
    })
}

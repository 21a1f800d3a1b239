//! Python-2 name mapping (placeholder).

/// Apply CPython's `fix_imports` mapping.
pub fn fix_imports(module: &str, name: &str) -> (String, String) {
    (module.to_string(), name.to_string())
}

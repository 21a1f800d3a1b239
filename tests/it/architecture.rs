//! ARCHITECTURE.md's rule that modules depend in one direction: the top-level modules of
//! `src/` (and `main.rs`) form no cycle through their `crate::` paths, and `format`, the readers,
//! reaches nothing but `pickle` (the opcode table, the machine for joblib's arrays) and `quant`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names as `crate::NAME`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "internals" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let uses = deps.entry(module.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module && name.chars().all(|c| !c.is_uppercase())
                    {
                        uses.insert(name);
                    }
                }
            }
        }
    }
    deps
}

/// A cycle through `from`, if there is one.
fn cycle(deps: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in deps.get(last).into_iter().flatten() {
            if next == from {
                return Some(path.iter().cloned().chain([next.clone()]).collect());
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn modules_depend_in_one_direction() {
    let deps = dependencies();
    assert!(deps.len() > 10, "{deps:?}");
    for module in deps.keys() {
        if let Some(c) = cycle(&deps, module) {
            panic!("modules depend on each other: {}", c.join(" → "));
        }
    }
    let readers: Vec<_> = deps["format"].iter().map(String::as_str).collect();
    assert_eq!(readers, ["pickle", "quant"], "what the readers depend on");
}

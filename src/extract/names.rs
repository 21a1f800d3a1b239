//! Naming policy applied to what the walk found: `--select`, duplicate names, the final list.

use super::graph::Leaf;
use std::collections::BTreeMap;

/// Keep the sub-tree under `key` (dotted), with `key.` removed from the names. A leaf named
/// exactly `key` is kept under its last component. `Err` lists the top-level names available.
pub fn select(leaves: Vec<Leaf>, key: &str) -> Result<Vec<Leaf>, Vec<String>> {
    let prefix = format!("{key}.");
    let last = key.rsplit('.').next().unwrap_or(key).to_string();
    let mut kept = Vec::new();
    let mut tops: Vec<String> = Vec::new();
    for mut leaf in leaves {
        let name = leaf_name_mut(&mut leaf);
        let top = name.split('.').next().unwrap_or("").to_string();
        if !tops.contains(&top) {
            tops.push(top);
        }
        if let Some(rest) = name.strip_prefix(&prefix) {
            *name = rest.to_string();
            kept.push(leaf);
        } else if name == key {
            *name = last.clone();
            kept.push(leaf);
        }
    }
    if kept.is_empty() {
        return Err(tops);
    }
    Ok(kept)
}

fn leaf_name_mut(leaf: &mut Leaf) -> &mut String {
    match leaf {
        Leaf::Tensor { name, .. } | Leaf::Unsupported { name, .. } | Leaf::Dropped { name, .. } => {
            name
        }
    }
}

/// Names that more than one tensor would be written under.
pub fn duplicates<'n>(names: impl Iterator<Item = &'n str>) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for n in names {
        *count.entry(n).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|&(_, c)| c > 1)
        .map(|(n, _)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str) -> Leaf {
        Leaf::Dropped {
            name: name.into(),
            what: "int".into(),
        }
    }

    fn names(l: &[Leaf]) -> Vec<String> {
        l.iter()
            .map(|x| match x {
                Leaf::Dropped { name, .. } => name.clone(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn select_subtree() {
        let l = vec![
            d("state_dict.a.w"),
            d("state_dict.b"),
            d("epoch"),
            d("state_dictx.c"),
        ];
        assert_eq!(
            names(&select(l.clone(), "state_dict").unwrap()),
            ["a.w", "b"]
        );
        assert_eq!(names(&select(l.clone(), "state_dict.a").unwrap()), ["w"]);
        assert_eq!(names(&select(l.clone(), "epoch").unwrap()), ["epoch"]);
        assert_eq!(
            select(l, "nope").unwrap_err(),
            ["state_dict", "epoch", "state_dictx"]
        );
    }

    #[test]
    fn duplicate_names() {
        assert_eq!(duplicates(["a.b", "a", "a.b"].into_iter()), ["a.b"]);
        assert!(duplicates(["x", "y"].into_iter()).is_empty());
    }
}

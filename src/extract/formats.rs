//! From a file's bytes to named leaves: which container it is (by content, never by name), where
//! its pickles and storages are, and the walk over each pickle.

use super::graph::{Leaf, Walk};
use super::numpy::JoblibArrays;
use super::tensor::{Backing, Region};
use super::torch::{NoStorages, Storages};
use super::ExtractError;
use crate::scan::Scanner;
use std::path::Path;

/// The leaves of a file and what it was read as.
pub(crate) fn leaves(
    scanner: &Scanner,
    path: &Path,
    backing: &Backing,
) -> Result<(String, Vec<Leaf>), ExtractError> {
    let _ = path;
    let data = backing.whole();
    let leaves = pickle_leaves(scanner, &data, &NoStorages, "tensor")?;
    Ok(("pickle".into(), leaves))
}

/// Run one pickle stream (with joblib's inline arrays) and walk what it returns.
pub(crate) fn pickle_leaves(
    scanner: &Scanner,
    data: &Region,
    storages: &dyn Storages,
    root_name: &str,
) -> Result<Vec<Leaf>, ExtractError> {
    let bytes = data.bytes();
    let mut hook = JoblibArrays::new(data.clone());
    let (vm, run) = scanner.run_one(bytes, &mut hook);
    if let Some(e) = &run.error {
        return Err(ExtractError::Format(format!(
            "the pickle cannot be read: {e}"
        )));
    }
    let root = run
        .result
        .ok_or_else(|| ExtractError::Format("the pickle returned nothing".into()))?;
    let mut walk = Walk::new(
        &vm,
        data.backing().clone(),
        storages,
        &hook.found,
        root_name,
    );
    walk.walk(root, "")
        .map_err(|e| ExtractError::Format(format!("tensor {e}")))?;
    Ok(walk.leaves)
}

//! The operator and agency tools (binaries of the `srtpgate-tools` package) for tests in
//! other packages: found in the target directory, built with cargo when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Context, E2eError, Result};

/// The workspace root (the parent of the tests crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `target/debug/NAME` of the `srtpgate-tools` package, built with cargo when missing.
pub fn tool(name: &str) -> Result<PathBuf> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { root.join(p) } else { p })
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join(name);
    if !bin.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "srtpgate-tools", "--bin", name])
            .current_dir(&root)
            .status()
            .context(format!("building {name}"))?;
        if !st.success() {
            return Err(E2eError::new(format!("building {name} failed ({st})")));
        }
    }
    bin.is_file()
        .then_some(bin)
        .context(format!("cargo build succeeded but {name} is missing"))
}

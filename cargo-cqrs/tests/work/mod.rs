//! The folders the end-to-end tests build crates in.

use std::path::{Path, PathBuf};

/// A folder of one test under `target/e2e/work/`, emptied first and removed when dropped.
///
/// Not a random temporary folder: a crate built here keeps its path from run to run, and its
/// path is part of what cargo hashes, so the shared `target/e2e` reuses the build of the last
/// run instead of keeping one more copy of the crate (and of its binaries) per run.
#[derive(Debug)]
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// The folder `name` (unique per test).
    pub fn new(name: &str) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/work");
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        WorkDir(dir.canonicalize().unwrap_or(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

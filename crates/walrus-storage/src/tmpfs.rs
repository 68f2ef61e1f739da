//! A small tmpfs for tests that need a real full disk (`ENOSPC`), behind the `testing` feature
//! so that every crate's tests share one mount guard.
//!
//! Mounting needs root. Without it, [`small_tmpfs`] prints why and returns `None` (the test
//! skips), except under CI (`CI=true`), where a skipped check would hide a regression, so it
//! panics instead.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU64, Ordering},
};

/// A tmpfs mounted on a fresh directory under the system temporary directory; unmounted and
/// removed on drop, also when the test panics.
#[derive(Debug)]
pub struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `"2m"`), or says why it
    /// could not.
    pub fn mount(size: &str) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "walrus-tmpfs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // Owner-only, like the directories Walrus creates; so is the mounted root.
        crate::create_dir_all(&path, crate::DEFAULT_FILE_MODE)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "walrus-enospc",
            ])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            let _ = std::fs::remove_dir(&path);
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self { path })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds the mount (a test panicked with a handle open): detach it
            // so the directory can go.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A mounted tmpfs of `size` for `test`, or `None` after printing why the test is skipped.
///
/// # Panics
///
/// When mounting fails and the environment variable `CI` is `true`.
pub fn small_tmpfs(test: &str, size: &str) -> Option<SmallTmpfs> {
    match SmallTmpfs::mount(size) {
        Ok(fs) => Some(fs),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "{test}: cannot mount a tmpfs to provoke ENOSPC, and CI=true forbids skipping: {why}"
            )
        }
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

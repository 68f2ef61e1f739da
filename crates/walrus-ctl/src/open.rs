//! Finding the instance directory and opening it, with the errors a user can act on.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use walrus_rust::{FsyncSchedule, Walrus, WalrusBuilder, upgrade::ImportProgress};

use crate::output::{count, human_bytes};

/// How a command opens the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Nothing on disk changes: recovery only reports what it would cut.
    ReadOnly,
    /// A normal open: recovery cuts torn tails and partial batches durably and deletes fully
    /// consumed files, as the application's next open would.
    Writable,
}

/// The instance directory named by `--dir` and `--key`.
#[derive(Debug)]
pub(crate) struct Target {
    data_dir: PathBuf,
    key: Option<String>,
    instance: PathBuf,
}

/// A segment file as listed in the directory, independent of what the library adopted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DiskFile {
    pub(crate) name: String,
    pub(crate) bytes: u64,
}

impl Target {
    pub(crate) fn new(data_dir: PathBuf, key: Option<String>) -> Self {
        // The same mapping as `WalrusBuilder::key`, so the path checked and printed is the one
        // the library opens.
        let instance = match &key {
            Some(key) => data_dir.join(walrus_rust::sanitize_key(key)),
            None => data_dir.clone(),
        };
        Self {
            data_dir,
            key,
            instance,
        }
    }

    /// The directory that holds the segment files.
    pub(crate) fn instance(&self) -> &Path {
        &self.instance
    }

    /// The instance key (`--key`), if any.
    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Opens the instance. Opening creates a missing directory, which for an inspection tool
    /// would turn a typo into a fresh empty log: check first.
    pub(crate) fn open(&self, mode: Mode) -> Result<Walrus> {
        // Lists the directory after checking that it exists.
        let files = self.segment_files()?;
        let spinner = spinner(&self.instance, &files);
        let mut builder = builder(self.data_dir.clone()).read_only(mode == Mode::ReadOnly);
        if let Some(key) = &self.key {
            builder = builder.key(key);
        }
        let opened = builder.build();
        spinner.finish_and_clear();
        opened.map_err(|err| open_error(&self.instance, err))
    }

    /// Fails, with a message naming the key if there is one, unless the instance directory
    /// exists.
    pub(crate) fn check_exists(&self) -> Result<()> {
        match std::fs::metadata(&self.instance) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => bail!("{} is not a directory", self.instance.display()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => match &self.key {
                Some(key) => bail!(
                    "directory {} does not exist (no instance for key {key:?} in {})",
                    self.instance.display(),
                    self.data_dir.display()
                ),
                None => bail!("directory {} does not exist", self.instance.display()),
            },
            Err(err) => {
                Err(err).with_context(|| format!("cannot read {}", self.instance.display()))
            }
        }
    }

    /// The segment files (`<20 digits>.wal`) in the instance directory, by name.
    pub(crate) fn segment_files(&self) -> Result<Vec<DiskFile>> {
        self.check_exists()?;
        let entries = std::fs::read_dir(&self.instance)
            .with_context(|| format!("cannot list {}", self.instance.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list {}", self.instance.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_segment_name(&name) {
                continue;
            }
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            files.push(DiskFile {
                name,
                bytes: meta.len(),
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }
}

/// The builder every command opens with.
fn builder(data_dir: PathBuf) -> WalrusBuilder {
    Walrus::builder()
        .data_dir(data_dir)
        // walrus-ctl appends only what an import appends, which syncs once at its end: no
        // background sync thread, no io_uring ring.
        .fd_backend(true)
        .io_uring(false)
        .fsync_schedule(FsyncSchedule::SyncEach)
        // An inspection and repair tool looks at every block's data, sealed or not.
        .full_scan(true)
}

/// Opens the instance directory `dir` (which exists) normally, which imports the
/// walrus-rust 0.2.0 data in it; `progress` is told of the import's progress.
pub(crate) fn open_importing(
    dir: &Path,
    progress: impl Fn(&ImportProgress) + Send + Sync + 'static,
) -> Result<Walrus> {
    builder(dir.to_path_buf())
        .import_v020(true)
        .on_import_progress(progress)
        .build()
        .map_err(|err| open_error(dir, err))
}

fn open_error(dir: &Path, err: io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::WouldBlock {
        // The library's message names the lock operation; say what the user can do.
        anyhow::anyhow!(
            "directory {} is in use by another process; stop it and try again",
            dir.display()
        )
    } else {
        anyhow::Error::new(err).context(format!("cannot open {}", dir.display()))
    }
}

/// Whether `name` is a segment file name (docs/FORMAT.md: 20 decimal digits, then `.wal`).
pub(crate) fn is_segment_name(name: &str) -> bool {
    name.strip_suffix(".wal")
        .is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
}

/// The library scans every block while it opens and reports no progress, so the best we can
/// show is a spinner naming the amount of work. It draws only when stderr is a terminal.
fn spinner(dir: &Path, files: &[DiskFile]) -> ProgressBar {
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(format!(
        "checking {} ({}) in {}",
        count(files.len() as u64, "segment file", "segment files"),
        human_bytes(bytes),
        dir.display()
    ));
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert!(is_segment_name("00000000000000000001.wal"));
        assert!(!is_segment_name("0001.wal"));
        assert!(!is_segment_name("cursors-0000.idx"));
        assert!(!is_segment_name("0000000000000000000x.wal"));
        assert!(!is_segment_name("LOCK"));
    }

    #[test]
    fn key_maps_like_the_library() {
        let target = Target::new(PathBuf::from("/data"), Some("a/b".into()));
        assert_eq!(
            target.instance(),
            Path::new("/data").join(walrus_rust::sanitize_key("a/b"))
        );
        let target = Target::new(PathBuf::from("/data"), None);
        assert_eq!(target.instance(), Path::new("/data"));
    }
}

//! What the disk itself does, measured in the same run as the logs: the fdatasync rate of one
//! writer and buffered sequential write bandwidth.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::FileExt,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Result;

use super::Phase;
use crate::{hist::Histogram, payload::Payloads};

/// 4 KiB written and fdatasynced in a loop: the most durable appends per second the disk
/// gives one writer. `overwrite` rewrites one block that is already written and synced, so
/// each fdatasync flushes data only; otherwise the file grows by 4 KiB each time.
pub(super) fn fdatasync_rate(dir: &Path, duration: Duration, overwrite: bool) -> Result<Phase> {
    let file = scratch_file(
        dir,
        if overwrite {
            "overwrite.bin"
        } else {
            "append.bin"
        },
    )?;
    let block = [0x5au8; 4096];
    if overwrite {
        file.write_all_at(&block, 0)?;
        file.sync_all()?;
    }
    timed(duration, |op| {
        let at = if overwrite { 0 } else { op * 4096 };
        file.write_all_at(&block, at)?;
        file.sync_data()?;
        Ok(block.len() as u64)
    })
}

/// Blocks apart that [`scattered_fdatasync_rate`] writes, like four topics' active blocks.
const SCATTER_GAP: u64 = 10 << 20;
/// Bytes each of its writers cycles through (written and synced before timing).
const SCATTER_SPAN: u64 = 1 << 20;

/// Four writes of 750 bytes, 10 MiB apart, then one fdatasync, in a loop: a group-commit
/// round of four writers of four topics at best, since each topic appends into its own block
/// (four pages in four places cost four device writes; adjacent ones would merge into one).
/// The regions are written and synced first, as the durable write path's zeros ahead do.
pub(super) fn scattered_fdatasync_rate(dir: &Path, duration: Duration) -> Result<Phase> {
    let file = scratch_file(dir, "scattered.bin")?;
    let zeros = vec![0u8; SCATTER_SPAN as usize];
    for w in 0..4 {
        file.write_all_at(&zeros, w * SCATTER_GAP)?;
    }
    file.sync_all()?;
    let record = [0x5au8; 750];
    timed(duration, |op| {
        let at = (op * record.len() as u64) % (SCATTER_SPAN - record.len() as u64);
        for w in 0..4 {
            file.write_all_at(&record, w * SCATTER_GAP + at)?;
        }
        file.sync_data()?;
        Ok(4 * record.len() as u64)
    })
}

/// Buffered sequential writes of 1 MiB to a new file: what the page cache and write path take
/// without any sync (the file wraps at 2 GiB to bound the dirty memory).
///
/// A first, untimed 1 GiB file is written and deleted: in a virtual machine the first touch of
/// guest memory is far slower than reusing a freed page-cache page, and every later cell runs
/// on memory that earlier cells have touched.
pub(super) fn seq_write(dir: &Path, duration: Duration) -> Result<Phase> {
    const CHUNK: usize = 1 << 20;
    const WRAP: u64 = 2 << 30;
    std::fs::create_dir_all(dir)?;
    let chunk = {
        let mut p = Payloads::fixed(CHUNK, 3);
        p.one().to_vec()
    };
    {
        let warm = dir.join("warm.bin");
        let mut file = File::create(&warm)?;
        for _ in 0..1024 {
            file.write_all(&chunk)?;
        }
        drop(file);
        std::fs::remove_file(&warm)?;
    }
    let mut file = File::create(dir.join("seq.bin"))?;
    let mut written = 0u64;
    timed(duration, |_| {
        if written > 0 && written.is_multiple_of(WRAP) {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))?;
        }
        file.write_all(&chunk)?;
        written += CHUNK as u64;
        Ok(CHUNK as u64)
    })
}

/// A new (or emptied) file `name` in `dir`, open for reading and writing.
fn scratch_file(dir: &Path, name: &str) -> Result<File> {
    std::fs::create_dir_all(dir)?;
    Ok(OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join(name))?)
}

/// Runs `op` (given its index; returns the bytes it wrote) until `duration` has passed,
/// recording each one's latency.
fn timed(duration: Duration, mut op: impl FnMut(u64) -> Result<u64>) -> Result<Phase> {
    let mut hist = Histogram::new();
    let start = Instant::now();
    let deadline = start + duration;
    let mut prev = start;
    let (mut ops, mut bytes) = (0u64, 0u64);
    loop {
        bytes += op(ops)?;
        let now = Instant::now();
        hist.record((now - prev).as_nanos() as u64);
        prev = now;
        ops += 1;
        if now >= deadline {
            break;
        }
    }
    Ok(Phase {
        ops,
        bytes,
        elapsed: start.elapsed(),
        hist,
    })
}

//! A small append-only log built on walrus-storage alone: one pre-sized file of frames.
//!
//! Run it with `cargo run -p walrus-storage --example custom_log`.

use std::{error::Error, io, path::Path, sync::Arc};

use walrus_storage::{
    BackendKind, FrameHeader, ScanEnd, ScanItem, Scanner, Segment, encode_frame, open_storage,
};

/// The one file of the log, and how many bytes it reserves.
const FILE_NAME: &str = "log.0";
const FILE_BYTES: u64 = 1 << 20;
/// The frame kind of an entry; zero is reserved by the format.
const ENTRY: u8 = 1;

/// An append-only log of byte entries, numbered from zero.
#[derive(Debug)]
struct Log {
    file: Arc<dyn Segment>,
    /// Where the next frame goes.
    tail: u64,
    /// Sequence number of the next entry.
    next_seq: u64,
    /// Reused encoding buffer.
    buf: Vec<u8>,
}

impl Log {
    /// Opens the log in `dir`, creating it, and finds the end of what was written before.
    fn open(dir: &Path) -> walrus_storage::Result<Self> {
        let storage = open_storage(dir, BackendKind::FdUring)?;
        let file = match storage.open(FILE_NAME) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                storage.create(FILE_NAME, FILE_BYTES)?
            }
            Err(err) => return Err(err),
        };
        let mut log = Self {
            file,
            tail: 0,
            next_seq: 0,
            buf: Vec::new(),
        };
        let entries = log.entries()?;
        log.next_seq = entries.last().map_or(0, |(seq, _)| seq + 1);
        Ok(log)
    }

    /// Appends one entry and returns its sequence number. Not durable until [`Log::sync`].
    fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        let seq = self.next_seq;
        let header = FrameHeader {
            kind: ENTRY,
            seq,
            ..FrameHeader::default()
        };
        self.buf.clear();
        encode_frame(&mut self.buf, &header, payload);
        if self.tail + self.buf.len() as u64 > self.file.len() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the log is full",
            ));
        }
        self.file.write_at(self.tail, &self.buf)?;
        self.tail += self.buf.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Makes every appended entry durable.
    fn sync(&self) -> walrus_storage::Result<()> {
        self.file.sync()
    }

    /// Reads the whole file and returns its entries, moving the tail to the end of the valid
    /// data. A torn last write (a crash mid-append) is cut off; damage in the middle is
    /// reported and skipped.
    fn entries(&mut self) -> walrus_storage::Result<Vec<(u64, Vec<u8>)>> {
        let mut bytes = vec![0u8; usize::try_from(self.file.len()).unwrap_or(0)];
        self.file.read_at(0, &mut bytes)?;
        let mut scanner = Scanner::new(&bytes, 0);
        let mut entries = Vec::new();
        for item in scanner.by_ref() {
            match item {
                ScanItem::Frame { frame, .. } => {
                    entries.push((frame.header.seq, frame.payload.to_vec()));
                }
                ScanItem::Corrupt { offset, error, .. } => {
                    eprintln!("skipping damaged bytes at {offset}: {error}");
                }
            }
        }
        let end = scanner.end().unwrap_or(ScanEnd::EndOfBuffer { offset: 0 });
        if let ScanEnd::Torn { offset, .. } = end {
            // Zero the torn frame so the next append does not leave a remnant behind it.
            let start = usize::try_from(offset).unwrap_or(bytes.len());
            self.file
                .write_at(offset, &vec![0u8; bytes.len() - start])?;
            self.file.sync()?;
        }
        self.tail = end.offset();
        Ok(entries)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;

    let mut log = Log::open(dir.path())?;
    for word in ["walrus", "tusk", "whiskers"] {
        let seq = log.append(word.as_bytes())?;
        println!("appended #{seq}: {word}");
    }
    log.sync()?;
    drop(log);

    // Reopen: the log finds its end and carries on numbering.
    let mut log = Log::open(dir.path())?;
    println!(
        "reopened: next entry is #{}, tail at byte {}",
        log.next_seq, log.tail
    );
    log.append(b"flippers")?;
    log.sync()?;
    let tail = log.tail;
    drop(log);

    // Simulate a crash halfway through an append: only part of a frame reaches the file.
    let mut half = Vec::new();
    encode_frame(
        &mut half,
        &FrameHeader {
            kind: ENTRY,
            seq: 4,
            ..FrameHeader::default()
        },
        b"lost",
    );
    let storage = open_storage(dir.path(), BackendKind::Fd)?;
    storage
        .open(FILE_NAME)?
        .write_at(tail, &half[..half.len() / 2])?;

    // Reopening cuts the torn frame off; appending carries on where the valid data ends.
    let mut log = Log::open(dir.path())?;
    println!(
        "after a torn append: next entry is #{}, tail at byte {}",
        log.next_seq, log.tail
    );
    log.append(b"blubber")?;
    log.sync()?;
    drop(log);

    let mut log = Log::open(dir.path())?;
    for (seq, payload) in log.entries()? {
        println!("#{seq}: {}", String::from_utf8_lossy(&payload));
    }
    Ok(())
}

//! Batched positional I/O through one io_uring submission per batch (Linux only).
//!
//! Every completion is checked: short transfers are resubmitted for the rest, EINTR and EAGAIN
//! are retried, and on any other error the in-flight operations are still reaped before the
//! call returns, so no kernel operation outlives the buffers it points into.

#[cfg(target_os = "linux")]
pub(crate) use linux::{Ring, probe};

#[cfg(not(target_os = "linux"))]
pub(crate) use other::{Ring, probe};

#[cfg(target_os = "linux")]
mod linux {
    use std::{collections::VecDeque, fs::File, io, os::fd::AsRawFd};

    use io_uring::{IoUring, opcode, types};
    use parking_lot::Mutex;

    use crate::{ReadAt, WriteAt};

    /// Submission queue depth; larger batches are fed through in waves.
    const RING_ENTRIES: u32 = 256;
    /// Largest single transfer; longer buffers are split (the length field is 32 bits).
    const TRANSFER_BYTES_MAX: usize = 1 << 30;

    /// Checks once whether io_uring works here.
    pub(crate) fn probe() -> io::Result<()> {
        IoUring::new(8).map(drop)
    }

    /// One ring shared by the files of a storage; a batch holds it for its whole duration.
    pub(crate) struct Ring {
        ring: Mutex<IoUring>,
    }

    impl std::fmt::Debug for Ring {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Ring")
                .field("entries", &RING_ENTRIES)
                .finish()
        }
    }

    /// One transfer: a raw view of a caller buffer plus how much of it is done.
    struct Op {
        ptr: *mut u8,
        len: usize,
        offset: u64,
        done: usize,
    }

    impl Ring {
        pub(crate) fn new() -> io::Result<Self> {
            Ok(Self {
                ring: Mutex::new(IoUring::new(RING_ENTRIES)?),
            })
        }

        pub(crate) fn write_all(&self, file: &File, writes: &[WriteAt<'_>]) -> io::Result<()> {
            let mut ops: Vec<Op> = writes
                .iter()
                .map(|w| Op {
                    ptr: w.buf.as_ptr().cast_mut(),
                    len: w.buf.len(),
                    offset: w.offset,
                    done: 0,
                })
                .collect();
            // The borrow of `writes` outlives this call, so every buffer stays valid while the
            // kernel may read it.
            self.run(file, &mut ops, true)
        }

        pub(crate) fn read_exact(&self, file: &File, reads: &mut [ReadAt<'_>]) -> io::Result<()> {
            let mut ops: Vec<Op> = reads
                .iter_mut()
                .map(|r| Op {
                    ptr: r.buf.as_mut_ptr(),
                    len: r.buf.len(),
                    offset: r.offset,
                    done: 0,
                })
                .collect();
            // The exclusive borrow of `reads` outlives this call, so nothing else touches the
            // buffers while the kernel fills them.
            self.run(file, &mut ops, false)
        }

        fn run(&self, file: &File, ops: &mut [Op], write: bool) -> io::Result<()> {
            let fd = types::Fd(file.as_raw_fd());
            let mut ring = self.ring.lock();
            let mut pending: VecDeque<usize> = (0..ops.len()).filter(|i| ops[*i].len > 0).collect();
            let mut in_flight = 0usize;
            let mut first_error: Option<io::Error> = None;
            loop {
                if first_error.is_none() {
                    let mut sq = ring.submission();
                    while in_flight < RING_ENTRIES as usize {
                        let Some(index) = pending.pop_front() else {
                            break;
                        };
                        let op = &ops[index];
                        let len = (op.len - op.done).min(TRANSFER_BYTES_MAX);
                        // Lossless: `len` is at most TRANSFER_BYTES_MAX, below u32::MAX.
                        let len = len as u32;
                        let offset = op.offset + op.done as u64;
                        // SAFETY: `op.ptr + op.done .. + len` lies inside the caller's buffer
                        // (`done + len <= op.len`), which the caller borrows until `run`
                        // returns.
                        let buf = unsafe { op.ptr.add(op.done) };
                        let sqe = if write {
                            opcode::Write::new(fd, buf, len).offset(offset).build()
                        } else {
                            opcode::Read::new(fd, buf, len).offset(offset).build()
                        }
                        .user_data(index as u64);
                        // SAFETY: the entry points into a buffer and a descriptor that both
                        // outlive the operation, because `run` reaps every submitted entry
                        // (in_flight drops to zero) before it returns, also on errors.
                        if unsafe { sq.push(&sqe) }.is_err() {
                            pending.push_front(index);
                            break;
                        }
                        in_flight += 1;
                    }
                }
                if in_flight == 0 {
                    break;
                }
                match ring.submit_and_wait(1) {
                    Ok(_) => {}
                    Err(err) if matches!(err.kind(), io::ErrorKind::Interrupted) => continue,
                    Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {}
                    Err(err) => {
                        // Nothing new was accepted; anything already submitted is reaped
                        // below before we return.
                        first_error.get_or_insert(err);
                    }
                }
                for cqe in ring.completion() {
                    in_flight -= 1;
                    let index = cqe.user_data() as usize;
                    let result = cqe.result();
                    let op = &mut ops[index];
                    if result < 0 {
                        let err = io::Error::from_raw_os_error(-result);
                        if matches!(-result, libc::EINTR | libc::EAGAIN) {
                            pending.push_back(index);
                        } else {
                            first_error.get_or_insert(err);
                        }
                    } else if result == 0 {
                        let kind = if write {
                            io::ErrorKind::WriteZero
                        } else {
                            io::ErrorKind::UnexpectedEof
                        };
                        first_error.get_or_insert(io::Error::new(
                            kind,
                            "io_uring transfer made no progress",
                        ));
                    } else {
                        op.done += result as usize;
                        if op.done < op.len {
                            pending.push_back(index);
                        }
                    }
                }
            }
            match first_error {
                Some(err) => Err(err),
                None => Ok(()),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::{fs::File, io};

    use crate::{ReadAt, WriteAt};

    pub(crate) fn probe() -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring exists only on Linux",
        ))
    }

    #[derive(Debug)]
    pub(crate) struct Ring;

    impl Ring {
        pub(crate) fn new() -> io::Result<Self> {
            probe().map(|()| Self)
        }

        pub(crate) fn write_all(&self, _file: &File, _writes: &[WriteAt<'_>]) -> io::Result<()> {
            probe()
        }

        pub(crate) fn read_exact(&self, _file: &File, _reads: &mut [ReadAt<'_>]) -> io::Result<()> {
            probe()
        }
    }
}

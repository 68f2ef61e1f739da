//! Walking a region of frames, telling a clean or torn end apart from corruption in the middle.
//!
//! A pre-sized file is zero past its written data, and a torn last write leaves a damaged frame
//! with nothing valid after it. Damage *followed by a valid frame* cannot be a torn tail: it is
//! corruption, reported with its offset, and the scanner resumes at the next valid frame.

use crate::{
    format::FRAME_ALIGN,
    frame::{Decoded, Frame, FrameError, decode_frame},
};

/// One step of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanItem<'a> {
    /// A valid frame at `offset`.
    Frame {
        /// Offset of the frame (base offset plus position in the buffer).
        offset: u64,
        /// The frame.
        frame: Frame<'a>,
    },
    /// Damaged bytes at `offset`, followed by a valid frame at `resumed_at`.
    Corrupt {
        /// Where the damage starts.
        offset: u64,
        /// What was wrong with the bytes there.
        error: FrameError,
        /// Where the next valid frame starts.
        resumed_at: u64,
    },
}

/// Why a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Zeroed bytes at `offset`: the end of written data.
    Zeroed {
        /// Where the zeros start.
        offset: u64,
    },
    /// A damaged frame at `offset` with no valid frame after it: a torn last write.
    Torn {
        /// Where the damaged frame starts.
        offset: u64,
        /// What was wrong with it.
        error: FrameError,
    },
    /// The buffer ended exactly after a frame.
    EndOfBuffer {
        /// The buffer's end.
        offset: u64,
    },
}

impl ScanEnd {
    /// Offset at which the valid data ends.
    pub fn offset(&self) -> u64 {
        match *self {
            Self::Zeroed { offset } | Self::Torn { offset, .. } | Self::EndOfBuffer { offset } => {
                offset
            }
        }
    }
}

/// Iterates the frames of a buffer that starts at file offset `base`.
#[derive(Debug)]
pub struct Scanner<'a> {
    buf: &'a [u8],
    base: u64,
    pos: usize,
    end: Option<ScanEnd>,
}

impl<'a> Scanner<'a> {
    /// A scanner over `buf`, whose first byte sits at offset `base` of its file.
    pub fn new(buf: &'a [u8], base: u64) -> Self {
        Self {
            buf,
            base,
            pos: 0,
            end: None,
        }
    }

    /// Why the scan stopped; `None` while frames remain.
    pub fn end(&self) -> Option<ScanEnd> {
        self.end
    }

    fn offset(&self, pos: usize) -> u64 {
        self.base + pos as u64
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = ScanItem<'a>;

    fn next(&mut self) -> Option<ScanItem<'a>> {
        if self.end.is_some() {
            return None;
        }
        if self.pos >= self.buf.len() {
            self.end = Some(ScanEnd::EndOfBuffer {
                offset: self.offset(self.pos),
            });
            return None;
        }
        let rest = &self.buf[self.pos..];
        match decode_frame(rest) {
            Decoded::Frame(frame) => {
                let offset = self.offset(self.pos);
                self.pos += frame.frame_len;
                Some(ScanItem::Frame { offset, frame })
            }
            Decoded::Zeroed => {
                self.end = Some(ScanEnd::Zeroed {
                    offset: self.offset(self.pos),
                });
                None
            }
            Decoded::Invalid(error) => {
                let offset = self.offset(self.pos);
                match resync(self.buf, self.pos) {
                    Some(next) => {
                        self.pos = next;
                        Some(ScanItem::Corrupt {
                            offset,
                            error,
                            resumed_at: self.offset(next),
                        })
                    }
                    None => {
                        self.end = Some(ScanEnd::Torn { offset, error });
                        None
                    }
                }
            }
        }
    }
}

/// Position of the first valid frame after the damaged one at `damaged`, if any.
///
/// Probes every aligned position after `damaged`. The damaged header's length field is not
/// trusted: a flipped bit there can point at a valid frame further on, and jumping to it would
/// skip the valid frames in between.
pub fn resync(buf: &[u8], damaged: usize) -> Option<usize> {
    let is_frame = |pos: usize| matches!(decode_frame(&buf[pos..]), Decoded::Frame(_));
    let first = (damaged + 1).next_multiple_of(FRAME_ALIGN);
    (first..buf.len())
        .step_by(FRAME_ALIGN)
        .find(|pos| is_frame(*pos))
}

#[cfg(test)]
mod tests;

//! Block allocation for the Walrus write-ahead log.
//!
//! Most users want the `walrus-rust` crate. This crate is the layer between byte storage
//! (`walrus-storage`) and topics (`walrus-topic`): it carves pre-sized segment files into
//! fixed-size blocks, hands contiguous extents of blocks to topics, and deletes a file as soon
//! as every extent in it has been written, sealed and consumed, without a background
//! coordinator: whichever call makes that condition true performs the deletion.
#![forbid(unsafe_code)]

mod allocator;
mod class;
mod error;
mod extent;
mod file_state;
mod format;
mod segment_file;
mod sync;

pub use allocator::{
    AllocConfig, Allocator, LANE_FILE_BLOCKS_MIN, LANES, RecoveredFile, SMALL_EXTENT_UNITS_MAX,
    SMALL_FILE_UNITS, SMALL_UNIT_BYTES_MIN, UnreadableFile,
};
pub use error::{Error, Result};
pub use extent::{Extent, ExtentState};
pub use file_state::FileCounts;
pub use format::{
    FILE_HEADER_BYTES, FILE_HEADER_KIND, FILE_NAME_SUFFIX, file_name, parse_file_name,
};
pub use segment_file::SegmentFile;

//! Integration tests of the allocator over in-memory and real storage.

mod allocator;
mod deletion;
mod recovery;

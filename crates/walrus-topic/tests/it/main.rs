//! walrus-topic's own tests of reads and recovery, against walrus-storage's in-memory and
//! fault-injecting storage (no files, no process-wide registry). The public API is tested
//! in walrus-rust's suites.

mod reads;
mod recovery;
mod support;

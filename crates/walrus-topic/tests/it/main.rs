//! walrus-topic's own tests, against walrus-storage's in-memory and fault-injecting storage (no
//! files, no process-wide registry): reads, recovery, and the engine-level reliability suites
//! of shared/RELIABILITY.md: the power-loss simulator (T2, `sim_crash.rs`), crash schedules
//! (`crash.rs`), the corruption corpus (T5), fault injection (T6, `inject.rs`) and seal
//! records (`seal.rs`). The public API is tested in walrus-rust's suites.

mod corruption_corpus;
mod crash;
mod inject;
mod log;
mod reads;
mod recovery;
mod rng;
mod seal;
mod sim_crash;
mod support;
mod truncate;

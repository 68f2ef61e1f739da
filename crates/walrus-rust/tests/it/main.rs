//! Integration tests of the public API: semantics, durability, recovery, concurrency.

mod support;

mod basics;
mod batches;
mod corruption;
mod corruption_corpus;
mod crash;
mod cursors;
mod enospc;
mod fd_limit;
mod fs_shutdown;
mod inject;
mod inspect;
mod instances;
mod kill9;
mod model;
mod namespaces;
mod sim_crash;
mod sizes;
mod stress;

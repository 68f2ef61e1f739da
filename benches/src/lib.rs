//! Shared code of the Walrus benchmarks: payloads, latency histograms, the `Wal` trait over
//! Walrus and its peers, and the throughput harness's workloads, runner, report and plots.
#![forbid(unsafe_code)]

pub mod goals;
pub mod hist;
pub mod machine;
pub mod migrate;
pub mod payload;
pub mod plan;
pub mod plot;
pub mod report;
pub mod suite;
pub mod wal;
pub mod workload;

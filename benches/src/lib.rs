//! Shared helpers for the Walrus benchmarks (temporary directories, payloads).

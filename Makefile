# Thin aliases over cargo and cargo xtask; CI calls `make test` through .ci/run.
.PHONY: test check loom bench fmt clippy

# The README's test command: every crate's unit, integration and doc tests (with the
# in-memory and fault-injecting storage and the metrics feature enabled), then the loom
# models.
test:
	cargo test --workspace --features walrus-storage/testing,walrus-rust/metrics
	cargo xtask loom

check:
	cargo xtask ci

loom:
	cargo xtask loom

bench:
	cargo xtask bench

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets --features walrus-storage/testing -- -D warnings

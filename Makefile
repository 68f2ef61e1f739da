# Thin aliases over cargo and cargo xtask; CI calls `make test` through .ci/run.
.PHONY: test check loom bench bench-full bench-criterion fmt clippy \
	bench-writes bench-reads bench-scaling bench-batch-scaling \
	show-writes show-reads show-scaling show-batch-scaling show-suite

# The README's test command: every crate's unit, integration and doc tests (with the
# in-memory and fault-injecting storage and the metrics feature enabled), the structural
# rules (layering, unused dependencies, format constants, file length, unsafe), then the
# loom models.
test:
	cargo test --workspace --features walrus-storage/testing,walrus-rust/metrics
	cargo xtask tidy
	cargo xtask loom

check:
	cargo xtask ci

loom:
	cargo xtask loom

# The benchmark harness (Walrus against its peers; results in target/bench-results/).
# The seed load tests read FSYNC, THREADS, WALRUS_DURATION, WALRUS_BATCH_SIZE and BACKEND
# from the environment, e.g. `FSYNC=sync-each THREADS=1-8 make bench-scaling`.
bench:
	cargo xtask bench

bench-full:
	cargo xtask bench --full

bench-criterion:
	cargo xtask bench --criterion

bench-writes:
	cargo xtask bench writes

bench-reads:
	cargo xtask bench reads

bench-scaling:
	cargo xtask bench scaling

bench-batch-scaling:
	cargo xtask bench batch-scaling

show-suite:
	cargo xtask bench show suite

show-writes:
	cargo xtask bench show writes

show-reads:
	cargo xtask bench show reads

show-scaling:
	cargo xtask bench show scaling

show-batch-scaling:
	cargo xtask bench show batch-scaling

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets --features walrus-storage/testing -- -D warnings

//! `cargo xtask loom` and `cargo xtask ci`: the loom models and what `.ci/run` runs.

use crate::util::run;

/// The loom models of walrus-alloc (file state, dirty flag under group commit) and
/// walrus-topic (the publication word), time-boxed.
pub(crate) fn loom() -> Result<(), String> {
    // A separate target directory keeps the loom build from invalidating the normal one.
    run(
        "timeout",
        &[
            "900",
            "cargo",
            "test",
            "-p",
            "walrus-alloc",
            "-p",
            "walrus-topic",
            "--release",
            "--lib",
            "loom",
        ],
        &[
            ("RUSTFLAGS", "--cfg loom"),
            ("CARGO_TARGET_DIR", "target/loom"),
            ("LOOM_MAX_PREEMPTIONS", "3"),
        ],
    )
}

/// fmt --check, clippy, tests, loom, the reliability suites at CI scale: what CI runs.
pub(crate) fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run(
        "cargo",
        &[
            "test",
            "--workspace",
            "--features",
            "walrus-storage/testing,walrus-rust/metrics",
        ],
        &[],
    )?;
    loom()?;
    crate::reliability::reliability(true)?;
    crate::mutants::mutants()?;
    crate::fuzz::fuzz(&crate::fuzz::Fuzz {
        ci: true,
        ..Default::default()
    })?;
    crate::miri::miri()
}

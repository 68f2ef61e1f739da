//! `cargo xtask ci`: what `.ci/run` runs.

use crate::{loom::loom, util::run};

/// fmt --check, clippy, tests, tidy, loom, the reliability suites at CI scale, mutants, fuzz,
/// Miri: what CI runs.
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
    crate::tidy::tidy()?;
    loom()?;
    crate::reliability::reliability(true)?;
    crate::mutants::mutants()?;
    crate::fuzz::fuzz(&crate::fuzz::Fuzz {
        ci: true,
        ..Default::default()
    })?;
    crate::miri::miri()
}

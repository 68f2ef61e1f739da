//! `cargo xtask loom`: the loom models, shared by `ci` and `reliability`.

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

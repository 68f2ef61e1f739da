//! `cargo xtask reliability [--ci]`: the crash, power-loss, corruption and fault-injection
//! suites (docs: shared RELIABILITY.md) at full or CI scale, each printing its figures line.

use crate::{loom::loom, util::run};

/// Scales of one run: simulator seeds (each cuts the power one to three times), kill -9
/// cycles (three kills each), stress appends, and whether the corpus and injection tests
/// run in full.
struct Scale {
    sim_seeds: &'static str,
    kill_cycles: &'static str,
    upgrade_kill_cycles: &'static str,
    stress_appends: &'static str,
    /// Model-based cases per backend and fsync schedule.
    model_cases: &'static str,
    /// Real-kernel power cuts (ext4 on a loop device; needs root).
    fs_shutdown_cycles: &'static str,
    /// kill -9 cycles of walrus-raft's three node processes (a leader killed each).
    raft_kill_cycles: &'static str,
    full: &'static str,
}

const FULL: Scale = Scale {
    sim_seeds: "11000",
    kill_cycles: "1000",
    upgrade_kill_cycles: "1000",
    stress_appends: "5000000",
    model_cases: "2000",
    fs_shutdown_cycles: "500",
    raft_kill_cycles: "50",
    full: "1",
};
const CI: Scale = Scale {
    sim_seeds: "3000",
    kill_cycles: "100",
    upgrade_kill_cycles: "200",
    stress_appends: "1000000",
    model_cases: "300",
    fs_shutdown_cycles: "150",
    raft_kill_cycles: "5",
    full: "0",
};

pub(crate) fn reliability(ci: bool) -> Result<(), String> {
    let scale = if ci { CI } else { FULL };
    let envs = [
        ("SIM_CYCLES", scale.sim_seeds),
        ("KILL_CYCLES", scale.kill_cycles),
        ("UPGRADE_KILL_CYCLES", scale.upgrade_kill_cycles),
        ("STRESS_APPENDS", scale.stress_appends),
        ("MODEL_CASES", scale.model_cases),
        ("FS_SHUTDOWN_CYCLES", scale.fs_shutdown_cycles),
        ("WALRUS_RAFT_KILL_CYCLES", scale.raft_kill_cycles),
        ("CORPUS_FULL", scale.full),
        ("INJECT_FULL", scale.full),
        ("WALRUS_QUIET", "1"),
    ];
    // Release mode, one test at a time: the simulator and the kill loop each want both cores.
    // The engine-level suites (power-loss simulator, corruption corpus, fault injection, seal
    // records) are walrus-topic's; real processes and file systems are walrus-rust's.
    let suites: [(&str, &[&str]); 2] = [
        (
            "walrus-topic",
            &[
                "sim_crash",
                "corruption_corpus",
                "inject",
                "seal::",
                "truncate::",
            ],
        ),
        (
            "walrus-rust@0.3",
            &["kill9_", "stress_", "model_", "fs_shutdown"],
        ),
    ];
    for (package, filters) in suites {
        let mut args = vec![
            "test",
            "--release",
            "-p",
            package,
            "--test",
            "it",
            "--",
            "--test-threads=1",
            "--nocapture",
        ];
        args.extend_from_slice(filters);
        run("cargo", &args, &envs)?;
    }
    // Replication: three node processes of walrus-raft's example, the leader killed -9 (the
    // test runs the example's binary, which `--test` alone does not build).
    run(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "walrus-raft",
            "--example",
            "replicated_log",
        ],
        &envs,
    )?;
    run(
        "cargo",
        &[
            "test",
            "--release",
            "-p",
            "walrus-raft",
            "--test",
            "processes",
            "--",
            "--nocapture",
        ],
        &envs,
    )?;
    // CI runs the loom models already (`make test`); the full run includes them.
    if ci { Ok(()) } else { loom() }
}

//! `cargo xtask mutants`: builds each deliberately broken variant of the library (T12 of the
//! reliability plan) and checks that the suites catch it, i.e. that the tests can fail.

use std::process::{Command, Stdio};

use crate::util::{project_root, run};

/// Each mutant (a `walrus_mutant` cfg value) and the tests expected to catch it: filters for
/// walrus-rust's `it` suite (the public API, real processes and file systems) and for
/// walrus-topic's (the engine-level reliability suites).
const MUTANTS: &[(&str, &[&str], &[&str])] = &[
    (
        "ack_before_fsync",
        &["fs_shutdown"],
        &["sim_crash_power_loss", "crash::sync_each"],
    ),
    ("checksum_not_verified", &["corruption::"], &[]),
    (
        "torn_tail_not_cut",
        &["corruption::torn_tail"],
        &["sim_crash_power_loss"],
    ),
    (
        "cursor_persisted_ahead",
        &["cursors::"],
        &["sim_crash_power_loss"],
    ),
    ("no_timed_fsync", &[], &["crash::milliseconds_schedule"]),
    ("claim_overstated", &[], &["sim_crash_power_loss"]),
    (
        "cursor_slot_not_rolled_back",
        &[],
        &["inject_failed_write", "inject_failed_fsync"],
    ),
    ("clean_marker_kept", &[], &["sim_crash_power_loss"]),
    ("seal_before_durable", &[], &["seal::"]),
    ("prepare_overwrites", &["basics::", "model_mmap"], &[]),
    (
        "deferred_consume_early",
        &[],
        &["crash::deferred_cursor", "sim_crash_power_loss"],
    ),
    (
        "deferred_cursor_unsynced",
        &[],
        &["crash::deferred_cursor", "sim_crash_power_loss"],
    ),
    (
        "extent_short_of_need",
        &["small_topics::", "model_fd"],
        &["sim_crash_power_loss"],
    ),
];

/// Runs `filters` of the `it` suite of `package` built as `mutant`; `true` if a test failed.
fn caught_by(
    package: &str,
    filters: &[&str],
    mutant: &str,
    envs: &[(&str, &str)],
) -> Result<bool, String> {
    run(
        "cargo",
        &["test", "-p", package, "--test", "it", "--no-run", "--quiet"],
        envs,
    )?;
    let mut args = vec!["test", "-p", package, "--test", "it", "--quiet", "--"];
    args.extend_from_slice(filters);
    eprintln!("$ (mutant {mutant}) cargo {}", args.join(" "));
    let status = Command::new("cargo")
        .args(&args)
        .envs(envs.iter().copied())
        .env("SIM_CYCLES", "200")
        .env("WALRUS_QUIET", "1")
        .current_dir(project_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(!status.success())
}

pub(crate) fn mutants() -> Result<(), String> {
    // Build the test binary once per mutant in a target directory of its own, so the normal
    // build stays untouched.
    let mut survivors = Vec::new();
    for (mutant, facade, topic) in MUTANTS {
        let rustflags = format!("--cfg walrus_mutant=\"{mutant}\"");
        let envs = [
            ("RUSTFLAGS", rustflags.as_str()),
            ("CARGO_TARGET_DIR", "target/mutants"),
        ];
        let mut caught = false;
        for (package, filters) in [("walrus-rust@0.3", facade), ("walrus-topic", topic)] {
            if !caught && !filters.is_empty() {
                caught = caught_by(package, filters, mutant, &envs)?;
            }
        }
        if !caught {
            eprintln!("mutant {mutant}: SURVIVED (no test failed)");
            survivors.push(*mutant);
        } else {
            eprintln!("mutant {mutant}: caught");
        }
    }
    println!(
        "mutants: run={} caught={} survived={}",
        MUTANTS.len(),
        MUTANTS.len() - survivors.len(),
        survivors.len()
    );
    if survivors.is_empty() {
        Ok(())
    } else {
        Err(format!("mutants not caught: {}", survivors.join(", ")))
    }
}

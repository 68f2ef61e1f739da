//! `cargo xtask`: the project's task runner (benchmarks, loom models, the CI command list).

use std::{
    env,
    path::PathBuf,
    process::{Command, ExitCode},
};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  bench [FILTER]   run the criterion benchmarks (short measurement), optionally filtered
  loom             run the loom models of walrus-alloc (time-boxed)
  ci               run what .ci/run runs: fmt --check, clippy, tests, loom";

fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(project_root())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed: {status}", args.join(" ")))
    }
}

fn loom() -> Result<(), String> {
    // A separate target directory keeps the loom build from invalidating the normal one.
    run(
        "timeout",
        &[
            "900",
            "cargo",
            "test",
            "-p",
            "walrus-alloc",
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

fn bench(filter: Option<&str>) -> Result<(), String> {
    let mut args = vec![
        "bench",
        "--workspace",
        "--features",
        "walrus-storage/testing",
        "--",
    ];
    if let Some(filter) = filter {
        args.push(filter);
    }
    run("cargo", &args, &[])
}

fn ci() -> Result<(), String> {
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
            "walrus-storage/testing",
        ],
        &[],
    )?;
    loom()
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("loom") => loom(),
        Some("ci") => ci(),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

//! `cargo xtask`: the project's task runner (benchmarks, loom, fuzzing, Miri, tidy, the CI
//! commands).

#![forbid(unsafe_code)]

mod bench;
mod ci;
mod flags;
mod fuzz;
mod loom;
mod miri;
mod mutants;
mod reliability;
mod tidy;
mod util;

use std::{env, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = flags::Command::parse(&args).and_then(|cmd| match cmd {
        flags::Command::Bench(b) => bench::run(&b),
        flags::Command::Loom => loom::loom(),
        flags::Command::Ci => ci::ci(),
        flags::Command::Reliability { ci } => reliability::reliability(ci),
        flags::Command::Mutants => mutants::mutants(),
        flags::Command::Fuzz(f) => fuzz::fuzz(&f),
        flags::Command::Miri => miri::miri(),
        flags::Command::Tidy => tidy::tidy(),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

//! `walrus-ctl`: inspect and repair Walrus write-ahead-log directories from the shell.
//!
//! Every command opens the directory through the public `walrus_rust` API, read-only unless
//! the command has to change something (`cursor set`/`reset`, `repair`, `purge`, `truncate`,
//! `migrate`). The exit status is 0 on success, 1 when `verify` found a problem, and 2 on any
//! error, which is reported as one line on stderr.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod open;
mod output;

use std::{io::Write, process::ExitCode};

use clap::Parser;

use crate::{cli::Cli, commands::Outcome};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = commands::run(cli, &mut out).and_then(|outcome| {
        out.flush()?;
        Ok(outcome)
    });
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        // `walrus-ctl dump ... | head` closes the pipe early: that is the reader's choice, not
        // an error worth a message.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Scripts and people read the first line of stderr: keep the whole chain of
            // causes on that one line, and never show a backtrace or a Debug dump.
            let message = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("walrus-ctl: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

//! Dispatch from the parsed command line to one module per command, and what they share.

mod cursor;
mod dump;
mod info;
mod migrate;
mod purge;
mod repair;
mod topics;
mod truncate;
mod verify;

use std::io::Write;

use anyhow::{Result, anyhow};
use clap::CommandFactory;
use walrus_rust::{Finding, FindingKind, TopicInfo, Walrus};

use crate::{
    cli::{Cli, Command, CursorCommand},
    open::Target,
};

/// How a command that ran to the end went: it decides the exit status (0 or 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Clean,
    /// `verify` found something wrong.
    Problems,
}

pub(crate) fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome> {
    // `--dir` is global so it may follow the subcommand, and clap cannot make a global
    // argument required: check it here, with clap's own usage error (exit status 2).
    let Some(dir) = cli.dir else {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the following required argument was not provided: --dir <DIR>",
            )
            .exit();
    };
    let target = Target::new(dir, cli.key);
    match cli.command {
        Command::Info(flag) => info::run(&target, flag.json, out),
        Command::Topics(flag) => topics::run(&target, flag.json, out),
        Command::Dump(args) => dump::run(&target, &args, out),
        Command::Verify(flag) => verify::run(&target, flag.json, out),
        Command::Cursor(CursorCommand::Get { topic, json }) => {
            cursor::get(&target, &topic, json, out)
        }
        Command::Cursor(CursorCommand::Set { topic, to }) => cursor::set(&target, &topic, to, out),
        Command::Cursor(CursorCommand::Reset { topic }) => {
            cursor::set(&target, &topic, walrus_rust::CursorTarget::Earliest, out)
        }
        Command::Repair(args) => repair::run(&target, args.dry_run, out),
        Command::Purge => purge::run(&target, out),
        Command::Truncate(args) => truncate::run(&target, &args, out),
        Command::Migrate(args) => migrate::run(&target, &args, out),
    }
}

/// The figures of `name`, or the one-line error for a topic that does not exist.
fn existing_topic(wal: &Walrus, target: &Target, name: &str) -> Result<TopicInfo> {
    wal.topic(name).ok_or_else(|| {
        let names: Vec<String> = wal.topics().into_iter().map(|t| t.name).collect();
        let known = match names.len() {
            0 => "it has no topics".to_owned(),
            1..=10 => format!("its topics: {}", names.join(", ")),
            n => format!("{n} topics, among them {}", names[..10].join(", ")),
        };
        anyhow!(
            "unknown topic {name:?} in {} ({known})",
            target.instance().display()
        )
    })
}

/// Whether a normal open cuts what `finding` describes (as opposed to leaving it in place).
fn is_cut(finding: &Finding) -> bool {
    matches!(
        finding.kind,
        FindingKind::TornTail { .. }
            | FindingKind::DamagedTail { .. }
            | FindingKind::UnfinishedFile
            | FindingKind::PartialBatch { .. }
            | FindingKind::DroppedBlock { .. }
            | FindingKind::DuplicateBlock { .. }
    )
}

/// A normal open may cut torn tails before a command that only meant to move a cursor or
/// purge: say so on stderr, so that nothing changes on disk without a word.
fn note_cuts(wal: &Walrus) {
    for finding in wal.recovery_findings().iter().filter(|f| is_cut(f)) {
        eprintln!("walrus-ctl: note: opening the directory cut a {finding}");
    }
}

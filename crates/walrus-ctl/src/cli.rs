//! The command line: subcommands, options and the help text that documents the output.
//!
//! The `--json` field names are part of the tool's interface for scripts; they are listed in
//! each command's long help (`walrus-ctl help <command>`) and must only ever grow.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use walrus_rust::CursorTarget;

#[derive(Debug, Parser)]
#[command(
    name = "walrus-ctl",
    version,
    about = "Inspect and repair Walrus write-ahead-log directories",
    long_about = "Inspect and repair Walrus write-ahead-log directories.\n\n\
        The directory is opened through the Walrus library: read-only (nothing on disk changes) \
        for info, topics, dump, verify, cursor get, repair --dry-run and truncate --dry-run; \
        normally (recovery cuts torn tails and partial batches, and deletes fully consumed \
        files, as any application open would) for cursor set, cursor reset, repair, purge and \
        truncate. migrate opens normally too, \
        which imports walrus-rust 0.2.0 data; migrate --dry-run only reads the 0.2.0 files. \
        A directory is used by one \
        process at a time, so stop the application before running walrus-ctl on its directory.",
    after_help = "Exit status: 0 on success; 1 when verify found a problem; 2 on an error \
        (bad usage, missing directory, directory in use, unknown topic, I/O error), \
        reported as one line on stderr."
)]
pub(crate) struct Cli {
    /// The data directory: the `data_dir` the application gives `Walrus::builder()`.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,

    /// The instance key: the instance lives in DIR/<KEY, sanitized as the library does>,
    /// as with `Walrus::builder().data_dir(DIR).key(KEY)`.
    #[arg(long, global = true, value_name = "KEY")]
    pub(crate) key: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Summary of the directory: format version, files, bytes, live and reclaimable bytes.
    #[command(
        visible_alias = "stats",
        long_about = "Summary of the directory: format version, backend, segment files, bytes, \
            live and reclaimable bytes, topics, entries, what recovery found, and whether \
            walrus-rust 0.2.0 files wait to be imported (`migrate`) or were imported.\n\n\
            A segment file is reclaimable when none of its blocks holds data a cursor has not \
            passed: every block is consumed or was never used. The next normal open (`repair`, \
            `purge`, or the application) deletes it. Live bytes are the bytes of every other \
            segment file. Sizes are whole files as they sit on disk (they are pre-allocated), \
            so live bytes are an upper bound on the data kept. The backend is the one this \
            command used to read the files; the on-disk format is the same for every backend.",
        after_help = "JSON (--json), one object:\n  \
            dir (string), format_version (number), backend (string),\n  \
            file_count, bytes, live_bytes, reclaimable_bytes (numbers),\n  \
            topic_count, entries, corrupt_entries, findings (numbers),\n  \
            recovery_time_us (number),\n  \
            files: [{name (string), seq (number), bytes (number), live (bool),\n          \
            extents (number or null: runs of blocks the library adopted from the\n          \
            file; null when no live block refers to it)}],\n  \
            v020_pending (bool: walrus-rust 0.2.0 files not imported yet, or an\n    \
            interrupted import, in the directory: `walrus-ctl migrate` imports them),\n  \
            v020_imported (bool: a legacy-0.2.0 directory holds imported 0.2.0 files)"
    )]
    Info(JsonFlag),

    /// Per topic: entries, bytes, first and last position, persisted cursor, lag.
    #[command(
        long_about = "Per topic: entries on disk, their bytes (frame headers included), the \
            position (sequence number) of the first and last entry still on disk, the cursor \
            (next entry to deliver), the cursor as last persisted, and the lag (entries not \
            yet read).",
        after_help = "JSON (--json), one object:\n  \
            topics: [{name (string), entries, bytes, first_seq (numbers),\n            \
            last_seq (number, null when empty), next_seq, cursor (numbers),\n            \
            persisted_cursor (number or null), lag (number)}]"
    )]
    Topics(JsonFlag),

    /// Print the entries of a topic, or of a range of positions, without moving its cursor.
    #[command(
        long_about = "Print the entries of a topic, without moving its cursor (the directory \
            is opened read-only).\n\n\
            Without --from and --to, every entry still on disk is printed, those the cursor has \
            passed included; damaged entries are skipped (verify reports them).\n\n\
            With --from and/or --to, only the positions (sequence numbers) from --from to \
            --to, both included, are printed: --from 5 --to 7 prints positions 5, 6 and 7, \
            and --from FIRST --to LAST (columns of `topics`) the whole readable log. \
            They are read by position (Walrus's TopicLog::read_range: straight to the first \
            one, never a scan from the start of the topic), so only readable positions are \
            printed, from the purge floor (the persisted cursor) on, and a damaged entry in \
            the range is an error naming its file rather than skipped. --to defaults to the \
            last position, --from to the first readable one; --limit still caps the count.\n\n\
            Text formats print one line per entry: position, length in bytes, and the payload, \
            separated by tabs. The default shows a payload as text when it is valid UTF-8 \
            (with \\n, \\r, \\t, \\\\ and other control characters escaped) and as hex \
            prefixed with 0x otherwise; --utf8 always shows text (invalid bytes become U+FFFD), --hex always \
            shows hex.",
        after_help = "JSON (--json): JSON Lines, one object per entry:\n  \
            {seq (number), len (number), hex (string), utf8 (string, null when the\n   \
            payload is not valid UTF-8)}"
    )]
    Dump(DumpArgs),

    /// Check every entry, block and cursor; exit status 1 if anything is wrong.
    #[command(
        long_about = "Check every entry (checksums), every block header and every persisted \
            cursor, without changing anything (the directory is opened read-only). Each \
            problem is printed with its file and offset. Exit status 1 if there is any \
            problem, 0 if the directory is clean.\n\n\
            Problems are either corruption (a damaged entry or block header with valid data \
            after it: readers skip it; no repair rewrites it) or repairable (a torn tail, a \
            partial batch, a block after a hole: `repair --truncate-torn-tail` cuts them, as \
            the next normal open would). A persisted cursor past the end of its topic's data \
            (data lost after the cursor was saved) is reported too; `cursor set` fixes it.\n\n\
            The library checks the directory while opening it; on a terminal a spinner shows \
            on stderr meanwhile.",
        after_help = "JSON (--json), one object:\n  \
            dir (string), clean (bool),\n  \
            findings: [{kind (string: corrupt_entry, damaged_block_header, torn_tail,\n              \
            damaged_tail, unfinished_file, missing_entries, partial_batch, dropped_block,\n              \
            duplicate_block, cursor_past_end, other),\n              \
            corruption (bool), file (string or null), offset (number or null),\n              \
            topic (string or null), message (string)}]"
    )]
    Verify(JsonFlag),

    /// Show or move a topic's cursor.
    #[command(subcommand)]
    Cursor(CursorCommand),

    /// Cut torn tails and partial batches (what a normal open would cut).
    #[command(
        long_about = "Cut torn tails (damaged bytes after the last valid entry of a block), \
            partial batches (a batch whose last entry never reached the disk) and blocks \
            after a hole, zeroing and syncing them. This is exactly what the next normal open \
            of the directory does; it also deletes fully consumed segment files.\n\n\
            Corrupt entries in the middle of the log are not rewritten: readers skip them, and \
            `verify` keeps reporting them.\n\n\
            With --dry-run the directory is opened read-only and nothing changes: the command \
            lists what would be cut."
    )]
    Repair(RepairArgs),

    /// Delete every segment file whose blocks every cursor has passed.
    Purge,

    /// Remove every entry of a topic after a position (--dry-run: only say what would go).
    #[command(
        long_about = "Remove every entry of a topic after position POS (--after POS): \
            positions POS+1 to the last, both included, through Walrus's \
            TopicLog::truncate_after. The removal is durable when the command returns, and a \
            crash at any moment leaves either all of those entries or none of them. The next \
            append gets position POS+1. The command prints \
            how many entries and payload bytes it removed, and their positions. When POS is at \
            or past the last position there is nothing to remove: it says so and succeeds.\n\n\
            POS may not be below the purge floor minus one (the floor is the first position \
            not purged: the topic's persisted cursor, as `cursor get` shows it): the entries \
            below the floor are gone already, so that is an error (exit status 2), as are an \
            unknown topic and a directory in use.\n\n\
            With --dry-run the directory is opened read-only and nothing changes: the command \
            says what would be removed (entries, payload bytes, positions)."
    )]
    Truncate(TruncateArgs),

    /// Import walrus-rust 0.2.0 data: every namespace of DIR, or the one of --key.
    #[command(
        long_about = "Import the walrus-rust 0.2.0 data of the directory into the Walrus \
            format, with a progress bar, and say what was imported and where the old files \
            went.\n\n\
            0.2.0 kept the instance opened without a key in DIR itself and each keyed \
            instance in a sub-directory of DIR named by its sanitized key. Without --key, \
            migrate handles DIR and every immediate sub-directory of DIR that holds 0.2.0 \
            files (or the legacy-0.2.0 directory of an earlier import); with --key, only \
            DIR/<KEY>.\n\n\
            For each, it first reads every 0.2.0 entry (checksums verified) and lists, per \
            topic, the entries and payload bytes to import (those 0.2.0 would still deliver: \
            after the cursor it persisted, which is taken over) and any damaged 0.2.0 data, \
            which is left out and reported (not an error). Then it opens the directory as the \
            application would, which imports the entries, makes them durable, and only then \
            moves the 0.2.0 files into legacy-0.2.0/ in that directory (legacy-0.2.0.2, .3, \
            ... if that exists). The open also recovers Walrus data already in the directory \
            (cutting torn tails, as any normal open). An import cut short (a crash, a kill) \
            is finished by the next run, or by the application's next open, with every entry \
            imported once: the library imports 0.2.0 data on open by itself; migrate does it \
            ahead of time, with figures.\n\n\
            --dry-run only reads the 0.2.0 files: nothing on disk changes. --remove-legacy \
            deletes the legacy directories (legacy-0.2.0, legacy-0.2.0.N) of each directory \
            whose import succeeded or was done before, never after a failed import. Without \
            it they stay, for going back to 0.2.0; Walrus never reads them again.\n\n\
            Directories are handled one after the other; the first failure (a directory in \
            use, unreadable 0.2.0 files, an I/O error) stops the command with exit status 2, \
            and the directories done before it stay done.\n\n\
            The progress bar is drawn on stderr when stderr is a terminal, never with --json.",
        after_help = "JSON (--json), one object:\n  \
            namespaces: [{dir (string), interrupted (bool: an earlier import was cut short),\n    \
            files (strings: the 0.2.0 files to import),\n    \
            topics: [{topic (string), entries, bytes (numbers: to import),\n              \
            cursor (string: the 0.2.0 cursor taken over)}],\n    \
            findings (strings: damaged 0.2.0 data, left out),\n    \
            imported (bool: this run imported the directory's 0.2.0 data),\n    \
            seconds (number or null: how long the import took),\n    \
            legacy_dir (string or null: where the 0.2.0 files went, or are from an\n      \
            earlier import; null with --dry-run),\n    \
            removed_legacy (bool: --remove-legacy deleted the legacy directories)}]"
    )]
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JsonFlag {
    /// Print JSON for scripts instead of tables (fields: see --help).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// The topic to print.
    #[arg(long)]
    pub(crate) topic: String,

    /// First position (sequence number) to print, included; positions below the purge
    /// floor are not readable.
    #[arg(long, value_name = "POS")]
    pub(crate) from: Option<u64>,

    /// Last position (sequence number) to print, included: `--from 5 --to 7` prints 5, 6, 7.
    #[arg(long, value_name = "POS")]
    pub(crate) to: Option<u64>,

    /// Print at most N entries (default: all).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u64>,

    /// Payloads as hexadecimal.
    #[arg(long, conflicts_with_all = ["utf8", "json"])]
    pub(crate) hex: bool,

    /// Payloads as text (invalid UTF-8 becomes U+FFFD).
    #[arg(long, conflicts_with = "json")]
    pub(crate) utf8: bool,

    /// JSON Lines, one object per entry (fields: see --help).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CursorCommand {
    /// Show a topic's cursor (the directory is opened read-only).
    #[command(after_help = "JSON (--json): {topic (string), cursor (number), \
        persisted_cursor (number or null), first_seq, next_seq, lag (numbers)}")]
    Get {
        /// The topic.
        #[arg(long)]
        topic: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Move a topic's cursor and persist it; the application resumes there.
    Set {
        /// The topic.
        #[arg(long)]
        topic: String,
        /// `earliest` (oldest entry on disk), `latest` (after the newest: nothing left to
        /// read) or a position (clamped to the entries on disk).
        #[arg(long, value_name = "earliest|latest|POS", value_parser = parse_target)]
        to: CursorTarget,
    },
    /// Move a topic's cursor back to its oldest entry on disk (`set --to earliest`).
    Reset {
        /// The topic.
        #[arg(long)]
        topic: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RepairArgs {
    /// Cut torn tails and partial batches. Required: it names the only repair there is, so
    /// that a later repair of another kind is never run by accident.
    #[arg(long, required = true)]
    pub(crate) truncate_torn_tail: bool,

    /// Open read-only and list what would be cut, changing nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TruncateArgs {
    /// The topic.
    #[arg(long)]
    pub(crate) topic: String,

    /// Keep the entries up to this position (included) and remove every one after it.
    #[arg(long, value_name = "POS")]
    pub(crate) after: u64,

    /// Open read-only and say what would be removed, changing nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Only read the 0.2.0 files and say what would be imported, changing nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// After a successful import (or one done before), delete the legacy-0.2.0
    /// directories that hold the old files.
    #[arg(long)]
    pub(crate) remove_legacy: bool,

    /// Print JSON for scripts instead of text, without a progress bar (fields: see --help).
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_target(value: &str) -> Result<CursorTarget, String> {
    match value {
        "earliest" => Ok(CursorTarget::Earliest),
        "latest" => Ok(CursorTarget::Latest),
        _ => value.parse().map(CursorTarget::Seq).map_err(|_| {
            format!("expected `earliest`, `latest` or a position (a number), got {value:?}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn definition_is_consistent() {
        // Clap checks conflicts, aliases and required flags only when asked: ask once here.
        Cli::command().debug_assert();
    }

    #[test]
    fn cursor_targets_parse() {
        assert_eq!(parse_target("earliest"), Ok(CursorTarget::Earliest));
        assert_eq!(parse_target("latest"), Ok(CursorTarget::Latest));
        assert_eq!(parse_target("17"), Ok(CursorTarget::Seq(17)));
        assert!(parse_target("-1").is_err());
        assert!(parse_target("first").is_err());
    }
}

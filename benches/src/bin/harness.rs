//! The throughput harness: Walrus against its peers, one child process per cell.
//!
//! ```text
//! harness suite [--quick|--full] [--systems a,b] [--out DIR] [--tmp DIR]
//! harness writes|reads|scaling|batch-scaling [--quick|--full] [--systems a,b] [--out DIR]
//! harness migrate [--out DIR] [--tmp DIR]   (the 0.2.0 import cell of the suite alone)
//! harness positions [--quick|--full] [--systems a,b] [--out DIR]   (the suite's read_at,
//!     read_range and tail-follow cells alone)
//! harness many-topics [--topics N] [--systems a,b] [--out DIR] [--tmp DIR]   (the suite's
//!     many-small-topics cells alone, at N topics: 10,000 by default)
//! harness show suite|writes|reads|scaling|batch-scaling [--out DIR]
//! harness child key=value...   (internal: one cell, prints TICK and RESULT lines)
//! ```
//!
//! The seed workloads read `FSYNC`, `THREADS`, `WALRUS_DURATION`, `WALRUS_BATCH_SIZE`,
//! `BACKEND` and `SYSTEMS` from the environment, like the 0.2.0 load tests they replace.
#![forbid(unsafe_code)]

use std::{
    env,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use walrus_benches::{
    goals, machine, migrate, plan,
    plot::{self, Panel, Series},
    report::{self, num},
    suite::{Cell, Outcome, Runner, result_line},
    wal::{self, SyncMode},
    workload::{self, Fields, Params, Workload},
};

const USAGE: &str =
    "usage: harness <suite|writes|reads|scaling|batch-scaling|positions|many-topics|show KIND> \
                     [options]

  positions          the suite's log-primitive cells alone: random read_at and read_range
                     (128 MiB, --full 1 GiB) and tail-follow wake-ups (walrus)
  many-topics        the suite's many-small-topics cells alone: N topics x 16 entries of
                     1 KiB round-robin, disk per payload byte and open fds

options:
  --quick            2 s write cells, T up to 4 (default; about 5 minutes on 2 cores)
  --full             10 s write cells, T up to 8 (both: reads of 1 GiB, reopen after
                     256 MiB, 1 GiB and 4 GiB, the 1 GiB import)
  --systems a,b      systems to run (default: all in this build; env SYSTEMS)
  --out DIR          results directory (default target/bench-results)
  --tmp DIR          parent of the per-cell data directories (default: the temp dir)
  --topics N         many-topics only: topics to write (default 10,000)

seed workloads (writes, reads, scaling, batch-scaling) read the environment:
  FSYNC=sync-each|no-fsync|async|<n>ms   (default async = 1000 ms)
  THREADS=N or A-B                       (writes/reads: N threads; scaling: A..B or 1..N)
  WALRUS_DURATION=30s|2m|<secs>          (per cell)
  WALRUS_BATCH_SIZE=N                    (batch-scaling, default 256)
  BACKEND=fd|mmap                        (the walrus backend; default fd)";

#[derive(Debug)]
struct Options {
    full: bool,
    systems: Vec<String>,
    /// Systems were named (`--systems` or `SYSTEMS`) rather than defaulted.
    explicit: bool,
    out: PathBuf,
    tmp: PathBuf,
    /// Topics of the many-topics cells (`--topics`).
    topics: usize,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        full: false,
        systems: Vec::new(),
        explicit: false,
        out: PathBuf::from("target/bench-results"),
        tmp: env::temp_dir(),
        topics: plan::MANY_TOPICS,
    };
    let mut systems = env::var("SYSTEMS").ok();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.full = false,
            "--full" => opts.full = true,
            "--systems" => systems = Some(it.next().context("--systems needs a list")?.clone()),
            "--out" => opts.out = PathBuf::from(it.next().context("--out needs a path")?),
            "--tmp" => opts.tmp = PathBuf::from(it.next().context("--tmp needs a path")?),
            "--topics" => {
                let n = it.next().context("--topics needs a number")?;
                opts.topics = n.parse().with_context(|| format!("bad --topics {n:?}"))?;
            }
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    opts.explicit = systems.is_some();
    opts.systems = match systems {
        Some(list) => list.split(',').map(str::trim).map(str::to_owned).collect(),
        None => wal::ALL_SYSTEMS
            .iter()
            .filter(|s| wal::available(s))
            .map(|s| (*s).to_owned())
            .collect(),
    };
    for s in &opts.systems {
        if !wal::available(s) {
            bail!(
                "system {s:?} is not in this build (known: {}; peers need --features peers, \
                 rocksdb --features rocksdb)",
                wal::ALL_SYSTEMS.join(", ")
            );
        }
    }
    Ok(opts)
}

fn runner(opts: &Options, env: Vec<(String, String)>) -> Result<Runner> {
    Ok(Runner {
        exe: env::current_exe()?,
        tmp: opts.tmp.clone(),
        out: opts.out.clone(),
        env,
    })
}

fn rows(outcomes: &[Outcome]) -> Vec<Fields> {
    outcomes.iter().map(|o| o.row.clone()).collect()
}

fn print_suite(out: &Path, rows: &[Fields], header: &str) -> Result<()> {
    let mut text = format!("{header}\n");
    text.push_str(&report::table(rows));
    text.push_str(&report::goals_text(&report::goals(rows)));
    text.push_str(&report::notes(rows));
    println!("{text}");
    std::fs::write(out.join("suite.txt"), &text)?;
    for p in plan::suite_plots(out, rows)? {
        println!("plot: {}", p.display());
    }
    Ok(())
}

fn suite(opts: &Options) -> Result<()> {
    let start = Instant::now();
    let cells = plan::suite_cells(opts.full, &opts.systems);
    let mode = if opts.full { "full" } else { "quick" };
    let outcomes = runner(opts, Vec::new())?.run_all(mode, &cells)?;
    let rows = rows(&outcomes);
    let csv = opts.out.join("suite.csv");
    report::write_csv(&csv, &rows)?;
    let header = format!(
        "Walrus benchmark suite ({mode}), {} cells in {:.0} s\n{}\nresults: {}",
        cells.len(),
        start.elapsed().as_secs_f64(),
        machine::describe(&opts.tmp),
        csv.display()
    );
    print_suite(&opts.out, &rows, &header)
}

/// The suite's cells of the log primitives by position alone (`positions.csv`,
/// `positions.txt`, `positions_cdf.png`).
fn positions(opts: &Options) -> Result<()> {
    let start = Instant::now();
    let cells = plan::positions_cells(opts.full, &opts.systems);
    let mode = if opts.full { "full" } else { "quick" };
    let outcomes = runner(opts, Vec::new())?.run_all("positions", &cells)?;
    let rows = rows(&outcomes);
    let csv = opts.out.join("positions.csv");
    report::write_csv(&csv, &rows)?;
    let mut text = format!(
        "Log primitives by position ({mode}), {} cells in {:.0} s\n{}\nresults: {}\n",
        cells.len(),
        start.elapsed().as_secs_f64(),
        machine::describe(&opts.tmp),
        csv.display()
    );
    text.push_str(&report::table(&rows));
    text.push_str(&report::goals_text(&goals::position_goals(&rows)));
    text.push_str(&report::notes(&rows));
    println!("{text}");
    std::fs::write(opts.out.join("positions.txt"), &text)?;
    if let Some(p) = plan::positions_plot(&opts.out, &rows)? {
        println!("plot: {}", p.display());
    }
    Ok(())
}

/// The suite's many-topics cells alone, at `--topics` topics (`many_topics.csv`,
/// `many_topics.txt`).
fn many_topics(opts: &Options) -> Result<()> {
    let start = Instant::now();
    let cells = plan::many_topics_cells(&opts.systems, opts.topics, plan::MANY_TOPICS_ENTRIES);
    let outcomes = runner(opts, Vec::new())?.run_all("many-topics", &cells)?;
    let rows = rows(&outcomes);
    let csv = opts.out.join("many_topics.csv");
    report::write_csv(&csv, &rows)?;
    let mut text = format!(
        "Many small topics, {} cells in {:.0} s\n{}\nresults: {}\n",
        cells.len(),
        start.elapsed().as_secs_f64(),
        machine::describe(&opts.tmp),
        csv.display()
    );
    text.push_str(&report::table(&rows));
    text.push_str(&report::goals_text(&goals::many_topics_goals(&rows)));
    text.push_str(&report::notes(&rows));
    println!("{text}");
    std::fs::write(opts.out.join("many_topics.txt"), &text)?;
    Ok(())
}

/// `30s`, `2m`, `1h` or seconds.
fn parse_duration(s: &str) -> Result<Duration> {
    let (n, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = n.parse().with_context(|| format!("bad duration {s:?}"))?;
    Ok(Duration::from_secs(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => bail!("bad duration {s:?}: 30s, 2m, 1h or seconds"),
    }))
}

/// `N` or `A-B`; `(A, B)`, with `A = 1` for a single number.
fn parse_threads(s: &str) -> Result<(usize, usize)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse()?, b.trim().parse()?),
        None => (1, s.trim().parse()?),
    };
    if a == 0 || b < a {
        bail!("bad THREADS {s:?}: N or A-B with 1 <= A <= B");
    }
    Ok((a, b))
}

struct SeedEnv {
    sync: SyncMode,
    threads: (usize, usize),
    duration: Duration,
    batch: usize,
    child_env: Vec<(String, String)>,
    walrus: &'static str,
}

fn seed_env(opts: &Options, default_threads: &str) -> Result<SeedEnv> {
    let var = |k: &str| env::var(k).ok().filter(|v| !v.is_empty());
    let sync = var("FSYNC").as_deref().unwrap_or("async").parse()?;
    let threads = parse_threads(var("THREADS").as_deref().unwrap_or(default_threads))?;
    let duration = match var("WALRUS_DURATION") {
        Some(d) => parse_duration(&d)?,
        None if opts.full => Duration::from_secs(30),
        None => Duration::from_secs(3),
    };
    let batch = var("WALRUS_BATCH_SIZE").map_or(Ok(256), |b| b.parse())?;
    let (walrus, child_env) = match var("BACKEND").as_deref() {
        None | Some("fd") => ("walrus", Vec::new()),
        Some("mmap") => (
            "walrus-mmap",
            vec![("WALRUS_BACKEND".to_owned(), "mmap".to_owned())],
        ),
        Some(other) => bail!("bad BACKEND {other:?}: fd or mmap"),
    };
    Ok(SeedEnv {
        sync,
        threads,
        duration,
        batch,
        child_env,
        walrus,
    })
}

/// The seed's systems: the chosen walrus backend and every peer asked for.
fn seed_systems(opts: &Options, walrus: &str) -> Vec<String> {
    opts.systems
        .iter()
        .filter(|s| opts.explicit || !wal::is_walrus(s) || s.as_str() == walrus)
        .cloned()
        .collect()
}

fn series_csv(path: &Path, outcomes: &[Outcome]) -> Result<()> {
    let mut out = String::from("system,threads,phase,elapsed_s,ops_per_s,mb_per_s\n");
    for o in outcomes {
        let system = o.row.get("system").cloned().unwrap_or_default();
        let threads = o.row.get("threads").cloned().unwrap_or_default();
        let mut last = (String::new(), 0u64, 0u64, 0u64);
        for t in &o.ticks {
            if t.phase != last.0 {
                last = (t.phase.clone(), 0, 0, 0);
            }
            let dt = (t.ms.saturating_sub(last.1)) as f64 / 1e3;
            if dt > 0.0 {
                let ops = t.ops.saturating_sub(last.2) as f64 / dt;
                let mb = t.bytes.saturating_sub(last.3) as f64 / dt / 1e6;
                out.push_str(&format!(
                    "{system},{threads},{},{:.2},{ops:.0},{mb:.2}\n",
                    t.phase,
                    t.ms as f64 / 1e3
                ));
            }
            last = (t.phase.clone(), t.ms, t.ops, t.bytes);
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

fn seed(kind: &str, opts: &Options) -> Result<()> {
    let start = Instant::now();
    let default_threads = if kind.contains("scaling") { "1-4" } else { "4" };
    let e = seed_env(opts, default_threads)?;
    let systems = seed_systems(opts, e.walrus);
    let mut cells = Vec::new();
    let thread_list: Vec<usize> = if kind.contains("scaling") {
        (e.threads.0..=e.threads.1).collect()
    } else {
        vec![e.threads.1]
    };
    for &t in &thread_list {
        for s in &systems {
            let (w, g) = match kind {
                "writes" => (Workload::Append, format!("writes, fsync {}, T={t}", e.sync)),
                "reads" => (
                    Workload::WriteThenRead,
                    format!(
                        "reads after {:?} of writes, fsync {}, T={t}",
                        e.duration, e.sync
                    ),
                ),
                "scaling" => (
                    Workload::Append,
                    format!("scaling, fsync {}, T={t}", e.sync),
                ),
                _ => (
                    Workload::Batch,
                    format!(
                        "batch scaling, {} per batch, fsync {}, T={t}",
                        e.batch, e.sync
                    ),
                ),
            };
            cells.push(
                Cell::new(&g, s, w, t, e.sync)
                    .duration(e.duration)
                    .batch(e.batch),
            );
        }
    }
    let outcomes = runner(opts, e.child_env.clone())?.run_all(kind, &cells)?;
    let rows = rows(&outcomes);
    let name = kind.replace('-', "_");
    report::write_csv(&opts.out.join(format!("{name}.csv")), &rows)?;
    series_csv(&opts.out.join(format!("{name}_series.csv")), &outcomes)?;
    println!(
        "{kind}: {} cells in {:.0} s\n{}",
        cells.len(),
        start.elapsed().as_secs_f64(),
        machine::describe(&opts.tmp)
    );
    show(kind, &opts.out)
}

/// One line of a `*_series.csv`: system, phase, seconds, ops/s, MB/s.
type Point = (String, String, f64, f64, f64);

fn read_series(path: &Path) -> Result<Vec<Point>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read {} (run the benchmark first)", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.to_string(),
                f.get(3)?.parse().ok()?,
                f.get(4)?.parse().ok()?,
                f.get(5)?.parse().ok()?,
            ))
        })
        .collect())
}

fn time_panel(title: &str, series: &[Point], phase: &str, mb: bool) -> Panel {
    let mut names: Vec<&str> = Vec::new();
    for s in series {
        if s.1 == phase && !names.contains(&s.0.as_str()) {
            names.push(&s.0);
        }
    }
    Panel {
        title: title.to_owned(),
        x_label: "seconds".into(),
        y_label: if mb { "MB/s (log)" } else { "ops/s (log)" }.into(),
        x_log: false,
        y_log: true,
        series: names
            .into_iter()
            .map(|n| Series {
                name: n.to_owned(),
                points: series
                    .iter()
                    .filter(|s| s.0 == n && s.1 == phase)
                    .map(|s| (s.2, if mb { s.4 } else { s.3 }.max(1e-3)))
                    .collect(),
            })
            .collect(),
    }
}

fn show(kind: &str, out: &Path) -> Result<()> {
    if kind == "suite" {
        let rows = report::read_csv(&out.join("suite.csv"))?;
        return print_suite(out, &rows, "Walrus benchmark suite (from suite.csv)");
    }
    let name = kind.replace('-', "_");
    let rows = report::read_csv(&out.join(format!("{name}.csv")))?;
    println!("{}", report::table(&rows));
    let png = out.join(format!("{name}.png"));
    match kind {
        "writes" => {
            let s = read_series(&out.join(format!("{name}_series.csv")))?;
            plot::draw(&png, &[time_panel("Writes over time", &s, "write", false)])?;
        }
        "reads" => {
            let s = read_series(&out.join(format!("{name}_series.csv")))?;
            plot::draw(
                &png,
                &[
                    time_panel("Write phase", &s, "write", false),
                    time_panel("Read phase (batch reads)", &s, "read", true),
                ],
            )?;
        }
        "scaling" | "batch-scaling" => {
            let all: Vec<&Fields> = rows.iter().collect();
            let title = if kind == "scaling" {
                "Single appends vs threads"
            } else {
                "Batch appends vs threads"
            };
            plot::draw(
                &png,
                &[plot::threads_panel(
                    title,
                    &all,
                    "ops_per_s",
                    "entries/s (log)",
                )],
            )?;
        }
        other => bail!("nothing to show for {other:?}"),
    }
    let total: f64 = rows.iter().filter_map(|r| num(r, "ops")).sum();
    println!(
        "{} rows, {total:.0} operations; plot: {}",
        rows.len(),
        png.display()
    );
    Ok(())
}

fn child(args: &[String]) -> Result<()> {
    let params = Params::parse(args)?;
    let mut fields = workload::run(&params)?;
    fields.insert("system".into(), params.system.clone());
    println!("{}", result_line(&fields));
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    let Some(cmd) = args.first() else {
        bail!("{USAGE}");
    };
    match cmd.as_str() {
        "child" => child(&args[1..]).inspect_err(|e| {
            // Report the failure as a result, so the parent's table says why.
            let mut f = Fields::new();
            f.insert("error".into(), format!("{e:#}"));
            println!("{}", result_line(&f));
        }),
        "suite" => suite(&parse_options(&args[1..])?),
        "writes" | "reads" | "scaling" | "batch-scaling" => seed(cmd, &parse_options(&args[1..])?),
        "positions" => positions(&parse_options(&args[1..])?),
        "many-topics" => many_topics(&parse_options(&args[1..])?),
        "migrate" => migrate::alone(&runner(&parse_options(&args[1..])?, Vec::new())?),
        "show" => {
            let kind = args
                .get(1)
                .context("show what? suite|writes|reads|scaling|batch-scaling")?;
            let opts = parse_options(&args[2..])?;
            show(kind, &opts.out)
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harness: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_threads("1-8").unwrap(), (1, 8));
        assert_eq!(parse_threads("4").unwrap(), (1, 4));
        assert!(parse_threads("3-2").is_err());
    }
}

//! T4: a real-kernel power cut. A child appends to a Walrus directory on an ext4 file system
//! on a loop device and reports what it has acknowledged and what a completed `flush()`
//! made durable; the parent snapshots that, shuts the file system down with
//! `FS_IOC_SHUTDOWN` + `NOLOGFLUSH` (the journal is not flushed: only synced data survives),
//! SIGKILLs the child, remounts, recovers and checks I1 (every acknowledged-durable entry is
//! there), I2 (each topic is a gap-free prefix), I3 (byte-identical payloads, no duplicates,
//! nothing under the wrong topic) and I5 (two recoveries agree; what recovery #k returned
//! survives power cut #k+1). The simulator (T2) is the adversarial oracle; this checks the
//! same promises against what a real kernel writes back.
//!
//! Needs root, `/dev/loop-control` and `mkfs.ext4`: without them it prints why and skips,
//! except under `CI=true`, where it fails. `FS_SHUTDOWN_CYCLES` sets the number of power cuts
//! (default 12), `SEED` replays a run's choices (delays, load, matrix cells).

use std::{
    fs::{self, File},
    io::{BufRead, BufReader, Read},
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::support::{CRASH_MATRIX, Rng, open_cell, seed_from_env};

const TOPICS: usize = 4;
/// The loop device's image: room for a few directories of small segment files.
const IMAGE_BYTES: u64 = 128 << 20;
/// Power cuts on one directory before the next starts afresh: recovery #k's result must
/// survive cut #k+1.
const CUTS_PER_DIR: u64 = 3;
/// The name the child test runs under (it must not match the parent's filters alone).
const CHILD: &str = "fs_shutdown::fs_shutdown_child_appends_until_the_cut";

/// The payload of entry `seq` of topic `topic`: 16 to ~1 KiB, names its topic and sequence
/// number, so a misplaced, duplicated or torn entry cannot pass for the right one.
fn entry(topic: usize, seq: u64) -> Vec<u8> {
    let mut rng = Rng(((topic as u64) << 56) ^ seq);
    let len = 16 + rng.below(1024) as usize;
    let mut out = format!("t{topic}-{seq:010}-").into_bytes();
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Prints heartbeats until killed; a dead parent closes the pipe and the print panics, so
/// an orphan cannot keep the mount busy.
fn park() -> ! {
    loop {
        std::thread::sleep(Duration::from_millis(50));
        println!("PARKED");
    }
}

/// Child side: appends single entries and batches to random topics, prints `ACK <topic>
/// <next seq>` after each, and every few appends calls `flush()` and prints `DURABLE <next
/// seq per topic>` as it was *before* the flush. Parks at the first error (the file system
/// is gone) until the parent kills it.
#[test]
#[ignore = "run as a child process by fs_shutdown_power_cut_keeps_acknowledged_durable_entries"]
fn fs_shutdown_child_appends_until_the_cut() {
    let Some(dir) = std::env::var_os("WALRUS_TEST_DIR") else {
        return;
    };
    let backend = std::env::var("BACKEND").unwrap();
    let schedule = std::env::var("SCHEDULE").unwrap();
    let mut next: Vec<u64> = std::env::var("START")
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let mut rng = Rng(std::env::var("CHILD_SEED").unwrap().parse().unwrap());
    let flush_every = 1u64 << rng.below(8);
    let wal = match open_cell(Path::new(&dir), &backend, &schedule) {
        Ok(wal) => wal,
        Err(err) => {
            eprintln!("open failed: {err}");
            park()
        }
    };
    // On a line of its own: the test harness leaves its "test ... " line open.
    println!("\nREADY");
    let mut since_flush = 0;
    loop {
        let topic = rng.below(TOPICS as u64) as usize;
        let name = format!("t{topic}");
        let result = if rng.below(8) == 0 {
            let n = 1 + rng.below(8);
            let batch: Vec<Vec<u8>> = (0..n).map(|k| entry(topic, next[topic] + k)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            wal.batch_append_for_topic(&name, &refs).map(|()| n)
        } else {
            wal.append_for_topic(&name, &entry(topic, next[topic]))
                .map(|()| 1)
        };
        match result {
            Ok(n) => {
                next[topic] += n;
                println!("ACK {topic} {}", next[topic]);
            }
            Err(err) => {
                eprintln!("append failed: {err}");
                park()
            }
        }
        since_flush += 1;
        if since_flush == flush_every {
            since_flush = 0;
            let covered = next.clone();
            if let Err(err) = wal.flush() {
                eprintln!("flush failed: {err}");
                park()
            }
            let list: Vec<String> = covered.iter().map(u64::to_string).collect();
            println!("DURABLE {}", list.join(" "));
        }
    }
}

/// What the child has reported so far (absolute next sequence numbers per topic).
#[derive(Clone, Debug)]
struct Progress {
    ready: bool,
    acked: [u64; TOPICS],
    durable: [u64; TOPICS],
}

/// A running child, killed and reaped on drop (also when the test panics), so nothing
/// keeps the mount busy.
struct ChildGuard {
    child: Child,
    progress: Arc<Mutex<Progress>>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl ChildGuard {
    fn spawn(dir: &Path, backend: &str, schedule: &str, start: [u64; TOPICS], seed: u64) -> Self {
        let start_list: Vec<String> = start.iter().map(u64::to_string).collect();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                CHILD,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WALRUS_TEST_DIR", dir)
            .env("BACKEND", backend)
            .env("SCHEDULE", schedule)
            .env("START", start_list.join(","))
            .env("CHILD_SEED", seed.to_string())
            .env("WALRUS_QUIET", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let progress = Arc::new(Mutex::new(Progress {
            ready: false,
            acked: start,
            durable: start,
        }));
        let out = child.stdout.take().unwrap();
        let shared = Arc::clone(&progress);
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                let kind = parts.next();
                // A line the kill cut short has no newline and never gets here.
                let numbers: Vec<u64> = parts.filter_map(|n| n.parse().ok()).collect();
                let mut p = shared.lock().unwrap();
                match (kind, numbers.as_slice()) {
                    (Some("READY"), _) => p.ready = true,
                    (Some("ACK"), &[topic, next]) => p.acked[topic as usize] = next,
                    (Some("DURABLE"), durable) if durable.len() == TOPICS => {
                        p.durable.copy_from_slice(durable);
                    }
                    _ => {}
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Self {
            child,
            progress,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    fn progress(&self) -> Progress {
        self.progress.lock().unwrap().clone()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGKILLs and reaps the child; returns its stderr.
    fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An ext4 image under the target directory, attached to a loop device and mounted.
/// Drop always unmounts (retrying while busy, then lazily) and detaches the loop device,
/// also when the test panics; `create` first removes what a killed earlier run left.
struct LoopFs {
    root: PathBuf,
    image: PathBuf,
    mnt: PathBuf,
    device: Option<String>,
    mounted: bool,
    /// Unmounts that had to wait for the file system to stop being busy.
    busy_retries: u64,
}

fn command(program: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn is_mounted(mnt: &Path) -> bool {
    let target = mnt.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|s| s.lines().any(|l| l.split(' ').nth(4) == Some(&*target)))
}

/// Unmounts `mnt`, retrying with backoff while it is busy (io_uring releases files
/// asynchronously after SIGKILL); returns how many retries it took.
fn unmount(mnt: &Path, patience: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + patience;
    let mut wait = Duration::from_millis(2);
    let mut retries = 0;
    loop {
        match command("umount", &[mnt.as_os_str()]) {
            Ok(_) => return Ok(retries),
            Err(why) if Instant::now() >= deadline => return Err(why),
            Err(_) => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(200));
                retries += 1;
            }
        }
    }
}

/// Removes what runs killed before their guards could drop left behind: mounts, loop
/// devices and directories of processes that no longer exist.
fn clean_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("fs-shutdown-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let root = entry.path();
        let mnt = root.join("mnt");
        if is_mounted(&mnt) && unmount(&mnt, Duration::from_secs(2)).is_err() {
            let _ = command("umount", &["-l".as_ref(), mnt.as_os_str()]);
        }
        let image = root.join("image");
        if let Ok(list) = command("losetup", &["-j".as_ref(), image.as_os_str()]) {
            for device in list.lines().filter_map(|l| l.split(':').next()) {
                eprintln!("fs_shutdown: detaching {device} left by a killed run");
                let _ = command("losetup", &["-d".as_ref(), device.as_ref()]);
            }
        }
        let _ = fs::remove_dir_all(&root);
    }
}

impl LoopFs {
    fn create() -> Result<Self, String> {
        if !is_root() {
            return Err("needs root to attach a loop device and mount it".into());
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err("no /dev/loop-control (loop devices unavailable)".into());
        }
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        clean_stale(&base);
        let root = base.join(format!("fs-shutdown-{}", std::process::id()));
        let mut fs = Self {
            image: root.join("image"),
            mnt: root.join("mnt"),
            root,
            device: None,
            mounted: false,
            busy_retries: 0,
        };
        fs::create_dir_all(&fs.mnt).map_err(|e| format!("cannot create {:?}: {e}", fs.mnt))?;
        File::create(&fs.image)
            .and_then(|f| f.set_len(IMAGE_BYTES))
            .map_err(|e| format!("cannot create {:?}: {e}", fs.image))?;
        command(
            "mkfs.ext4",
            &["-q".as_ref(), "-F".as_ref(), fs.image.as_os_str()],
        )?;
        let device = command(
            "losetup",
            &["-f".as_ref(), "--show".as_ref(), fs.image.as_os_str()],
        )?;
        fs.device = Some(device.trim().to_owned());
        fs.mount()?;
        Ok(fs)
    }

    fn device(&self) -> &str {
        self.device.as_deref().expect("attached")
    }

    fn mount(&mut self) -> Result<(), String> {
        command(
            "mount",
            &[
                "-t".as_ref(),
                "ext4".as_ref(),
                self.device().as_ref(),
                self.mnt.as_os_str(),
            ],
        )?;
        self.mounted = true;
        self.check_mounted();
        Ok(())
    }

    /// Panics unless `mnt` is the root of this loop device's file system: the power cut
    /// must never reach another one.
    fn check_mounted(&self) {
        let device = fs::metadata(self.device()).unwrap();
        assert!(device.file_type().is_block_device());
        let mnt = fs::metadata(&self.mnt).unwrap();
        assert!(
            self.mounted && mnt.dev() == device.rdev(),
            "{:?} is not the mount of {}",
            self.mnt,
            self.device()
        );
    }

    fn unmount(&mut self) -> Result<(), String> {
        self.busy_retries += unmount(&self.mnt, Duration::from_secs(20))?;
        self.mounted = false;
        Ok(())
    }

    /// The power cut.
    fn shut_down(&self) {
        self.check_mounted();
        walrus_storage::shutdown_filesystem(&self.mnt)
            .unwrap_or_else(|e| panic!("FS_IOC_SHUTDOWN on {:?}: {e}", self.mnt));
    }

    /// Removes every directory but `lost+found` and commits that to the journal, so a later
    /// power cut cannot bring old directories back and fill the image.
    fn clear(&self) {
        for entry in fs::read_dir(&self.mnt).unwrap().flatten() {
            if entry.file_name() != "lost+found" {
                fs::remove_dir_all(entry.path()).unwrap();
            }
        }
        File::open(&self.mnt).unwrap().sync_all().unwrap();
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.mounted && unmount(&self.mnt, Duration::from_secs(10)).is_err() {
            // Still busy: detach the mount now; the kernel finishes when the last user goes.
            let _ = command("umount", &["-l".as_ref(), self.mnt.as_os_str()]);
        }
        if let Some(device) = self.device.take() {
            // On a device still in use this only sets autoclear: it detaches when released.
            if let Err(why) = command("losetup", &["-d".as_ref(), device.as_ref()]) {
                eprintln!("fs_shutdown: cannot detach {device}: {why}");
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The mounted loop file system, or `None` after printing why the test is skipped.
///
/// # Panics
///
/// When it cannot be set up and the environment variable `CI` is `true`.
fn loop_fs(test: &str) -> Option<LoopFs> {
    match LoopFs::create() {
        Ok(fs) => Some(fs),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: cannot set up an ext4 loop mount, and CI=true forbids skipping: {why}")
        }
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

/// Violations found in one recovered state.
#[derive(Default)]
struct Violations {
    lost: u64,
    corrupt: u64,
    duplicate: u64,
    out_of_order: u64,
    details: Vec<String>,
}

impl Violations {
    fn any(&self) -> bool {
        self.lost + self.corrupt + self.duplicate + self.out_of_order > 0
    }

    fn note(&mut self, detail: String) {
        if self.details.len() < 12 {
            self.details.push(detail);
        }
    }
}

/// Recovers `dir` and reads every entry of every topic from sequence number 0; also
/// returns what recovery reported.
fn read_all(
    dir: &Path,
    backend: &str,
    schedule: &str,
    context: &str,
) -> (Vec<Vec<walrus_rust::ReadEntry>>, Vec<walrus_rust::Finding>) {
    let wal = open_cell(dir, backend, schedule)
        .unwrap_or_else(|e| panic!("{context}: recovery failed to open {dir:?}: {e}"));
    let entries = (0..TOPICS)
        .map(|t| {
            wal.read_from(&format!("t{t}"), 0, usize::MAX)
                .unwrap_or_else(|e| panic!("{context}: reading t{t} after recovery: {e}"))
        })
        .collect();
    (entries, wal.recovery_findings())
}

/// Checks I1-I3 of one topic: entries `0..n` in order, each the payload appended, and at
/// least `must_have` of them.
fn check_topic(
    topic: usize,
    entries: &[walrus_rust::ReadEntry],
    must_have: u64,
    v: &mut Violations,
) {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        if !seen.insert(e.seq) {
            v.duplicate += 1;
            v.note(format!("t{topic}: seq {} returned twice", e.seq));
        } else if e.seq != i {
            v.out_of_order += 1;
            v.note(format!("t{topic}: position {i} holds seq {} (hole)", e.seq));
        }
        if e.data != entry(topic, e.seq) {
            v.corrupt += 1;
            let head = String::from_utf8_lossy(&e.data[..e.data.len().min(24)]).into_owned();
            v.note(format!(
                "t{topic}: seq {} has {} bytes starting {head:?}, expected {} bytes",
                e.seq,
                e.data.len(),
                entry(topic, e.seq).len()
            ));
        }
    }
    let have = entries.len() as u64;
    if have < must_have {
        v.lost += must_have - have;
        v.note(format!(
            "t{topic}: {have} entries recovered, {must_have} were acknowledged durable"
        ));
    }
}

#[test]
fn fs_shutdown_power_cut_keeps_acknowledged_durable_entries() {
    let test = "fs_shutdown_power_cut_keeps_acknowledged_durable_entries";
    let Some(mut fs) = loop_fs(test) else {
        return;
    };
    let cycles: u64 = std::env::var("FS_SHUTDOWN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed = seed_from_env();
    eprintln!(
        "fs_shutdown: seed={seed} cycles={cycles} on {}",
        fs.device()
    );
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut acked_total, mut durable_total) = (0u64, 0u64);
    let (mut findings, mut corruption_findings) = (0u64, 0u64);
    let mut dir = PathBuf::new();
    let mut cell = CRASH_MATRIX[0];
    // What the last recovery returned, per topic: the next child continues from there.
    let mut ends = [0u64; TOPICS];
    for cycle in 0..cycles {
        if cycle % CUTS_PER_DIR == 0 {
            fs.clear();
            dir = fs.mnt.join(format!("wal-{cycle}"));
            cell = CRASH_MATRIX[((seed / 7).wrapping_add(cycle / CUTS_PER_DIR) % 9) as usize];
            ends = [0; TOPICS];
        }
        let (backend, schedule) = cell;
        let context = format!("SEED={seed} cycle {cycle} ({backend}, {schedule})");

        let mut child = ChildGuard::spawn(&dir, backend, schedule, ends, rng.next());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !child.progress().ready {
            if child.exited() || Instant::now() > deadline {
                panic!("{context}: the child never became READY:\n{}", child.kill());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(1 + rng.below(100)));
        if child.exited() {
            panic!(
                "{context}: the child stopped before the power cut:\n{}",
                child.kill()
            );
        }
        // The oracle: only what was reported before the cut counts (an fsync racing the
        // cut may report success for data the cut dropped).
        let snapshot = child.progress();
        fs.shut_down();
        child.kill();
        drop(child);
        fs.unmount()
            .unwrap_or_else(|e| panic!("{context}: umount after the power cut: {e}"));
        fs.mount()
            .unwrap_or_else(|e| panic!("{context}: mount after the power cut: {e}"));

        let (first, found) = read_all(&dir, backend, schedule, &context);
        let (second, _) = read_all(&dir, backend, schedule, &context);
        findings += found.len() as u64;
        // A power cut loses unsynced pages, it damages nothing durable: recovery must call
        // what it finds torn tails, holes or unfinished files, never corruption (I6, no false
        // alarms; entries claim how much was durable, which is what tells the two apart).
        let corrupt_reports: Vec<_> = found.iter().filter(|f| f.is_corruption()).collect();
        corruption_findings += corrupt_reports.len() as u64;
        let mut v = Violations::default();
        if !corrupt_reports.is_empty() {
            v.corrupt += 1;
            v.note(format!(
                "I6: a power cut reported as corruption: {corrupt_reports:?}"
            ));
        }
        if first != second {
            v.corrupt += 1;
            v.note("I5: a second recovery returned a different state".into());
        }
        for (topic, entries) in first.iter().enumerate() {
            let mut must_have = snapshot.durable[topic].max(ends[topic]);
            if schedule == "sync" {
                must_have = must_have.max(snapshot.acked[topic]);
            }
            check_topic(topic, entries, must_have, &mut v);
            acked_total += snapshot.acked[topic].saturating_sub(ends[topic]);
            durable_total += must_have.saturating_sub(ends[topic]);
            ends[topic] = entries.len() as u64;
        }
        if v.any() {
            let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("fs-shutdown-failure-{seed}-{cycle}"));
            let _ = fs::remove_dir_all(&keep);
            let copied = command("cp", &["-a".as_ref(), dir.as_os_str(), keep.as_os_str()]);
            panic!(
                "{context}: lost={} corrupt={} duplicate={} out_of_order={}; snapshot {snapshot:?}; \
                 directory copied to {keep:?} ({copied:?}):\n{}",
                v.lost,
                v.corrupt,
                v.duplicate,
                v.out_of_order,
                v.details.join("\n")
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fs_shutdown: recovery findings={findings} (corruption {corruption_findings}) \
         busy_umount_retries={} cycles/s={:.1}",
        fs.busy_retries,
        cycles as f64 / secs
    );
    println!(
        "fs_shutdown: seed={seed} cycles={cycles} acked={acked_total} acked_durable={durable_total} \
         acked_durable_lost=0 corrupt=0 duplicate=0 out_of_order=0 secs={secs:.1}"
    );
}

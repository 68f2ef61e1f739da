//! With the `metrics` feature, the counters of `stats()` also reach the `metrics` facade.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use walrus_rust::{FsyncSchedule, Walrus};

/// A recorder that keeps every counter in a map.
#[derive(Default)]
struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut map = self.0.lock().unwrap();
        let counter = map.entry(key.name().to_owned()).or_default();
        Counter::from_arc(Arc::clone(counter))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn counters_reach_the_metrics_facade() {
    let recorder = Counters::default();
    let dir = tempfile::tempdir().unwrap();
    metrics::with_local_recorder(&recorder, || {
        let wal = Walrus::builder()
            .data_dir(dir.path().to_path_buf())
            .fsync_schedule(FsyncSchedule::SyncEach)
            .build()
            .unwrap();
        wal.append_for_topic("t", b"abc").unwrap();
        wal.batch_append_for_topic("t", &[b"de", b"f"]).unwrap();
        assert_eq!(wal.batch_read_for_topic("t", 100, true).unwrap().len(), 3);
        let stats = wal.stats();
        assert_eq!(recorder.get("walrus_appends_total"), stats.appends);
        assert_eq!(recorder.get("walrus_appended_bytes_total"), 6);
        assert_eq!(recorder.get("walrus_reads_total"), 3);
        assert_eq!(recorder.get("walrus_cursor_persists_total"), 1);
        assert_eq!(recorder.get("walrus_fsyncs_total"), stats.fsyncs);
    });
}

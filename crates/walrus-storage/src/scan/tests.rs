//! Unit tests of the scanner and `resync`, small enough to run under Miri (`miri_*`, docs:
//! shared RELIABILITY.md T10).

use super::*;
use crate::{FRAME_HEADER_BYTES, FrameHeader, encode_frame};

fn frames(payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
    let mut buf = Vec::new();
    let mut starts = Vec::new();
    for (seq, payload) in payloads.iter().enumerate() {
        starts.push(buf.len());
        let header = FrameHeader {
            kind: 1,
            seq: seq as u64,
            ..Default::default()
        };
        encode_frame(&mut buf, &header, payload);
    }
    (buf, starts)
}

#[test]
fn miri_scan_reports_damage_in_the_middle_and_resumes() {
    let (mut buf, starts) = frames(&[b"one", b"two, damaged", b"three"]);
    buf.extend([0u8; 40]);
    buf[starts[1] + FRAME_HEADER_BYTES] ^= 1;
    let mut scanner = Scanner::new(&buf, 1000);
    let items: Vec<ScanItem<'_>> = scanner.by_ref().collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(items[0], ScanItem::Frame { offset: 1000, .. }));
    let ScanItem::Corrupt {
        offset, resumed_at, ..
    } = items[1]
    else {
        panic!("{:?}", items[1])
    };
    assert_eq!(
        (offset, resumed_at),
        (1000 + starts[1] as u64, 1000 + starts[2] as u64)
    );
    let end = 1000 + buf.len() as u64 - 40;
    assert_eq!(scanner.end(), Some(ScanEnd::Zeroed { offset: end }));
}

#[test]
fn miri_scan_of_every_prefix_ends_cleanly() {
    let (buf, _) = frames(&[b"a", b"", b"0123456789"]);
    for cut in 0..=buf.len() {
        let mut scanner = Scanner::new(&buf[..cut], 0);
        let frames = scanner.by_ref().count();
        let end = scanner.end().expect("a finished scan has an end");
        assert!(
            end.offset() <= cut as u64 + FRAME_ALIGN as u64,
            "cut {cut}: {end:?}"
        );
        assert!(frames <= 3);
    }
}

#[test]
fn miri_resync_finds_the_next_aligned_frame_or_none() {
    let (mut buf, starts) = frames(&[b"first", b"second"]);
    assert_eq!(resync(&buf, 0), Some(starts[1]));
    assert_eq!(resync(&buf, starts[1]), None);
    assert_eq!(resync(&buf, buf.len() - 1), None);
    buf.truncate(3);
    assert_eq!(resync(&buf, 0), None);
    assert_eq!(resync(&[], 0), None);
}

//! Frame encoding and the scanner under damage: random round trips, every header bit flipped,
//! sampled payload bit flips, every truncation point, and zeroed tails.

use proptest::prelude::*;
use walrus_storage::{
    Decoded, FRAME_ALIGN, FRAME_HEADER_BYTES, FormatVersion, FrameError, FrameHeader, ScanEnd,
    ScanItem, Scanner, decode_frame, encode_frame, frame_checksum, frame_len,
};

use crate::pattern;

/// File offset the sample buffer pretends to start at, so offsets are not just positions.
const BASE: u64 = 1 << 20;

/// A frame as written: where it starts and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    offset: u64,
    header: FrameHeader,
    payload: Vec<u8>,
}

impl Written {
    fn pos(&self) -> usize {
        usize::try_from(self.offset - BASE).unwrap()
    }

    /// End of header and payload, before padding.
    fn content_end(&self) -> usize {
        self.pos() + FRAME_HEADER_BYTES + self.payload.len()
    }

    fn end(&self) -> usize {
        self.pos() + frame_len(self.payload.len())
    }
}

/// What a scan produced, with payloads copied out so the buffer can change afterwards.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Frame(Written),
    Corrupt {
        offset: u64,
        error: FrameError,
        resumed_at: u64,
    },
}

fn scan(buf: &[u8]) -> (Vec<Seen>, ScanEnd) {
    let mut scanner = Scanner::new(buf, BASE);
    let seen = scanner
        .by_ref()
        .map(|item| match item {
            ScanItem::Frame { offset, frame } => Seen::Frame(Written {
                offset,
                header: frame.header,
                payload: frame.payload.to_vec(),
            }),
            ScanItem::Corrupt {
                offset,
                error,
                resumed_at,
            } => Seen::Corrupt {
                offset,
                error,
                resumed_at,
            },
        })
        .collect();
    let end = scanner.end().expect("a finished scan says why it ended");
    (seen, end)
}

/// About fifty frames of mixed sizes (0 B to 3 KiB), concatenated.
fn sample() -> (Vec<u8>, Vec<Written>) {
    const SIZES: [usize; 10] = [0, 1, 7, 8, 24, 100, 511, 1000, 2048, 3072];
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for i in 0..50u64 {
        let size = SIZES[(i as usize * 7) % SIZES.len()];
        let header = FrameHeader {
            kind: (i % 255 + 1) as u8,
            flags: (i * 0x0101) as u16,
            aux: i as u32 * 3,
            seq: 1000 + i,
        };
        let payload = pattern(i, size);
        let offset = BASE + buf.len() as u64;
        encode_frame(&mut buf, &header, &payload);
        frames.push(Written {
            offset,
            header,
            payload,
        });
    }
    (buf, frames)
}

/// Checks a scan of `buf`, in which only frame `damaged` was changed, against the frames
/// written: every other frame comes back unchanged, and the damaged one is either reported as
/// corrupt with the scan resuming at the next frame, or (if it was the last) ends the scan as
/// torn.
fn assert_damage_detected(buf: &[u8], frames: &[Written], damaged: usize, what: &str) {
    let (seen, end) = scan(buf);
    let bad = &frames[damaged];
    let mut expected: Vec<Seen> = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        if i != damaged {
            expected.push(Seen::Frame(frame.clone()));
            continue;
        }
        let Some(next) = frames.get(i + 1) else {
            break;
        };
        // The error is whatever the decoder found; take it from what was seen.
        let error = seen.iter().find_map(|s| match s {
            Seen::Corrupt { offset, error, .. } if *offset == bad.offset => Some(*error),
            _ => None,
        });
        let Some(error) = error else {
            panic!(
                "{what}: frame {damaged} at {} not reported as corrupt: {seen:?}",
                bad.offset
            );
        };
        expected.push(Seen::Corrupt {
            offset: bad.offset,
            error,
            resumed_at: next.offset,
        });
    }
    assert_eq!(seen, expected, "{what}");
    let last = frames.last().unwrap();
    if damaged + 1 == frames.len() {
        assert!(
            matches!(end, ScanEnd::Torn { offset, .. } if offset == bad.offset),
            "{what}: damaged last frame should end the scan as torn, got {end:?}"
        );
    } else {
        assert_eq!(
            end,
            ScanEnd::EndOfBuffer {
                offset: BASE + last.end() as u64
            },
            "{what}"
        );
    }
}

#[test]
fn sample_buffer_scans_back_every_frame() {
    let (buf, frames) = sample();
    let (seen, end) = scan(&buf);
    let expected: Vec<Seen> = frames.into_iter().map(Seen::Frame).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        end,
        ScanEnd::EndOfBuffer {
            offset: BASE + buf.len() as u64
        }
    );
}

#[test]
fn every_header_bit_flip_is_detected_and_other_frames_survive() {
    let (mut buf, frames) = sample();
    for (i, frame) in frames.iter().enumerate() {
        for byte in frame.pos()..frame.pos() + FRAME_HEADER_BYTES {
            for bit in 0..8 {
                buf[byte] ^= 1 << bit;
                let what = format!("frame {i}, header byte {}, bit {bit}", byte - frame.pos());
                assert_damage_detected(&buf, &frames, i, &what);
                buf[byte] ^= 1 << bit;
            }
        }
    }
}

#[test]
fn sampled_payload_bit_flips_are_detected_and_other_frames_survive() {
    let (mut buf, frames) = sample();
    let mut flips = 0;
    for (i, frame) in frames.iter().enumerate() {
        let len = frame.payload.len();
        if len == 0 {
            continue;
        }
        // First and last byte, plus a spread of positions in between.
        let mut positions = vec![0, len - 1];
        positions.extend(
            pattern(i as u64 + 500, 6)
                .iter()
                .map(|r| *r as usize * len / 256),
        );
        for (k, at) in positions.into_iter().enumerate() {
            let byte = frame.pos() + FRAME_HEADER_BYTES + at;
            let bit = k % 8;
            buf[byte] ^= 1 << bit;
            let what = format!("frame {i}, payload byte {at}, bit {bit}");
            assert_damage_detected(&buf, &frames, i, &what);
            buf[byte] ^= 1 << bit;
            flips += 1;
        }
    }
    assert!(flips >= 300, "only {flips} payload flips tried");
}

#[test]
fn every_truncation_yields_only_whole_frames_then_an_end() {
    let (buf, frames) = sample();
    for cut in 0..=buf.len() {
        let (seen, end) = scan(&buf[..cut]);
        // A frame survives a cut when its header and payload lie before it; the padding after
        // the payload is not checked.
        let whole: Vec<Seen> = frames
            .iter()
            .filter(|f| f.content_end() <= cut)
            .cloned()
            .map(Seen::Frame)
            .collect();
        assert_eq!(seen, whole, "cut at {cut}");
        match frames.iter().find(|f| f.content_end() > cut) {
            Some(partial) if partial.pos() < cut => assert!(
                matches!(
                    end,
                    ScanEnd::Torn {
                        offset,
                        error: FrameError::Truncated { .. }
                    } if offset == partial.offset
                ),
                "cut at {cut}: expected a torn frame at {}, got {end:?}",
                partial.offset
            ),
            _ => {
                // The cut is on a frame boundary or in a frame's padding: the next frame
                // would start at the end of the last whole one.
                let next = frames
                    .iter()
                    .rev()
                    .find(|f| f.content_end() <= cut)
                    .map_or(0, Written::end);
                assert_eq!(
                    end,
                    ScanEnd::EndOfBuffer {
                        offset: BASE + next as u64
                    },
                    "cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn zeros_after_the_data_end_the_scan_as_zeroed_at_the_data_end() {
    let (mut buf, frames) = sample();
    let data_end = buf.len();
    buf.resize(data_end + 64 * 1024, 0);
    let (seen, end) = scan(&buf);
    assert_eq!(seen.len(), frames.len());
    assert_eq!(
        end,
        ScanEnd::Zeroed {
            offset: BASE + data_end as u64
        }
    );
    assert_eq!(end.offset(), BASE + data_end as u64);

    // Exactly one zeroed header is enough.
    buf.truncate(data_end + FRAME_HEADER_BYTES);
    assert_eq!(
        scan(&buf).1,
        ScanEnd::Zeroed {
            offset: BASE + data_end as u64
        }
    );
}

#[test]
fn an_all_zero_region_is_zeroed_at_its_start() {
    let zeros = vec![0u8; 4096];
    let (seen, end) = scan(&zeros);
    assert!(seen.is_empty());
    assert_eq!(end, ScanEnd::Zeroed { offset: BASE });
}

#[test]
fn a_torn_tail_overwriting_zeros_is_torn_not_corrupt() {
    let (mut buf, frames) = sample();
    // The last large frame was cut after its first sector, and nothing follows it but the
    // zeros of the pre-sized file.
    let last = frames
        .iter()
        .rposition(|f| f.payload.len() >= 2048)
        .unwrap();
    let torn = &frames[last];
    buf.truncate(torn.end());
    buf[torn.pos() + 512..].fill(0);
    buf.resize(buf.len() + 8192, 0);
    let (seen, end) = scan(&buf);
    let expected: Vec<Seen> = frames[..last].iter().cloned().map(Seen::Frame).collect();
    assert_eq!(seen, expected);
    assert!(
        matches!(
            end,
            ScanEnd::Torn {
                offset,
                error: FrameError::ChecksumMismatch { .. }
            } if offset == torn.offset
        ),
        "{end:?}"
    );
}

#[test]
fn unknown_version_is_rejected_even_with_a_valid_checksum() {
    let header = FrameHeader {
        kind: 1,
        ..FrameHeader::default()
    };
    let mut buf = Vec::new();
    encode_frame(&mut buf, &header, b"from the future");
    assert_eq!(buf[4], FormatVersion::CURRENT as u8);
    for version in [0u8, 2, 255] {
        let mut future = buf.clone();
        future[4] = version;
        let checksum = frame_checksum(&future[..24], b"from the future");
        future[24..32].copy_from_slice(&checksum.to_le_bytes());
        assert_eq!(
            decode_frame(&future),
            Decoded::Invalid(FrameError::UnsupportedVersion(version))
        );
    }
}

#[test]
fn header_layout_matches_the_format_document() {
    let header = FrameHeader {
        kind: 0x11,
        flags: 0x2233,
        aux: 0x4455_6677,
        seq: 0x8899_aabb_ccdd_eeff,
    };
    let payload = b"abc";
    let mut buf = Vec::new();
    encode_frame(&mut buf, &header, payload);
    assert_eq!(buf.len(), 40);
    assert_eq!(&buf[0..4], b"WLRE");
    assert_eq!(buf[4], 1);
    assert_eq!(buf[5], 0x11);
    assert_eq!(buf[6..8], [0x33, 0x22]);
    assert_eq!(buf[8..12], [3, 0, 0, 0]);
    assert_eq!(buf[12..16], [0x77, 0x66, 0x55, 0x44]);
    assert_eq!(buf[16..24], 0x8899_aabb_ccdd_eeff_u64.to_le_bytes());
    assert_eq!(
        buf[24..32],
        frame_checksum(&buf[..24], payload).to_le_bytes()
    );
    assert_eq!(&buf[32..35], payload);
    assert_eq!(buf[35..40], [0; 5]);
}

fn arb_header() -> impl Strategy<Value = FrameHeader> {
    (1..=u8::MAX, any::<u16>(), any::<u32>(), any::<u64>()).prop_map(|(kind, flags, aux, seq)| {
        FrameHeader {
            kind,
            flags,
            aux,
            seq,
        }
    })
}

proptest! {
    #[test]
    fn any_header_and_payload_round_trip(
        header in arb_header(),
        payload in proptest::collection::vec(any::<u8>(), 0..4096),
        prefix in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        // Encoding appends: whatever was in the buffer stays.
        let mut buf = prefix.clone();
        encode_frame(&mut buf, &header, &payload);
        prop_assert_eq!(&buf[..prefix.len()], &prefix[..]);
        let encoded = &buf[prefix.len()..];
        prop_assert_eq!(encoded.len(), frame_len(payload.len()));
        prop_assert_eq!(encoded.len() % FRAME_ALIGN, 0);
        prop_assert!(encoded[FRAME_HEADER_BYTES + payload.len()..].iter().all(|b| *b == 0));
        let Decoded::Frame(frame) = decode_frame(encoded) else {
            return Err(TestCaseError::fail("encoded frame does not decode"));
        };
        prop_assert_eq!(frame.header, header);
        prop_assert_eq!(frame.payload, &payload[..]);
        prop_assert_eq!(frame.frame_len, encoded.len());
    }

    #[test]
    fn any_sequence_of_frames_scans_back_in_order(
        frames in proptest::collection::vec(
            (arb_header(), proptest::collection::vec(any::<u8>(), 0..600)),
            0..12,
        ),
        zero_tail in 0usize..3,
    ) {
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        for (header, payload) in &frames {
            offsets.push(BASE + buf.len() as u64);
            encode_frame(&mut buf, header, payload);
        }
        let data_end = BASE + buf.len() as u64;
        buf.resize(buf.len() + zero_tail * FRAME_HEADER_BYTES, 0);
        let mut scanner = Scanner::new(&buf, BASE);
        let items: Vec<ScanItem<'_>> = scanner.by_ref().collect();
        prop_assert_eq!(items.len(), frames.len());
        for (item, ((header, payload), offset)) in items.iter().zip(frames.iter().zip(&offsets)) {
            let ScanItem::Frame { offset: at, frame } = item else {
                return Err(TestCaseError::fail(format!("unexpected {item:?}")));
            };
            prop_assert_eq!(at, offset);
            prop_assert_eq!(&frame.header, header);
            prop_assert_eq!(frame.payload, &payload[..]);
        }
        prop_assert_eq!(scanner.next(), None);
        let expected = if zero_tail == 0 {
            ScanEnd::EndOfBuffer { offset: data_end }
        } else {
            ScanEnd::Zeroed { offset: data_end }
        };
        prop_assert_eq!(scanner.end(), Some(expected));
    }
}

proptest! {
    /// The checksum is XXH3-64 as docs/FORMAT.md defines it, whichever SIMD path the
    /// implementation picks at run time: same values as a reference implementation, for
    /// payloads of every length class (short, mid, the 241+ byte SIMD loop, several stripes).
    #[test]
    fn the_checksum_is_the_reference_xxh3(
        header in proptest::collection::vec(any::<u8>(), 24),
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
    ) {
        use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
        let reference = xxh3_64_with_seed(&payload, xxh3_64(&header));
        prop_assert_eq!(walrus_storage::frame_checksum(&header, &payload), reference);
    }
}

#[test]
fn stored_header_reads_the_fields_as_stored_even_when_the_checksum_is_wrong() {
    let header = FrameHeader {
        kind: 0x11,
        flags: 0xBEEF,
        aux: 7,
        seq: 1 << 40,
    };
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, &header, b"payload");
    let (fields, len, checksum) = walrus_storage::stored_header(&bytes).unwrap();
    assert_eq!((fields, len), (header, 7));
    let Decoded::Frame(frame) = decode_frame(&bytes) else {
        panic!("valid frame");
    };
    assert_eq!(frame.header, header);
    // A damaged checksum: the frame no longer decodes, its stored fields still read.
    let last = FRAME_HEADER_BYTES - 1;
    bytes[last] ^= 1;
    assert!(matches!(decode_frame(&bytes), Decoded::Invalid(_)));
    let (fields, _, damaged) = walrus_storage::stored_header(&bytes).unwrap();
    assert_eq!(fields, header);
    assert_ne!(damaged, checksum);
    // Not a frame, or not a whole header.
    assert!(walrus_storage::stored_header(&bytes[..FRAME_HEADER_BYTES - 1]).is_none());
    bytes[0] ^= 1;
    assert!(walrus_storage::stored_header(&bytes).is_none());
}

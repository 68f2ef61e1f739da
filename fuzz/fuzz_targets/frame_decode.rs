//! Fuzz target: the frame decoder and the scanner on arbitrary bytes (RELIABILITY.md T8,
//! target 1).
//!
//! Checks: `decode_frame`, `Scanner` and `resync` never panic; a decoded frame re-encodes
//! (`encode_frame`) to exactly the header and payload bytes it was decoded from, and to the
//! frame length the decoder reported (the padding is not covered by the checksum and is not
//! checked, docs/FORMAT.md); every scan item and the scan's end are consistent with decoding
//! the buffer at their offsets: a reported frame decodes there, damage does not, `resumed_at`
//! is the first aligned valid frame after the damage, a torn end has no valid frame after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walrus_storage::{
    Decoded, FRAME_ALIGN, FRAME_HEADER_BYTES, Frame, ScanEnd, ScanItem, Scanner, decode_frame,
    encode_frame, resync,
};

/// File offset of the buffer's first byte, so offset arithmetic is exercised off zero.
const BASE: u64 = 4096;

fn check_round_trip(input: &[u8], frame: &Frame<'_>) {
    let mut out = Vec::new();
    encode_frame(&mut out, &frame.header, frame.payload);
    let checked = FRAME_HEADER_BYTES + frame.payload.len();
    assert_eq!(
        out.len(),
        frame.frame_len,
        "frame_len differs from the encoding"
    );
    assert_eq!(&out[..checked], &input[..checked], "re-encoding differs");
    assert!(out[checked..].iter().all(|b| *b == 0), "padding not zero");
}

fn decode_at(data: &[u8], offset: u64) -> Decoded<'_> {
    decode_frame(&data[(offset - BASE) as usize..])
}

/// Whether a valid frame starts at some aligned position strictly between `from` and `to`.
fn frame_between(data: &[u8], from: usize, to: usize) -> bool {
    ((from + 1).next_multiple_of(FRAME_ALIGN)..to)
        .step_by(FRAME_ALIGN)
        .any(|pos| matches!(decode_frame(&data[pos..]), Decoded::Frame(_)))
}

fuzz_target!(|data: &[u8]| {
    if let Decoded::Frame(frame) = decode_frame(data) {
        check_round_trip(data, &frame);
    }
    let mut scanner = Scanner::new(data, BASE);
    let mut next = BASE;
    for item in scanner.by_ref() {
        match item {
            ScanItem::Frame { offset, frame } => {
                assert_eq!(offset, next, "a frame not where the previous one ended");
                assert_eq!(decode_at(data, offset), Decoded::Frame(frame));
                check_round_trip(&data[(offset - BASE) as usize..], &frame);
                next = offset + frame.frame_len as u64;
            }
            ScanItem::Corrupt {
                offset,
                error,
                resumed_at,
            } => {
                assert_eq!(offset, next, "damage not where the previous frame ended");
                assert_eq!(decode_at(data, offset), Decoded::Invalid(error));
                assert!(
                    resumed_at > offset && (resumed_at - BASE).is_multiple_of(FRAME_ALIGN as u64)
                );
                assert!(matches!(decode_at(data, resumed_at), Decoded::Frame(_)));
                let (from, to) = ((offset - BASE) as usize, (resumed_at - BASE) as usize);
                assert!(
                    !frame_between(data, from, to),
                    "resync skipped a valid frame"
                );
                next = resumed_at;
            }
        }
    }
    let end = scanner.end().expect("a finished scan says why it ended");
    assert_eq!(
        end.offset(),
        next,
        "the scan ended elsewhere than its last step"
    );
    let len = data.len() as u64;
    match end {
        ScanEnd::Zeroed { offset } => assert_eq!(decode_at(data, offset), Decoded::Zeroed),
        ScanEnd::Torn { offset, error } => {
            assert_eq!(decode_at(data, offset), Decoded::Invalid(error));
            assert_eq!(resync(data, (offset - BASE) as usize), None);
        }
        // The buffer ended after a frame or inside its padding (docs/FORMAT.md, "Scanning").
        ScanEnd::EndOfBuffer { offset } => {
            assert!(offset >= BASE + len && offset < BASE + len + FRAME_ALIGN as u64);
        }
    }
});

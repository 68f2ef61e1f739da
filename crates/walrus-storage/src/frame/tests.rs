//! Unit tests of frame encoding and decoding.

use super::*;

fn header() -> FrameHeader {
    FrameHeader {
        kind: 1,
        flags: 0x0102,
        aux: 7,
        seq: 42,
    }
}

#[test]
fn round_trips_header_and_payload() {
    let mut buf = Vec::new();
    encode_frame(&mut buf, &header(), b"hello");
    assert_eq!(buf.len(), frame_len(5));
    assert_eq!(buf.len() % FRAME_ALIGN, 0);
    let Decoded::Frame(frame) = decode_frame(&buf) else {
        panic!("not a frame")
    };
    assert_eq!(frame.header, header());
    assert_eq!(frame.payload, b"hello");
    assert_eq!(frame.frame_len, buf.len());
}

#[test]
fn zeroed_bytes_are_end_of_data() {
    assert_eq!(decode_frame(&[0u8; 64]), Decoded::Zeroed);
    assert_eq!(decode_frame(&[]), Decoded::Zeroed);
}

#[test]
fn flipped_payload_bit_is_a_checksum_mismatch() {
    let mut buf = Vec::new();
    encode_frame(&mut buf, &header(), b"hello");
    buf[FRAME_HEADER_BYTES] ^= 1;
    assert!(matches!(
        decode_frame(&buf),
        Decoded::Invalid(FrameError::ChecksumMismatch { .. })
    ));
}

/// Under Miri (`cargo xtask miri`): encode and decode frames of every payload length around
/// the alignment, and decode every prefix of one, checking each byte access.
#[test]
fn miri_frames_round_trip_and_every_prefix_decodes_without_panic() {
    for len in 0..=17 {
        let payload: Vec<u8> = (0..len as u8).collect();
        let mut buf = Vec::new();
        encode_frame(&mut buf, &header(), &payload);
        assert_eq!(buf.len(), frame_len(len));
        let Decoded::Frame(frame) = decode_frame(&buf) else {
            panic!("length {len}: not a frame")
        };
        assert_eq!(frame.payload, &payload[..]);
        for cut in 0..buf.len() {
            let decoded = decode_frame(&buf[..cut]);
            let needed = FRAME_HEADER_BYTES + len;
            assert_eq!(
                matches!(decoded, Decoded::Frame(_)),
                cut >= needed,
                "cut {cut}"
            );
        }
    }
}

/// Under Miri: every single-bit flip of a small frame's header and payload is caught.
#[test]
fn miri_every_bit_flip_of_a_small_frame_is_rejected() {
    let mut buf = Vec::new();
    encode_frame(&mut buf, &header(), b"abc");
    let checked = FRAME_HEADER_BYTES + 3;
    for bit in 0..checked * 8 {
        let mut damaged = buf.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(
            !matches!(decode_frame(&damaged), Decoded::Frame(_)),
            "bit {bit} went unnoticed"
        );
    }
}

/// Under Miri: the checksum of a header and payload (XXH3, with its SIMD code paths).
#[test]
fn miri_checksum_depends_on_header_and_payload() {
    let header = [7u8; 24];
    let payload: Vec<u8> = (0..=255).collect();
    let sum = frame_checksum(&header, &payload);
    assert_eq!(sum, frame_checksum(&header, &payload));
    assert_ne!(sum, frame_checksum(&[8u8; 24], &payload));
    assert_ne!(sum, frame_checksum(&header, &payload[1..]));
    assert_ne!(frame_checksum(&[], &[]), frame_checksum(&[0], &[]));
}

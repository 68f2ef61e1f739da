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

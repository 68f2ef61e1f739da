//! Unit tests of the mapping's pointer arithmetic and copies on a heap-backed stand-in; named
//! `miri_*` so that `cargo xtask miri` runs them under Miri (docs: shared RELIABILITY.md T10).

use super::Mapping;

#[test]
fn miri_copies_in_and_out_at_every_offset_of_a_fake_mapping() {
    let len = 64;
    let map = Mapping::fake(len);
    let pattern: Vec<u8> = (1..=len as u8).collect();
    // Every offset and length that fits, including empty copies at either end.
    for offset in 0..=len {
        for n in [0, 1, 7, len - offset] {
            if offset + n > len {
                continue;
            }
            map.write(offset, &pattern[..n]);
            let mut back = vec![0u8; n];
            map.read(offset, &mut back);
            assert_eq!(back, pattern[..n]);
        }
    }
    let mut whole = vec![0u8; len];
    map.read(0, &mut whole);
    assert_eq!(whole.len(), len);
    assert!(map.flush_range(0, len).is_ok());
}

#[test]
fn miri_empty_mapping_takes_empty_copies() {
    let map = Mapping::fake(0);
    map.write(0, &[]);
    map.read(0, &mut []);
    assert!(map.flush_range(0, 0).is_ok());
}

#[test]
#[should_panic(expected = "assertion failed")]
fn miri_copy_past_the_end_of_a_fake_mapping_panics_before_touching_memory() {
    let map = Mapping::fake(16);
    map.write(12, &[0u8; 8]);
}

#[test]
#[should_panic(expected = "assertion failed")]
fn miri_copy_at_an_overflowing_offset_panics() {
    let map = Mapping::fake(16);
    let mut buf = [0u8; 2];
    map.read(usize::MAX, &mut buf);
}

#[test]
fn miri_read_append_copies_into_spare_capacity_after_existing_bytes() {
    let len = 64;
    let map = Mapping::fake(len);
    let pattern: Vec<u8> = (1..=len as u8).collect();
    map.write(0, &pattern);
    for offset in 0..=len {
        for n in [0, 1, 7, len - offset] {
            if offset + n > len {
                continue;
            }
            // Starts non-empty and without spare room, so the copy must land after the
            // existing bytes of a grown allocation.
            let mut out = vec![0xee; 3];
            out.shrink_to_fit();
            map.read_append(offset, n, &mut out);
            assert_eq!(out[..3], [0xee; 3]);
            assert_eq!(out[3..], pattern[offset..offset + n]);
        }
    }
    let mut empty = Vec::new();
    Mapping::fake(0).read_append(0, 0, &mut empty);
    assert!(empty.is_empty());
}

#[test]
#[should_panic(expected = "assertion failed")]
fn miri_read_append_past_the_end_panics_before_touching_memory() {
    let map = Mapping::fake(16);
    let mut out = Vec::new();
    map.read_append(10, 8, &mut out);
}

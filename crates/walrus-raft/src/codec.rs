//! The codec of everything walrus-raft writes: log entries, the meta record and snapshots.
//!
//! An encoding is one version byte, [`CODEC_VERSION`], followed by the value in
//! [postcard](https://docs.rs/postcard), and nothing after it. The version byte lets a later
//! release change the encoding and still read what this one wrote; a byte it does not know
//! is an `InvalidData` error, never a guess.
//!
//! Why postcard: openraft's types (log ids, votes, entries, memberships) derive serde, and
//! postcard is a serde format that is compact (integers are varints: a blank entry takes a
//! handful of bytes, a meta record a few dozen, well under `META_BYTES_MAX`) and whose wire
//! format is documented and stable since its 1.0, so bytes written now decode with later
//! 1.x releases. bincode 2 would also do, but its serde support is a secondary path beside
//! its own `Encode` traits. postcard is not self-describing: a value decodes only as the type
//! it was encoded from, which is how the store uses it (and why the version byte matters).

use std::io;

use serde::{Serialize, de::DeserializeOwned};

/// The version byte that starts every encoding this release writes.
pub(crate) const CODEC_VERSION: u8 = 1;

/// `value` as the version byte followed by its postcard encoding.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_extend(value, vec![CODEC_VERSION])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("encode: {e}")))
}

/// The value that [`encode`] turned into `bytes`. An unknown version byte, a value that does
/// not decode as `T`, or bytes left after it are `InvalidData`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| invalid("decode: empty record".to_owned()))?;
    if version != CODEC_VERSION {
        return Err(invalid(format!(
            "decode: codec version {version}, this release reads {CODEC_VERSION}"
        )));
    }
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| invalid(format!("decode: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid(format!(
            "decode: {} bytes left after the value",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let value = (7u64, String::from("raft"), vec![1u8, 2, 3]);
        let bytes = encode(&value).unwrap();
        assert_eq!(bytes[0], CODEC_VERSION);
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes).unwrap(), value);

        let kind = |bytes: &[u8]| decode::<(u64, String, Vec<u8>)>(bytes).unwrap_err().kind();
        assert_eq!(kind(&[]), io::ErrorKind::InvalidData);
        let mut other_version = bytes.clone();
        other_version[0] = CODEC_VERSION + 1;
        assert_eq!(kind(&other_version), io::ErrorKind::InvalidData);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(kind(&trailing), io::ErrorKind::InvalidData);
        assert_eq!(kind(&bytes[..bytes.len() - 1]), io::ErrorKind::InvalidData);
    }
}

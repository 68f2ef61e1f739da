//! Where an instance lives: the data directory, keyed namespaces, the environment variables
//! and the thread namespace used by tests, exactly as walrus-rust 0.2.0 resolves them.

use std::{cell::RefCell, hash::Hasher, path::PathBuf};

thread_local! {
    static THREAD_NAMESPACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Data directory used when `WALRUS_DATA_DIR` is not set (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "wal_files";

/// Sets the calling thread's namespace, which overrides `WALRUS_INSTANCE_KEY` for the
/// constructors without a key. For tests that share a process.
#[doc(hidden)]
pub fn __set_thread_namespace_for_tests(key: &str) {
    THREAD_NAMESPACE.with(|ns| *ns.borrow_mut() = Some(key.to_owned()));
}

/// Clears the calling thread's namespace.
#[doc(hidden)]
pub fn __clear_thread_namespace_for_tests() {
    THREAD_NAMESPACE.with(|ns| *ns.borrow_mut() = None);
}

/// The calling thread's namespace, if one is set.
#[doc(hidden)]
pub fn __current_thread_namespace_for_tests() -> Option<String> {
    THREAD_NAMESPACE.with(|ns| ns.borrow().clone())
}

/// FNV-1a 64 of `bytes`, the hash behind the names of keys that sanitize to nothing.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// The directory name of a key: ASCII letters, digits, `-`, `_` and `.` are kept, every
/// other character becomes one `_`; a name of nothing but `_` becomes `ns_<fnv1a64 hex>`.
pub fn sanitize_key(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.chars().all(|c| c == '_') {
        format!("ns_{:x}", fnv1a64(key.as_bytes()))
    } else {
        name
    }
}

/// `WALRUS_DATA_DIR`, read at every call, or [`DEFAULT_DATA_DIR`].
pub(crate) fn data_dir() -> PathBuf {
    std::env::var_os("WALRUS_DATA_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from)
}

/// Root of an instance opened without a key: the thread namespace, else
/// `WALRUS_INSTANCE_KEY` (even if empty), else the data directory itself.
pub(crate) fn default_root() -> PathBuf {
    let base = data_dir();
    if let Some(ns) = __current_thread_namespace_for_tests() {
        return base.join(sanitize_key(&ns));
    }
    match std::env::var_os("WALRUS_INSTANCE_KEY") {
        Some(key) => base.join(sanitize_key(&key.to_string_lossy())),
        None => base,
    }
}

/// Root of an instance opened with `key`.
pub(crate) fn key_root(key: &str) -> PathBuf {
    data_dir().join(sanitize_key(key))
}

/// Whether `WALRUS_QUIET` is set (to anything).
pub(crate) fn quiet() -> bool {
    std::env::var_os("WALRUS_QUIET").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_safe_characters_and_replaces_the_rest_one_for_one() {
        assert_eq!(sanitize_key("prod/payments::v1"), "prod_payments__v1");
        assert_eq!(sanitize_key("a-b_c.d"), "a-b_c.d");
        assert_eq!(sanitize_key("é1"), "_1");
    }

    #[test]
    fn sanitize_hashes_keys_that_would_be_only_underscores() {
        assert_eq!(sanitize_key(""), "ns_cbf29ce484222325");
        assert_eq!(sanitize_key("///"), format!("ns_{:x}", fnv1a64(b"///")));
        assert_eq!(sanitize_key("__"), format!("ns_{:x}", fnv1a64(b"__")));
    }
}

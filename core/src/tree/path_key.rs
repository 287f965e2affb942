//! Compact map keys for znode paths: paths up to 23 bytes live inline in the 24-byte key (no allocation),
//! longer ones on the heap. Keys order and compare as their bytes (which is `str` order), and borrow as
//! `[u8]` so lookups need no conversion.
//!
//! UTF-8 never contains the byte 0xFF, so unused inline bytes are 0xFF and the length is implicit.

use std::borrow::Borrow;
use std::cmp::Ordering;

const INLINE: usize = 23;

/// A znode path as a level-map key.
#[derive(Clone)]
pub enum PathKey {
    /// Up to 23 bytes, padded with 0xFF.
    Inline([u8; INLINE]),
    /// Longer paths, kept as `str` so that reading them back needs no UTF-8 check.
    Heap(Box<str>),
}

impl PathKey {
    /// The key for `path`.
    pub fn new(path: &str) -> PathKey {
        let b = path.as_bytes();
        if b.len() <= INLINE {
            let mut buf = [0xFF; INLINE];
            buf[..b.len()].copy_from_slice(b);
            PathKey::Inline(buf)
        } else {
            PathKey::Heap(path.into())
        }
    }

    /// The path bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PathKey::Inline(buf) => {
                let len = buf.iter().position(|&x| x == 0xFF).unwrap_or(INLINE);
                &buf[..len]
            }
            PathKey::Heap(s) => s.as_bytes(),
        }
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        match self {
            // Inline keys hold a whole `&str` from `new`, padded with 0xFF.
            PathKey::Inline(_) => {
                std::str::from_utf8(self.as_bytes()).expect("path keys are built from str")
            }
            PathKey::Heap(s) => s,
        }
    }
}

impl Borrow<[u8]> for PathKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for PathKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PathKey {}

impl PartialOrd for PathKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for PathKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short and long keys round-trip, compare as their bytes, and the key is 24 bytes.
    #[test]
    fn keys() {
        assert_eq!(std::mem::size_of::<PathKey>(), 24);
        let long = "/a/very/long/path/that/is/not/inline";
        for p in ["", "/", "/a", "/bench/node-00000000001", long, "/é"] {
            assert_eq!(PathKey::new(p).as_str(), p);
        }
        assert!(matches!(
            PathKey::new("/bench/node-00000000001"),
            PathKey::Inline(_)
        ));
        assert!(matches!(PathKey::new(long), PathKey::Heap(_)));
        assert!(PathKey::new("/a!") < PathKey::new("/a/"));
        assert!(PathKey::new("/a/b") < PathKey::new(long));
    }
}

//! `Key`: how the keyspace stores a key's name.
//!
//! What it owns: the bytes of one key, inline in the table node when they fit (up to
//! [`INLINE_MAX`] bytes, which covers the usual `object:12345`-style names) and otherwise in one
//! exact-size heap allocation. An inline key costs no allocation and no pointer chase; the
//! whole type is three words, smaller than the `Bytes` handle it replaces, so a short key's
//! table node shrinks and its separate key buffer disappears.
//!
//! What it must never do: share its bytes (a clone copies them: inline keys are copied for free,
//! and the expiry index holds its own copy), or interpret them.

use std::fmt;
use std::ops::Deref;

use super::dict::DictKey;

/// Longest key stored inline.
pub const INLINE_MAX: usize = 22;

/// A key's bytes (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    Inline { len: u8, buf: [u8; INLINE_MAX] },
    Heap(Box<[u8]>),
}

impl Key {
    pub fn new(b: &[u8]) -> Key {
        if b.len() <= INLINE_MAX {
            let mut buf = [0u8; INLINE_MAX];
            buf[..b.len()].copy_from_slice(b);
            Key::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            Key::Heap(b.into())
        }
    }

    /// Heap bytes the key owns beyond its place in the node (the whole malloc chunk).
    #[inline]
    pub const fn heap_bytes(len: usize) -> usize {
        if len <= INLINE_MAX {
            0
        } else {
            crate::alloc::chunk_size(len)
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

impl AsRef<[u8]> for Key {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl DictKey for Key {
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::new(b)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_inline_and_the_type_is_three_words() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, INLINE_MAX] {
            let b = vec![b'k'; len];
            let k = Key::new(&b);
            assert!(matches!(k, Key::Inline { .. }));
            assert_eq!(&k[..], &b[..]);
            assert_eq!(Key::heap_bytes(len), 0);
        }
        let long = vec![b'x'; INLINE_MAX + 1];
        let k = Key::new(&long);
        assert!(matches!(k, Key::Heap(_)));
        assert_eq!(&k[..], &long[..]);
        assert_eq!(k.clone(), k);
        assert_eq!(Key::heap_bytes(long.len()), 32);
        assert_ne!(Key::new(b"a"), Key::new(b"ab"));
    }
}

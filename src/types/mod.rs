//! Data structures stored in the keyspace and their encodings.
//!
//! A value is owned by exactly one shard at a time; it is `Send` so that multi-shard commands
//! (RENAME, COPY, MOVE across shards) can hand a value from one shard to another by message.
//! Nothing here does I/O or knows about connections.

pub mod dict;
pub mod float;
pub mod hash;
pub mod key;
pub mod list;
pub mod packed;
pub mod set;
pub mod zset;

use bytes::Bytes;

pub use hash::{HashLimits, HashValue};
pub use list::ListValue;
pub use set::{SetLimits, SetValue};
pub use zset::{ZSetValue, ZsetLimits};

/// Strings up to this length are reported as `embstr` (Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const EMBSTR_MAX: usize = 44;

/// The header `Bytes` allocates when a buffer it owns alone is first shared (pointer, capacity,
/// reference count).
const BYTES_SHARED_HEADER: usize = 24;

/// Strings up to this length are stored inline, without a heap allocation of their own: the
/// variant fits in the space the `Bytes` handle already takes, and reading the value costs no
/// extra cache miss.
pub const SMALL_MAX: usize = 38;

/// A string value with the encoding Redis would report for it.
#[derive(Clone, Debug, PartialEq)]
pub enum StrValue {
    /// A canonical decimal integer (`int` encoding): no leading zeros, fits in i64.
    Int(i64),
    /// A short string stored inline (`embstr`).
    Small { len: u8, buf: [u8; SMALL_MAX] },
    /// Bytes as written by SET and friends (`embstr` when short, `raw` otherwise).
    Plain(Bytes),
    /// Bytes produced by an in-place modification (APPEND, SETRANGE): always `raw`, like Redis.
    Raw(Bytes),
}

impl StrValue {
    /// Chooses the encoding Redis's `tryObjectEncoding` would pick for a freshly written value.
    pub fn from_bytes(b: &[u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(n) = crate::commands::args::parse_i64(b) {
                return StrValue::Int(n);
            }
        }
        StrValue::text(b)
    }

    /// A string that is never integer-encoded (INCRBYFLOAT results, like Redis's embstr).
    pub fn text(b: &[u8]) -> StrValue {
        if b.len() <= SMALL_MAX {
            let mut buf = [0u8; SMALL_MAX];
            buf[..b.len()].copy_from_slice(b);
            StrValue::Small {
                len: b.len() as u8,
                buf,
            }
        } else {
            StrValue::Plain(Bytes::copy_from_slice(b))
        }
    }

    /// The stored bytes, or None for an integer (which has no byte form until formatted).
    #[inline]
    pub fn stored_bytes(&self) -> Option<&[u8]> {
        match self {
            StrValue::Int(_) => None,
            StrValue::Small { len, buf } => Some(&buf[..*len as usize]),
            StrValue::Plain(b) | StrValue::Raw(b) => Some(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrValue::Small { len, .. } => *len as usize,
            StrValue::Plain(b) | StrValue::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value's bytes; integers are formatted on demand.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            StrValue::Int(n) => Bytes::copy_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            StrValue::Small { len, buf } => Bytes::copy_from_slice(&buf[..*len as usize]),
            StrValue::Plain(b) | StrValue::Raw(b) => b.clone(),
        }
    }

    /// Calls `f` with the value's bytes without allocating.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            StrValue::Small { len, buf } => f(&buf[..*len as usize]),
            StrValue::Plain(b) | StrValue::Raw(b) => f(b),
        }
    }

    /// Heap bytes owned: none for integers and inline strings; the buffer (as the allocator
    /// rounds it) plus the shared handle `Bytes` allocates once the value is first cloned.
    pub fn mem_bytes(&self) -> usize {
        match self {
            StrValue::Int(_) | StrValue::Small { .. } => 0,
            StrValue::Plain(b) | StrValue::Raw(b) => {
                crate::alloc::chunk_size(b.len()) + crate::alloc::chunk_size(BYTES_SHARED_HEADER)
            }
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Small { .. } => "embstr",
            StrValue::Plain(b) if b.len() <= EMBSTR_MAX => "embstr",
            _ => "raw",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_strings_are_inline_and_cost_no_extra_space() {
        assert!(std::mem::size_of::<StrValue>() <= 40);
        let v = StrValue::from_bytes(b"hello");
        assert!(matches!(v, StrValue::Small { len: 5, .. }));
        assert_eq!(v.encoding(), "embstr");
        assert_eq!(v.to_bytes(), Bytes::from_static(b"hello"));
        let long = vec![b'x'; SMALL_MAX + 1];
        assert!(matches!(StrValue::from_bytes(&long), StrValue::Plain(_)));
        assert_eq!(StrValue::from_bytes(b"123").encoding(), "int");
        assert_eq!(StrValue::from_bytes(&[b'y'; 45]).encoding(), "raw");
    }
}

/// A value in the keyspace. Later families add their variants here.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
    Hash(HashValue),
    /// Boxed, like the table encodings of hashes and sets, so that every key's entry stays small
    /// (a `Value` is no bigger than an inline short string).
    List(Box<ListValue>),
    Set(SetValue),
    ZSet(ZSetValue),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::Hash(h) => h.encoding(),
            // Redis 7.0 reports every list as a quicklist (7.2 added listpack for small ones).
            Value::List(_) => "quicklist",
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }
}

impl Value {
    /// Approximate heap bytes owned by the value (not the inline enum itself), O(1).
    pub fn mem_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.mem_bytes(),
            Value::Hash(h) => h.mem_bytes(),
            Value::List(l) => l.mem_bytes(),
            Value::Set(s) => s.mem_bytes(),
            Value::ZSet(z) => z.mem_bytes(),
        }
    }

    /// Roughly how many allocations dropping the value frees: Redis's `lazyfreeGetFreeEffort`
    /// (elements of a hash table, skiplist or set table, nodes of a list, 1 for anything packed).
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::Hash(h) => h.free_effort(),
            Value::List(l) => l.free_effort(),
            Value::Set(s) => s.free_effort(),
            Value::ZSet(z) => z.free_effort(),
        }
    }

    /// Frees up to about `budget` elements; true once the value owns (almost) nothing and can be
    /// dropped in O(1). Lazy freeing only: afterwards the value is only fit for more calls and
    /// dropping.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            Value::Str(_) => true,
            Value::Hash(h) => h.free_some(budget),
            Value::List(l) => l.free_some(budget),
            Value::Set(s) => s.free_some(budget),
            Value::ZSet(z) => z.free_some(budget),
        }
    }
}

/// A keyspace entry: the value, its access metadata and its memory charge. Its deadline, if
/// any, lives in the database's expiry index (`Db::expires`, as in Redis's `expires` dict);
/// the entry only carries a flag saying it has one, so that a key without a deadline costs no
/// lookup there.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Low 24 bits: Redis's `lru` field (`access()`): under an LRU (or no) policy the LRU clock
    /// of the last access (seconds, wrapping at 2^24); under an LFU policy the last decrement
    /// time in minutes (high 16 bits) and the logarithmic access counter (low 8 bits), see
    /// `shard::memory`. Bit 30: the key has a deadline in the expiry index, which only `Db`
    /// changes, in step with the index. Bit 31: the snapshot mark (`persistence::snapshot`),
    /// which only the snapshot and `Db` change. Private so that no write of one clobbers
    /// another.
    meta: u32,
    /// Bytes this entry is counted for in its database's memory total (`shard::memory`), as of
    /// its last insertion or write; kept so that removal subtracts exactly what was added.
    pub charged: u32,
}

/// Bit 31 of `Entry::meta`.
const SNAP_MARK: u32 = 1 << 31;
/// Bit 30 of `Entry::meta`.
const HAS_DEADLINE: u32 = 1 << 30;
/// The access field's bits of `Entry::meta` (Redis's `LRU_BITS`).
const ACCESS_MASK: u32 = (1 << 24) - 1;

impl Entry {
    /// A new entry with the given access field, no deadline flag and a clear snapshot mark.
    #[inline]
    pub fn new(value: Value, access: u32) -> Entry {
        Entry {
            value,
            meta: access & ACCESS_MASK,
            charged: 0,
        }
    }

    /// The access field (LRU clock or LFU counter and time).
    #[inline]
    pub fn access(&self) -> u32 {
        self.meta & ACCESS_MASK
    }

    /// Replaces the access field, keeping the flags.
    #[inline]
    pub fn set_access(&mut self, access: u32) {
        self.meta = (self.meta & !ACCESS_MASK) | (access & ACCESS_MASK);
    }

    /// Whether the key has a deadline (stored in its database's expiry index).
    #[inline]
    pub fn has_deadline(&self) -> bool {
        self.meta & HAS_DEADLINE != 0
    }

    /// Only `Db`, which keeps the expiry index in step, sets this.
    #[inline]
    pub(crate) fn set_has_deadline(&mut self, has: bool) {
        if has {
            self.meta |= HAS_DEADLINE;
        } else {
            self.meta &= !HAS_DEADLINE;
        }
    }

    /// The snapshot mark: compared with the database's current snapshot bit, it says whether a
    /// running snapshot has already saved this entry.
    #[inline]
    pub fn snap_mark(&self) -> bool {
        self.meta & SNAP_MARK != 0
    }

    #[inline]
    pub fn set_snap_mark(&mut self, mark: bool) {
        if mark {
            self.meta |= SNAP_MARK;
        } else {
            self.meta &= !SNAP_MARK;
        }
    }
}

/// An entry outside any keyspace (taken out by `Db::remove`, or copied for a multi-shard unit
/// or a script's undo log) with its deadline beside it (0 = none): inside a database the
/// deadline lives in the expiry index, so it has to travel explicitly.
#[derive(Clone, Debug)]
pub struct Taken {
    pub entry: Entry,
    pub expire_at: u64,
}

#[cfg(test)]
mod entry_size {
    use super::*;

    /// Every key pays for one table node holding its `Entry`: big collections live behind a
    /// box so that a short string key costs no more than its inline value, and the deadline
    /// lives in the expiry index (only keys that have one pay for it).
    #[test]
    fn entries_stay_small() {
        use std::mem::size_of;
        assert!(size_of::<Value>() <= 40);
        assert_eq!(size_of::<Entry>(), size_of::<Value>() + 8);
        assert!(size_of::<Entry>() <= 48);
        // A key's node slot (inline key, entry, 4-byte chain link, padded to 8).
        let node = dict::Dict::<Entry, key::Key>::node_bytes();
        assert_eq!(node, size_of::<key::Key>() + size_of::<Entry>() + 8);
        assert!(node <= 80);
        // The expiry index's node slot (inline key, deadline, chain link).
        assert_eq!(dict::Dict::<u64, key::Key>::node_bytes(), 40);
    }

    #[test]
    fn flags_and_access_field_stay_apart() {
        let mut e = Entry::new(Value::Str(StrValue::Int(1)), 0xFF_FFFF);
        assert!(!e.has_deadline() && !e.snap_mark());
        e.set_has_deadline(true);
        e.set_snap_mark(true);
        assert_eq!(e.access(), 0xFF_FFFF);
        e.set_access(0x12_3456);
        assert!(e.has_deadline() && e.snap_mark());
        assert_eq!(e.access(), 0x12_3456);
        e.set_has_deadline(false);
        assert!(!e.has_deadline() && e.snap_mark());
        assert_eq!(e.access(), 0x12_3456);
    }
}

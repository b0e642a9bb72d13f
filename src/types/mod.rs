//! Data structures stored in the keyspace and their encodings.
//!
//! A value is owned by exactly one shard at a time; it is `Send` so that multi-shard commands
//! (RENAME, COPY, MOVE across shards) can hand a value from one shard to another by message.
//! Nothing here does I/O or knows about connections.

pub mod dict;
pub mod float;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod key;
pub mod list;
pub mod packed;
pub mod set;
pub mod stream;
pub mod stream_groups;
pub mod stream_id;
pub mod zset;

use bytes::Bytes;

pub use hash::{HashLimits, HashValue};
pub use list::ListValue;
pub use set::{SetLimits, SetValue};
pub use stream::StreamValue;
pub use zset::{ZSetValue, ZsetLimits};

/// Strings up to this length are reported as `embstr` (Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const EMBSTR_MAX: usize = 44;

/// Strings up to this length are stored inline, without a heap allocation of their own: the
/// variant fills the 32 bytes the enum takes anyway (tag, length, bytes), and reading the value
/// costs no extra cache miss.
pub const SMALL_MAX: usize = 30;

/// Growth past which a `Raw` string grows by this much at a time instead of doubling (Redis's
/// `SDS_MAX_PREALLOC`).
const GREEDY_MAX: usize = 1024 * 1024;

/// Makes room for `extra` more bytes the way Redis's `sdsMakeRoomFor` does: twice the new
/// length below 1 MiB, 1 MiB more past it, so that repeated appends cost amortised O(1) per
/// byte.
fn reserve_greedy(v: &mut Vec<u8>, extra: usize) {
    if v.capacity() - v.len() >= extra {
        return;
    }
    let need = v.len() + extra;
    let want = if need < GREEDY_MAX {
        need * 2
    } else {
        need + GREEDY_MAX
    };
    v.reserve_exact(want - v.len());
}

/// A string value with the encoding Redis would report for it.
///
/// Values are always copied in on write, so the heap variants own exact buffers rather than
/// shared handles: readers copy out of `stored_bytes`/`with_bytes`.
#[derive(Clone, Debug, PartialEq)]
pub enum StrValue {
    /// A canonical decimal integer (`int` encoding): no leading zeros, fits in i64.
    Int(i64),
    /// A short string stored inline (`embstr`).
    Small { len: u8, buf: [u8; SMALL_MAX] },
    /// Bytes as written by SET and friends (`embstr` when short, `raw` otherwise), in one
    /// exact-size allocation.
    Plain(Box<[u8]>),
    /// Bytes produced by an in-place modification (APPEND, SETRANGE): always `raw`, like Redis.
    /// Keeps spare capacity (like an sds string) so that repeated APPENDs cost amortised O(1)
    /// per byte.
    Raw(Vec<u8>),
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

    /// `from_bytes` for bytes the caller owns: a string too long to be inline or an integer
    /// keeps the buffer (no copy; none to shrink either when it is exactly the string's size).
    pub fn from_vec(v: Vec<u8>) -> StrValue {
        if v.len() <= SMALL_MAX.max(20) {
            return StrValue::from_bytes(&v);
        }
        StrValue::Plain(v.into_boxed_slice())
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
            StrValue::Plain(b.into())
        }
    }

    /// The stored bytes, or None for an integer (which has no byte form until formatted).
    #[inline]
    pub fn stored_bytes(&self) -> Option<&[u8]> {
        match self {
            StrValue::Int(_) => None,
            StrValue::Small { len, buf } => Some(&buf[..*len as usize]),
            StrValue::Plain(b) => Some(b),
            StrValue::Raw(b) => Some(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrValue::Small { len, .. } => *len as usize,
            StrValue::Plain(b) => b.len(),
            StrValue::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the value's bytes; integers are formatted on demand. Prefer `with_bytes` where
    /// a borrow will do.
    pub fn to_bytes(&self) -> Bytes {
        self.with_bytes(Bytes::copy_from_slice)
    }

    /// Calls `f` with the value's bytes without allocating.
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            StrValue::Small { len, buf } => f(&buf[..*len as usize]),
            StrValue::Plain(b) => f(b),
            StrValue::Raw(b) => f(b),
        }
    }

    /// Heap bytes owned: none for integers and inline strings; the buffer's malloc chunk (for
    /// `Raw`, its capacity's) otherwise.
    pub fn mem_bytes(&self) -> usize {
        match self {
            StrValue::Int(_) | StrValue::Small { .. } => 0,
            StrValue::Plain(b) => crate::alloc::chunk_size(b.len()),
            StrValue::Raw(b) => crate::alloc::chunk_size(b.capacity()),
        }
    }

    /// Appends `tail` in place (APPEND), leaving a `Raw` string: a shorter encoding is copied
    /// out once at its exact size, after which appends reuse the spare capacity.
    pub fn append(&mut self, tail: &[u8]) {
        let mut v = self.take_raw(self.len() + tail.len());
        reserve_greedy(&mut v, tail.len());
        v.extend_from_slice(tail);
        *self = StrValue::Raw(v);
    }

    /// Overwrites the bytes from `offset` with `value`, zero-padding up to `offset` first
    /// (SETRANGE), leaving a `Raw` string; returns the new length. Like `append`, a shorter
    /// encoding is copied out once at its exact size.
    pub fn set_range(&mut self, offset: usize, value: &[u8]) -> usize {
        let total = offset + value.len();
        let mut v = self.take_raw(total.max(self.len()));
        if v.len() < total {
            let extra = total - v.len();
            reserve_greedy(&mut v, extra);
            v.resize(total, 0);
        }
        v[offset..total].copy_from_slice(value);
        let len = v.len();
        *self = StrValue::Raw(v);
        len
    }

    /// Makes the string at least `len` bytes long, zero-padding the end (SETBIT, BITFIELD:
    /// Redis's `sdsgrowzero`, with the same amortised growth as `append`), and leaves a `Raw`
    /// string whose bytes the caller edits in place. Like Redis's `dbUnshareStringValue`, any
    /// other encoding becomes `raw` even when nothing grows.
    pub fn grow_zeroed(&mut self, len: usize) -> &mut [u8] {
        let cur = self.len();
        let mut v = self.take_raw(cur);
        let have = v.len();
        if have < len {
            reserve_greedy(&mut v, len - have);
            v.resize(len, 0);
        }
        *self = StrValue::Raw(v);
        match self {
            StrValue::Raw(v) => v,
            _ => unreachable!("just stored a raw string"),
        }
    }

    /// Takes the bytes out for an in-place edit: a `Raw` string's buffer as it is, any other
    /// encoding copied into a buffer of `capacity` bytes. Leaves an integer behind.
    fn take_raw(&mut self, capacity: usize) -> Vec<u8> {
        match std::mem::replace(self, StrValue::Int(0)) {
            StrValue::Raw(v) => v,
            other => {
                let mut v = Vec::with_capacity(capacity);
                other.with_bytes(|b| v.extend_from_slice(b));
                v
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
        assert_eq!(std::mem::size_of::<StrValue>(), 32);
        let v = StrValue::from_bytes(b"hello");
        assert!(matches!(v, StrValue::Small { len: 5, .. }));
        assert_eq!(v.encoding(), "embstr");
        assert_eq!(v.to_bytes(), Bytes::from_static(b"hello"));
        let long = vec![b'x'; SMALL_MAX + 1];
        assert!(matches!(StrValue::from_bytes(&long), StrValue::Plain(_)));
        assert_eq!(StrValue::from_bytes(b"123").encoding(), "int");
        assert_eq!(StrValue::from_bytes(&[b'y'; 45]).encoding(), "raw");
    }

    #[test]
    fn appends_and_setrange_edit_in_place_with_amortised_growth() {
        // The first edit copies the value out at its exact size, as a raw string.
        let mut v = StrValue::from_bytes(b"12");
        v.append(b"ab");
        assert_eq!(v.encoding(), "raw");
        assert_eq!(v.stored_bytes(), Some(&b"12ab"[..]));
        assert!(matches!(&v, StrValue::Raw(b) if b.capacity() == 4));
        assert_eq!(v.mem_bytes(), crate::alloc::chunk_size(4));
        // Later appends reuse spare room: few reallocations for many appends.
        let mut grows = 0;
        for _ in 0..10_000 {
            let cap = match &v {
                StrValue::Raw(b) => b.capacity(),
                _ => unreachable!(),
            };
            v.append(b"x");
            if matches!(&v, StrValue::Raw(b) if b.capacity() != cap) {
                grows += 1;
            }
        }
        assert_eq!(v.len(), 10_004);
        assert!(grows <= 16, "{grows} reallocations");
        // SETRANGE pads with zeros and overwrites; integers are formatted first.
        let mut n = StrValue::from_bytes(b"123");
        assert_eq!(n.set_range(5, b"ab"), 7);
        assert_eq!(n.stored_bytes(), Some(&b"123\0\0ab"[..]));
        assert_eq!(n.set_range(1, b"Z"), 7);
        assert_eq!(n.stored_bytes(), Some(&b"1Z3\0\0ab"[..]));
        assert_eq!(n.encoding(), "raw");
        let mut s = StrValue::from_bytes(b"hello");
        assert_eq!(s.set_range(0, b"J"), 5);
        assert_eq!(s.stored_bytes(), Some(&b"Jello"[..]));
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
    /// Boxed: a stream's counters and node tree would make every key's entry bigger.
    Stream(Box<StreamValue>),
}

impl Value {
    /// Asks the CPU to start loading the heap bytes that serializing this value reads first
    /// (a string's bytes; other types keep their first bytes in the entry or behind structures
    /// of their own, and get no hint). For walks over many values (a snapshot). Changes nothing.
    #[inline]
    pub fn prefetch_heap(&self) {
        let bytes: &[u8] = match self {
            Value::Str(StrValue::Plain(b)) => b,
            Value::Str(StrValue::Raw(b)) => b,
            _ => return,
        };
        if let (Some(first), Some(last)) = (bytes.first(), bytes.last()) {
            crate::cpu::prefetch(first);
            crate::cpu::prefetch(last);
        }
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
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
            Value::Stream(_) => "stream",
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
            Value::Stream(x) => x.mem_bytes(),
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
            Value::Stream(x) => x.free_effort(),
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
            Value::Stream(x) => x.free_some(budget),
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
        // Four words: an inline string of up to `SMALL_MAX` bytes, or a tag and three words
        // for everything else (a packed run is two, a set's intset three with its width).
        assert_eq!(size_of::<StrValue>(), 32);
        assert_eq!(size_of::<packed::PackedRun<1>>(), 16);
        assert_eq!(size_of::<packed::PackedRun<2>>(), 16);
        assert!(size_of::<HashValue>() <= 24);
        assert!(size_of::<SetValue>() <= 24);
        assert!(size_of::<ZSetValue>() <= 24);
        assert_eq!(size_of::<Value>(), 32);
        assert_eq!(size_of::<Entry>(), size_of::<Value>() + 8);
        // A key's node slot (inline key, entry, 4-byte chain link, padded to 8): 72 bytes.
        let node = dict::Dict::<Entry, key::Key>::node_bytes();
        assert_eq!(node, size_of::<key::Key>() + size_of::<Entry>() + 8);
        assert_eq!(node, 72);
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

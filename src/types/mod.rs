//! Data structures stored in the keyspace and their encodings.
//!
//! A value is owned by exactly one shard at a time; it is `Send` so that multi-shard commands
//! (RENAME, COPY, MOVE across shards) can hand a value from one shard to another by message.
//! Nothing here does I/O or knows about connections.

pub mod dict;
pub mod float;

use bytes::Bytes;

/// Strings up to this length are reported as `embstr` (Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const EMBSTR_MAX: usize = 44;

/// A string value with the encoding Redis would report for it.
#[derive(Clone, Debug, PartialEq)]
pub enum StrValue {
    /// A canonical decimal integer (`int` encoding): no leading zeros, fits in i64.
    Int(i64),
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
        StrValue::Plain(Bytes::copy_from_slice(b))
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
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
            StrValue::Plain(b) | StrValue::Raw(b) => b.clone(),
        }
    }

    /// Calls `f` with the value's bytes without allocating for integers.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            StrValue::Plain(b) | StrValue::Raw(b) => f(b),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Plain(b) if b.len() <= EMBSTR_MAX => "embstr",
            _ => "raw",
        }
    }

    /// Heap bytes held by the payload (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            StrValue::Int(_) => 0,
            StrValue::Plain(b) | StrValue::Raw(b) => b.len(),
        }
    }
}

/// A value in the keyspace. Later families add their variants here.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
        }
    }
}

/// A keyspace entry: the value, its deadline and its access clock.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 means no expiry.
    pub expire_at: u64,
    /// Seconds-resolution access clock for OBJECT IDLETIME and LRU eviction.
    pub access: u32,
}

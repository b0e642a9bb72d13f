//! The hash value (field -> value) with Redis's two encodings.
//!
//! A small hash is a `listpack`: a flat vector of (field, value) pairs in insertion order,
//! searched linearly. It becomes a `hashtable` (our [`Dict`]) as soon as it holds more than
//! `hash-max-listpack-entries` pairs or is given a field or value longer than
//! `hash-max-listpack-value` bytes, and never converts back, exactly like Redis; OBJECT ENCODING
//! and the listpack's iteration order (insertion order) are therefore observable and match.
//!
//! This module only stores data: it never parses arguments or writes replies.

use bytes::Bytes;
use rand::Rng;

use super::dict::Dict;

/// The two conversion thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        HashLimits {
            max_entries: 512,
            max_value: 64,
        }
    }
}

/// A hash value in one of its two encodings.
pub enum HashValue {
    /// Insertion-ordered pairs (`listpack`).
    Listpack(Vec<(Bytes, Bytes)>),
    /// A hash table keyed by field (`hashtable`), boxed to keep `Value` small.
    Table(Box<FieldTable>),
}

/// The `hashtable` encoding: a [`Dict`] of fields, with the bytes of fields and values counted as
/// they come and go so that `mem_bytes` stays O(1).
#[derive(Default)]
pub struct FieldTable {
    dict: Dict<Bytes>,
    bytes: usize,
}

impl FieldTable {
    /// Adds a field known to be absent.
    fn insert(&mut self, field: Bytes, value: Bytes) {
        self.bytes += alloc_bytes(&field) + alloc_bytes(&value);
        let old = self.dict.insert(field, value);
        debug_assert!(old.is_none());
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        match self.dict.remove(field) {
            Some((f, v)) => {
                self.bytes -= alloc_bytes(&f) + alloc_bytes(&v);
                true
            }
            None => false,
        }
    }
}

/// Heap bytes behind one field or value (its own allocation, as the allocator rounds it).
#[inline]
fn alloc_bytes(b: &Bytes) -> usize {
    crate::alloc::usable_size(b.len())
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::new()
    }
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self {
            HashValue::Listpack(v) => HashValue::Listpack(v.clone()),
            HashValue::Table(t) => {
                let mut n = FieldTable::default();
                for (k, v) in t.dict.iter() {
                    n.insert(k.clone(), v.clone());
                }
                HashValue::Table(Box::new(n))
            }
        }
    }
}

impl PartialEq for HashValue {
    /// Same encoding and same pairs (a listpack's order matters, a table's does not).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HashValue::Listpack(a), HashValue::Listpack(b)) => a == b,
            (HashValue::Table(a), HashValue::Table(b)) => {
                a.dict.len() == b.dict.len() && a.dict.iter().all(|(k, v)| b.dict.get(k) == Some(v))
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for HashValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k.clone(), v.clone())))
            .finish()
    }
}

/// Iterator over a hash's pairs, in the encoding's order.
pub enum HashIter<'a> {
    Listpack(std::slice::Iter<'a, (Bytes, Bytes)>),
    Table(super::dict::Iter<'a, Bytes>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a Bytes, &'a Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Listpack(it) => it.next().map(|(k, v)| (k, v)),
            HashIter::Table(it) => it.next(),
        }
    }
}

impl HashValue {
    /// An empty hash (Redis creates every hash as a listpack).
    pub fn new() -> HashValue {
        HashValue::Listpack(Vec::new())
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(t) => t.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        match self {
            HashValue::Listpack(v) => v.iter().find(|(f, _)| f == field).map(|(_, v)| v),
            HashValue::Table(t) => t.dict.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Switches a listpack to the hashtable encoding (no-op for a table).
    pub fn convert_to_table(&mut self) {
        if let HashValue::Listpack(v) = self {
            let mut t = FieldTable::default();
            for (f, val) in std::mem::take(v) {
                t.insert(f, val);
            }
            *self = HashValue::Table(Box::new(t));
        }
    }

    /// Sets `field` to `value`; returns true if the field is new. A listpack converts first when
    /// the field or value is too long, and afterwards when it has too many entries.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: HashLimits) -> bool {
        if let HashValue::Listpack(_) = self {
            if field.len() > lim.max_value || value.len() > lim.max_value {
                self.convert_to_table();
            }
        }
        let value = Bytes::copy_from_slice(value);
        match self {
            HashValue::Listpack(v) => {
                if let Some(slot) = v.iter_mut().find(|(f, _)| f == field) {
                    slot.1 = value;
                    return false;
                }
                v.push((Bytes::copy_from_slice(field), value));
                if v.len() > lim.max_entries {
                    self.convert_to_table();
                }
                true
            }
            HashValue::Table(t) => {
                if let Some(slot) = t.dict.get_mut(field) {
                    let old = std::mem::replace(slot, value);
                    t.bytes = t.bytes + alloc_bytes(slot) - alloc_bytes(&old);
                    false
                } else {
                    t.insert(Bytes::copy_from_slice(field), value);
                    true
                }
            }
        }
    }

    /// Removes `field`; returns true if it was present. A listpack keeps its order.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(v) => match v.iter().position(|(f, _)| f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            HashValue::Table(t) => t.remove(field),
        }
    }

    /// Every pair, in insertion order for a listpack and table order otherwise.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            HashValue::Listpack(v) => HashIter::Listpack(v.iter()),
            HashValue::Table(t) => HashIter::Table(t.dict.iter()),
        }
    }

    /// A random pair (None when empty).
    pub fn random_pair(&self, rng: &mut impl Rng) -> Option<(&Bytes, &Bytes)> {
        match self {
            HashValue::Listpack(v) if v.is_empty() => None,
            HashValue::Listpack(v) => {
                let (f, val) = &v[rng.gen_range(0..v.len())];
                Some((f, val))
            }
            HashValue::Table(t) => t.dict.random_entry(rng),
        }
    }

    /// `count` distinct random pairs (all of them, in hash order, when `count >= len`).
    pub fn random_distinct(&self, rng: &mut impl Rng, count: usize) -> Vec<(Bytes, Bytes)> {
        let all: Vec<(Bytes, Bytes)> = self.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if count >= all.len() {
            return all;
        }
        // Partial Fisher-Yates: the first `count` slots end up a uniform sample.
        let mut all = all;
        for i in 0..count {
            let j = rng.gen_range(i..all.len());
            all.swap(i, j);
        }
        all.truncate(count);
        all
    }

    /// One HSCAN step over a table: calls `f` for the pairs of the buckets visited and returns
    /// the next cursor. A listpack reports everything and returns 0.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Bytes, &Bytes)) -> u64 {
        match self {
            HashValue::Listpack(v) => {
                for (k, val) in v {
                    f(k, val);
                }
                0
            }
            HashValue::Table(t) => t.dict.scan(cursor, f),
        }
    }

    /// Bytes held by fields and values (a rough size, for DEBUG OBJECT).
    pub fn payload_len(&self) -> usize {
        self.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Approximate heap bytes owned by the value: O(1) for a table, O(n) for a listpack (which
    /// is bounded by `hash-max-listpack-entries`, and which every write already walks).
    pub fn mem_bytes(&self) -> usize {
        match self {
            HashValue::Listpack(v) => {
                v.capacity() * std::mem::size_of::<(Bytes, Bytes)>()
                    + v.iter()
                        .map(|(f, val)| alloc_bytes(f) + alloc_bytes(val))
                        .sum::<usize>()
            }
            HashValue::Table(t) => {
                std::mem::size_of::<FieldTable>() + t.dict.table_overhead_bytes() + t.bytes
            }
        }
    }

    /// How many allocations dropping the value frees (Redis's lazy-free "effort").
    pub fn free_effort(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(t) => t.dict.len(),
        }
    }

    /// Frees up to about `budget` fields; true once nothing is left. For lazy freeing: the value
    /// must not be used for anything but further calls and dropping afterwards.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            HashValue::Listpack(v) => {
                v.truncate(v.len().saturating_sub(budget));
                v.is_empty()
            }
            HashValue::Table(t) => {
                t.dict.drain_some(budget, |_, _| {});
                t.dict.is_empty()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn lim(e: usize, v: usize) -> HashLimits {
        HashLimits {
            max_entries: e,
            max_value: v,
        }
    }

    #[test]
    fn listpack_keeps_insertion_order_and_updates_in_place() {
        let mut h = HashValue::new();
        let l = HashLimits::default();
        assert!(h.set(b"z", b"1", l));
        assert!(h.set(b"a", b"2", l));
        assert!(h.set(b"m", b"3", l));
        assert!(!h.set(b"a", b"20", l));
        let order: Vec<&[u8]> = h.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(order, [&b"z"[..], b"a", b"m"]);
        assert_eq!(h.get(b"a").map(|v| &v[..]), Some(&b"20"[..]));
        assert!(h.remove(b"z"));
        assert!(!h.remove(b"z"));
        let order: Vec<&[u8]> = h.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(order, [&b"a"[..], b"m"]);
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn converts_past_the_entry_threshold_only() {
        let mut h = HashValue::new();
        let l = lim(2, 64);
        h.set(b"a", b"1", l);
        h.set(b"b", b"2", l);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"a", b"3", l); // update: still 2 entries
        assert_eq!(h.encoding(), "listpack");
        h.set(b"c", b"3", l);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 3);
        // Never converts back.
        h.remove(b"c");
        h.remove(b"b");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a").map(|v| &v[..]), Some(&b"3"[..]));
        // Zero entries allowed: the first field converts.
        let mut z = HashValue::new();
        z.set(b"a", b"1", lim(0, 64));
        assert_eq!(z.encoding(), "hashtable");
    }

    #[test]
    fn converts_past_the_value_length_threshold() {
        let l = lim(512, 3);
        let mut h = HashValue::new();
        h.set(b"abc", b"123", l);
        assert_eq!(h.encoding(), "listpack");
        let mut f = h.clone();
        f.set(b"abcd", b"1", l);
        assert_eq!(f.encoding(), "hashtable");
        let mut v = h.clone();
        v.set(b"abc", b"1234", l);
        assert_eq!(v.encoding(), "hashtable");
        assert_eq!(v.get(b"abc").map(|v| &v[..]), Some(&b"1234"[..]));
        assert_ne!(h, v);
    }

    #[test]
    fn random_and_scan() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut h = HashValue::new();
        for i in 0..10 {
            h.set(format!("f{i}").as_bytes(), b"v", lim(4, 64));
        }
        assert_eq!(h.encoding(), "hashtable");
        let mut seen = std::collections::BTreeSet::new();
        let mut cur = 0;
        loop {
            cur = h.scan(cur, |k, _| {
                seen.insert(k.clone());
            });
            if cur == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 10);
        let s = h.random_distinct(&mut rng, 4);
        let distinct: std::collections::HashSet<_> = s.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(h.random_distinct(&mut rng, 20).len(), 10);
        assert!(h.random_pair(&mut rng).is_some());
        assert!(HashValue::new().random_pair(&mut rng).is_none());
        let c = h.clone();
        assert_eq!(c, h);
    }
}

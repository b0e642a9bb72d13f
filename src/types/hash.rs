//! The hash value (field -> value) with Redis's two encodings.
//!
//! A small hash is a `listpack`: one packed byte buffer of (field, value) records in insertion
//! order (a [`PackedRun`], the format the small sets and sorted sets use too), searched linearly.
//! It becomes a `hashtable` (our [`Dict`]) as soon as it holds more than
//! `hash-max-listpack-entries` pairs or is given a field or value longer than
//! `hash-max-listpack-value` bytes, and never converts back, exactly like Redis; OBJECT ENCODING
//! and the listpack's iteration order (insertion order) are therefore observable and match.
//!
//! This module only stores data: it never parses arguments or writes replies.

use rand::Rng;

use super::dict::Dict;
use super::key::Key;
use super::packed::{PackedRun, Records};

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
    /// Insertion-ordered (field, value) records packed in one buffer (`listpack`).
    Listpack(PackedRun<2>),
    /// A hash table keyed by field (`hashtable`), boxed to keep `Value` small.
    Table(Box<FieldTable>),
}

/// The `hashtable` encoding: a [`Dict`] of fields, with the bytes of fields and values counted as
/// they come and go so that `mem_bytes` stays O(1).
///
/// Fields and values are [`Key`]s: up to 22 bytes (the usual `field:12345` names and short
/// values) live inline in the table node. A lookup then compares the field without a pointer
/// chase to a separate allocation (in HSET profiles that chase was the biggest single cost, a
/// cache miss per lookup), and overwriting a short value allocates and frees nothing.
#[derive(Default)]
pub struct FieldTable {
    dict: Dict<Key, Key>,
    bytes: usize,
}

impl FieldTable {
    /// Adds a field known to be absent.
    fn insert(&mut self, field: Key, value: Key) {
        self.bytes += heap_bytes(&field) + heap_bytes(&value);
        let old = self.dict.insert(field, value);
        debug_assert!(old.is_none());
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        match self.dict.remove(field) {
            Some((f, v)) => {
                self.bytes -= heap_bytes(&f) + heap_bytes(&v);
                true
            }
            None => false,
        }
    }
}

/// Heap bytes behind one field or value beyond its place in the node (0 when inline).
#[inline]
fn heap_bytes(b: &[u8]) -> usize {
    Key::heap_bytes(b.len())
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::new()
    }
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self {
            HashValue::Listpack(run) => HashValue::Listpack(run.clone()),
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
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

/// Iterator over a hash's pairs, in the encoding's order.
pub enum HashIter<'a> {
    Listpack(Records<'a, 2>),
    Table(super::dict::Iter<'a, Key, Key>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Listpack(it) => it.next().map(|(_, [k, v])| (k, v)),
            HashIter::Table(it) => it.next().map(|(k, v)| (&k[..], &v[..])),
        }
    }
}

impl HashValue {
    /// An empty hash (Redis creates every hash as a listpack).
    pub fn new() -> HashValue {
        HashValue::Listpack(PackedRun::new())
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(run) => run.len(),
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

    /// The field table's statistics (DEBUG HTSTATS-KEY); None for a listpack.
    pub fn table_stats(&self) -> Option<super::dict::DictStats> {
        match self {
            HashValue::Listpack(_) => None,
            HashValue::Table(t) => Some(t.dict.stats()),
        }
    }

    /// The listpack's layout, for DEBUG LISTPACK; None for a table.
    pub fn listpack_repr(&self) -> Option<String> {
        match self {
            HashValue::Listpack(run) => Some(run.repr()),
            HashValue::Table(_) => None,
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(run) => run.find(|[f, _]| *f == field).map(|r| r.items[1]),
            HashValue::Table(t) => t.dict.get(field).map(|v| &v[..]),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Switches a listpack to the hashtable encoding (no-op for a table).
    pub fn convert_to_table(&mut self) {
        if let HashValue::Listpack(run) = self {
            let mut t = FieldTable::default();
            for (_, [f, v]) in run.iter() {
                t.insert(Key::new(f), Key::new(v));
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
        match self {
            HashValue::Listpack(run) => {
                let added = match run.find(|[f, _]| *f == field).map(|r| r.pos) {
                    Some(pos) => {
                        run.replace_at(pos, [field, value]);
                        false
                    }
                    None => {
                        run.push([field, value]);
                        true
                    }
                };
                // Checked after an update too (Redis's `hashTypeSet`): a limit lowered since
                // the hash was built converts it at its next write.
                if run.len() > lim.max_entries {
                    self.convert_to_table();
                }
                added
            }
            HashValue::Table(t) => {
                let value = Key::new(value);
                if let Some(slot) = t.dict.get_mut(field) {
                    let old = std::mem::replace(slot, value);
                    t.bytes = t.bytes + heap_bytes(slot) - heap_bytes(&old);
                    false
                } else {
                    t.insert(Key::new(field), value);
                    true
                }
            }
        }
    }

    /// Removes `field`; returns true if it was present. A listpack keeps its order.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(run) => match run.find(|[f, _]| *f == field).map(|r| r.pos) {
                Some(pos) => run.remove_at(pos, 1) == 1,
                None => false,
            },
            HashValue::Table(t) => t.remove(field),
        }
    }

    /// Every pair, in insertion order for a listpack and table order otherwise.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            HashValue::Listpack(run) => HashIter::Listpack(run.iter()),
            HashValue::Table(t) => HashIter::Table(t.dict.iter()),
        }
    }

    /// A random pair (None when empty).
    pub fn random_pair(&self, rng: &mut impl Rng) -> Option<(&[u8], &[u8])> {
        match self {
            HashValue::Listpack(run) if run.is_empty() => None,
            HashValue::Listpack(run) => run.get(rng.gen_range(0..run.len())).map(|[f, v]| (f, v)),
            HashValue::Table(t) => t.dict.random_entry(rng).map(|(f, v)| (&f[..], &v[..])),
        }
    }

    /// `count` random pairs with repetitions allowed (HRANDFIELD with a negative count), handed
    /// to `f`: a listpack is walked once to index its records, so each pick is O(1) after that.
    pub fn random_pairs(&self, rng: &mut impl Rng, count: usize, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            HashValue::Listpack(run) => {
                let positions = run.positions();
                if positions.is_empty() {
                    return;
                }
                for _ in 0..count {
                    let pos = positions[rng.gen_range(0..positions.len())];
                    if let Some(([k, v], _)) = run.record_at(pos) {
                        f(k, v);
                    }
                }
            }
            HashValue::Table(t) => {
                for _ in 0..count {
                    if let Some((k, v)) = t.dict.random_entry(rng) {
                        f(k, v);
                    }
                }
            }
        }
    }

    /// `count` distinct random pairs (all of them, in hash order, when `count >= len`).
    pub fn random_distinct(&self, rng: &mut impl Rng, count: usize) -> Vec<(&[u8], &[u8])> {
        let mut all: Vec<(&[u8], &[u8])> = self.iter().collect();
        if count >= all.len() {
            return all;
        }
        // Partial Fisher-Yates: the first `count` slots end up a uniform sample.
        for i in 0..count {
            let j = rng.gen_range(i..all.len());
            all.swap(i, j);
        }
        all.truncate(count);
        all
    }

    /// One HSCAN step over a table: calls `f` for the pairs of the buckets visited and returns
    /// the next cursor. A listpack reports everything and returns 0.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], &'a [u8])) -> u64 {
        match self {
            HashValue::Listpack(run) => {
                for (_, [k, v]) in run.iter() {
                    f(k, v);
                }
                0
            }
            HashValue::Table(t) => t.dict.scan(cursor, |k, v| f(k, v)),
        }
    }

    /// Bytes held by fields and values (a rough size, for DEBUG OBJECT).
    pub fn payload_len(&self) -> usize {
        self.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Approximate heap bytes owned by the value, O(1).
    pub fn mem_bytes(&self) -> usize {
        match self {
            HashValue::Listpack(run) => run.mem_bytes(),
            HashValue::Table(t) => {
                std::mem::size_of::<FieldTable>() + t.dict.table_overhead_bytes() + t.bytes
            }
        }
    }

    /// How many allocations dropping the value frees (Redis's lazy-free "effort": 1 for
    /// anything packed).
    pub fn free_effort(&self) -> usize {
        match self {
            HashValue::Listpack(_) => 1,
            HashValue::Table(t) => t.dict.len(),
        }
    }

    /// Frees up to about `budget` fields; true once nothing is left. For lazy freeing: the value
    /// must not be used for anything but further calls and dropping afterwards.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            HashValue::Listpack(run) => {
                run.clear();
                true
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
        let order: Vec<&[u8]> = h.iter().map(|(k, _)| k).collect();
        assert_eq!(order, [&b"z"[..], b"a", b"m"]);
        assert_eq!(h.get(b"a"), Some(&b"20"[..]));
        assert!(h.remove(b"z"));
        assert!(!h.remove(b"z"));
        let order: Vec<&[u8]> = h.iter().map(|(k, _)| k).collect();
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
        assert_eq!(h.get(b"a"), Some(&b"3"[..]));
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
        assert_eq!(v.get(b"abc"), Some(&b"1234"[..]));
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
                seen.insert(k.to_vec());
            });
            if cur == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 10);
        let s = h.random_distinct(&mut rng, 4);
        let distinct: std::collections::HashSet<_> = s.iter().map(|(k, _)| k.to_vec()).collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(h.random_distinct(&mut rng, 20).len(), 10);
        assert!(h.random_pair(&mut rng).is_some());
        assert!(HashValue::new().random_pair(&mut rng).is_none());
        let c = h.clone();
        assert_eq!(c, h);
    }

    #[test]
    fn listpack_is_one_packed_buffer() {
        let mut h = HashValue::new();
        for i in 0..100 {
            h.set(
                format!("field:{i}").as_bytes(),
                format!("value:{i}").as_bytes(),
                HashLimits::default(),
            );
        }
        assert_eq!(h.encoding(), "listpack");
        // 100 pairs of ~8-byte strings with one-byte lengths: ~1.8 KB packed, with at most a
        // quarter spare (it was ~13 KB as separately allocated pairs).
        let packed: usize = h.iter().map(|(k, v)| 2 + k.len() + v.len()).sum();
        assert!(h.mem_bytes() >= packed && h.mem_bytes() <= packed + packed / 4 + 24);
        assert_eq!(h.free_effort(), 1);
        // In-place updates to longer and shorter values keep the order.
        h.set(
            b"field:0",
            b"a-much-longer-value-than-before",
            HashLimits::default(),
        );
        h.set(b"field:50", b"", HashLimits::default());
        let fields: Vec<Vec<u8>> = h.iter().map(|(k, _)| k.to_vec()).collect();
        let want: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("field:{i}").into_bytes())
            .collect();
        assert_eq!(fields, want);
        assert_eq!(
            h.get(b"field:0"),
            Some(&b"a-much-longer-value-than-before"[..])
        );
        assert_eq!(h.get(b"field:50"), Some(&b""[..]));
        assert_eq!(h.get(b"field:99"), Some(&b"value:99"[..]));
        let mut n = 0;
        h.random_pairs(&mut SmallRng::seed_from_u64(3), 1000, |k, v| {
            assert_eq!(h.get(k), Some(v));
            n += 1;
        });
        assert_eq!(n, 1000);
        assert!(h.free_some(10));
        assert_eq!(h.mem_bytes(), 0);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Set(u8, Vec<u8>),
            Remove(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0u8..24, proptest::collection::vec(b'a'..=b'c', 0..8))
                    .prop_map(|(f, v)| Op::Set(f, v)),
                1 => (0u8..24).prop_map(Op::Remove),
            ]
        }

        /// Field names of varying lengths, so that the value limit applies to fields too.
        fn field(f: u8) -> Vec<u8> {
            vec![b'f'; (f % 8) as usize + 1]
                .into_iter()
                .chain([b'0' + f / 8])
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Against an insertion-ordered Vec: the pairs, their order while a listpack, when
            /// it converts (and that it never converts back), and every lookup.
            #[test]
            fn model_check(
                ops in proptest::collection::vec(op(), 1..200),
                max_entries in 0usize..20,
                max_value in 0usize..10,
                seed in any::<u64>(),
            ) {
                let lim = HashLimits { max_entries, max_value };
                let mut h = HashValue::new();
                let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let mut table = false;
                for op in ops {
                    match op {
                        Op::Set(f, v) => {
                            let f = field(f);
                            table |= f.len() > max_value || v.len() > max_value;
                            let new = match model.iter_mut().find(|(k, _)| *k == f) {
                                Some(slot) => {
                                    slot.1 = v.clone();
                                    false
                                }
                                None => {
                                    model.push((f.clone(), v.clone()));
                                    true
                                }
                            };
                            table |= model.len() > max_entries;
                            prop_assert_eq!(h.set(&f, &v, lim), new);
                        }
                        Op::Remove(f) => {
                            let f = field(f);
                            let had = model.iter().position(|(k, _)| *k == f);
                            if let Some(i) = had {
                                model.remove(i);
                            }
                            prop_assert_eq!(h.remove(&f), had.is_some());
                        }
                    }
                    prop_assert_eq!(h.encoding(), if table { "hashtable" } else { "listpack" });
                    prop_assert_eq!(h.len(), model.len());
                    let mut got: Vec<(Vec<u8>, Vec<u8>)> =
                        h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    if table {
                        got.sort();
                        let mut want = model.clone();
                        want.sort();
                        prop_assert_eq!(got, want);
                    } else {
                        prop_assert_eq!(&got, &model);
                    }
                    for (k, v) in &model {
                        prop_assert_eq!(h.get(k), Some(&v[..]));
                    }
                    prop_assert!(h.get(b"absent").is_none());
                }
                let mut rng = SmallRng::seed_from_u64(seed);
                let picks = h.random_distinct(&mut rng, 5);
                prop_assert_eq!(picks.len(), model.len().min(5));
                for (k, v) in picks {
                    prop_assert_eq!(h.get(k), Some(v));
                }
                let c = h.clone();
                prop_assert_eq!(&c, &h);
            }
        }
    }
}

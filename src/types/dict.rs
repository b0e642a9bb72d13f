//! `Dict`: the per-shard keyspace hash table.
//!
//! # What this module owns
//!
//! The table that maps keys to values, for one shard's keyspace (keys inline in
//! the node, [`Key`](super::key::Key)) and inside big hashes, sets and sorted
//! sets (`Bytes` keys), in the style of Redis's `dict.c`: separate chaining over power-of-two bucket arrays, with
//! *incremental* rehashing between two tables so that no single command ever
//! pays for resizing the whole keyspace at once. It also owns the two
//! guarantees that the commands built on top rely on:
//!
//! * **SCAN** ([`Dict::scan`]): the cursor is a reverse-binary bucket index.
//!   Every entry present for the whole duration of a full scan (cursor 0 back
//!   to 0) is reported at least once, even if the table grows, shrinks or is
//!   mid-rehash between calls. Entries may be reported more than once.
//! * **Sampling** ([`Dict::random_entry`], [`Dict::sample_with`],
//!   [`Dict::sample_keys`]): only entries that exist are returned, and one
//!   sampling call never returns the same entry twice. They are cheap and
//!   only roughly uniform — they serve active expiry and eviction, which need
//!   "a few keys from somewhere", not a fair lottery.
//!
//! # What it must never do
//!
//! * No I/O, no logging, no blocking, no locks: it runs inside the shard's
//!   single-threaded event loop, so every call is bounded, synchronous work.
//! * No allocation beyond its own nodes and bucket arrays (the
//!   [`Dict::sample_keys`] output vector is the caller's). A failed bucket-array
//!   allocation for a resize is tolerated: the table just stays at its size.
//! * No unbounded work per operation beyond what the operation inherently
//!   needs: rehashing moves at most a few buckets per mutating call (and
//!   bounds how many empty buckets it may skip), the rest is driven by the
//!   shard cron via [`Dict::rehash_step`].
//! * No panics on any sequence of operations, and no `unsafe`.
//!
//! # Resizing policy
//!
//! * Grow when `len >= buckets` (load factor 1) to the next power of two above
//!   `len` (i.e. double), checked on insertion of a new key.
//! * Shrink when `len < buckets / 8` (and buckets > 4) to the next power of two
//!   `>= 2 * len`, minimum 4 buckets, checked after removals and by
//!   [`Dict::rehash_step`]. Shrinking to load <= 1/2 rather than <= 1 leaves
//!   hysteresis so that a shrink is never immediately followed by a grow.
//! * A resize only *starts* a rehash; each insert / remove / `get_mut` then
//!   moves one bucket from the old table to the new one, and `rehash_step`
//!   lets the cron move more. While rehashing, new keys go into the new table
//!   and lookups check both tables.

use std::fmt;
use std::hash::BuildHasher;
use std::mem;

use ahash::RandomState;
use bytes::Bytes;
use rand::Rng;

/// Smallest bucket array a non-empty table has (as in Redis).
const MIN_BUCKETS: usize = 4;
/// Each rehash "step" may skip up to this many empty buckets before giving
/// up, so one step is bounded even in a sparse (shrinking) table.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// `sample_with` walks at most `count * SAMPLE_STEPS_PER_KEY` bucket indices.
const SAMPLE_STEPS_PER_KEY: usize = 10;
/// `random_entry` tries this many random buckets before falling back to a
/// linear walk (which is only needed for very sparse tables mid-shrink).
const RANDOM_PROBES: usize = 100;

/// One chained entry. Kept lean: no cached hash (rehash recomputes it, or uses
/// the bucket index directly when shrinking), no back pointer.
struct Node<V, K> {
    key: K,
    value: V,
    next: Link<V, K>,
}

type Link<V, K> = Option<Box<Node<V, K>>>;

/// One bucket array. `buckets.len()` is 0 (unallocated) or a power of two.
struct Table<V, K> {
    buckets: Vec<Link<V, K>>,
    used: usize,
}

impl<V, K: DictKey> Default for Table<V, K> {
    fn default() -> Self {
        Table {
            buckets: Vec::new(),
            used: 0,
        }
    }
}

impl<V, K: DictKey> Table<V, K> {
    /// Allocates `size` empty buckets; `None` if the allocation fails (so a
    /// resize can be skipped instead of aborting the process).
    fn try_with_size(size: usize) -> Option<Self> {
        let mut buckets = Vec::new();
        buckets.try_reserve_exact(size).ok()?;
        buckets.resize_with(size, || None);
        Some(Table { buckets, used: 0 })
    }

    #[inline]
    fn size(&self) -> usize {
        self.buckets.len()
    }

    /// Bucket mask; only meaningful when `size() > 0`.
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }
}

impl<V, K> Drop for Table<V, K> {
    /// Unlinks chains iteratively: the default drop of a `Box` linked list is
    /// recursive and could overflow the stack on a pathologically long chain.
    fn drop(&mut self) {
        for slot in self.buckets.iter_mut() {
            let mut cur = slot.take();
            while let Some(mut node) = cur {
                cur = node.next.take();
            }
        }
    }
}

/// What a table can be keyed by: anything that reads as bytes (`Bytes` for the collections'
/// tables, the inline [`Key`](super::key::Key) for the keyspace).
pub trait DictKey {
    fn as_bytes(&self) -> &[u8];
}

impl DictKey for Bytes {
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

/// Hashes a key. Always hashes `&[u8]` (never `Bytes`) so that every call
/// site agrees on the hash of the same key.
#[inline]
fn hash_key(state: &RandomState, key: &[u8]) -> u64 {
    BuildHasher::hash_one(state, key)
}

fn chain_find<'a, V, K: DictKey>(mut cur: &'a Link<V, K>, key: &[u8]) -> Option<&'a Node<V, K>> {
    while let Some(node) = cur {
        if node.key.as_bytes() == key {
            return Some(node);
        }
        cur = &node.next;
    }
    None
}

fn chain_find_mut<'a, V, K: DictKey>(
    mut cur: &'a mut Link<V, K>,
    key: &[u8],
) -> Option<&'a mut Node<V, K>> {
    while let Some(node) = cur {
        if node.key.as_bytes() == key {
            return Some(node);
        }
        cur = &mut node.next;
    }
    None
}

/// Unlinks and returns the node holding `key`, if any.
fn chain_remove<V, K: DictKey>(slot: &mut Link<V, K>, key: &[u8]) -> Option<Box<Node<V, K>>> {
    let mut cur = slot;
    loop {
        match cur {
            None => return None,
            Some(node) if node.key.as_bytes() == key => {
                let mut node = cur.take()?;
                *cur = node.next.take();
                return Some(node);
            }
            Some(node) => cur = &mut node.next,
        }
    }
}

/// Advances a reverse-binary cursor over the bits covered by `mask`.
/// Setting the unmasked bits first makes the carry of the (reversed)
/// increment flow straight through them, exactly as Redis does.
#[inline]
fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

/// A Redis-style incrementally rehashed chained hash table keyed by `K` (`Bytes` unless said).
/// See the module docs for the resize policy and the SCAN/sample guarantees.
pub struct Dict<V, K = Bytes> {
    /// `tables[0]` is the live table; `tables[1]` is only allocated while
    /// rehashing (it is the resize target, bigger or smaller).
    tables: [Table<V, K>; 2],
    /// `Some(i)` while rehashing: every bucket of `tables[0]` below `i` is
    /// empty (already moved).
    rehash_idx: Option<usize>,
    /// Per-dict random seed, so that collision attacks cannot be precomputed.
    hasher: RandomState,
    /// The load factor that triggers growth: 1, or `DEFERRED_GROWTH_LOAD` while a snapshot
    /// walks the table (a walk must outrun the table's growth to finish, as Redis defers
    /// resizing while a fork child runs).
    grow_load: usize,
}

/// The load factor that still forces growth while growth is deferred.
pub const DEFERRED_GROWTH_LOAD: usize = 8;

impl<V, K: DictKey> Default for Dict<V, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: fmt::Debug, K: DictKey + fmt::Debug> fmt::Debug for Dict<V, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V, K: DictKey> Dict<V, K> {
    /// Creates an empty dict. Allocates nothing until the first insert.
    pub fn new() -> Self {
        Dict {
            tables: [Table::default(), Table::default()],
            rehash_idx: None,
            hasher: RandomState::new(),
            grow_load: 1,
        }
    }

    /// Defers growth (up to `DEFERRED_GROWTH_LOAD` entries per bucket) or restores the normal
    /// policy.
    pub fn defer_growth(&mut self, deferred: bool) {
        self.grow_load = if deferred { DEFERRED_GROWTH_LOAD } else { 1 };
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.tables[0].used + self.tables[1].used
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while an incremental rehash is in progress.
    #[inline]
    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// Total number of buckets across both tables (for INFO/DEBUG output and
    /// tests).
    pub fn bucket_count(&self) -> usize {
        self.tables[0].size() + self.tables[1].size()
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        hash_key(&self.hasher, key)
    }

    fn find(&self, key: &[u8]) -> Option<&Node<V, K>> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key) as usize;
        let t0 = &self.tables[0];
        if t0.size() > 0 {
            let idx = h & t0.mask();
            // Buckets below rehash_idx were already moved to table 1.
            if self.rehash_idx.is_none_or(|r| idx >= r) {
                if let Some(n) = t0.buckets.get(idx).and_then(|b| chain_find(b, key)) {
                    return Some(n);
                }
            }
        }
        if self.is_rehashing() {
            let t1 = &self.tables[1];
            if t1.size() > 0 {
                return t1
                    .buckets
                    .get(h & t1.mask())
                    .and_then(|b| chain_find(b, key));
            }
        }
        None
    }

    fn find_mut_hashed(&mut self, h: u64, key: &[u8]) -> Option<&mut Node<V, K>> {
        let h = h as usize;
        let rehash_idx = self.rehash_idx;
        // Destructure so the two tables are disjoint borrows.
        let [t0, t1] = &mut self.tables;
        if t0.size() > 0 {
            let idx = h & t0.mask();
            if rehash_idx.is_none_or(|r| idx >= r) {
                if let Some(n) = t0.buckets.get_mut(idx).and_then(|b| chain_find_mut(b, key)) {
                    return Some(n);
                }
            }
        }
        if rehash_idx.is_some() && t1.size() > 0 {
            let idx = h & t1.mask();
            return t1.buckets.get_mut(idx).and_then(|b| chain_find_mut(b, key));
        }
        None
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.find(key).map(|n| &n.value)
    }

    /// Lookup for write: like Redis's `dictFind`, it also performs one
    /// rehash step, so write-heavy workloads finish rehashes promptly.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.rehash_if_active();
        let h = self.hash(key);
        self.find_mut_hashed(h, key).map(|n| &mut n.value)
    }

    pub fn get_key_value(&self, key: &[u8]) -> Option<(&K, &V)> {
        self.find(key).map(|n| (&n.key, &n.value))
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// Inserts or replaces; returns the old value if the key existed (the
    /// stored key is kept, the passed one dropped).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.rehash_if_active();
        let h = self.hash(key.as_bytes());
        if let Some(node) = self.find_mut_hashed(h, key.as_bytes()) {
            return Some(mem::replace(&mut node.value, value));
        }
        // Only a genuinely new key can push the load factor over 1.
        self.expand_if_needed();
        let t = usize::from(self.is_rehashing());
        let table = &mut self.tables[t];
        // After expand_if_needed the target table always has buckets; the
        // `get_mut` keeps this panic-free even if that invariant broke.
        let mask = table.mask();
        if let Some(slot) = table.buckets.get_mut(h as usize & mask) {
            let next = slot.take();
            *slot = Some(Box::new(Node { key, value, next }));
            table.used += 1;
        }
        None
    }

    /// Removes `key`, returning the stored key and its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<(K, V)> {
        if self.is_empty() {
            return None;
        }
        self.rehash_if_active();
        let h = self.hash(key) as usize;
        let rehash_idx = self.rehash_idx;
        let mut removed = None;
        for (t, table) in self.tables.iter_mut().enumerate() {
            if table.size() == 0 || (t == 1 && rehash_idx.is_none()) {
                continue;
            }
            let idx = h & table.mask();
            if t == 0 && rehash_idx.is_some_and(|r| idx < r) {
                continue;
            }
            if let Some(node) = table
                .buckets
                .get_mut(idx)
                .and_then(|b| chain_remove(b, key))
            {
                table.used -= 1;
                removed = Some(node);
                break;
            }
        }
        let node = removed?;
        self.after_removal();
        let Node { key, value, .. } = *node;
        Some((key, value))
    }

    /// Removes everything and frees both bucket arrays.
    pub fn clear(&mut self) {
        // Table's Drop unlinks the chains iteratively.
        self.tables = [Table::default(), Table::default()];
        self.rehash_idx = None;
    }

    /// Keeps only the entries for which `f` returns true. Visits every
    /// bucket once (no rehash work of its own), then may start a shrink.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for table in self.tables.iter_mut() {
            let mut removed = 0;
            for slot in table.buckets.iter_mut() {
                // Rebuild the chain from the kept nodes (order within a
                // chain does not matter).
                let mut chain = slot.take();
                while let Some(mut node) = chain {
                    chain = node.next.take();
                    if f(&node.key, &mut node.value) {
                        node.next = slot.take();
                        *slot = Some(node);
                    } else {
                        removed += 1;
                    }
                }
            }
            table.used -= removed;
        }
        self.after_removal();
    }

    /// Iterates over all entries (both tables while rehashing), in bucket
    /// order.
    pub fn iter(&self) -> Iter<'_, V, K> {
        Iter {
            tables: [&self.tables[0].buckets, &self.tables[1].buckets],
            table: 0,
            bucket: 0,
            node: None,
            remaining: self.len(),
        }
    }

    /// Heap bytes used by the table structure itself: both bucket arrays plus
    /// one node per entry, excluding whatever the keys' and values' own heap
    /// buffers hold (and excluding allocator overhead).
    pub fn table_overhead_bytes(&self) -> usize {
        let slots = self.tables[0].buckets.capacity() + self.tables[1].buckets.capacity();
        slots * mem::size_of::<Link<V, K>>() + self.len() * mem::size_of::<Node<V, K>>()
    }

    /// Heap bytes of the bucket arrays alone (the per-entry nodes are counted with the entries).
    pub fn bucket_bytes(&self) -> usize {
        (self.tables[0].buckets.capacity() + self.tables[1].buckets.capacity())
            * mem::size_of::<Link<V, K>>()
    }

    /// Heap bytes of one entry's node (key handle, value and chain link), without the key's and
    /// the value's own heap buffers.
    pub const fn node_bytes() -> usize {
        mem::size_of::<Node<V, K>>()
    }

    /// Takes up to `max` entries out, handing each to `f` (bucket arrays are released once
    /// empty), and returns how many were taken; empty buckets passed over count as a tenth of
    /// an entry each, so one call is bounded work. This dismantles the table from the end of
    /// its bucket arrays: afterwards the dict is only fit for more `drain_some` calls, `len`,
    /// and dropping (lookups may miss). For lazy freeing of huge values and flushed databases.
    pub fn drain_some(&mut self, max: usize, mut f: impl FnMut(K, V)) -> usize {
        let mut taken = 0;
        let mut skipped = 0;
        self.rehash_idx = None;
        for table in self.tables.iter_mut() {
            while taken < max && skipped / 10 + taken < max {
                let Some(slot) = table.buckets.pop() else {
                    table.buckets = Vec::new();
                    break;
                };
                let mut cur = slot;
                if cur.is_none() {
                    skipped += 1;
                }
                while let Some(mut node) = cur {
                    cur = node.next.take();
                    table.used -= 1;
                    taken += 1;
                    let Node { key, value, .. } = *node;
                    f(key, value);
                }
            }
            if table.buckets.is_empty() {
                table.buckets = Vec::new();
            }
        }
        taken
    }

    // ----- resizing -------------------------------------------------------

    /// Starts a grow if the load factor reached 1. No-op while rehashing (the
    /// ongoing rehash finishes first, as in Redis).
    fn expand_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let t0 = &self.tables[0];
        if t0.size() == 0 {
            // First insert: nothing to rehash, just allocate.
            if let Some(t) = Table::try_with_size(MIN_BUCKETS) {
                self.tables[0] = t;
            }
            return;
        }
        if t0.used >= t0.size().saturating_mul(self.grow_load) {
            if let Some(size) = t0
                .used
                .checked_add(1)
                .and_then(usize::checked_next_power_of_two)
            {
                self.start_resize(size);
            }
        }
    }

    /// Makes room for `additional` more entries at once (a bulk load that knows its size, like
    /// RDB's RESIZEDB), so they go in without the table doubling and rehashing its way up. Does
    /// nothing while a rehash is in progress or when the table is already big enough.
    pub fn reserve(&mut self, additional: usize) {
        if self.is_rehashing() {
            return;
        }
        let Some(want) = self
            .len()
            .checked_add(additional)
            .and_then(usize::checked_next_power_of_two)
        else {
            return;
        };
        if want > self.tables[0].size() {
            self.start_resize(want.max(MIN_BUCKETS));
        }
    }

    /// After entries were removed: if that drained the old table mid-rehash,
    /// finish the rehash now (nothing is left to move); otherwise consider
    /// shrinking.
    fn after_removal(&mut self) {
        if self.is_rehashing() && self.tables[0].used == 0 {
            self.rehash(1);
        }
        self.shrink_if_needed();
    }

    /// Starts a shrink if the load factor fell below 1/8.
    fn shrink_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let t0 = &self.tables[0];
        if t0.size() > MIN_BUCKETS && t0.used < t0.size() / 8 {
            // used*2 < size/4, so the target is at most size/4 (or 4 < size).
            let size = t0
                .used
                .saturating_mul(2)
                .checked_next_power_of_two()
                .unwrap_or(MIN_BUCKETS)
                .max(MIN_BUCKETS);
            if size < t0.size() {
                self.start_resize(size);
            }
        }
    }

    fn start_resize(&mut self, size: usize) {
        let Some(new) = Table::try_with_size(size) else {
            return; // out of memory: keep the current table, try again later
        };
        if self.tables[0].used == 0 {
            // Nothing to move: swap in directly.
            self.tables[0] = new;
            return;
        }
        self.tables[1] = new;
        self.rehash_idx = Some(0);
    }

    #[inline]
    fn rehash_if_active(&mut self) {
        if self.is_rehashing() {
            self.rehash(1);
        }
    }

    /// Moves up to `n` non-empty buckets from the old table to the new one,
    /// skipping at most `n * 10` empty buckets. If no rehash is in progress,
    /// first checks whether the table should shrink (removals during a
    /// previous rehash may have left it sparse). Returns true while a rehash
    /// is still in progress afterwards. Meant for the shard cron.
    pub fn rehash_step(&mut self, n: usize) -> bool {
        if !self.is_rehashing() {
            self.shrink_if_needed();
        }
        self.rehash(n)
    }

    fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else {
            return false;
        };
        let mut empty_visits = n.saturating_mul(EMPTY_VISITS_PER_STEP).max(1);
        let [t0, t1] = &mut self.tables;
        // When shrinking, the new bucket of a node is simply `idx & mask1`
        // (the new mask is a subset of the old one), so no rehashing needed.
        let shrinking = t1.size() < t0.size();
        let mask1 = t1.mask();
        let mut moves = n;
        'outer: while moves > 0 && t0.used > 0 {
            moves -= 1;
            // Invariant: buckets below idx are empty and t0.used > 0, so a
            // non-empty bucket exists at or after idx.
            loop {
                match t0.buckets.get(idx) {
                    Some(Some(_)) => break,
                    Some(None) => {
                        idx += 1;
                        empty_visits -= 1;
                        if empty_visits == 0 {
                            break 'outer;
                        }
                    }
                    None => break 'outer, // unreachable while invariants hold
                }
            }
            let mut chain = t0.buckets.get_mut(idx).and_then(Option::take);
            while let Some(mut node) = chain {
                chain = node.next.take();
                let dst = if shrinking {
                    idx & mask1
                } else {
                    hash_key(&self.hasher, node.key.as_bytes()) as usize & mask1
                };
                if let Some(slot) = t1.buckets.get_mut(dst) {
                    node.next = slot.take();
                    *slot = Some(node);
                    t0.used -= 1;
                    t1.used += 1;
                }
            }
            idx += 1;
        }
        if t0.used == 0 {
            // Old table is drained: the new one becomes the live table.
            *t0 = mem::take(t1);
            self.rehash_idx = None;
            // Removals during a long shrink may have left the new table
            // sparse already: chain the next shrink right away instead of
            // waiting for the next removal.
            self.shrink_if_needed();
            self.is_rehashing()
        } else {
            self.rehash_idx = Some(idx);
            true
        }
    }

    // ----- SCAN -----------------------------------------------------------

    /// Redis SCAN: calls `f` for every entry of the bucket(s) addressed by
    /// `cursor` and returns the next cursor (0 when the scan is complete).
    ///
    /// While rehashing, visits the smaller table's bucket `cursor & m_small`
    /// and every bucket of the bigger table that expands from it, as Redis's
    /// `dictScan` does. Because the cursor is incremented in reverse-binary
    /// order (high bits first), the set of buckets already covered is always
    /// a prefix that stays valid when the table doubles or halves, which
    /// gives the guarantee: an entry present for the whole duration of a full
    /// scan is reported at least once (possibly more than once).
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a K, &'a V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor;
        let emit_bucket = |table: &'a Table<V, K>, idx: u64, f: &mut dyn FnMut(&'a K, &'a V)| {
            let mut cur = table.buckets.get(idx as usize).and_then(|b| b.as_deref());
            while let Some(node) = cur {
                f(&node.key, &node.value);
                cur = node.next.as_deref();
            }
        };
        if !self.is_rehashing() {
            let t0 = &self.tables[0];
            if t0.size() == 0 {
                return 0;
            }
            let m0 = t0.mask() as u64;
            emit_bucket(t0, v & m0, &mut f);
            return next_cursor(v, m0);
        }
        let (small, big) = if self.tables[0].size() <= self.tables[1].size() {
            (&self.tables[0], &self.tables[1])
        } else {
            (&self.tables[1], &self.tables[0])
        };
        if small.size() == 0 || big.size() == 0 {
            return 0; // unreachable while invariants hold
        }
        let m0 = small.mask() as u64;
        let m1 = big.mask() as u64;
        emit_bucket(small, v & m0, &mut f);
        // Every bucket of the big table whose low bits equal `v & m0`.
        loop {
            emit_bucket(big, v & m1, &mut f);
            v = next_cursor(v, m1);
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        v
    }

    /// `scan` with mutable access to the values (the snapshot marks what it saved). Visits the
    /// same buckets in the same order, with the same guarantee; it never rehashes.
    pub fn scan_mut(&mut self, cursor: u64, mut f: impl FnMut(&K, &mut V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        fn emit<V, K>(table: &mut Table<V, K>, idx: u64, f: &mut dyn FnMut(&K, &mut V)) {
            let mut cur = table
                .buckets
                .get_mut(idx as usize)
                .and_then(|b| b.as_deref_mut());
            while let Some(node) = cur {
                f(&node.key, &mut node.value);
                cur = node.next.as_deref_mut();
            }
        }
        let mut v = cursor;
        if !self.is_rehashing() {
            let t0 = &mut self.tables[0];
            if t0.size() == 0 {
                return 0;
            }
            let m0 = t0.mask() as u64;
            emit(t0, v & m0, &mut f);
            return next_cursor(v, m0);
        }
        let [t0, t1] = &mut self.tables;
        let (small, big) = if t0.size() <= t1.size() {
            (t0, t1)
        } else {
            (t1, t0)
        };
        if small.size() == 0 || big.size() == 0 {
            return 0;
        }
        let m0 = small.mask() as u64;
        let m1 = big.mask() as u64;
        emit(small, v & m0, &mut f);
        loop {
            emit(big, v & m1, &mut f);
            v = next_cursor(v, m1);
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        v
    }

    // ----- sampling -------------------------------------------------------

    /// A roughly uniform random entry: a random non-empty bucket (from both
    /// tables while rehashing), then a random element of its chain. Entries
    /// in short chains are slightly favoured, as in Redis.
    pub fn random_entry(&self, rng: &mut impl Rng) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let s0 = self.tables[0].size();
        // Logical bucket space: table 0's not-yet-moved buckets, then table 1.
        let (lo, hi) = match self.rehash_idx {
            Some(r) => (r.min(s0), s0 + self.tables[1].size()),
            None => (0, s0),
        };
        if lo >= hi {
            return None; // unreachable while invariants hold
        }
        let bucket = |i: usize| -> Option<&Node<V, K>> {
            if i < s0 {
                self.tables[0].buckets.get(i)?.as_deref()
            } else {
                self.tables[1].buckets.get(i - s0)?.as_deref()
            }
        };
        let mut head = None;
        for _ in 0..RANDOM_PROBES {
            if let Some(n) = bucket(rng.gen_range(lo..hi)) {
                head = Some(n);
                break;
            }
        }
        if head.is_none() {
            // Very sparse table (e.g. large table mid-shrink): walk from a
            // random start instead of probing forever. Terminates because the
            // dict is non-empty.
            let start = rng.gen_range(lo..hi);
            let span = hi - lo;
            head = (0..span).find_map(|k| bucket(lo + (start - lo + k) % span));
        }
        let head = head?;
        let mut chain_len = 0usize;
        let mut cur = Some(head);
        while let Some(n) = cur {
            chain_len += 1;
            cur = n.next.as_deref();
        }
        let mut n = head;
        for _ in 0..rng.gen_range(0..chain_len) {
            n = n.next.as_deref()?;
        }
        Some((&n.key, &n.value))
    }

    /// Calls `f` for up to `count` entries found in consecutive buckets
    /// starting at a random bucket index (like Redis's `dictGetSomeKeys`);
    /// returns how many were reported. Used for active expiry and eviction
    /// sampling, where `f` can look at the value (e.g. an LRU clock).
    ///
    /// At most `count * 10` bucket indices are walked and never more than
    /// one full cycle, so each bucket is visited at most once and no entry is
    /// ever reported twice; it may report fewer than `count` entries in a
    /// sparse table. Unlike Redis it does no rehash step (it takes `&self`)
    /// and does not jump to a new random position after empty runs (that
    /// could revisit buckets and produce duplicates).
    pub fn sample_with(
        &self,
        rng: &mut impl Rng,
        count: usize,
        mut f: impl FnMut(&K, &V),
    ) -> usize {
        let count = count.min(self.len());
        if count == 0 {
            return 0;
        }
        let (s0, s1) = (self.tables[0].size(), self.tables[1].size());
        let rehash_idx = self.rehash_idx;
        let max_size = if rehash_idx.is_some() { s0.max(s1) } else { s0 };
        if max_size == 0 {
            return 0;
        }
        let steps = count.saturating_mul(SAMPLE_STEPS_PER_KEY).min(max_size);
        let mut i = rng.gen_range(0..max_size);
        let mut stored = 0;
        for _ in 0..steps {
            for t in 0..2 {
                let table = &self.tables[t];
                if t == 1 && rehash_idx.is_none() {
                    break;
                }
                if t == 0 && rehash_idx.is_some_and(|r| i < r) {
                    continue; // already moved to table 1
                }
                let mut cur = table.buckets.get(i).and_then(|b| b.as_deref());
                while let Some(n) = cur {
                    f(&n.key, &n.value);
                    stored += 1;
                    if stored == count {
                        return stored;
                    }
                    cur = n.next.as_deref();
                }
            }
            i = (i + 1) & (max_size - 1);
        }
        stored
    }

    /// Like [`Dict::sample_with`] but appends clones of the sampled keys to
    /// `out` (an inline `Key` is copied without allocating); returns how many
    /// were appended. `out` is not cleared first.
    pub fn sample_keys(&self, rng: &mut impl Rng, count: usize, out: &mut Vec<K>) -> usize
    where
        K: Clone,
    {
        self.sample_with(rng, count, |k, _| out.push(k.clone()))
    }
}

/// Iterator over a [`Dict`]'s entries; see [`Dict::iter`].
pub struct Iter<'a, V, K = Bytes> {
    tables: [&'a [Link<V, K>]; 2],
    table: usize,
    bucket: usize,
    node: Option<&'a Node<V, K>>,
    remaining: usize,
}

impl<'a, V, K: DictKey> Iterator for Iter<'a, V, K> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(n) = self.node {
                self.node = n.next.as_deref();
                self.remaining = self.remaining.saturating_sub(1);
                return Some((&n.key, &n.value));
            }
            // Stop early instead of walking trailing empty buckets.
            if self.remaining == 0 {
                return None;
            }
            let buckets = *self.tables.get(self.table)?;
            match buckets.get(self.bucket) {
                Some(slot) => {
                    self.node = slot.as_deref();
                    self.bucket += 1;
                }
                None => {
                    self.table += 1;
                    self.bucket = 0;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<V, K: DictKey> ExactSizeIterator for Iter<'_, V, K> {}

impl<'a, V, K: DictKey> IntoIterator for &'a Dict<V, K> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, V, K>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::{HashMap, HashSet};

    fn k(i: usize) -> Bytes {
        Bytes::from(format!("key:{i}"))
    }

    impl<V> Dict<V> {
        /// Structural invariants; panics (in tests only) if any is broken.
        fn check_invariants(&self) {
            let mut seen = HashSet::new();
            for (t, table) in self.tables.iter().enumerate() {
                let size = table.size();
                assert!(size == 0 || size.is_power_of_two(), "size {size}");
                let mut count = 0;
                for (i, slot) in table.buckets.iter().enumerate() {
                    let mut cur = slot.as_deref();
                    if t == 0 {
                        if let Some(r) = self.rehash_idx {
                            assert!(i >= r || cur.is_none(), "moved bucket {i} not empty");
                        }
                    }
                    while let Some(n) = cur {
                        assert_eq!(self.hash(&n.key) as usize & table.mask(), i, "wrong bucket");
                        assert!(seen.insert(n.key.clone()), "duplicate key");
                        count += 1;
                        cur = n.next.as_deref();
                    }
                }
                assert_eq!(count, table.used, "used count of table {t}");
            }
            match self.rehash_idx {
                None => assert_eq!(self.tables[1].size(), 0),
                Some(_) => {
                    assert!(self.tables[1].size() > 0);
                    assert!(self.tables[0].used > 0);
                }
            }
            if !self.is_empty() {
                assert!(self.tables[0].size() > 0);
            }
        }
    }

    /// Runs a full scan, calling `between` after every scan call.
    fn full_scan<V>(
        d: &mut Dict<V>,
        mut between: impl FnMut(&mut Dict<V>, usize),
    ) -> HashSet<Bytes> {
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = d.scan(cursor, |key, _| {
                seen.insert(key.clone());
            });
            if cursor == 0 {
                return seen;
            }
            between(d, calls);
            calls += 1;
            assert!(calls < 1_000_000, "scan does not terminate");
        }
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut d: Dict<u32> = Dict::new();
        assert!(d.is_empty());
        assert_eq!(d.bucket_count(), 0);
        assert_eq!(d.table_overhead_bytes(), 0);
        assert_eq!(d.get(b"a"), None);
        assert_eq!(d.remove(b"a"), None);
        assert_eq!(d.insert(Bytes::from_static(b"a"), 1), None);
        assert_eq!(d.insert(Bytes::from_static(b"b"), 2), None);
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(b"a"), Some(&1));
        assert!(d.contains_key(b"b"));
        assert!(!d.contains_key(b"c"));
        // Replacement keeps the stored key and returns the old value.
        let stored = Bytes::from(b"a".to_vec());
        let stored_ptr = d.get_key_value(b"a").unwrap().0.as_ptr();
        assert_eq!(d.insert(stored, 10), Some(1));
        assert_eq!(d.get_key_value(b"a").unwrap().0.as_ptr(), stored_ptr);
        assert_eq!(d.len(), 2);
        *d.get_mut(b"b").unwrap() += 5;
        assert_eq!(d.get(b"b"), Some(&7));
        assert_eq!(d.get_mut(b"zz"), None);
        assert_eq!(d.remove(b"a"), Some((Bytes::from_static(b"a"), 10)));
        assert_eq!(d.remove(b"a"), None);
        assert_eq!(d.len(), 1);
        // Empty key is a valid key.
        assert_eq!(d.insert(Bytes::new(), 0), None);
        assert_eq!(d.get(b""), Some(&0));
        d.check_invariants();
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.bucket_count(), 0);
        assert_eq!(d.get(b"b"), None);
        d.insert(k(1), 1);
        assert_eq!(d.get(&k(1)), Some(&1));
        assert!(format!("{d:?}").contains("key:1"));
    }

    #[test]
    fn reserve_sizes_the_table_once_for_a_bulk_load() {
        let mut d: Dict<usize> = Dict::new();
        d.reserve(1000);
        assert_eq!(d.bucket_count(), 1024);
        for i in 0..1000 {
            d.insert(Bytes::from(format!("k{i}")), i);
            assert!(!d.is_rehashing(), "grew at {i}");
        }
        assert_eq!(d.bucket_count(), 1024);
        // On a filled table it starts one rehash to the size asked for, and entries survive it.
        d.reserve(3000);
        assert!(d.is_rehashing());
        while d.rehash_step(100) {}
        assert_eq!(d.bucket_count(), 4096);
        assert_eq!(d.len(), 1000);
        assert!((0..1000).all(|i| d.get(format!("k{i}").as_bytes()) == Some(&i)));
        // Already big enough: nothing changes.
        d.reserve(10);
        assert!(!d.is_rehashing());
        assert_eq!(d.bucket_count(), 4096);
    }

    #[test]
    fn grow_and_shrink_through_rehash() {
        let mut d: Dict<usize> = Dict::new();
        let n = 20_000;
        let mut saw_rehash = false;
        for i in 0..n {
            assert_eq!(d.insert(k(i), i), None);
            saw_rehash |= d.is_rehashing();
            if i % 97 == 0 {
                // Lookups in between, including mid-rehash.
                for j in (0..=i).step_by(41) {
                    assert_eq!(d.get(&k(j)), Some(&j));
                }
                assert_eq!(d.get(&k(i + 1)), None);
                if i % 1940 == 0 {
                    d.check_invariants();
                }
            }
        }
        assert!(saw_rehash);
        assert_eq!(d.len(), n);
        while d.rehash_step(100) {}
        // Load factor <= 1 once rehash is done after growth.
        assert!(
            d.bucket_count() >= n && d.bucket_count() < 4 * n,
            "{}",
            d.bucket_count()
        );
        let big = d.bucket_count();
        d.check_invariants();

        let mut saw_rehash = false;
        for i in 0..n - 10 {
            assert_eq!(d.remove(&k(i)), Some((k(i), i)));
            saw_rehash |= d.is_rehashing();
            if i % 89 == 0 {
                for j in (i + 1..n).step_by(53) {
                    assert_eq!(d.get(&k(j)), Some(&j), "lost {j} after removing {i}");
                }
                assert_eq!(d.get(&k(i)), None);
                if i % 1780 == 0 || i > n - 500 {
                    d.check_invariants();
                }
            }
        }
        assert!(saw_rehash);
        while d.rehash_step(100) {}
        d.check_invariants();
        assert_eq!(d.len(), 10);
        // Policy: after shrinking settles, len >= buckets / 8.
        assert!(
            d.bucket_count() <= 64,
            "did not shrink: {} (was {big})",
            d.bucket_count()
        );
        assert!(d.len() >= d.bucket_count() / 8);
        for i in n - 10..n {
            assert_eq!(d.get(&k(i)), Some(&i));
        }
        for i in n - 10..n {
            d.remove(&k(i));
        }
        while d.rehash_step(100) {}
        assert_eq!(d.bucket_count(), MIN_BUCKETS);
        assert!(d.is_empty());
        d.check_invariants();
    }

    #[test]
    fn get_mut_and_remove_during_rehash() {
        let mut d: Dict<usize> = Dict::new();
        let mut i = 0;
        // Insert until a grow rehash starts.
        while !d.is_rehashing() {
            d.insert(k(i), i);
            i += 1;
        }
        // Every key is reachable and removable mid-rehash, from either table.
        for j in 0..i {
            *d.get_mut(&k(j)).unwrap() += 1;
        }
        for j in 0..i {
            assert_eq!(d.get(&k(j)), Some(&(j + 1)));
        }
        for j in (0..i).step_by(2) {
            assert_eq!(d.remove(&k(j)), Some((k(j), j + 1)));
            d.check_invariants();
        }
        assert_eq!(d.len(), i / 2);
    }

    #[test]
    fn rehash_step_is_bounded_and_finishes() {
        let mut d: Dict<()> = Dict::new();
        for i in 0..1024 {
            d.insert(k(i), ());
        }
        while d.rehash_step(1) {}
        // Remove nearly everything in one go, making the table very sparse.
        d.retain(|key, _| key.as_ref() == b"key:7");
        assert_eq!(d.len(), 1);
        assert!(d.is_rehashing(), "retain should start a shrink");
        let mut steps = 0;
        while d.rehash_step(1) {
            steps += 1;
            d.check_invariants();
        }
        assert!(steps > 0);
        assert_eq!(d.bucket_count(), MIN_BUCKETS);
        assert_eq!(d.get(b"key:7"), Some(&()));
    }

    #[test]
    fn scan_sees_all_keys_while_growing() {
        let mut d: Dict<usize> = Dict::new();
        let n = 1000;
        for i in 0..n {
            d.insert(k(i), i);
        }
        let mut next = n;
        let mut grew_while_scanning = false;
        let start_buckets = d.bucket_count();
        let seen = full_scan(&mut d, |d, _| {
            // Many inserts between calls: several doublings mid-scan. Capped,
            // or the table would outgrow the cursor forever.
            for _ in 0..200 {
                if next < 40_000 {
                    d.insert(k(next), next);
                    next += 1;
                }
            }
            grew_while_scanning |= d.bucket_count() > 2 * start_buckets;
        });
        assert!(grew_while_scanning);
        for i in 0..n {
            assert!(seen.contains(&k(i)), "missed key {i}");
        }
        d.check_invariants();
    }

    #[test]
    fn scan_sees_all_keys_while_shrinking() {
        let mut d: Dict<usize> = Dict::new();
        let n = 20_000;
        for i in 0..n {
            d.insert(k(i), i);
        }
        while d.rehash_step(100) {}
        let start_buckets = d.bucket_count();
        // Keys 0..100 stay for the whole scan; the rest are deleted mid-scan.
        let mut victim = 100;
        let mut shrank = false;
        let seen = full_scan(&mut d, |d, _| {
            for _ in 0..500 {
                if victim < n {
                    d.remove(&k(victim));
                    victim += 1;
                }
            }
            shrank |= d.tables[0].size() < start_buckets
                || (d.tables[1].size() > 0 && d.tables[1].size() < start_buckets);
        });
        assert!(shrank, "no shrink during the scan");
        for i in 0..100 {
            assert!(seen.contains(&k(i)), "missed key {i}");
        }
        d.check_invariants();
    }

    #[test]
    fn scan_with_grow_then_shrink_and_cron_steps() {
        let mut d: Dict<usize> = Dict::new();
        for i in 0..300 {
            d.insert(k(i), i);
        }
        let mut next = 300;
        let mut victim = 300;
        let mut calls = 0;
        let seen = full_scan(&mut d, |d, call| {
            calls += 1;
            if call < 20 {
                for _ in 0..400 {
                    d.insert(k(next), next);
                    next += 1;
                }
            } else {
                for _ in 0..600 {
                    if victim < next {
                        d.remove(&k(victim));
                        victim += 1;
                    }
                }
            }
            d.rehash_step(call % 3);
        });
        assert!(calls > 20);
        for i in 0..300 {
            assert!(seen.contains(&k(i)), "missed key {i}");
        }
        d.check_invariants();
    }

    #[test]
    fn scan_of_empty_and_tiny() {
        let d: Dict<()> = Dict::new();
        assert_eq!(d.scan(0, |_, _| panic!("empty")), 0);
        assert_eq!(d.scan(12345, |_, _| panic!("empty")), 0);
        let mut d: Dict<()> = Dict::new();
        d.insert(k(1), ());
        let mut d2 = d;
        let seen = full_scan(&mut d2, |_, _| {});
        assert_eq!(seen.len(), 1);
        // Any cursor value is accepted.
        let _ = d2.scan(u64::MAX, |_, _| {});
    }

    #[test]
    fn random_entry_and_sample_return_existing_unique_keys() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut d: Dict<usize> = Dict::new();
        assert!(d.random_entry(&mut rng).is_none());
        let mut out = Vec::new();
        assert_eq!(d.sample_keys(&mut rng, 5, &mut out), 0);
        for round in 0..3 {
            for i in 0..5000 {
                d.insert(k(i), i);
                if i % 250 == 0 {
                    let (key, v) = d.random_entry(&mut rng).unwrap();
                    assert_eq!(d.get(key), Some(v));
                    out.clear();
                    let got = d.sample_keys(&mut rng, 20, &mut out);
                    assert_eq!(got, out.len());
                    assert!(got <= 20);
                    let uniq: HashSet<_> = out.iter().cloned().collect();
                    assert_eq!(uniq.len(), out.len(), "duplicate sample");
                    assert!(out.iter().all(|key| d.contains_key(key)));
                }
            }
            if round == 1 {
                // Leave it sparse and mid-shrink.
                d.retain(|_, v| *v % 1000 == 0);
            }
        }
        // Asking for more than exist returns each at most once.
        let mut small: Dict<()> = Dict::new();
        for i in 0..3 {
            small.insert(k(i), ());
        }
        out.clear();
        assert_eq!(small.sample_keys(&mut rng, 100, &mut out), 3);
        let uniq: HashSet<_> = out.iter().cloned().collect();
        assert_eq!(uniq.len(), 3);
        // A single key in a big sparse table is still found.
        let mut sparse: Dict<()> = Dict::new();
        for i in 0..4096 {
            sparse.insert(k(i), ());
        }
        sparse.retain(|key, _| key.as_ref() == b"key:4000");
        assert!(sparse.is_rehashing());
        for _ in 0..50 {
            assert_eq!(
                sparse.random_entry(&mut rng).unwrap().0.as_ref(),
                b"key:4000"
            );
        }
        // sample_with reports values too.
        let mut hits = 0;
        sparse.sample_with(&mut rng, 1000, |_, _| hits += 1);
        assert!(hits <= 1);
    }

    #[test]
    fn random_entry_covers_all_keys() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut d: Dict<()> = Dict::new();
        for i in 0..50 {
            d.insert(k(i), ());
        }
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            seen.insert(d.random_entry(&mut rng).unwrap().0.clone());
        }
        assert_eq!(seen.len(), 50);
    }

    #[test]
    fn iter_retain_and_overhead() {
        let mut d: Dict<usize> = Dict::new();
        for i in 0..1000 {
            d.insert(k(i), i);
        }
        assert!(d.is_rehashing() || d.bucket_count() >= 1000);
        let it = d.iter();
        assert_eq!(it.len(), 1000);
        let all: HashMap<Bytes, usize> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(all.len(), 1000);
        assert_eq!((&d).into_iter().count(), 1000);
        let overhead = d.table_overhead_bytes();
        assert!(overhead >= 1000 * mem::size_of::<Node<usize, Bytes>>() + d.bucket_count() * 8);
        d.retain(|_, v| {
            *v += 1;
            *v % 2 == 0
        });
        assert_eq!(d.len(), 500);
        for (key, v) in d.iter() {
            assert_eq!(v % 2, 0);
            assert_eq!(d.get(key), Some(v));
        }
        d.check_invariants();
        d.retain(|_, _| false);
        assert!(d.is_empty());
        assert_eq!(d.iter().next(), None);
        d.check_invariants();
    }

    #[test]
    fn long_chain_drop_does_not_overflow_stack() {
        // Build a pathological single-bucket chain directly.
        let mut t: Table<(), Bytes> = Table::try_with_size(1).unwrap();
        for i in 0..300_000 {
            let next = t.buckets[0].take();
            t.buckets[0] = Some(Box::new(Node {
                key: k(i),
                value: (),
                next,
            }));
        }
        drop(t);
    }

    #[test]
    fn next_cursor_matches_redis_order() {
        // With mask 0b111 the bucket order is 0,4,2,6,1,5,3,7 then done.
        let mut v = 0;
        let mut order = Vec::new();
        loop {
            order.push(v & 7);
            v = next_cursor(v, 7);
            if v == 0 {
                break;
            }
        }
        assert_eq!(order, vec![0, 4, 2, 6, 1, 5, 3, 7]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        Get(u16),
        GetMut(u16),
        ScanStep,
        RehashStep(u8),
        InsertMany(u16, u16),
        RemoveMany(u16),
        RetainEven,
        Sample(u8),
        Clear,
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            30 => (0u16..600, any::<u32>()).prop_map(|(a, b)| Op::Insert(a, b)),
            15 => (0u16..600).prop_map(Op::Remove),
            8 => (0u16..600).prop_map(Op::Get),
            5 => (0u16..600).prop_map(Op::GetMut),
            20 => Just(Op::ScanStep),
            5 => (0u8..8).prop_map(Op::RehashStep),
            4 => (0u16..600, 1u16..300).prop_map(|(a, b)| Op::InsertMany(a, b)),
            4 => (1u16..400).prop_map(Op::RemoveMany),
            1 => Just(Op::RetainEven),
            3 => (0u8..40).prop_map(Op::Sample),
            1 => Just(Op::Clear),
        ]
    }

    fn pk(i: u16) -> Bytes {
        Bytes::from(format!("k{i}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn model_check(ops in proptest::collection::vec(op_strategy(), 1..200), seed in any::<u64>()) {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut d: Dict<u32> = Dict::new();
            let mut model: HashMap<Bytes, u32> = HashMap::new();
            // Ongoing scan: cursor, keys present since its start, keys seen.
            let mut cursor = 0u64;
            let mut scan_started = false;
            let mut must_see: HashSet<Bytes> = HashSet::new();
            let mut seen: HashSet<Bytes> = HashSet::new();
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(i, v) => {
                        prop_assert_eq!(d.insert(pk(i), v), model.insert(pk(i), v));
                    }
                    Op::Remove(i) => {
                        let got = d.remove(&pk(i));
                        let want = model.remove(&pk(i)).map(|v| (pk(i), v));
                        prop_assert_eq!(got, want);
                        must_see.remove(&pk(i));
                    }
                    Op::Get(i) => {
                        prop_assert_eq!(d.get(&pk(i)), model.get(&pk(i)));
                        prop_assert_eq!(d.contains_key(&pk(i)), model.contains_key(&pk(i)));
                    }
                    Op::GetMut(i) => {
                        match (d.get_mut(&pk(i)), model.get_mut(&pk(i))) {
                            (Some(a), Some(b)) => { prop_assert_eq!(*a, *b); *a = a.wrapping_add(1); *b = b.wrapping_add(1); }
                            (None, None) => {}
                            (a, b) => prop_assert!(false, "get_mut mismatch {:?} {:?}", a, b),
                        }
                    }
                    Op::ScanStep => {
                        if !scan_started {
                            scan_started = true;
                            must_see = model.keys().cloned().collect();
                            seen.clear();
                        }
                        let mut bad = None;
                        cursor = d.scan(cursor, |key, v| {
                            if model.get(key) != Some(v) { bad = Some(key.clone()); }
                            seen.insert(key.clone());
                        });
                        prop_assert!(bad.is_none(), "scan returned a stale entry {:?}", bad);
                        if cursor == 0 {
                            let missed: Vec<_> = must_see.difference(&seen).collect();
                            prop_assert!(missed.is_empty(), "scan missed {:?}", missed);
                            scan_started = false;
                        }
                    }
                    Op::RehashStep(n) => {
                        let still = d.rehash_step(n as usize);
                        prop_assert_eq!(still, d.is_rehashing());
                    }
                    Op::InsertMany(start, n) => {
                        for i in start..start.saturating_add(n) {
                            prop_assert_eq!(d.insert(pk(i), u32::from(i)), model.insert(pk(i), u32::from(i)));
                        }
                    }
                    Op::RemoveMany(n) => {
                        let victims: Vec<Bytes> = model.keys().take(n as usize).cloned().collect();
                        for key in victims {
                            prop_assert_eq!(d.remove(&key).map(|(_, v)| v), model.remove(&key));
                            must_see.remove(&key);
                        }
                    }
                    Op::RetainEven => {
                        d.retain(|_, v| *v % 2 == 0);
                        model.retain(|_, v| *v % 2 == 0);
                        must_see.retain(|key| model.contains_key(key));
                    }
                    Op::Sample(n) => {
                        out.clear();
                        let got = d.sample_keys(&mut rng, n as usize, &mut out);
                        prop_assert_eq!(got, out.len());
                        prop_assert!(got <= n as usize);
                        let uniq: HashSet<_> = out.iter().collect();
                        prop_assert_eq!(uniq.len(), out.len());
                        for key in &out { prop_assert!(model.contains_key(key)); }
                        if let Some((key, v)) = d.random_entry(&mut rng) {
                            prop_assert_eq!(model.get(key), Some(v));
                        } else {
                            prop_assert!(model.is_empty());
                        }
                    }
                    Op::Clear => {
                        d.clear();
                        model.clear();
                        must_see.clear();
                    }
                }
                prop_assert_eq!(d.len(), model.len());
                d.check_invariants();
            }
            // Contents match exactly.
            let contents: HashMap<Bytes, u32> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prop_assert_eq!(&contents, &model);
            // A full scan from scratch is a superset of the model's keys.
            let mut all = HashSet::new();
            let mut c = 0;
            loop {
                c = d.scan(c, |key, _| { all.insert(key.clone()); });
                if c == 0 { break; }
            }
            for key in model.keys() {
                prop_assert!(all.contains(key), "full scan missed {:?}", key);
            }
            prop_assert_eq!(all.len(), model.len());
        }
    }
}

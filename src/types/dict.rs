//! `Dict`: the per-shard keyspace hash table.
//!
//! # What this module owns
//!
//! The table that maps keys to values, for one shard's keyspace (keys inline in
//! the node, [`Key`](super::key::Key)) and inside big hashes and sets (`Bytes`
//! keys), in the style of Redis's `dict.c`: separate chaining over power-of-two bucket arrays, with
//! *incremental* rehashing between two tables so that no single command ever
//! pays for resizing the whole keyspace at once. It also owns the two
//! guarantees that the commands built on top rely on:
//!
//! * **SCAN** ([`Dict::scan`]): the cursor is a reverse-binary bucket index.
//!   Every entry present for the whole duration of a full scan (cursor 0 back
//!   to 0) is reported at least once, even if the table grows, shrinks or is
//!   mid-rehash between calls. Entries may be reported more than once.
//! * **Sampling** ([`Dict::random_entry`], [`Dict::sample_with`]): only
//!   entries that exist are returned, and one
//!   sampling call never returns the same entry twice. They are cheap and
//!   only roughly uniform — they serve active expiry and eviction, which need
//!   "a few keys from somewhere", not a fair lottery.
//!
//! # What it must never do
//!
//! * No I/O, no logging, no blocking, no locks: it runs inside the shard's
//!   single-threaded event loop, so every call is bounded, synchronous work.
//! * No allocation beyond its node slab and bucket arrays (what sampling
//!   callbacks collect is the caller's). A failed bucket-array
//!   allocation for a resize is tolerated: the table just stays at its size.
//!
//! # Node storage
//!
//! Nodes are not allocated one by one: they live in a per-dict slab of pages and link to
//! each other (and buckets to them) by 32-bit index. An entry therefore costs its node's exact
//! size plus a 4-byte share of a bucket, with no allocator header or size-class rounding, and
//! walking a table touches fewer scattered allocations. Removed nodes leave holes that inserts
//! reuse first; when holes outnumber half the entries, a few nodes per mutating call (and per
//! cron `rehash_step`) are moved from the end of the slab into holes, so a table that shrank
//! gives its memory back. A node's only incoming link (a bucket head or its predecessor) is
//! found again from its key's hash, which is what makes moving it cheap.
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
/// Most keys one `prefetch_lookups` call hints (a pipeline's worth; more would evict the
/// first hints' lines before their lookups run).
const PREFETCH_BATCH: usize = 32;

/// Where a node lives: its index in the dict's node slab (see [`Slab`]). Chains link nodes by
/// index instead of by pointer: four bytes per link and per bucket instead of eight, and no
/// allocation (with its allocator header and rounding) per entry.
type Link = u32;
/// The end of a chain (an empty bucket). Never a valid slot: the slab stops one short of it.
const NIL: Link = u32::MAX;

/// Slots per slab page. The last page grows by half its size at a time up to this, so a small
/// dict's slab is small and a big one's spare room stays below a fraction of one page; 2^20
/// pages of 2^12 slots cover the 32-bit link space.
const PAGE_BITS: u32 = 12;
const PAGE_SLOTS: usize = 1 << PAGE_BITS;
/// The first page starts this small (a dict of a handful of entries allocates little).
const MIN_PAGE: usize = 4;
/// Later pages start here (they are only needed once the dict has a full first page).
const NEXT_PAGE: usize = PAGE_SLOTS / 16;
/// Holes (freed slots) a slab keeps without compacting, besides one per two live entries.
const HOLES_KEPT: usize = 32;
/// Nodes the compaction relocates per mutating call (bounded work, like rehashing).
const COMPACT_PER_STEP: usize = 4;

/// One chained entry. Kept lean: no cached hash (rehash recomputes it, or uses the bucket index
/// directly when shrinking), no back pointer.
struct Node<V, K> {
    key: K,
    value: V,
    next: Link,
}

/// The dict's node storage: slots in pages, addressed by `page << PAGE_BITS | offset`. Only
/// the last page may be partly filled. A removed node leaves a hole that the next insert
/// reuses; when holes pile up (many more removals than inserts) the dict relocates nodes from
/// the end into them and gives the emptied tail back (`Dict::compact`).
struct Slab<V, K> {
    pages: Vec<Vec<Option<Node<V, K>>>>,
    /// Candidate holes to reuse. May also hold stale ids (past the end after compaction, or
    /// filled again), which `alloc` and compaction skip: a hole is only trusted after its slot
    /// is checked to be empty.
    free: Vec<Link>,
    /// Slots in all pages (filled ones and holes).
    slots: usize,
    /// Filled slots.
    live: usize,
    /// Slots a bulk load announced (`Dict::reserve`) and has not filled yet: pages are made
    /// whole for them at once instead of growing by half at a time (each growth copies the
    /// page).
    expected: usize,
}

impl<V, K> Default for Slab<V, K> {
    fn default() -> Self {
        Slab {
            pages: Vec::new(),
            free: Vec::new(),
            slots: 0,
            live: 0,
            expected: 0,
        }
    }
}

impl<V, K> Slab<V, K> {
    #[inline]
    fn slot(&self, id: Link) -> Option<&Option<Node<V, K>>> {
        self.pages
            .get((id >> PAGE_BITS) as usize)?
            .get(id as usize & (PAGE_SLOTS - 1))
    }

    #[inline]
    fn slot_mut(&mut self, id: Link) -> Option<&mut Option<Node<V, K>>> {
        self.pages
            .get_mut((id >> PAGE_BITS) as usize)?
            .get_mut(id as usize & (PAGE_SLOTS - 1))
    }

    /// The node at `id`; `None` for `NIL` (and for holes).
    #[inline]
    fn node(&self, id: Link) -> Option<&Node<V, K>> {
        self.slot(id)?.as_ref()
    }

    #[inline]
    fn node_mut(&mut self, id: Link) -> Option<&mut Node<V, K>> {
        self.slot_mut(id)?.as_mut()
    }

    /// Stores a node in a hole or at the end and returns its id.
    fn alloc(&mut self, node: Node<V, K>) -> Link {
        while let Some(id) = self.free.pop() {
            if let Some(slot @ None) = self.slot_mut(id) {
                *slot = Some(node);
                self.live += 1;
                return id;
            }
        }
        let full = self.pages.last().is_none_or(|p| p.len() == PAGE_SLOTS);
        if full {
            // The last id (all ones) is NIL, so the last page can never fill completely.
            if self.pages.len() >= (NIL as usize >> PAGE_BITS) {
                // Beyond what 32-bit links address: treated like an allocation failure.
                std::alloc::handle_alloc_error(std::alloc::Layout::new::<Node<V, K>>());
            }
            let first = if self.pages.is_empty() {
                MIN_PAGE
            } else {
                NEXT_PAGE
            };
            self.pages
                .push(Vec::with_capacity(first.max(self.expected.min(PAGE_SLOTS))));
        }
        let page_no = self.pages.len() - 1;
        let Some(page) = self.pages.last_mut() else {
            unreachable!("a page was just ensured")
        };
        if page.len() == page.capacity() {
            // The page is not full, so there is room for at least one more slot.
            let room = PAGE_SLOTS.saturating_sub(page.capacity()).max(1);
            let grow = (page.capacity() / 2)
                .max(MIN_PAGE)
                .max(self.expected)
                .min(room);
            page.reserve_exact(grow);
        }
        let id = ((page_no << PAGE_BITS) | page.len()) as Link;
        page.push(Some(node));
        self.slots += 1;
        self.live += 1;
        self.expected = self.expected.saturating_sub(1);
        id
    }

    /// Takes the node out of `id`, leaving a hole.
    fn release(&mut self, id: Link) -> Option<Node<V, K>> {
        let node = self.slot_mut(id)?.take()?;
        self.live -= 1;
        self.free.push(id);
        Some(node)
    }

    /// The id of the last slot, if any.
    fn tail(&self) -> Option<Link> {
        let page_no = self.pages.len().checked_sub(1)?;
        let off = self.pages.last()?.len().checked_sub(1)?;
        Some(((page_no << PAGE_BITS) | off) as Link)
    }

    /// Drops the last slot (a hole, or a node the caller has moved out), giving memory back
    /// as the last page empties.
    fn pop_tail(&mut self) -> Option<Node<V, K>> {
        let page = self.pages.last_mut()?;
        let slot = page.pop()?;
        self.slots -= 1;
        if page.is_empty() {
            self.pages.pop();
        } else if page.len() <= page.capacity() / 4 && page.capacity() > MIN_PAGE {
            page.shrink_to(page.capacity() / 2);
        }
        if slot.is_some() {
            self.live -= 1;
        }
        slot
    }

    fn holes(&self) -> usize {
        self.slots - self.live
    }

    fn capacity(&self) -> usize {
        self.pages.iter().map(Vec::capacity).sum()
    }

    /// Drops stale hole ids once they outnumber the real holes, so the list stays proportional
    /// to them.
    fn tidy_free_list(&mut self) {
        if self.free.len() <= 2 * self.holes() + HOLES_KEPT {
            return;
        }
        let mut free = mem::take(&mut self.free);
        free.retain(|&id| matches!(self.slot(id), Some(None)));
        free.sort_unstable();
        free.dedup();
        self.free = free;
    }
}

/// One bucket array of chain heads. `buckets.len()` is 0 (unallocated) or a power of two.
#[derive(Default)]
struct Table {
    buckets: Vec<Link>,
    used: usize,
}

impl Table {
    /// Allocates `size` empty buckets; `None` if the allocation fails (so a
    /// resize can be skipped instead of aborting the process).
    fn try_with_size(size: usize) -> Option<Self> {
        let mut buckets = Vec::new();
        buckets.try_reserve_exact(size).ok()?;
        buckets.resize(size, NIL);
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

    /// The head of bucket `idx` (`NIL` when empty or out of range).
    #[inline]
    fn head(&self, idx: usize) -> Link {
        self.buckets.get(idx).copied().unwrap_or(NIL)
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
pub(super) fn hash_key(state: &RandomState, key: &[u8]) -> u64 {
    BuildHasher::hash_one(state, key)
}

/// The bucket of table `t` that holds hash `h` (`t` 0 or 1), if that bucket is in use: table 1
/// only while rehashing, and table 0's buckets below the rehash index are already moved.
#[inline]
fn live_bucket(table: &Table, t: usize, h: usize, rehash_idx: Option<usize>) -> Option<usize> {
    if table.size() == 0 || (t == 1 && rehash_idx.is_none()) {
        return None;
    }
    let idx = h & table.mask();
    if t == 0 && rehash_idx.is_some_and(|r| idx < r) {
        return None;
    }
    Some(idx)
}

/// The id of the node holding `key` in the chain starting at `head`.
#[inline]
fn chain_find<V, K: DictKey>(slab: &Slab<V, K>, head: Link, key: &[u8]) -> Option<Link> {
    let mut cur = head;
    while let Some(node) = slab.node(cur) {
        if node.key.as_bytes() == key {
            return Some(cur);
        }
        cur = node.next;
    }
    None
}

/// Unlinks the node holding `key` from the chain whose head is `*head`; returns its id.
fn chain_unlink<V, K: DictKey>(slab: &mut Slab<V, K>, head: &mut Link, key: &[u8]) -> Option<Link> {
    let first = slab.node(*head)?;
    if first.key.as_bytes() == key {
        let id = *head;
        *head = first.next;
        return Some(id);
    }
    let mut prev = *head;
    loop {
        let cur = slab.node(prev)?.next;
        let node = slab.node(cur)?;
        if node.key.as_bytes() == key {
            let next = node.next;
            slab.node_mut(prev)?.next = next;
            return Some(cur);
        }
        prev = cur;
    }
}

/// Replaces the link to `old` in the chain whose head is `*head` by `new`; false if `old` is
/// not in that chain.
fn chain_relink<V, K>(slab: &mut Slab<V, K>, head: &mut Link, old: Link, new: Link) -> bool {
    if *head == old {
        *head = new;
        return true;
    }
    let mut cur = *head;
    while let Some(node) = slab.node_mut(cur) {
        if node.next == old {
            node.next = new;
            return true;
        }
        cur = node.next;
    }
    false
}

/// The head of a random non-empty bucket of a chained table with bucket arrays of `sizes`
/// (table 1 in use while rehashing, table 0's buckets below `rehash_idx` already moved), read
/// through `head(table, bucket)`: random probes first, then a walk from a random start for a
/// very sparse table. None only when every bucket is empty. Shared by [`Dict::random_entry`]
/// and the sorted set's member index.
pub(super) fn random_bucket(
    sizes: [usize; 2],
    rehash_idx: Option<usize>,
    rng: &mut impl Rng,
    head: impl Fn(usize, usize) -> u32,
) -> Option<u32> {
    let s0 = sizes[0];
    // Logical bucket space: table 0's not-yet-moved buckets, then table 1.
    let (lo, hi) = match rehash_idx {
        Some(r) => (r.min(s0), s0 + sizes[1]),
        None => (0, s0),
    };
    if lo >= hi {
        return None;
    }
    let bucket = |i: usize| -> Option<u32> {
        let h = if i < s0 { head(0, i) } else { head(1, i - s0) };
        (h != NIL).then_some(h)
    };
    for _ in 0..RANDOM_PROBES {
        if let Some(h) = bucket(rng.gen_range(lo..hi)) {
            return Some(h);
        }
    }
    // Very sparse table (e.g. large table mid-shrink): walk from a random start instead of
    // probing forever.
    let start = rng.gen_range(lo..hi);
    let span = hi - lo;
    (0..span).find_map(|k| bucket(lo + (start - lo + k) % span))
}

/// Advances a reverse-binary cursor over the bits covered by `mask`.
/// Setting the unmasked bits first makes the carry of the (reversed)
/// increment flow straight through them, exactly as Redis does.
#[inline]
fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

/// One SCAN step over a chained table with power-of-two bucket arrays of `sizes` (table 1 in use
/// only while `rehashing`): calls `visit` with the (table, bucket) pairs `cursor` addresses and
/// returns the next cursor (0 when the scan is complete). Shared by [`Dict::scan`] and the
/// sorted set's member index, so both give SCAN's guarantee the same way.
///
/// While rehashing it visits the smaller table's bucket `cursor & m_small` and every bucket of
/// the bigger table that expands from it, as Redis's `dictScan` does.
pub(super) fn scan_buckets(
    sizes: [usize; 2],
    rehashing: bool,
    cursor: u64,
    mut visit: impl FnMut(usize, u64),
) -> u64 {
    let mut v = cursor;
    if !rehashing {
        if sizes[0] == 0 {
            return 0;
        }
        let m0 = (sizes[0] - 1) as u64;
        visit(0, v & m0);
        return next_cursor(v, m0);
    }
    let (small, big) = if sizes[0] <= sizes[1] { (0, 1) } else { (1, 0) };
    if sizes[small] == 0 || sizes[big] == 0 {
        return 0; // unreachable while invariants hold
    }
    let m0 = (sizes[small] - 1) as u64;
    let m1 = (sizes[big] - 1) as u64;
    visit(small, v & m0);
    // Every bucket of the big table whose low bits equal `v & m0`.
    loop {
        visit(big, v & m1);
        v = next_cursor(v, m1);
        if v & (m0 ^ m1) == 0 {
            break;
        }
    }
    v
}

/// A Redis-style incrementally rehashed chained hash table keyed by `K` (`Bytes` unless said).
/// See the module docs for the resize policy and the SCAN/sample guarantees.
pub struct Dict<V, K = Bytes> {
    /// `tables[0]` is the live table; `tables[1]` is only allocated while
    /// rehashing (it is the resize target, bigger or smaller).
    tables: [Table; 2],
    /// The nodes of both tables.
    slab: Slab<V, K>,
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

/// A stage of `Dict::prefetch_scan`.
pub enum ScanPrefetch<'a, V> {
    /// The bucket(s) a cursor addresses.
    Bucket,
    /// The first node of their chains (their buckets should be in cache).
    Chain,
    /// Those nodes' values, through the hint given (their nodes should be in cache).
    Value(&'a dyn Fn(&V)),
}

// Copy whatever `V` is (a derive would ask `V: Copy`): only a reference is held.
impl<V> Clone for ScanPrefetch<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for ScanPrefetch<'_, V> {}

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
            slab: Slab::default(),
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

    fn bucket_sizes(&self) -> [usize; 2] {
        [self.tables[0].size(), self.tables[1].size()]
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        hash_key(&self.hasher, key)
    }

    /// The id of the node holding `key` (hash `h`), looking in both tables while rehashing.
    #[inline]
    fn find_hashed(&self, h: u64, key: &[u8]) -> Option<Link> {
        let h = h as usize;
        let t0 = &self.tables[0];
        if t0.size() > 0 {
            let idx = h & t0.mask();
            // Buckets below rehash_idx were already moved to table 1.
            if self.rehash_idx.is_none_or(|r| idx >= r) {
                if let Some(id) = chain_find(&self.slab, t0.head(idx), key) {
                    return Some(id);
                }
            }
        }
        if self.is_rehashing() {
            let t1 = &self.tables[1];
            if t1.size() > 0 {
                return chain_find(&self.slab, t1.head(h & t1.mask()), key);
            }
        }
        None
    }

    fn find(&self, key: &[u8]) -> Option<&Node<V, K>> {
        if self.is_empty() {
            return None;
        }
        let id = self.find_hashed(self.hash(key), key)?;
        self.slab.node(id)
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
        let id = self.find_hashed(self.hash(key), key)?;
        self.slab.node_mut(id).map(|n| &mut n.value)
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
        if let Some(id) = self.find_hashed(h, key.as_bytes()) {
            if let Some(node) = self.slab.node_mut(id) {
                return Some(mem::replace(&mut node.value, value));
            }
        }
        self.link_new(h, key, value);
        None
    }

    /// Inserts a key that should not be there yet, in one probe of its chain (a bulk load
    /// that must refuse duplicates, where `get` then `insert` would probe twice). A key that is
    /// present is left as it is and the pair handed back.
    pub fn insert_new(&mut self, key: K, value: V) -> Result<(), (K, V)> {
        self.rehash_if_active();
        let h = self.hash(key.as_bytes());
        if self.find_hashed(h, key.as_bytes()).is_some() {
            return Err((key, value));
        }
        self.link_new(h, key, value);
        Ok(())
    }

    /// Links a node for a key known to be absent (hash `h`) at the head of its chain.
    fn link_new(&mut self, h: u64, key: K, value: V) {
        // Only a genuinely new key can push the load factor over 1.
        self.expand_if_needed();
        let t = usize::from(self.is_rehashing());
        let table = &mut self.tables[t];
        // After expand_if_needed the target table always has buckets; the
        // `get_mut` keeps this panic-free even if that invariant broke.
        let mask = table.mask();
        if let Some(head) = table.buckets.get_mut(h as usize & mask) {
            let id = self.slab.alloc(Node {
                key,
                value,
                next: *head,
            });
            *head = id;
            table.used += 1;
        }
    }

    /// Asks the CPU to start loading what inserting or finding `key` reads first: its bucket,
    /// or with `chain` the first node of its chain (as the bucket, which should be in cache by
    /// then, says). For bulk inserts that know their next keys: in a table much bigger than the
    /// caches each insert waits for a cache miss or two, and prefetched a few keys ahead those
    /// misses overlap. Only a hint: it changes nothing, and does nothing while rehashing.
    #[inline]
    pub fn prefetch(&self, key: &[u8], chain: bool) {
        let t0 = &self.tables[0];
        if self.is_rehashing() || t0.size() == 0 {
            return;
        }
        let idx = self.hash(key) as usize & t0.mask();
        if chain {
            if let Some(slot) = self.slab.slot(t0.head(idx)) {
                crate::cpu::prefetch_span(slot);
            }
        } else if let Some(b) = t0.buckets.get(idx) {
            crate::cpu::prefetch(b);
        }
    }

    /// Asks the CPU to start loading what looking up each of `keys` will read: first every
    /// key's bucket, then (those loads under way or done) every chain's first node. For a batch
    /// of lookups about to run one after the other (a pipeline's commands): in a table bigger
    /// than the caches each lookup otherwise waits for two misses in turn, and hinted together
    /// the batch's misses overlap. Only the first `PREFETCH_BATCH` (32) keys are hinted. Only a
    /// hint: it changes nothing, and does nothing while rehashing.
    pub fn prefetch_lookups<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        let t0 = &self.tables[0];
        if self.is_rehashing() || t0.size() == 0 {
            return;
        }
        let mask = t0.mask();
        let mut idxs = [0usize; PREFETCH_BATCH];
        let mut n = 0;
        for key in keys.take(PREFETCH_BATCH) {
            let idx = self.hash(key) as usize & mask;
            if let Some(b) = t0.buckets.get(idx) {
                crate::cpu::prefetch(b);
            }
            idxs[n] = idx;
            n += 1;
        }
        for &idx in &idxs[..n] {
            if let Some(slot) = self.slab.slot(t0.head(idx)) {
                crate::cpu::prefetch_span(slot);
            }
        }
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
            let Some(idx) = live_bucket(table, t, h, rehash_idx) else {
                continue;
            };
            let Some(head) = table.buckets.get_mut(idx) else {
                continue;
            };
            if let Some(id) = chain_unlink(&mut self.slab, head, key) {
                table.used -= 1;
                removed = self.slab.release(id);
                break;
            }
        }
        let node = removed?;
        self.after_removal();
        let Node { key, value, .. } = node;
        Some((key, value))
    }

    /// Removes everything and frees both bucket arrays and the nodes.
    pub fn clear(&mut self) {
        self.tables = [Table::default(), Table::default()];
        self.slab = Slab::default();
        self.rehash_idx = None;
    }

    /// Keeps only the entries for which `f` returns true. Visits every
    /// bucket once (no rehash work of its own), then may start a shrink.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let slab = &mut self.slab;
        for table in self.tables.iter_mut() {
            let mut removed = 0;
            for head in table.buckets.iter_mut() {
                // Rebuild the chain from the kept nodes (order within a
                // chain does not matter).
                let mut cur = mem::replace(head, NIL);
                while let Some(node) = slab.node_mut(cur) {
                    let id = cur;
                    cur = node.next;
                    if f(&node.key, &mut node.value) {
                        node.next = *head;
                        *head = id;
                    } else {
                        slab.release(id);
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
            slab: &self.slab,
            table: 0,
            bucket: 0,
            node: NIL,
            remaining: self.len(),
        }
    }

    /// Heap bytes used by the table structure itself: both bucket arrays plus
    /// every node slot (filled, hole or spare capacity), excluding whatever the keys' and
    /// values' own heap buffers hold.
    pub fn table_overhead_bytes(&self) -> usize {
        self.bucket_bytes() + self.slab.capacity() * Self::node_bytes()
    }

    /// Heap bytes of the structure not charged to any entry: the bucket arrays and the last
    /// page's room not used yet. Holes left by removals are not counted: like memory an
    /// allocator got back, they are reused by the next inserts (and compaction returns them
    /// when they pile up), so deleting or evicting a key frees its whole charge.
    pub fn structure_bytes(&self) -> usize {
        self.bucket_bytes() + (self.slab.capacity() - self.slab.slots) * Self::node_bytes()
    }

    fn bucket_bytes(&self) -> usize {
        (self.tables[0].buckets.capacity() + self.tables[1].buckets.capacity())
            * mem::size_of::<Link>()
    }

    /// Bytes of one entry's node slot (key handle, value and chain link), without the key's
    /// and the value's own heap buffers. Slots have no allocator header of their own.
    pub const fn node_bytes() -> usize {
        mem::size_of::<Option<Node<V, K>>>()
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
                let Some(head) = table.buckets.pop() else {
                    table.buckets = Vec::new();
                    break;
                };
                if head == NIL {
                    skipped += 1;
                }
                let mut cur = head;
                while let Some(node) = self.slab.release(cur) {
                    cur = node.next;
                    table.used -= 1;
                    taken += 1;
                    let Node { key, value, .. } = node;
                    f(key, value);
                }
            }
            if table.buckets.is_empty() {
                table.buckets = Vec::new();
            }
        }
        if self.is_empty() {
            // Every slot is a hole now: give the pages back.
            self.slab = Slab::default();
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
    /// RDB's RESIZEDB), so they go in without the table doubling and rehashing its way up, and
    /// without the node slab's pages growing by steps. The bucket array is left alone while a
    /// rehash is in progress or when it is already big enough.
    pub fn reserve(&mut self, additional: usize) {
        self.slab.expected = additional;
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
    /// shrinking. Also moves a few nodes into holes if they piled up.
    fn after_removal(&mut self) {
        if self.is_rehashing() && self.tables[0].used == 0 {
            self.rehash(1);
        }
        self.shrink_if_needed();
        self.compact(COMPACT_PER_STEP);
    }

    /// Whether the slab holds enough holes to be worth compacting.
    fn wants_compaction(&self) -> bool {
        self.slab.holes() > self.slab.live / 2 + HOLES_KEPT
    }

    /// Moves up to `n` nodes from the end of the slab into holes, giving the emptied tail back.
    /// Every move relinks the node's one incoming link (a bucket head or its predecessor).
    fn compact(&mut self, n: usize) {
        let mut budget = n;
        while budget > 0 && self.wants_compaction() {
            budget -= 1;
            let Some(tail) = self.slab.tail() else {
                return;
            };
            if matches!(self.slab.slot(tail), Some(None)) {
                self.slab.pop_tail();
                continue;
            }
            // A real hole below the tail (stale ids are dropped on the way).
            let hole = loop {
                let Some(id) = self.slab.free.pop() else {
                    return;
                };
                if id < tail && matches!(self.slab.slot(id), Some(None)) {
                    break id;
                }
            };
            let Some(node) = self.slab.node(tail) else {
                return;
            };
            let h = self.hash(node.key.as_bytes()) as usize;
            if !self.relink(h, tail, hole) {
                // Not reachable from its bucket: cannot happen while the invariants hold;
                // leave everything as it is rather than lose the node.
                self.slab.free.push(hole);
                return;
            }
            let Some(node) = self.slab.pop_tail() else {
                return;
            };
            if let Some(slot) = self.slab.slot_mut(hole) {
                *slot = Some(node);
                self.slab.live += 1;
            }
        }
        self.slab.tidy_free_list();
    }

    /// Points the link that leads to node `old` (whose key hashes to `h`) at `new`.
    fn relink(&mut self, h: usize, old: Link, new: Link) -> bool {
        let rehash_idx = self.rehash_idx;
        for (t, table) in self.tables.iter_mut().enumerate() {
            let Some(idx) = live_bucket(table, t, h, rehash_idx) else {
                continue;
            };
            if let Some(head) = table.buckets.get_mut(idx) {
                if chain_relink(&mut self.slab, head, old, new) {
                    return true;
                }
            }
        }
        false
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
    /// is still in progress afterwards. Meant for the shard cron, which also
    /// lets it compact the node slab a little.
    pub fn rehash_step(&mut self, n: usize) -> bool {
        if !self.is_rehashing() {
            self.shrink_if_needed();
        }
        self.compact(n.saturating_mul(COMPACT_PER_STEP));
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
                    Some(&head) if head != NIL => break,
                    Some(_) => {
                        idx += 1;
                        empty_visits -= 1;
                        if empty_visits == 0 {
                            break 'outer;
                        }
                    }
                    None => break 'outer, // unreachable while invariants hold
                }
            }
            let mut cur = t0
                .buckets
                .get_mut(idx)
                .map_or(NIL, |h| mem::replace(h, NIL));
            while let Some(node) = self.slab.node_mut(cur) {
                let id = cur;
                cur = node.next;
                let dst = if shrinking {
                    idx & mask1
                } else {
                    hash_key(&self.hasher, node.key.as_bytes()) as usize & mask1
                };
                if let Some(head) = t1.buckets.get_mut(dst) {
                    node.next = *head;
                    *head = id;
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

    /// Calls `f` for every entry of bucket `idx` of `table`.
    fn emit_bucket<'a>(&'a self, table: usize, idx: u64, f: &mut dyn FnMut(&'a K, &'a V)) {
        let mut cur = self.tables[table].head(idx as usize);
        while let Some(node) = self.slab.node(cur) {
            f(&node.key, &node.value);
            cur = node.next;
        }
    }

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
        scan_buckets(
            self.bucket_sizes(),
            self.is_rehashing(),
            cursor,
            |t, idx| self.emit_bucket(t, idx, &mut f),
        )
    }

    /// `scan` with mutable access to the values (the snapshot marks what it saved). Visits the
    /// same buckets in the same order, with the same guarantee; it never rehashes or compacts.
    pub fn scan_mut(&mut self, cursor: u64, mut f: impl FnMut(&K, &mut V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let Dict {
            tables,
            slab,
            rehash_idx,
            ..
        } = self;
        scan_buckets(
            [tables[0].size(), tables[1].size()],
            rehash_idx.is_some(),
            cursor,
            |t, idx| {
                let mut cur = tables[t].head(idx as usize);
                while let Some(node) = slab.node_mut(cur) {
                    f(&node.key, &mut node.value);
                    cur = node.next;
                }
            },
        )
    }

    /// The cursor `scan` returns after `cursor` as long as the table does not change: where a
    /// walk will be a few steps ahead (for `prefetch_scan`).
    #[inline]
    pub fn scan_next(&self, cursor: u64) -> u64 {
        if self.is_empty() {
            return 0;
        }
        scan_buckets(self.bucket_sizes(), self.is_rehashing(), cursor, |_, _| {})
    }

    /// Prefetch hints for a walk (`scan`, `scan_mut`) that will soon visit `cursor`, at one of
    /// three stages: its bucket(s), then (once those are in cache) the first node of each
    /// chain, then each such node's value through the caller's hint and the chain's next node.
    /// A walk over a table much bigger than the caches otherwise waits for a miss on every
    /// bucket, node and value it reads; hinted at each stage a few cursors further ahead than
    /// the next, the misses overlap. Changes nothing.
    #[inline]
    pub fn prefetch_scan(&self, cursor: u64, stage: ScanPrefetch<'_, V>) {
        if self.is_empty() {
            return;
        }
        scan_buckets(
            self.bucket_sizes(),
            self.is_rehashing(),
            cursor,
            |t, idx| {
                let table = &self.tables[t];
                match stage {
                    ScanPrefetch::Bucket => {
                        if let Some(b) = table.buckets.get(idx as usize) {
                            crate::cpu::prefetch(b);
                        }
                    }
                    ScanPrefetch::Chain => {
                        if let Some(slot) = self.slab.slot(table.head(idx as usize)) {
                            crate::cpu::prefetch(slot);
                        }
                    }
                    ScanPrefetch::Value(hint) => {
                        if let Some(node) = self.slab.node(table.head(idx as usize)) {
                            hint(&node.value);
                            if let Some(next) = self.slab.slot(node.next) {
                                crate::cpu::prefetch(next);
                            }
                        }
                    }
                }
            },
        );
    }

    // ----- sampling -------------------------------------------------------

    /// A roughly uniform random entry: a random non-empty bucket (from both
    /// tables while rehashing), then a random element of its chain. Entries
    /// in short chains are slightly favoured, as in Redis.
    pub fn random_entry(&self, rng: &mut impl Rng) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let head = random_bucket(self.bucket_sizes(), self.rehash_idx, rng, |t, idx| {
            self.tables[t].head(idx)
        })?;
        let mut chain_len = 0usize;
        let mut cur = head;
        while let Some(n) = self.slab.node(cur) {
            chain_len += 1;
            cur = n.next;
        }
        let mut n = self.slab.node(head)?;
        for _ in 0..rng.gen_range(0..chain_len) {
            n = self.slab.node(n.next)?;
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
                let mut cur = table.head(i);
                while let Some(n) = self.slab.node(cur) {
                    f(&n.key, &n.value);
                    stored += 1;
                    if stored == count {
                        return stored;
                    }
                    cur = n.next;
                }
            }
            i = (i + 1) & (max_size - 1);
        }
        stored
    }

    /// Like [`Dict::sample_with`] but appends clones of the sampled keys to
    /// `out`; returns how many were appended. `out` is not cleared first. (Tests only: the
    /// shard samples with `sample_with`.)
    #[cfg(test)]
    pub fn sample_keys(&self, rng: &mut impl Rng, count: usize, out: &mut Vec<K>) -> usize
    where
        K: Clone,
    {
        self.sample_with(rng, count, |k, _| out.push(k.clone()))
    }
}

/// Iterator over a [`Dict`]'s entries; see [`Dict::iter`].
pub struct Iter<'a, V, K = Bytes> {
    tables: [&'a [Link]; 2],
    slab: &'a Slab<V, K>,
    table: usize,
    bucket: usize,
    node: Link,
    remaining: usize,
}

impl<'a, V, K: DictKey> Iterator for Iter<'a, V, K> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(n) = self.slab.node(self.node) {
                self.node = n.next;
                self.remaining = self.remaining.saturating_sub(1);
                return Some((&n.key, &n.value));
            }
            // Stop early instead of walking trailing empty buckets.
            if self.remaining == 0 {
                return None;
            }
            let buckets = *self.tables.get(self.table)?;
            match buckets.get(self.bucket) {
                Some(&head) => {
                    self.node = head;
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

// ---------------------------------------------------------------------------------------------
// Statistics (DEBUG HTSTATS, DEBUG HTSTATS-KEY)
// ---------------------------------------------------------------------------------------------

/// Chain lengths counted one by one; longer chains count in the last slot (Redis's
/// `DICT_STATS_VECTLEN`).
pub const STATS_CHAIN_SLOTS: usize = 50;

/// The shape of one bucket array: what Redis's `dictGetStatsHt` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Buckets.
    pub size: u64,
    /// Entries chained from this array.
    pub used: u64,
    /// Non-empty buckets.
    pub slots: u64,
    pub max_chain: u64,
    /// Sum of the chain lengths (entries reached by walking the chains).
    pub total_chain: u64,
    /// Buckets by chain length (`STATS_CHAIN_SLOTS` entries, the last one for all longer).
    pub chains: Vec<u64>,
}

impl TableStats {
    /// Stats of an array of `size` buckets holding `used` entries, from its chain lengths.
    pub fn from_chains(size: usize, used: usize, chains: impl Iterator<Item = usize>) -> Self {
        let mut t = TableStats {
            size: size as u64,
            used: used as u64,
            slots: 0,
            max_chain: 0,
            total_chain: 0,
            chains: vec![0; STATS_CHAIN_SLOTS],
        };
        for len in chains {
            t.chains[len.min(STATS_CHAIN_SLOTS - 1)] += 1;
            if len > 0 {
                t.slots += 1;
                t.max_chain = t.max_chain.max(len as u64);
                t.total_chain += len as u64;
            }
        }
        t
    }

    /// Adds another array's figures, as if both were one array (summing shards' tables).
    pub fn merge(&mut self, o: &TableStats) {
        self.size += o.size;
        self.used += o.used;
        self.slots += o.slots;
        self.max_chain = self.max_chain.max(o.max_chain);
        self.total_chain += o.total_chain;
        for (a, b) in self.chains.iter_mut().zip(&o.chains) {
            *a += b;
        }
    }

    /// Redis 7.0's text for table `idx` (0: the main table, 1: the rehashing target). Floats
    /// are computed in single precision, as Redis's C does; the last (open-ended) chain slot is
    /// never listed, as in Redis 7.0.
    fn render(&self, idx: usize, out: &mut String) {
        use std::fmt::Write;
        let what = if idx == 0 {
            "main hash table"
        } else {
            "rehashing target"
        };
        let _ = writeln!(out, "Hash table {idx} stats ({what}):");
        if self.used == 0 {
            out.push_str("No stats available for empty dictionaries\n");
            return;
        }
        let per_slot = |n: u64| n as f32 / self.slots as f32;
        let _ = write!(
            out,
            " table size: {}\n number of elements: {}\n different slots: {}\n max chain length: {}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n Chain length distribution:\n",
            self.size,
            self.used,
            self.slots,
            self.max_chain,
            per_slot(self.total_chain),
            per_slot(self.used)
        );
        for (len, &n) in self.chains[..STATS_CHAIN_SLOTS - 1].iter().enumerate() {
            if n > 0 {
                let pct = (n as f32 / self.size as f32) * 100.0;
                let _ = writeln!(out, "   {len}: {n} ({pct:.2}%)");
            }
        }
    }
}

/// A hash table's statistics: its main bucket array, and the rehashing target while an
/// incremental rehash runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictStats {
    pub main: TableStats,
    pub rehashing: Option<TableStats>,
}

impl DictStats {
    /// Adds another table's statistics (DEBUG HTSTATS sums the shards' tables).
    pub fn merge(&mut self, o: &DictStats) {
        self.main.merge(&o.main);
        match (&mut self.rehashing, &o.rehashing) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.rehashing = Some(b.clone()),
            _ => {}
        }
    }

    /// Redis 7.0's `dictGetStats` text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.main.render(0, &mut out);
        if let Some(t) = &self.rehashing {
            t.render(1, &mut out);
        }
        out
    }
}

impl<V, K: DictKey> Dict<V, K> {
    /// The shape of both bucket arrays (a walk over every bucket and chain: O(n)).
    pub fn stats(&self) -> DictStats {
        let table = |t: &Table| {
            let chains = t.buckets.iter().map(|&head| {
                let mut len = 0;
                let mut at = head;
                while let Some(n) = self.slab.node(at) {
                    len += 1;
                    at = n.next;
                }
                len
            });
            TableStats::from_chains(t.size(), t.used, chains)
        };
        DictStats {
            main: table(&self.tables[0]),
            rehashing: self.is_rehashing().then(|| table(&self.tables[1])),
        }
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

    #[test]
    fn stats_count_chains_and_render_like_redis() {
        let mut d: Dict<u32> = Dict::new();
        assert_eq!(
            d.stats().render(),
            "Hash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
        );
        for i in 0..100 {
            d.insert(k(i), i as u32);
        }
        while d.rehash_step(100) {}
        let s = d.stats();
        assert!(s.rehashing.is_none());
        let t = &s.main;
        assert_eq!((t.size, t.used), (d.bucket_count() as u64, 100));
        assert_eq!(t.total_chain, 100);
        assert_eq!(t.chains.iter().sum::<u64>(), t.size);
        assert_eq!(t.size - t.chains[0], t.slots);
        let text = s.render();
        assert!(text.starts_with(&format!(
            "Hash table 0 stats (main hash table):\n table size: {}\n number of elements: 100\n different slots: {}\n max chain length: {}\n",
            t.size, t.slots, t.max_chain
        )));
        assert!(text.contains(" Chain length distribution:\n   0: "));
        // Growing past the table size starts a rehash: both tables are reported, and summing
        // two dicts adds their figures.
        let mut grown = d.stats();
        let mut e: Dict<u32> = Dict::new();
        for i in 0..200 {
            e.insert(k(i), 0);
            if e.is_rehashing() {
                break;
            }
        }
        assert!(e.is_rehashing());
        let es = e.stats();
        let target = es.rehashing.as_ref().unwrap();
        assert_eq!(es.main.used + target.used, e.len() as u64);
        assert!(es
            .render()
            .contains("Hash table 1 stats (rehashing target):\n"));
        grown.merge(&es);
        assert_eq!(grown.main.used, 100 + es.main.used);
        assert_eq!(grown.rehashing.as_ref().unwrap().used, target.used);
    }

    impl<V> Dict<V> {
        /// Counts the non-empty chains `cursor` addresses (what `ScanPrefetch::Value` hints).
        fn scan_buckets_for_test(&self, cursor: u64, chains: &mut usize) {
            scan_buckets(
                self.bucket_sizes(),
                self.is_rehashing(),
                cursor,
                |t, idx| {
                    if self.tables[t].head(idx as usize) != NIL {
                        *chains += 1;
                    }
                },
            );
        }

        /// Structural invariants; panics (in tests only) if any is broken.
        fn check_invariants(&self) {
            let mut seen = HashSet::new();
            for (t, table) in self.tables.iter().enumerate() {
                let size = table.size();
                assert!(size == 0 || size.is_power_of_two(), "size {size}");
                let mut count = 0;
                for (i, &head) in table.buckets.iter().enumerate() {
                    if t == 0 {
                        if let Some(r) = self.rehash_idx {
                            assert!(i >= r || head == NIL, "moved bucket {i} not empty");
                        }
                    }
                    let mut cur = head;
                    while let Some(n) = self.slab.node(cur) {
                        assert_eq!(self.hash(&n.key) as usize & table.mask(), i, "wrong bucket");
                        assert!(seen.insert(n.key.clone()), "duplicate key");
                        count += 1;
                        cur = n.next;
                    }
                    assert_eq!(cur, NIL, "chain ends in a hole");
                }
                assert_eq!(count, table.used, "used count of table {t}");
            }
            // Every filled slot is reachable, and the counters agree.
            let filled: usize = self
                .slab
                .pages
                .iter()
                .map(|p| p.iter().filter(|s| s.is_some()).count())
                .sum();
            assert_eq!(filled, self.len(), "orphan or lost nodes");
            assert_eq!(self.slab.live, self.len());
            let slots: usize = self.slab.pages.iter().map(Vec::len).sum();
            assert_eq!(slots, self.slab.slots);
            for (i, p) in self.slab.pages.iter().enumerate() {
                assert!(p.len() <= PAGE_SLOTS);
                if i + 1 < self.slab.pages.len() {
                    assert_eq!(p.len(), PAGE_SLOTS, "only the last page is partial");
                }
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
    fn insert_new_refuses_a_present_key_in_either_table_and_reserve_fills_whole_pages() {
        let mut d: Dict<usize> = Dict::new();
        let n = 3 * PAGE_SLOTS + 10;
        d.reserve(n);
        for i in 0..n {
            if i % 7 == 0 {
                d.prefetch(&k(i), i % 2 == 0);
            }
            assert_eq!(d.insert_new(k(i), i), Ok(()));
        }
        // Each page was made whole at once for the announced entries: no room left over but
        // what the last page keeps, and nothing grew by steps on the way.
        assert!(
            d.slab.capacity() - d.slab.slots < PAGE_SLOTS,
            "{}",
            d.slab.capacity()
        );
        assert_eq!(d.slab.pages[0].capacity(), PAGE_SLOTS);
        assert_eq!(d.insert_new(k(5), 99), Err((k(5), 99)));
        assert_eq!(d.get(&k(5)), Some(&5), "a refused insert changes nothing");
        // Mid-rehash: keys in the old table and in the new one are found and refused.
        d.reserve(4 * n);
        assert!(d.is_rehashing());
        d.rehash_step(20);
        for i in (0..n).step_by(13) {
            d.prefetch(&k(i), true);
            assert_eq!(d.insert_new(k(i), 0), Err((k(i), 0)), "{i}");
        }
        assert_eq!(d.insert_new(k(n), n), Ok(()));
        assert_eq!(d.len(), n + 1);
        d.check_invariants();
        assert!((0..=n).all(|i| d.get(&k(i)) == Some(&i)));
    }

    #[test]
    fn scan_next_follows_scan_and_prefetch_scan_changes_nothing() {
        let mut d: Dict<usize> = Dict::new();
        for i in 0..5000 {
            d.insert(k(i), i);
        }
        for rehashing in [false, true] {
            if rehashing {
                d.reserve(40_000);
                d.rehash_step(50);
                assert!(d.is_rehashing());
            }
            let (mut cursor, mut seen, mut chains) = (0, HashSet::new(), 0);
            let hint = |v: &usize| assert!(*v < 5000);
            loop {
                d.prefetch_scan(cursor, ScanPrefetch::Bucket);
                d.prefetch_scan(cursor, ScanPrefetch::Chain);
                d.prefetch_scan(cursor, ScanPrefetch::Value(&hint));
                d.scan_buckets_for_test(cursor, &mut chains);
                let ahead = d.scan_next(cursor);
                let next = d.scan(cursor, |key, _| {
                    seen.insert(key.clone());
                });
                assert_eq!(ahead, next, "rehashing {rehashing}");
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            assert_eq!(seen.len(), 5000);
            assert!(chains > 0);
            d.check_invariants();
        }
        assert_eq!(Dict::<usize>::new().scan_next(0), 0);
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
        // Remove nearly everything in one go, making the table very sparse. The key kept sits
        // past the first buckets (the hash seed is random), so the shrink takes more than one
        // bounded step to reach it.
        let mask = d.tables[0].mask() as u64;
        let kept = (0..1024)
            .map(k)
            .find(|key| d.hash(key) & mask >= 100)
            .expect("some key hashes past bucket 100");
        d.retain(|key, _| *key == kept);
        assert_eq!(d.len(), 1);
        assert!(d.is_rehashing(), "retain should start a shrink");
        let mut steps = 0;
        while d.rehash_step(1) {
            steps += 1;
            d.check_invariants();
        }
        assert!(steps > 0);
        assert_eq!(d.bucket_count(), MIN_BUCKETS);
        assert_eq!(d.get(&kept), Some(&()));
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
        assert!(overhead >= 1000 * mem::size_of::<Node<usize, Bytes>>() + d.bucket_count() * 4);
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
        // A pathological single-bucket chain: nodes live in the slab, so dropping it walks
        // no chain at all.
        let mut d: Dict<()> = Dict::new();
        d.tables[0] = Table::try_with_size(1).unwrap();
        for i in 0..300_000 {
            let next = d.tables[0].buckets[0];
            d.tables[0].buckets[0] = d.slab.alloc(Node {
                key: k(i),
                value: (),
                next,
            });
            d.tables[0].used += 1;
        }
        assert!(d.contains_key(&k(0)));
        drop(d);
    }

    #[test]
    fn removals_compact_the_slab_and_give_pages_back() {
        let mut d: Dict<u64> = Dict::new();
        let n = 3 * PAGE_SLOTS + 100;
        for i in 0..n {
            d.insert(k(i), i as u64);
        }
        assert_eq!(d.slab.pages.len(), 4);
        let full = d.slab.capacity();
        // Remove most entries, from everywhere in the slab.
        for i in (0..n).filter(|i| i % 10 != 0) {
            assert_eq!(d.remove(&k(i)), Some((k(i), i as u64)));
        }
        while d.rehash_step(100) {}
        for _ in 0..10_000 {
            d.rehash_step(100);
        }
        d.check_invariants();
        assert!(
            d.slab.capacity() < full / 3,
            "slab kept {} of {} slots for {} entries",
            d.slab.capacity(),
            full,
            d.len()
        );
        assert!(d.slab.holes() <= d.len() / 2 + HOLES_KEPT);
        for i in 0..n {
            assert_eq!(d.get(&k(i)).copied(), (i % 10 == 0).then_some(i as u64));
        }
        // Holes are reused before the slab grows.
        let before = d.slab.slots;
        let holes = d.slab.holes();
        for i in 0..holes {
            d.insert(k(n + i), 0);
        }
        assert_eq!(d.slab.slots, before);
        d.check_invariants();
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
        /// Hints for a batch of lookups (more than a batch's worth: the excess is skipped).
        Prefetch(u16, u16),
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
            3 => (0u16..600, 0u16..40).prop_map(|(a, b)| Op::Prefetch(a, b)),
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
                    Op::Prefetch(start, n) => {
                        let keys: Vec<Bytes> = (start..start.saturating_add(n)).map(pk).collect();
                        d.prefetch_lookups(keys.iter().map(|k| &k[..]));
                        // A hint changes nothing: every key still reads as the model says.
                        for k in &keys {
                            prop_assert_eq!(d.get(k), model.get(k));
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

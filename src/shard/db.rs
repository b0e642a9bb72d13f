//! One logical database (SELECT n) inside one shard: the key table, the index of keys with a
//! deadline, lazy expiry on access, the keys' access metadata (LRU clock / LFU counter) and
//! their memory charges.
//!
//! Every read or write of a key goes through `lookup_mut`/`lookup_notouch`, which delete a key
//! whose deadline has passed before anyone can see it: that is the "never returned after its
//! deadline" guarantee. Active expiry (`shard::expiry`) only bounds the memory held by keys
//! nobody reads. Every insertion and removal keeps `used` equal to the sum of the entries'
//! charges (`shard::memory`); deletions the database performs itself (expiry, overwrites) hand
//! big values to `shard::lazyfree` when the matching `lazyfree-lazy-*` switch is on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::lazyfree;
use super::memory::{self, charge_u32, entry_charge, AccessMode};
use crate::commands::CommandSpec;
use crate::persistence::snapshot::{self, DbSnapshot};
use crate::pubsub::notify::{class, notify};
use crate::types::dict::Dict;
use crate::types::key::Key;
use crate::types::{Entry, Taken, Value};

/// The LRU clock (seconds, 24 bits), for OBJECT IDLETIME and LRU eviction.
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    memory::lru_clock(now_ms)
}

/// Which deletions the database itself performs lazily (`lazyfree-lazy-expire`,
/// `lazyfree-lazy-server-del`); deletions asked for by commands say so themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LazyFlags {
    pub expire: bool,
    pub server_del: bool,
}

#[derive(Default)]
pub struct Db {
    /// This database's number (SELECT n), for the notifications it emits itself (`expired`,
    /// `new`).
    pub index: usize,
    pub keys: Dict<Entry, Key>,
    /// Keys with a deadline and their deadlines (Unix ms, never 0), like Redis's `expires`
    /// dict: the only place a deadline is kept. An entry of `keys` has its `has_deadline`
    /// flag set exactly when its key is here. Also sampled by active expiry and the volatile
    /// eviction policies (a copy of the key: free when it is inline, see `types::key`).
    pub expires: Dict<u64, Key>,
    /// Keys removed because their deadline passed (lazily or actively).
    pub expired_keys: u64,
    /// Running estimate of the remaining TTL of keys with a deadline, in ms (INFO keyspace
    /// `avg_ttl`), kept by the active expiry cycle from the deadlines it samples, as in Redis.
    pub avg_ttl: u64,
    /// WATCHed keys: the flags of the clients watching each one. Any change to such a key
    /// (write, delete, expiry, flush) sets the flags, failing those clients' EXEC.
    watched: HashMap<Bytes, Vec<Arc<AtomicBool>>, ahash::RandomState>,
    /// Sum of the entries' `charged` bytes (see `shard::memory`).
    used: u64,
    access: AccessMode,
    lazy: LazyFlags,
    /// xorshift state for the LFU counter's coin flips.
    rng: u64,
    /// The key arguments (address, length) whose access the running command already recorded:
    /// like Redis, a command counts one access per key it names, however many times its
    /// handler looks the key up. Valid for command `touched_seq` only.
    touched: [(usize, usize); TOUCHED_MAX],
    touched_len: usize,
    touched_seq: u64,
    /// The running snapshot's progress over this database's data (it moves with the data on
    /// SWAPDB). While a snapshot runs, every change to an entry it has not saved yet saves the
    /// old entry first (`preserve`).
    pub snap: DbSnapshot,
}

const TOUCHED_MAX: usize = 8;

/// The deadline of `e`, the entry of `key`, from its database's expiry index `expires` (0 =
/// none). Only an entry with the `has_deadline` flag costs a lookup. For callers that already
/// hold the entry (walks over the table, lookups); `Db::deadline` and `Db::peek` otherwise.
#[inline]
pub fn deadline_of(expires: &Dict<u64, Key>, key: &[u8], e: &Entry) -> u64 {
    if !e.has_deadline() {
        return 0;
    }
    let at = expires.get(key).copied();
    debug_assert!(at.is_some(), "deadline flag without an expiry index entry");
    at.unwrap_or(0)
}

impl Db {
    pub fn new() -> Db {
        Db::default()
    }

    /// The database numbered `index`.
    pub fn numbered(index: usize) -> Db {
        Db {
            index,
            ..Db::default()
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Registers a client's WATCH on a key.
    pub fn watch(&mut self, key: &[u8], flag: Arc<AtomicBool>) {
        let list = self.watched.entry(Bytes::copy_from_slice(key)).or_default();
        if !list.iter().any(|f| Arc::ptr_eq(f, &flag)) {
            list.push(flag);
        }
    }

    /// Removes a client's WATCH on a key.
    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        if let Some(list) = self.watched.get_mut(key) {
            list.retain(|f| !Arc::ptr_eq(f, flag));
            if list.is_empty() {
                self.watched.remove(key);
            }
        }
    }

    #[inline]
    pub fn has_watches(&self) -> bool {
        !self.watched.is_empty()
    }

    #[inline]
    pub fn is_watched(&self, key: &[u8]) -> bool {
        !self.watched.is_empty() && self.watched.contains_key(key)
    }

    /// Marks a key as modified for the clients watching it and the clients caching it (Redis's
    /// `signalModifiedKey`).
    #[inline]
    pub fn touch(&self, key: &[u8]) {
        crate::pubsub::tracking::key_modified(key);
        self.touch_watchers(key);
    }

    /// Marks a key as modified for the clients watching it only (a multi-shard unit's write
    /// that signalled a key: its client caches hear of it through the unit's tracking record).
    #[inline]
    pub fn touch_watchers(&self, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(list) = self.watched.get(key) {
            for f in list {
                f.store(true, Ordering::Release);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Prefetch hints for a batch of commands about to run here one after the other (a
    /// pipeline's commands, a batch from another shard): each one's first key
    /// (`Dict::prefetch_lookups`). Changes nothing. Callers skip it for a batch of one, which
    /// would wait for its own misses anyway. (Hinting the expiry index too, where at least half
    /// the keys had a deadline, measured no faster: `benches/keyspace.rs`, half the keys with
    /// a deadline, 40.5 against 40.7 ms.)
    pub fn prefetch_batch<'a>(
        &self,
        cmds: impl Iterator<Item = (&'static CommandSpec, &'a [Bytes])>,
    ) {
        self.keys
            .prefetch_lookups(cmds.filter_map(|(spec, args)| spec.first_key_arg(args)));
    }

    /// Looks a key up for reading or writing, expiring it first if its deadline has passed, and
    /// records the access (LRU clock or LFU counter).
    #[inline]
    pub fn lookup_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let mode = self.access;
        let first = self.first_access(key);
        // The LFU counter's coin flip, drawn before the entry is borrowed.
        let r = match mode {
            AccessMode::Lfu { .. } if first => self.next_rand(),
            _ => 0.0,
        };
        let e = self.lookup_notouch(key, now_ms)?;
        if first {
            e.set_access(mode.touched(e.access(), now_ms, r));
        }
        Some(e)
    }

    /// Whether this is the running command's first access to this key argument (and records
    /// it). Keys are told apart by the argument they came from, so a command naming a key twice
    /// (SINTER s s, RPOPLPUSH l l) counts two accesses, as in Redis.
    #[inline]
    fn first_access(&mut self, key: &[u8]) -> bool {
        let seq = memory::command_seq();
        if self.touched_seq != seq {
            self.touched_seq = seq;
            self.touched_len = 0;
        }
        let id = (key.as_ptr() as usize, key.len());
        if self.touched[..self.touched_len].contains(&id) {
            return false;
        }
        if self.touched_len < TOUCHED_MAX {
            self.touched[self.touched_len] = id;
            self.touched_len += 1;
        }
        true
    }

    /// Uniform in [0, 1) (xorshift64).
    fn next_rand(&mut self) -> f64 {
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Looks a key up without recording an access (TYPE, TTL, EXISTS, OBJECT: Redis's
    /// LOOKUP_NOTOUCH), expiring it first if its deadline has passed.
    #[inline]
    pub fn lookup_notouch(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let entry: *mut Entry = self.keys.get_mut(key)?;
        // SAFETY: `entry` points into `self.keys`, which is not touched again before the
        // reference is either returned or discarded (`self.expires` is another table). The raw
        // pointer only works around the borrow checker's limitation with conditionally
        // returned borrows (NLL problem case 3).
        let expire_at = deadline_of(&self.expires, key, unsafe { &*entry });
        if expire_at != 0 && expire_at <= now_ms {
            self.expire_now(key);
            return None;
        }
        let entry = unsafe { &mut *entry };
        // The caller may change the entry: a running snapshot saves it first.
        if self.snap.active && entry.snap_mark() != self.snap.bit {
            snapshot::save_entry(self.snap.db_at_cut, key, entry, expire_at);
            entry.set_snap_mark(self.snap.bit);
        }
        Some(entry)
    }

    /// Before a change to `key`: a running snapshot that has not saved it yet saves it now
    /// (copy-on-write per entry).
    #[inline]
    fn preserve(&mut self, key: &[u8]) {
        if self.snap.active {
            self.preserve_slow(key);
        }
    }

    #[cold]
    fn preserve_slow(&mut self, key: &[u8]) {
        let (bit, db) = (self.snap.bit, self.snap.db_at_cut);
        if let Some(e) = self.keys.get_mut(key) {
            if e.snap_mark() != bit {
                snapshot::save_entry(db, key, e, deadline_of(&self.expires, key, e));
                e.set_snap_mark(bit);
            }
        }
    }

    /// Deletes a key whose deadline passed (lazily freed under `lazyfree-lazy-expire`).
    fn expire_now(&mut self, key: &[u8]) {
        let lazy = self.lazy.expire;
        self.delete_with(key, lazy);
        self.expired_keys += 1;
        notify(class::EXPIRED, "expired", key, self.index);
    }

    /// Whether a key exists (expiring it if its deadline passed), without recording an access.
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        let expired = match self.keys.get(key) {
            None => return false,
            Some(e) => {
                let at = deadline_of(&self.expires, key, e);
                at != 0 && at <= now_ms
            }
        };
        if expired {
            self.expire_now(key);
            return false;
        }
        true
    }

    /// Inserts or replaces a key with a value and deadline (0 = none). A replaced value is freed
    /// lazily under `lazyfree-lazy-server-del`. Replacing counts as an access (Redis's `setKey`
    /// looks the key up first) unless the command already looked it up; under an LFU policy
    /// the key keeps its counter. A key that did not exist is announced (`new`, Redis's
    /// `dbAdd`).
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: u64, now_ms: u64) {
        if !self.insert_quiet(key, value, expire_at, now_ms) {
            notify(class::NEW, "new", key, self.index);
        }
    }

    /// `insert` without the `new` notification, for entries that only change places inside
    /// one logical operation (transaction copies and their write-back, script undo). Returns
    /// whether the key existed.
    pub fn insert_quiet(&mut self, key: &[u8], value: Value, expire_at: u64, now_ms: u64) -> bool {
        self.preserve(key);
        self.touch(key);
        let first = self.first_access(key);
        let r = match self.access {
            AccessMode::Lfu { .. } if first => self.next_rand(),
            _ => 0.0,
        };
        let mode = self.access;
        let mut entry = self.new_entry(key.len(), value, expire_at, self.access.initial(now_ms));
        if let Some(e) = self.keys.get_mut(key) {
            let had = e.has_deadline();
            if matches!(mode, AccessMode::Lfu { .. }) {
                entry.set_access(if first {
                    mode.touched(e.access(), now_ms, r)
                } else {
                    e.access()
                });
            }
            self.used = self.used + entry.charged as u64 - e.charged as u64;
            let old = std::mem::replace(e, entry);
            self.index_deadline(key, had, expire_at);
            self.dispose(old, self.lazy.server_del);
            return true;
        }
        let k = Key::new(key);
        if expire_at != 0 {
            self.expires.insert(k.clone(), expire_at);
        }
        self.used += entry.charged as u64;
        self.keys.insert(k, entry);
        false
    }

    /// A new table entry for a key of `key_len` bytes: its deadline flag, the snapshot mark (a
    /// running snapshot does not save what did not exist at its cut) and its charge.
    fn new_entry(&self, key_len: usize, value: Value, expire_at: u64, access: u32) -> Entry {
        let mut entry = Entry::new(value, access);
        entry.set_has_deadline(expire_at != 0);
        entry.set_snap_mark(self.snap.bit);
        entry.charged = charge_u32(entry_charge(key_len, &entry));
        entry
    }

    /// Adds a key read from a snapshot or RDB file at startup, with its deadline (Unix ms, 0
    /// for none) and its access field (`None`: as if just written). One probe of the table: a
    /// key that is already here is refused and handed back, and nothing changes (Redis 7.0
    /// stops loading a file that holds a key twice). Startup has no snapshot running, no
    /// watchers and no notifications to send, so none of `insert_quiet`'s bookkeeping applies.
    pub fn insert_loaded(
        &mut self,
        key: Key,
        value: Value,
        expire_at: u64,
        access: Option<u32>,
        now_ms: u64,
    ) -> Result<(), Key> {
        let access = access.unwrap_or_else(|| self.access.initial(now_ms));
        let entry = self.new_entry(key.len(), value, expire_at, access);
        let charged = entry.charged as u64;
        let indexed = (expire_at != 0).then(|| key.clone());
        self.keys.insert_new(key, entry).map_err(|(key, _)| key)?;
        self.used += charged;
        if let Some(k) = indexed {
            self.expires.insert(k, expire_at);
        }
        Ok(())
    }

    /// Brings the expiry index in step with a key's new deadline (0 = none); `had`: whether
    /// the key had one before.
    #[inline]
    fn index_deadline(&mut self, key: &[u8], had: bool, expire_at: u64) {
        match (had, expire_at != 0) {
            (true, false) => {
                self.expires.remove(key);
            }
            (false, true) => {
                self.expires.insert(Key::new(key), expire_at);
            }
            (true, true) => {
                if let Some(at) = self.expires.get_mut(key) {
                    *at = expire_at;
                }
            }
            (false, false) => {}
        }
    }

    /// Inserts an entry taken out of a keyspace (RENAME, MOVE), with its deadline, keeping its
    /// access metadata: the object moves in Redis, so its LRU clock or LFU counter goes with
    /// it.
    pub fn insert_entry(&mut self, key: &[u8], t: Taken, now_ms: u64) {
        let access = t.entry.access();
        self.insert(key, t.entry.value, t.expire_at, now_ms);
        if let Some(n) = self.keys.get_mut(key) {
            n.set_access(access);
        }
    }

    /// `insert_entry` without the `new` notification (see `insert_quiet`).
    pub fn insert_entry_quiet(&mut self, key: &[u8], t: Taken, now_ms: u64) {
        let access = t.entry.access();
        self.insert_quiet(key, t.entry.value, t.expire_at, now_ms);
        if let Some(n) = self.keys.get_mut(key) {
            n.set_access(access);
        }
    }

    /// Replaces the value of a key, keeping its deadline (KEEPTTL, APPEND, INCR...).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, now_ms: u64) {
        let ttl = self.peek(key).map_or(0, |(_, at)| at);
        self.insert(key, value, ttl, now_ms);
    }

    /// A key's deadline (0 = none, or no such key), without expiring it: one lookup in the
    /// expiry index. A caller that just looked the key up asks only when the entry's
    /// `has_deadline` flag is set, so that keys without a deadline cost nothing more.
    #[inline]
    pub fn deadline(&self, key: &[u8]) -> u64 {
        if self.expires.is_empty() {
            return 0;
        }
        self.expires.get(key).copied().unwrap_or(0)
    }

    /// A key's entry and deadline (0 = none) as they are: no expiry, no access recorded, no
    /// snapshot copy (so the caller must not change it).
    #[inline]
    pub fn peek(&self, key: &[u8]) -> Option<(&Entry, u64)> {
        let e = self.keys.get(key)?;
        Some((e, deadline_of(&self.expires, key, e)))
    }

    /// Whether `e`, the entry of `key` met in a walk over the table, is alive at `now_ms`
    /// (walks skip expired keys without deleting them).
    #[inline]
    pub fn is_live(&self, key: &[u8], e: &Entry, now_ms: u64) -> bool {
        let at = deadline_of(&self.expires, key, e);
        at == 0 || at > now_ms
    }

    /// A copy of a key's entry and deadline (see `peek`).
    pub fn copy_out(&self, key: &[u8]) -> Option<Taken> {
        self.peek(key).map(|(e, at)| Taken {
            entry: e.clone(),
            expire_at: at,
        })
    }

    /// Takes a key out of the database with its deadline; the caller owns (and frees) the
    /// entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Taken> {
        self.preserve(key);
        let (_, entry) = self.keys.remove(key)?;
        self.used -= entry.charged as u64;
        self.touch(key);
        let expire_at = if entry.has_deadline() {
            self.expires.remove(key).map_or(0, |(_, at)| at)
        } else {
            0
        };
        Some(Taken { entry, expire_at })
    }

    /// Deletes a key; its value is freed lazily under `lazyfree-lazy-server-del` (Redis's
    /// `dbDelete`). Returns whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let lazy = self.lazy.server_del;
        self.delete_with(key, lazy)
    }

    /// Deletes a key, freeing a big value in the background when `lazy` (UNLINK, the
    /// `lazyfree-lazy-*` switches). Returns whether it existed.
    pub fn delete_with(&mut self, key: &[u8], lazy: bool) -> bool {
        match self.remove(key) {
            Some(t) => {
                self.dispose(t.entry, lazy);
                true
            }
            None => false,
        }
    }

    fn dispose(&mut self, e: Entry, lazy: bool) {
        if lazy {
            lazyfree::free_value(e.value, e.charged as u64);
        }
    }

    /// Sets or clears the deadline of an existing key. Returns false if the key is missing.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        self.preserve(key);
        let Some(e) = self.keys.get_mut(key) else {
            return false;
        };
        let had = e.has_deadline();
        e.set_has_deadline(expire_at != 0);
        self.touch(key);
        self.index_deadline(key, had, expire_at);
        self.recharge(key);
        true
    }

    /// Recomputes a key's charge after its value changed in place (called after every write
    /// command for the keys it names).
    #[inline]
    pub fn recharge(&mut self, key: &[u8]) {
        if let Some(e) = self.keys.get_mut(key) {
            let now = charge_u32(entry_charge(key.len(), e));
            if now != e.charged {
                self.used = self.used + now as u64 - e.charged as u64;
                e.charged = now;
            }
        }
    }

    /// The sum of the entries' charges.
    pub fn charged_bytes(&self) -> u64 {
        self.used
    }

    /// The database's memory: every entry's charge plus the structure of both tables that no
    /// entry is charged for (bucket arrays, spare node slots).
    #[inline]
    pub fn mem_total(&self) -> u64 {
        self.used + (self.keys.structure_bytes() + self.expires.structure_bytes()) as u64
    }

    /// Bytes of table structure alone (what MEMORY STATS calls the hashtable overhead):
    /// (main table nodes and buckets, expiry index nodes and buckets).
    pub fn table_overhead(&self) -> (u64, u64) {
        (
            self.keys.table_overhead_bytes() as u64,
            self.expires.table_overhead_bytes() as u64,
        )
    }

    /// Installs the access mode and lazy-free switches (from the configuration).
    pub fn set_modes(&mut self, access: AccessMode, lazy: LazyFlags) {
        self.access = access;
        self.lazy = lazy;
    }

    /// FLUSHDB/FLUSHALL ASYNC: the tables are detached at once and freed by the background task.
    pub fn clear_async(&mut self) {
        self.touch_all_watched();
        crate::pubsub::tracking::forget_all();
        if self.snap.active {
            return self.detach_for_snapshot();
        }
        let bytes = self.used;
        let keys = std::mem::take(&mut self.keys);
        let expires = std::mem::take(&mut self.expires);
        self.used = 0;
        lazyfree::free_keyspace(keys, expires, bytes);
    }

    pub fn clear(&mut self) {
        self.touch_all_watched();
        crate::pubsub::tracking::forget_all();
        self.avg_ttl = 0;
        if self.snap.active {
            return self.detach_for_snapshot();
        }
        self.keys.clear();
        self.expires.clear();
        self.used = 0;
    }

    /// A flush while a snapshot runs: the running snapshot takes the table as it is (what it has
    /// not saved yet is still in the cut) and frees it as it goes.
    fn detach_for_snapshot(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        let expires = std::mem::take(&mut self.expires);
        self.snap.detach(keys, expires);
        self.used = 0;
    }

    /// Like Redis, a flush touches the watched keys that existed.
    fn touch_all_watched(&self) {
        for (k, flags) in &self.watched {
            if self.keys.get(&k[..]).is_some() {
                for f in flags {
                    f.store(true, Ordering::Release);
                }
            }
        }
    }

    /// SWAPDB on one shard: the data of two databases trade places, the WATCHes stay with their
    /// database number; watched keys that exist in either are touched, like Redis.
    pub fn swap(dbs: &mut [Db], x: usize, y: usize) {
        if x == y {
            return;
        }
        for (a, b) in [(x, y), (y, x)] {
            for (k, flags) in &dbs[a].watched {
                if dbs[a].keys.get(&k[..]).is_some() || dbs[b].keys.get(&k[..]).is_some() {
                    for f in flags {
                        f.store(true, Ordering::Release);
                    }
                }
            }
        }
        dbs.swap(x, y);
        dbs[x].index = x;
        dbs[y].index = y;
        let wx = std::mem::take(&mut dbs[x].watched);
        let wy = std::mem::take(&mut dbs[y].watched);
        dbs[x].watched = wy;
        dbs[y].watched = wx;
    }

    /// Number of keys with a deadline (INFO keyspace `expires=`).
    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StrValue;
    use std::collections::BTreeMap;

    fn sv(s: &str) -> Value {
        Value::Str(StrValue::from_bytes(s.as_bytes()))
    }

    /// The deadline flag of every entry matches the expiry index, which holds no other key and
    /// no zero deadline; the result as (key -> deadline) of the live view.
    fn check(d: &Db) -> BTreeMap<Vec<u8>, u64> {
        let mut out = BTreeMap::new();
        for (k, e) in d.keys.iter() {
            assert_eq!(e.has_deadline(), d.expires.contains_key(k), "{k:?}");
            assert_eq!(e.charged as usize, entry_charge(k.len(), e));
            out.insert(k.to_vec(), deadline_of(&d.expires, k, e));
        }
        assert_eq!(d.expires.len(), out.values().filter(|&&at| at != 0).count());
        for (k, &at) in d.expires.iter() {
            assert!(at != 0 && d.keys.contains_key(k));
        }
        out
    }

    #[test]
    fn deadlines_live_in_the_index_in_step_with_the_flags() {
        let mut d = Db::new();
        let now = 1_000;
        d.insert(b"plain", sv("a"), 0, now);
        d.insert(b"timed", sv("b"), 5_000, now);
        assert_eq!(d.deadline(b"plain"), 0);
        assert_eq!(d.deadline(b"timed"), 5_000);
        assert_eq!(d.peek(b"timed").map(|(_, at)| at), Some(5_000));
        // Overwrites set, change and drop deadlines; KEEPTTL keeps them.
        d.insert(b"plain", sv("c"), 7_000, now);
        d.insert(b"timed", sv("d"), 6_000, now);
        d.set_keep_ttl(b"timed", sv("e"), now);
        assert_eq!(
            check(&d),
            BTreeMap::from([(b"plain".to_vec(), 7_000), (b"timed".to_vec(), 6_000)])
        );
        d.insert(b"plain", sv("f"), 0, now);
        assert!(d.set_expire(b"timed", 0));
        assert!(d.set_expire(b"plain", 9_000));
        assert!(d.set_expire(b"plain", 9_500));
        assert!(!d.set_expire(b"missing", 9_000));
        assert_eq!(
            check(&d),
            BTreeMap::from([(b"plain".to_vec(), 9_500), (b"timed".to_vec(), 0)])
        );
        // Taking an entry out hands its deadline along; putting it back restores it.
        let t = d.remove(b"plain").unwrap();
        assert_eq!(t.expire_at, 9_500);
        assert_eq!(d.volatile_len(), 0);
        d.insert_entry(b"renamed", t, now);
        assert_eq!(d.copy_out(b"renamed").map(|t| t.expire_at), Some(9_500));
        assert_eq!(d.remove(b"timed").map(|t| t.expire_at), Some(0));
        check(&d);
        // Lazy expiry removes the key from both tables.
        assert!(d.exists(b"renamed", 9_499));
        assert!(d.lookup_notouch(b"renamed", 9_499).is_some());
        assert!(d.lookup_notouch(b"renamed", 9_500).is_none());
        assert_eq!(d.expired_keys, 1);
        assert!(d.is_empty() && d.expires.is_empty());
        d.insert(b"x", sv("x"), 100, now);
        assert!(!d.exists(b"x", 100));
        assert!(d.expires.is_empty());
        d.insert(b"y", sv("y"), 100, now);
        d.clear();
        assert!(d.expires.is_empty() && d.charged_bytes() == 0);
    }

    /// Random inserts, deadline changes, removals, moves and lazy expiry against a model.
    #[test]
    fn random_operations_keep_the_index_exact() {
        let mut d = Db::new();
        let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let now = 1_000 + step;
            let key = format!("key-{}", (x >> 8) % 64).into_bytes();
            let at = match (x >> 20) % 3 {
                0 => 0,
                _ => now + (x >> 24) % 50,
            };
            // Keys past their deadline are gone for every lookup.
            if model.get(&key).is_some_and(|&t| t != 0 && t <= now) {
                assert!(!d.exists(&key, now));
                model.remove(&key);
            }
            match (x >> 40) % 5 {
                0 => {
                    d.insert(&key, sv("v"), at, now);
                    model.insert(key, at);
                }
                1 => {
                    let had = model.contains_key(&key);
                    assert_eq!(d.set_expire(&key, at), had);
                    if had {
                        model.insert(key, at);
                    }
                }
                2 => {
                    let t = d.remove(&key);
                    assert_eq!(t.map(|t| t.expire_at), model.remove(&key));
                }
                3 => {
                    let to = format!("key-{}", (x >> 50) % 64).into_bytes();
                    if to != key {
                        if let Some(t) = d.remove(&key) {
                            let at = model.remove(&key).unwrap();
                            assert_eq!(t.expire_at, at);
                            d.delete(&to);
                            d.insert_entry(&to, t, now);
                            model.insert(to, at);
                        }
                    }
                }
                _ => {
                    let live = d.lookup_notouch(&key, now).is_some();
                    assert_eq!(live, model.contains_key(&key));
                    if live {
                        d.set_keep_ttl(&key, sv("w"), now);
                    }
                }
            }
            if step % 97 == 0 {
                assert_eq!(check(&d), model);
            }
        }
        assert_eq!(check(&d), model);
    }
}

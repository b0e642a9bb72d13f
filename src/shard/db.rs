//! One logical database (SELECT n) inside one shard: the key table, the index of keys with a
//! deadline, and lazy expiry on access.
//!
//! Every read or write of a key goes through `lookup`/`lookup_mut`, which delete a key whose
//! deadline has passed before anyone can see it: that is the "never returned after its deadline"
//! guarantee. Active expiry (`shard::expiry`) only bounds the memory held by keys nobody reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::types::dict::Dict;
use crate::types::{Entry, Value};

/// Seconds-resolution clock for OBJECT IDLETIME, wrapping like Redis's 24-bit LRU clock.
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

#[derive(Default)]
pub struct Db {
    pub keys: Dict<Entry>,
    /// Keys with a deadline, for active-expiry sampling. Shares the key's `Bytes` allocation.
    pub expires: Dict<()>,
    /// Keys removed because their deadline passed (lazily or actively).
    pub expired_keys: u64,
    /// WATCHed keys: the flags of the clients watching each one. Any change to such a key
    /// (write, delete, expiry, flush) sets the flags, failing those clients' EXEC.
    watched: HashMap<Bytes, Vec<Arc<AtomicBool>>, ahash::RandomState>,
}

impl Db {
    pub fn new() -> Db {
        Db::default()
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

    /// Marks a key as modified for the clients watching it (Redis's `signalModifiedKey`).
    #[inline]
    pub fn touch(&self, key: &[u8]) {
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

    /// Looks a key up for reading or writing, expiring it first if its deadline has passed.
    #[inline]
    pub fn lookup_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let entry: *mut Entry = self.keys.get_mut(key)?;
        // SAFETY: `entry` points into `self.keys`, which is not touched again before the
        // reference is either returned or discarded. The raw pointer only works around the
        // borrow checker's limitation with conditionally returned borrows (NLL problem case 3).
        let expire_at = unsafe { (*entry).expire_at };
        if expire_at != 0 && expire_at <= now_ms {
            self.remove(key);
            self.expired_keys += 1;
            return None;
        }
        let e = unsafe { &mut *entry };
        e.access = lru_clock(now_ms);
        Some(e)
    }

    /// Like `lookup_mut`, without touching the access clock (OBJECT, TYPE-style inspection
    /// still touches in Redis; this is for internal checks such as EXISTS in MSETNX).
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        let expired = match self.keys.get(key) {
            None => return false,
            Some(e) => e.expire_at != 0 && e.expire_at <= now_ms,
        };
        if expired {
            self.remove(key);
            self.expired_keys += 1;
            return false;
        }
        true
    }

    /// Inserts or replaces a key with a value and deadline (0 = none).
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: u64, now_ms: u64) {
        self.touch(key);
        let entry = Entry {
            value,
            expire_at,
            access: lru_clock(now_ms),
        };
        if let Some(e) = self.keys.get_mut(key) {
            let had = e.expire_at != 0;
            *e = entry;
            match (had, expire_at != 0) {
                (true, false) => {
                    self.expires.remove(key);
                }
                (false, true) => {
                    let k = self.keys.get_key_value(key).map(|(k, _)| k.clone());
                    if let Some(k) = k {
                        self.expires.insert(k, ());
                    }
                }
                _ => {}
            }
            return;
        }
        let k = Bytes::copy_from_slice(key);
        if expire_at != 0 {
            self.expires.insert(k.clone(), ());
        }
        self.keys.insert(k, entry);
    }

    /// Replaces the value of a key, keeping its deadline (KEEPTTL, APPEND, INCR...).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, now_ms: u64) {
        let ttl = self.keys.get(key).map(|e| e.expire_at).unwrap_or(0);
        self.insert(key, value, ttl, now_ms);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (_, e) = self.keys.remove(key)?;
        self.touch(key);
        if e.expire_at != 0 {
            self.expires.remove(key);
        }
        Some(e)
    }

    /// Sets or clears the deadline of an existing key. Returns false if the key is missing.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        let Some((k, e)) = self.keys.get_key_value(key) else {
            return false;
        };
        self.touch(key);
        let had = e.expire_at != 0;
        let k = k.clone();
        if let Some(e) = self.keys.get_mut(key) {
            e.expire_at = expire_at;
        }
        if expire_at == 0 && had {
            self.expires.remove(key);
        } else if expire_at != 0 && !had {
            self.expires.insert(k, ());
        }
        true
    }

    pub fn clear(&mut self) {
        // Like Redis, a flush touches the watched keys that existed.
        for (k, flags) in &self.watched {
            if self.keys.get(&k[..]).is_some() {
                for f in flags {
                    f.store(true, Ordering::Release);
                }
            }
        }
        self.keys.clear();
        self.expires.clear();
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

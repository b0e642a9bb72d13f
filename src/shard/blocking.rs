//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...): the per-shard registry and the
//! serving of waiters when their keys receive data.
//!
//! A waiter whose keys all live on this shard is *served in place*: after a command (or a whole
//! EXEC block, or a transaction's write-back) changes a key someone waits on, the shard runs the
//! waiter's pop right there, oldest waiter first, before executing anything else, and sends the
//! reply to the blocked connection. That is Redis's guarantee: a pushed element goes to the
//! client that has waited longest, and nobody can take it in between.
//!
//! A waiter whose keys span shards registers on each of their shards with one shared *claim*
//! (`Claim`) and is served in place too, from whichever key gets something first, by the shard
//! that takes the claim; the others pass it over. Its connection holds the claim while it tries
//! the command itself, and a shard that passed it over while someone held it makes sure it is
//! tried again, so nothing that arrived meanwhile is missed. A BLMOVE/BRPOPLPUSH whose source
//! and destination are on different shards cannot be served on one shard: it is *notify-only*,
//! registered on its source alone and woken, in its turn, to retry as a multi-shard
//! transaction. Woken, it stays at its place in the queue and holds its key's turn (*in
//! flight*): the waiters behind it wait until its retry has ended, when its connection either
//! removes it or re-arms it, and the key is looked at again (`recheck`). So the oldest waiter
//! gets the pushed element even when it is such a BLMOVE, as in Redis.
//!
//! Nothing here awaits but `recheck`, a task of its own; the registry is touched only on its
//! shard's thread.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;

use super::{Shard, ShardState};
use crate::commands::Ctx;
use crate::protocol::Reply;
use crate::server::globals::Globals;

/// Tries to serve a blocked command on this shard: writes its reply and returns true, or writes
/// nothing and returns false when there is still nothing to serve.
pub type TryServe = fn(&mut Ctx, &[Bytes], &mut Reply) -> bool;

/// What a waiter gets when it is woken.
pub enum Wake {
    /// Served in place: the reply to send.
    Served(BytesMut),
    /// A key it waits on changed (notify-only waiters), or a shard that held its claim could
    /// not serve it while another passed it over: retry, by that key first.
    Retry(Bytes),
}

/// The claim shared by the registrations of one client blocked on keys of several shards:
/// whoever takes it (a shard serving the client in place, or the connection trying the
/// command itself) is the only one serving it.
pub type Claim = std::sync::Arc<AtomicU8>;
const CLAIMED: u8 = 1;
/// Someone found the client servable, or concerned by a change, while the claim was held.
const PASSED_OVER: u8 = 2;

/// A new claim, held by its creator.
pub fn new_claim() -> Claim {
    std::sync::Arc::new(AtomicU8::new(CLAIMED))
}

/// Takes the claim (true), or notes that it was passed over while someone else held it (false).
pub fn take_claim(c: &AtomicU8) -> bool {
    let mut cur = c.load(Ordering::Acquire);
    loop {
        let free = cur & CLAIMED == 0;
        let next = if free { CLAIMED } else { cur | PASSED_OVER };
        match c.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return free,
            Err(now) => cur = now,
        }
    }
}

/// Gives back a claim whose holder served nothing. False when it was passed over meanwhile:
/// the claim then stays held and the holder must have the client retry.
pub fn release_claim(c: &AtomicU8) -> bool {
    c.compare_exchange(CLAIMED, 0, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// Whether someone else holds the claim (then noted as passed over).
fn claimed_elsewhere(c: &AtomicU8) -> bool {
    let mut cur = c.load(Ordering::Acquire);
    while cur & CLAIMED != 0 {
        match c.compare_exchange_weak(cur, cur | PASSED_OVER, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
    false
}

pub struct Waiter {
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// The type the keys must hold for the waiter to be served ("list", "zset").
    pub wants: &'static str,
    /// How it is served once blocked (`blocking_family` registers it: for most commands the
    /// same try as before blocking), its arguments and whether it speaks RESP3. None for
    /// notify-only waiters.
    pub serve: Option<(TryServe, Vec<Bytes>, bool)>,
    /// The blocked call's statistics slot and the microseconds it took before it blocked: a
    /// waiter served in place counts its latency here (waiters over several shards: None,
    /// their connection counts).
    pub stat: Option<(usize, u64)>,
    /// The claim of a waiter registered on several shards.
    pub claim: Option<Claim>,
    pub wake: oneshot::Sender<Wake>,
    /// A notify-only waiter woken whose retry has not ended: it holds its key's turn.
    pub in_flight: bool,
}

#[derive(Default)]
pub struct Blocked {
    waiters: HashMap<u64, Waiter, ahash::RandomState>,
    /// FIFO of waiter ids per (db, key).
    queues: HashMap<(usize, Bytes), VecDeque<u64>, ahash::RandomState>,
    /// Keys changed since the last serve pass that have waiters, each once (`ready_set`), in
    /// the order they became ready, which is the order Redis serves them in: one write may
    /// touch thousands of keys with waiters.
    ready: VecDeque<(usize, Bytes)>,
    ready_set: HashSet<(usize, Bytes), ahash::RandomState>,
    next_id: u64,
}

impl Blocked {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn add(&mut self, w: Waiter) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        for k in &w.keys {
            let q = self.queues.entry((w.db, k.clone())).or_default();
            // A key named twice: its queue's last entry is this waiter already.
            if q.back() != Some(&id) {
                q.push_back(id);
            }
        }
        self.waiters.insert(id, w);
        id
    }

    /// Removes a waiter (timeout, disconnect); None if it was already woken.
    pub fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        for k in &w.keys {
            let qk = (w.db, k.clone());
            if let Some(q) = self.queues.get_mut(&qk) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    self.queues.remove(&qk);
                }
            }
        }
        Some(w)
    }

    /// Notes that `key` in `db` changed, if anyone waits on it.
    #[inline]
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        if self.waiters.is_empty() {
            return;
        }
        let k = (db, Bytes::copy_from_slice(key));
        if self.queues.contains_key(&k) {
            self.mark_ready(k);
        }
    }

    /// Notes that every key of `db` may have changed (SWAPDB).
    pub fn db_changed(&mut self, db: usize) {
        let keys: Vec<_> = self.queues.keys().filter(|k| k.0 == db).cloned().collect();
        for k in keys {
            self.mark_ready(k);
        }
    }

    fn mark_ready(&mut self, k: (usize, Bytes)) {
        if self.ready_set.insert(k.clone()) {
            self.ready.push_back(k);
        }
    }

    /// Takes a ready key; a later change marks it ready again.
    fn pop_ready(&mut self) -> Option<(usize, Bytes)> {
        let k = self.ready.pop_front()?;
        self.ready_set.remove(&k);
        Some(k)
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
}

/// Serves the waiters of every key that changed, oldest first per key, until each key has
/// nothing more to give. A served waiter's own writes (BLMOVE's destination) can make further
/// keys ready; they are served in the same pass.
pub fn serve_ready(st: &mut ShardState, globals: &Globals, now_ms: u64) {
    while let Some((db, key)) = st.blocked.pop_ready() {
        let holds_stream = st.dbs[db]
            .keys
            .get(&key[..])
            .is_some_and(|e| matches!(e.value, crate::types::Value::Stream(_)));
        if holds_stream {
            serve_stream_waiters(st, globals, now_ms, db, &key);
            continue;
        }
        // The oldest waiter this change concerns, each time. Waiters for another type than
        // the key holds are passed over, as Redis serves a key's list, sorted-set and stream
        // clients each by their own type (a BLPOP behind an XREAD on a key that became a
        // list); a write that left the key empty or of another type (a failed pop, a DEL)
        // serves no one, or a notify-only waiter would wake itself with its own retry, forever.
        while let Some(id) = next_concerned(st, db, &key) {
            let notify_only = st
                .blocked
                .waiters
                .get(&id)
                .is_some_and(|w| w.serve.is_none());
            if notify_only {
                let w = st.blocked.waiters.get_mut(&id).expect("found above");
                if w.in_flight {
                    break;
                }
                let wake = std::mem::replace(&mut w.wake, oneshot::channel().0);
                if wake.send(Wake::Retry(key.clone())).is_ok() {
                    // Its connection retries; until it is done, the key is its.
                    w.in_flight = true;
                    break;
                }
                // Its connection is gone.
                st.blocked.remove(id);
                continue;
            }
            // A waiter over several shards is served here only by the shard that takes its
            // claim (another shard, or its connection, may be serving it right now).
            let claim = st.blocked.waiters.get(&id).and_then(|w| w.claim.clone());
            if claim.as_ref().is_some_and(|c| !take_claim(c)) {
                continue;
            }
            let Some(w) = st.blocked.remove(id) else {
                break;
            };
            let (try_serve, args, resp3) = w.serve.as_ref().expect("checked above").clone();
            // Served from the key that became ready, as Redis does, not from the first of its
            // keys that has something.
            let args = crate::commands::blocking_family::narrow_to_key(&args, &key);
            let mut buf = BytesMut::new();
            let started = st.clock.now_us();
            st.dirty = None;
            let served = {
                let mut ctx = Ctx {
                    st: &mut *st,
                    db,
                    now_ms,
                    globals,
                };
                try_serve(&mut ctx, &args, &mut Reply::new(&mut buf, resp3))
            };
            // The pop's own count: one change per element popped, as the command counts it.
            let changes = st.dirty.take().unwrap_or(1);
            if !served {
                if claim.as_ref().is_some_and(|c| !release_claim(c)) {
                    // Passed over elsewhere while this shard held it: its connection retries.
                    let _ = w.wake.send(Wake::Retry(key.clone()));
                    continue;
                }
                // Nothing after all: it keeps its place at the head of the queue.
                let keys = w.keys.clone();
                let wake = w.wake;
                let id2 = st.blocked.add(Waiter {
                    db,
                    keys,
                    wants: w.wants,
                    serve: w.serve,
                    stat: w.stat,
                    claim: w.claim,
                    wake,
                    in_flight: false,
                });
                for k in &st.blocked.waiters[&id2].keys.clone() {
                    if let Some(q) = st.blocked.queues.get_mut(&(db, k.clone())) {
                        q.retain(|&x| x != id2);
                        q.push_front(id2);
                    }
                }
                break;
            }
            // Redis's `updateStatsOnUnblock`: the call's time before it blocked plus the
            // serving's, as its time and latency.
            if let Some((slot, before)) = w.stat {
                let usec = st.clock.now_us().saturating_sub(started);
                // A blocked XREADGROUP whose key or group went away ends with an error,
                // counted as one (Redis's `updateStatsOnUnblock`).
                let failed = buf.first() == Some(&b'-');
                st.count_unblocked(slot, before + usec, failed);
                if failed {
                    st.stats.error_replied(&buf);
                }
            }
            for k in &w.keys {
                st.dbs[db].touch(k);
            }
            crate::persistence::aof::record_served(st, &args, db, &buf);
            // An XREADGROUP ended by an error changed nothing.
            if buf.first() != Some(&b'-') {
                globals.snapshot.note_changes(st.id, changes);
            }
            // The pop changed values in place: refresh their memory charge.
            for k in args.iter().skip(1) {
                st.dbs[db].recharge(k);
            }
            // The pop may have fed another key (BLMOVE's destination).
            for k in args.iter() {
                st.blocked.touched(db, k);
            }
            let _ = w.wake.send(Wake::Served(buf));
        }
    }
}

/// Ends the turn of a notify-only waiter whose retry has run: removes it (`wake` None) or
/// arms it again with a new sender, and has its keys looked at again (`recheck`), since the
/// waiters behind it were held back. False when it is not registered (any more).
pub fn end_turn(sh: &Rc<Shard>, id: u64, wake: Option<oneshot::Sender<Wake>>) -> bool {
    let mut st = sh.state.borrow_mut();
    let (db, keys) = match wake {
        None => match st.blocked.remove(id) {
            Some(w) if w.in_flight => (w.db, w.keys),
            found => return found.is_some(),
        },
        Some(wake) => match st.blocked.waiters.get_mut(&id) {
            Some(w) => {
                w.wake = wake;
                if !std::mem::take(&mut w.in_flight) {
                    return true;
                }
                (w.db, w.keys.clone())
            }
            None => return false,
        },
    };
    drop(st);
    glommio::spawn_local(recheck(sh.clone(), db, keys)).detach();
    true
}

/// Serves the waiters of `keys` as if the keys had just changed, once no transaction holds
/// them (a transaction's write-back serves them itself, and serving under its lock would race
/// with that write-back) and no unit defers serving on this shard.
async fn recheck(sh: Rc<Shard>, db: usize, keys: Vec<Bytes>) {
    loop {
        let locked = {
            let locks = sh.locks.borrow();
            keys.iter().any(|k| locks.blocks(db, k))
        };
        if !locked {
            break;
        }
        let rx = sh.locks.borrow_mut().wait_release();
        let _ = rx.await;
    }
    let mut st = sh.state.borrow_mut();
    for k in &keys {
        st.blocked.touched(db, k);
    }
    if !st.in_unit && st.blocked.has_ready() {
        serve_ready(&mut st, &sh.globals, crate::server::globals::unix_ms());
    }
}

/// The oldest waiter on `key` the key's state concerns: one of the type the key holds, or a
/// blocked XREADGROUP (whose key went away: it ends with an error). A waiter over several
/// shards whose claim someone else holds is passed over (and noted as such).
fn next_concerned(st: &ShardState, db: usize, key: &Bytes) -> Option<u64> {
    let queue = st.blocked.queues.get(&(db, key.clone()))?;
    let holds = st.dbs[db].keys.get(&key[..]).map(|e| e.value.type_name());
    queue.iter().copied().find(|id| {
        let Some(w) = st.blocked.waiters.get(id) else {
            return false;
        };
        let concerned = holds == Some(w.wants)
            || w.serve.as_ref().is_some_and(|s| {
                s.1.first()
                    .is_some_and(|n| n.eq_ignore_ascii_case(b"xreadgroup"))
            });
        concerned && !w.claim.as_ref().is_some_and(|c| claimed_elsewhere(c))
    })
}

/// Serves the XREAD waiters of a stream that changed. Reading consumes nothing, so every waiter
/// is tried in order, whether or not the ones before it were served: each whose ID is below
/// the new entries gets them, the others keep waiting in their place. Waiters of other types
/// on the key are left alone (the key holds a stream). XREAD waiters only read: nothing is
/// logged or counted for them. An XREADGROUP waiter served moves its group (the next one of the
/// same group then finds nothing new and keeps waiting): it is logged and counted.
fn serve_stream_waiters(
    st: &mut ShardState,
    globals: &Globals,
    now_ms: u64,
    db: usize,
    key: &Bytes,
) {
    let ids: Vec<u64> = match st.blocked.queues.get(&(db, key.clone())) {
        Some(q) => q.iter().copied().collect(),
        None => return,
    };
    for id in ids {
        let Some(w) = st.blocked.waiters.get(&id) else {
            continue;
        };
        if w.wants != "stream" {
            continue;
        }
        let Some(serve) = w.serve.clone() else {
            continue;
        };
        let claim = w.claim.clone();
        if claim.as_ref().is_some_and(|c| !take_claim(c)) {
            continue;
        }
        // Served by the serve it registered for once blocked: a blocked XREAD by the stream's
        // own rule (its last ID moved past the waited one), a blocked XREADGROUP by new
        // entries past its group's last-delivered ID, or an error when the group went away.
        let (try_serve, args, resp3) = serve;
        let args = crate::commands::blocking_family::narrow_to_key(&args, key);
        let mut buf = BytesMut::new();
        let started = st.clock.now_us();
        let served = {
            let mut ctx = Ctx {
                st: &mut *st,
                db,
                now_ms,
                globals,
            };
            try_serve(&mut ctx, &args, &mut Reply::new(&mut buf, resp3))
        };
        if !served {
            if claim.as_ref().is_some_and(|c| !release_claim(c)) {
                // Passed over elsewhere while this shard held it: its connection retries.
                if let Some(w) = st.blocked.remove(id) {
                    let _ = w.wake.send(Wake::Retry(key.clone()));
                }
            }
            continue;
        }
        let Some(w) = st.blocked.remove(id) else {
            continue;
        };
        if let Some((slot, before)) = w.stat {
            let usec = st.clock.now_us().saturating_sub(started);
            let failed = buf.first() == Some(&b'-');
            st.count_unblocked(slot, before + usec, failed);
            if failed {
                st.stats.error_replied(&buf);
            }
        }
        // An XREADGROUP does write: its group moved and its PEL grew.
        if args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"xreadgroup"))
        {
            crate::persistence::aof::record_served(st, &args, db, &buf);
            if buf.first() != Some(&b'-') {
                globals.snapshot.note_changes(st.id, 1);
                st.dbs[db].recharge(key);
            }
        }
        let _ = w.wake.send(Wake::Served(buf));
    }
}

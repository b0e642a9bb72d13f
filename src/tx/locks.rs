//! Per-shard key intent locks for multi-shard transactions.
//!
//! A transaction that spans shards holds, on each shard it touches, an exclusive lock on the
//! keys it reads or writes there (or on the whole shard, for commands that are really global).
//! While a key is locked, ordinary commands that name it wait (see `Shard::wait_unlocked`);
//! commands on other keys run as usual, so single-shard traffic keeps flowing.
//!
//! Invariants (why this cannot deadlock and why it is fair):
//! - A transaction acquires its shards in ascending shard order whenever it has to wait (the
//!   optimistic first attempt never waits: it takes what it can and gives everything back on any
//!   conflict). While waiting on shard `i` it therefore only holds locks on shards `< i`.
//! - Lock requests queue FIFO per shard: a request is granted only if it conflicts neither with
//!   a held lock nor with an earlier queued request. A waiter thus waits for a holder on the same
//!   shard or for an earlier waiter on it; following that chain always reaches a holder that is
//!   either running or waiting on a strictly higher shard. Shard numbers are finite, so every
//!   chain ends at a running transaction: no cycle, no deadlock, and no request is overtaken
//!   forever.
//! - A release examines only the first `GRANT_WINDOW` waiters that stay blocked, and a newcomer
//!   behind a longer queue queues unchecked. That only delays requests further back; it never
//!   lets one overtake an earlier one. A waiter past the window waits for the waiters ahead of
//!   it, whose chains end as above; as they are granted, it moves into the window within the
//!   same pass of the release that grants them.
//! - Ordinary commands never hold locks, so they cannot be part of a cycle; they only wait for
//!   the holders of the keys they name.
//!
//! This table is shard-local state (one per shard, touched only on its thread). It never
//! executes anything and never awaits.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use futures::channel::oneshot;

/// Identifies one transaction, unique across shards.
pub type TxId = u64;

/// A key in one logical database.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockKey {
    pub db: u32,
    pub key: Bytes,
}

/// What a transaction asks for on one shard.
#[derive(Clone, Debug)]
pub enum LockReq {
    Keys(Vec<LockKey>),
    /// The whole shard (FLUSHALL, SWAPDB, MULTI blocks with server-wide commands).
    All,
}

struct Waiter {
    tx: TxId,
    req: LockReq,
    grant: oneshot::Sender<()>,
}

/// What a run of queued requests claims: their keys (with the claiming transactions) and
/// whether any of them, or which one, wants the whole shard.
#[derive(Default)]
struct Claims {
    keys: HashMap<Bytes, Vec<(u32, TxId)>, ahash::RandomState>,
    /// The transaction of the queued requests, or `SEVERAL` when they come from more than one.
    any: Option<TxId>,
    /// Likewise for the requests for the whole shard.
    all: Option<TxId>,
}

/// How many blocked waiters a release examines (and the queue length past which a newcomer
/// queues without looking): see `LockTable::release`.
const GRANT_WINDOW: usize = 64;

/// Stands for "more than one transaction" in `Claims` (never a real id: that would take shard
/// 65535 and 2^48 transactions started on it).
const SEVERAL: TxId = TxId::MAX;

impl Claims {
    fn note(slot: &mut Option<TxId>, tx: TxId) {
        *slot = match *slot {
            Some(t) if t != tx => Some(SEVERAL),
            _ => Some(tx),
        };
    }

    fn add(&mut self, tx: TxId, req: &LockReq) {
        Self::note(&mut self.any, tx);
        match req {
            LockReq::All => Self::note(&mut self.all, tx),
            LockReq::Keys(keys) => {
                for k in keys {
                    let claimers = self.keys.entry(k.key.clone()).or_default();
                    if !claimers.contains(&(k.db, tx)) {
                        claimers.push((k.db, tx));
                    }
                }
            }
        }
    }

    /// Whether `tx`'s request overlaps a claim of another transaction.
    fn blocks(&self, tx: TxId, req: &LockReq) -> bool {
        if self.all.is_some_and(|t| t != tx) {
            return true;
        }
        match req {
            LockReq::All => self.any.is_some_and(|t| t != tx),
            LockReq::Keys(keys) => keys.iter().any(|k| {
                self.keys
                    .get(&k.key[..])
                    .is_some_and(|c| c.iter().any(|&(d, t)| d == k.db && t != tx))
            }),
        }
    }
}

#[derive(Default)]
pub struct LockTable {
    /// Held keys: key bytes -> (db, holder) pairs (almost always one), so that the check on
    /// the command path looks up a borrowed slice without allocating.
    held: HashMap<Bytes, Vec<(u32, TxId)>, ahash::RandomState>,
    /// Keys held per transaction, for release.
    owned: HashMap<TxId, Vec<LockKey>, ahash::RandomState>,
    all: Option<TxId>,
    queue: VecDeque<Waiter>,
    /// Ordinary commands waiting for some lock to go away; woken on every release.
    idle: Vec<oneshot::Sender<()>>,
    /// Counters for INFO.
    pub granted: u64,
    pub waited: u64,
}

impl LockTable {
    /// True when no transaction holds anything: the fast path of every command.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.all.is_none() && self.held.is_empty()
    }

    /// Whether an ordinary command naming `key` in `db` must wait.
    #[inline]
    pub fn blocks(&self, db: usize, key: &[u8]) -> bool {
        if self.all.is_some() {
            return true;
        }
        if self.held.is_empty() {
            return false;
        }
        self.holder(db as u32, key).is_some()
    }

    fn holder(&self, db: u32, key: &[u8]) -> Option<TxId> {
        self.held
            .get(key)?
            .iter()
            .find(|(d, _)| *d == db)
            .map(|&(_, t)| t)
    }

    /// Whether anything at all is locked (ordinary keyless commands never wait).
    pub fn whole_shard_locked(&self) -> bool {
        self.all.is_some()
    }

    fn conflicts_with_held(&self, tx: TxId, req: &LockReq) -> bool {
        if let Some(t) = self.all {
            return t != tx;
        }
        match req {
            LockReq::All => self.held.values().flatten().any(|&(_, t)| t != tx),
            LockReq::Keys(keys) => keys
                .iter()
                .any(|k| self.holder(k.db, &k.key).is_some_and(|t| t != tx)),
        }
    }

    /// Whether a new request of `tx` overlaps one already queued by another transaction (it
    /// may not overtake it). Abandoned requests claim nothing. Compares each queued key with
    /// the request's keys, through a set when the request is large. (`release` collects the
    /// queue into `Claims` instead, as it checks every waiter against those ahead of it; built
    /// for one new request, that map cost a third of the calls/s with 50 waiting 100-key
    /// transactions.)
    fn blocked_by_queue(&self, tx: TxId, req: &LockReq) -> bool {
        let mut others = self
            .queue
            .iter()
            .filter(|w| w.tx != tx && !w.grant.is_canceled());
        let LockReq::Keys(keys) = req else {
            return others.next().is_some();
        };
        let set: Option<HashSet<(u32, &[u8]), ahash::RandomState>> =
            (keys.len() > 8).then(|| keys.iter().map(|k| (k.db, &k.key[..])).collect());
        let mine = |k: &LockKey| match &set {
            Some(set) => set.contains(&(k.db, &k.key[..])),
            None => keys.contains(k),
        };
        others.any(|w| match &w.req {
            LockReq::All => true,
            LockReq::Keys(theirs) => theirs.iter().any(mine),
        })
    }

    fn grantable(&self, tx: TxId, req: &LockReq, claims: &Claims) -> bool {
        !self.conflicts_with_held(tx, req) && !claims.blocks(tx, req)
    }

    fn take(&mut self, tx: TxId, req: LockReq) {
        self.granted += 1;
        match req {
            LockReq::All => self.all = Some(tx),
            LockReq::Keys(keys) => {
                let owned = self.owned.entry(tx).or_default();
                for k in keys {
                    let holders = self.held.entry(k.key.clone()).or_default();
                    if !holders.iter().any(|&(d, _)| d == k.db) {
                        holders.push((k.db, tx));
                        owned.push(k);
                    }
                }
            }
        }
    }

    /// Takes the locks if that needs no waiting. Never queues.
    pub fn try_acquire(&mut self, tx: TxId, req: &LockReq) -> bool {
        // Past the window a newcomer queues without a check (see `release`).
        if self.queue.len() > GRANT_WINDOW
            || self.conflicts_with_held(tx, req)
            || self.blocked_by_queue(tx, req)
        {
            return false;
        }
        self.take(tx, req.clone());
        true
    }

    /// Takes the locks now, or queues the request and returns the receiver that fires when
    /// they have been granted.
    pub fn acquire(&mut self, tx: TxId, req: LockReq) -> Option<oneshot::Receiver<()>> {
        if self.try_acquire(tx, &req) {
            return None;
        }
        self.waited += 1;
        let (grant, rx) = oneshot::channel();
        self.queue.push_back(Waiter { tx, req, grant });
        Some(rx)
    }

    /// Releases everything `tx` holds here, grants queued requests that became free (in queue
    /// order) and wakes the ordinary commands that were waiting.
    pub fn release(&mut self, tx: TxId) {
        if self.all == Some(tx) {
            self.all = None;
        }
        if let Some(keys) = self.owned.remove(&tx) {
            for k in keys {
                if let Some(holders) = self.held.get_mut(&k.key) {
                    holders.retain(|&(d, t)| !(d == k.db && t == tx));
                    if holders.is_empty() {
                        self.held.remove(&k.key);
                    }
                }
            }
        }
        // One pass in queue order: each request is checked against the held locks and against
        // what the requests still queued ahead of it claim, collected as the pass goes (a
        // set, so that a long queue of many-key requests costs its total key count, not the
        // product of every pair's key lists).
        //
        // Only the first `GRANT_WINDOW` waiters that stay blocked are examined: one deeper in
        // the queue is almost surely held back by those ahead of it, and it is examined once
        // they move on. Without the bound, each release of a long queue cost its whole key
        // count (thousands of queued transactions under heavy contention).
        let mut claims = Claims::default();
        let mut i = 0;
        while i < self.queue.len() && i < GRANT_WINDOW {
            let w = &self.queue[i];
            if w.grant.is_canceled() {
                self.queue.remove(i);
                continue;
            }
            if self.grantable(w.tx, &w.req, &claims) {
                let w = self.queue.remove(i).expect("index checked");
                let (tx, req) = (w.tx, w.req.clone());
                if w.grant.send(()).is_ok() {
                    self.take(tx, req);
                }
                continue;
            }
            claims.add(w.tx, &w.req);
            i += 1;
        }
        for w in self.idle.drain(..) {
            let _ = w.send(());
        }
    }

    /// A receiver that fires on the next release (for ordinary commands that must wait).
    pub fn wait_release(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.idle.push(tx);
        rx
    }

    pub fn holders(&self) -> usize {
        self.owned.len() + self.all.is_some() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> LockReq {
        LockReq::Keys(
            names
                .iter()
                .map(|n| LockKey {
                    db: 0,
                    key: Bytes::copy_from_slice(n.as_bytes()),
                })
                .collect(),
        )
    }

    #[test]
    fn disjoint_keys_do_not_conflict_and_overlapping_ones_queue_in_order() {
        let mut t = LockTable::default();
        assert!(t.is_idle());
        assert!(t.try_acquire(1, &keys(&["a", "b"])));
        assert!(t.try_acquire(2, &keys(&["c"])));
        assert!(t.blocks(0, b"a"));
        assert!(!t.blocks(1, b"a"));
        assert!(!t.blocks(0, b"z"));
        let mut w3 = t.acquire(3, keys(&["b", "c"])).expect("must wait");
        // A later request for a key the queued one wants must not overtake it.
        let mut w4 = t.acquire(4, keys(&["c"])).expect("must queue behind 3");
        t.release(2);
        assert!(w3.try_recv().unwrap().is_none(), "b still held by 1");
        assert!(w4.try_recv().unwrap().is_none(), "3 is ahead of 4");
        t.release(1);
        assert_eq!(w3.try_recv().unwrap(), Some(()));
        assert!(w4.try_recv().unwrap().is_none());
        t.release(3);
        assert_eq!(w4.try_recv().unwrap(), Some(()));
        t.release(4);
        assert!(t.is_idle());
    }

    #[test]
    fn whole_shard_lock_excludes_everything() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, &keys(&["a"])));
        let mut all = t.acquire(2, LockReq::All).expect("waits for key holder");
        assert!(
            !t.try_acquire(3, &keys(&["z"])),
            "queued All blocks newcomers"
        );
        t.release(1);
        assert_eq!(all.try_recv().unwrap(), Some(()));
        assert!(t.blocks(0, b"anything"));
        let mut idle = t.wait_release();
        t.release(2);
        assert_eq!(idle.try_recv().unwrap(), Some(()));
        assert!(t.is_idle());
    }

    #[test]
    fn an_abandoned_waiter_no_longer_holds_back_the_ones_behind_it() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, &keys(&["a"])));
        let abandoned = t.acquire(2, keys(&["a", "b"])).expect("waits for a");
        let mut w3 = t
            .acquire(3, keys(&["b"]))
            .expect("queued behind 2's claim on b");
        drop(abandoned);
        t.release(9); // any release re-examines the queue
        assert_eq!(w3.try_recv().unwrap(), Some(()));
        assert!(t.try_acquire(4, &keys(&["c"])));
    }

    #[test]
    fn long_queues_of_many_key_requests_are_granted_in_order() {
        let mut t = LockTable::default();
        let many =
            |from: usize| -> Vec<String> { (from..from + 200).map(|i| format!("k{i}")).collect() };
        let req = |names: &[String]| keys(&names.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(t.try_acquire(1, &req(&many(0))));
        // Each waiter overlaps the one before it by 100 keys, so they go one at a time.
        let mut waiters: Vec<_> = (0..50)
            .map(|i| {
                t.acquire(2 + i as u64, req(&many(100 * (i + 1))))
                    .expect("queued")
            })
            .collect();
        for i in 0..waiters.len() {
            t.release(1 + i as u64);
            assert_eq!(
                waiters[i].try_recv().unwrap(),
                Some(()),
                "waiter {i} after its predecessor"
            );
            if let Some(next) = waiters.get_mut(i + 1) {
                assert!(
                    next.try_recv().unwrap().is_none(),
                    "waiter {} overlaps {i}",
                    i + 1
                );
            }
        }
        t.release(51);
        assert!(t.is_idle());
    }

    #[test]
    fn waiters_past_the_grant_window_are_granted_as_the_queue_moves() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, &keys(&["hot"])));
        // A long queue on one hot key, then a request on a free key behind it: past the
        // window it queues, and is granted once the queue ahead of it drains to the window.
        let mut hot: Vec<_> = (0..(GRANT_WINDOW as u64 + 10))
            .map(|i| t.acquire(100 + i, keys(&["hot"])).expect("queued"))
            .collect();
        let mut free = t
            .acquire(9999, keys(&["free"]))
            .expect("queues past the window");
        let mut holder = 1;
        let mut granted_free = false;
        for (i, w) in hot.iter_mut().enumerate() {
            t.release(holder);
            assert_eq!(w.try_recv().unwrap(), Some(()), "hot waiter {i} in order");
            holder = 100 + i as u64;
            if !granted_free && free.try_recv().unwrap() == Some(()) {
                granted_free = true;
                assert!(
                    i >= 9,
                    "the free-key request was examined before it was in the window"
                );
            }
        }
        assert!(
            granted_free,
            "the free-key request was granted while the hot queue drained"
        );
        t.release(holder);
        t.release(9999);
        assert!(t.is_idle());
    }

    #[test]
    fn abandoned_waiters_are_skipped() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, &keys(&["a"])));
        drop(t.acquire(2, keys(&["a"])));
        t.release(1);
        assert!(t.is_idle());
    }
}

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
//! - Lock requests queue FIFO per shard: each queued request has an arrival number, and is
//!   granted only if it conflicts neither with a held lock nor with a live request that
//!   arrived earlier. A waiter thus waits for a holder on the same shard or for an earlier
//!   waiter on it; following that chain always reaches a holder that is either running or
//!   waiting on a strictly higher shard. Shard numbers are finite, so every chain ends at a
//!   running transaction: no cycle, no deadlock, and no request is overtaken forever.
//! - The FIFO order is kept per key: a queued key request is in the queue of each of its keys,
//!   and it is free exactly when no live request of another transaction is ahead of it in any
//!   of them (and no older request wants the whole shard). So a release only re-examines the oldest request on each
//!   key it frees (and, when a whole-shard lock goes, the requests it held back), and a newcomer
//!   is granted at once when none of its keys is held or wanted by an earlier request, however
//!   long the shard's queues are.
//! - Ordinary commands never hold locks, so they cannot be part of a cycle; they only wait for
//!   the holders of the keys they name.
//!
//! This table is shard-local state (one per shard, touched only on its thread). It never
//! executes anything and never awaits.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

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

impl LockKey {
    /// The identity this key is locked under.
    #[inline]
    pub fn id(&self) -> LockId {
        LockId::of(self.db, &self.key)
    }
}

/// What the lock table knows of a key: its database and a 64-bit hash of its bytes, the same on
/// every shard. Two different keys that share a hash are one lock: a transaction may then wait
/// for a key it does not touch, which costs time, never correctness (the ordering rules below
/// hold for any grouping of keys into locks). In exchange the table keeps no key bytes: taking
/// and releasing a lock copies 12 bytes instead of sharing the client's buffer, and compares
/// integers instead of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockId {
    pub db: u32,
    pub hash: u64,
}

/// One hasher for the whole process, so that a key hashes alike on every shard's thread;
/// randomly seeded at startup, so that nobody can choose keys that pile up in one bucket of
/// the tables below.
static KEY_HASH: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();

impl LockId {
    #[inline]
    pub fn of(db: u32, key: &[u8]) -> LockId {
        LockId {
            db,
            hash: KEY_HASH.get_or_init(ahash::RandomState::new).hash_one(key),
        }
    }
}

/// Hashes a `LockId` by its (already random) key hash: the maps below need no second hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u32(&mut self, db: u32) {
        self.0 ^= (db as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }
}

type IdMap<V> = HashMap<LockId, V, BuildHasherDefault<IdHasher>>;

/// What a transaction asks for on one shard.
#[derive(Clone, Debug)]
pub enum LockReq {
    Keys(Vec<LockId>),
    /// The whole shard (FLUSHALL, SWAPDB, MULTI blocks with server-wide commands).
    All,
}

struct Waiter {
    tx: TxId,
    req: LockReq,
    grant: oneshot::Sender<()>,
}

impl Waiter {
    fn live(&self) -> bool {
        !self.grant.is_canceled()
    }
}

#[derive(Default)]
pub struct LockTable {
    /// Held keys and their holder.
    held: IdMap<TxId>,
    /// Keys held per transaction, for release.
    owned: HashMap<TxId, Vec<LockId>, ahash::RandomState>,
    all: Option<TxId>,
    /// Queued requests by arrival number: the shard's FIFO order.
    waiting: BTreeMap<u64, Waiter>,
    /// Each key's own queue of the arrival numbers in `waiting` that want it, oldest first.
    key_queues: IdMap<VecDeque<u64>>,
    /// Arrival numbers of the queued requests for the whole shard.
    all_waiting: BTreeSet<u64>,
    next_seq: u64,
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
        self.held.contains_key(&LockId::of(db as u32, key))
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
            LockReq::All => self.held.values().any(|&t| t != tx),
            LockReq::Keys(keys) => keys
                .iter()
                .any(|k| self.held.get(k).is_some_and(|&t| t != tx)),
        }
    }

    /// The oldest live request queued for key `k`.
    fn first_live(&self, k: &LockId) -> Option<u64> {
        self.key_queues
            .get(k)?
            .iter()
            .copied()
            .find(|s| self.waiting.get(s).is_some_and(Waiter::live))
    }

    /// Whether a live request of another transaction than `tx`, queued before `before`, wants
    /// key `k` (a transaction never waits for itself).
    fn other_waiter_before(&self, k: &LockId, tx: TxId, before: u64) -> bool {
        self.key_queues.get(k).is_some_and(|q| {
            q.iter()
                .take_while(|&&s| s < before)
                .any(|s| self.waiting.get(s).is_some_and(|w| w.live() && w.tx != tx))
        })
    }

    /// Whether a live request of another transaction than `tx`, queued before `before`, wants
    /// the whole shard.
    fn all_waiter_before(&self, tx: TxId, before: u64) -> bool {
        self.all_waiting
            .range(..before)
            .any(|s| self.waiting.get(s).is_some_and(|w| w.live() && w.tx != tx))
    }

    /// Whether the queued request `seq` can be granted now: nothing held against it, and no
    /// live request of another transaction queued before it conflicts (for a key request: none
    /// is ahead of it in any of its keys' queues and none earlier wants the whole shard; for
    /// the whole shard: none is queued before it at all).
    fn grantable(&self, seq: u64, w: &Waiter) -> bool {
        if self.conflicts_with_held(w.tx, &w.req) {
            return false;
        }
        match &w.req {
            LockReq::All => !self
                .waiting
                .range(..seq)
                .any(|(_, o)| o.live() && o.tx != w.tx),
            LockReq::Keys(keys) => {
                !self.all_waiter_before(w.tx, seq)
                    && keys.iter().all(|k| !self.other_waiter_before(k, w.tx, seq))
            }
        }
    }

    fn take(&mut self, tx: TxId, req: LockReq) {
        self.granted += 1;
        match req {
            LockReq::All => self.all = Some(tx),
            LockReq::Keys(mut keys) => {
                // Taken only when nothing else holds it: an entry here is this transaction's
                // own (a key named twice, or locked by an earlier step). The request's own
                // vector becomes the list of what to release.
                keys.retain(|&k| match self.held.entry(k) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(tx);
                        true
                    }
                    std::collections::hash_map::Entry::Occupied(_) => false,
                });
                match self.owned.entry(tx) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(keys);
                    }
                    std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().extend(keys),
                }
            }
        }
    }

    /// Takes the locks if that needs no waiting. Never queues: a refused request is handed
    /// back, so that the caller can queue it or try elsewhere without rebuilding it.
    pub fn try_acquire(&mut self, tx: TxId, req: LockReq) -> Result<(), LockReq> {
        if !self.free_now(tx, &req) {
            return Err(req);
        }
        self.take(tx, req);
        Ok(())
    }

    /// Whether `tx` may take `req` at once: nothing held against it, and no live request of
    /// another transaction queued for any of it (a newcomer never overtakes).
    fn free_now(&self, tx: TxId, req: &LockReq) -> bool {
        if self.conflicts_with_held(tx, req) {
            return false;
        }
        let queued_ahead = !self.waiting.is_empty()
            && match req {
                LockReq::All => self.waiting.values().any(|w| w.live() && w.tx != tx),
                LockReq::Keys(keys) => {
                    self.all_waiter_before(tx, u64::MAX)
                        || keys
                            .iter()
                            .any(|k| self.other_waiter_before(k, tx, u64::MAX))
                }
            };
        !queued_ahead
    }

    /// Takes the locks now, or queues the request and returns the receiver that fires when
    /// they have been granted.
    pub fn acquire(&mut self, tx: TxId, req: LockReq) -> Option<oneshot::Receiver<()>> {
        if self.free_now(tx, &req) {
            self.take(tx, req);
            return None;
        }
        self.waited += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        match &req {
            LockReq::All => {
                self.all_waiting.insert(seq);
            }
            LockReq::Keys(keys) => {
                for &k in keys {
                    let q = self.key_queues.entry(k).or_default();
                    if q.back() != Some(&seq) {
                        q.push_back(seq);
                    }
                }
            }
        }
        let (grant, rx) = oneshot::channel();
        self.waiting.insert(seq, Waiter { tx, req, grant });
        Some(rx)
    }

    /// Takes request `seq` out of the queues. Returns it, with the oldest live request now
    /// queued on each of its keys added to `recheck`.
    fn dequeue(&mut self, seq: u64, recheck: &mut BTreeSet<u64>) -> Option<Waiter> {
        let w = self.waiting.remove(&seq)?;
        match &w.req {
            LockReq::All => {
                self.all_waiting.remove(&seq);
            }
            LockReq::Keys(keys) => {
                for k in keys {
                    if let Some(q) = self.key_queues.get_mut(k) {
                        if let Some(p) = q.iter().position(|&s| s == seq) {
                            q.remove(p);
                        }
                        if q.is_empty() {
                            self.key_queues.remove(k);
                        }
                    }
                }
                for k in keys {
                    if let Some(s) = self.first_live(k) {
                        recheck.insert(s);
                    }
                }
            }
        }
        Some(w)
    }

    /// Takes the abandoned requests at the front of `k`'s queue out of the queues.
    fn drop_abandoned_front(&mut self, k: &LockId, recheck: &mut BTreeSet<u64>) {
        while let Some(&front) = self.key_queues.get(k).and_then(VecDeque::front) {
            if self.waiting.get(&front).is_some_and(Waiter::live) {
                return;
            }
            if self.dequeue(front, recheck).is_none() {
                // Not queued any more (cannot happen: dequeuing clears every key queue); drop
                // the stray entry rather than loop on it.
                debug_assert!(false, "stray key queue entry {front}");
                if let Some(q) = self.key_queues.get_mut(k) {
                    q.pop_front();
                    if q.is_empty() {
                        self.key_queues.remove(k);
                    }
                }
            }
        }
    }

    /// Releases everything `tx` holds here and grants the queued requests that became free,
    /// oldest first, then wakes the ordinary commands that were waiting.
    ///
    /// Only the requests that may have become free are examined: the oldest live request on
    /// each released key, and, when a whole-shard lock or request goes away, the requests
    /// queued before the next whole-shard request. A release thus costs about its own key
    /// count, however long the queues are (the previous single FIFO had to check each waiter
    /// against every key claimed ahead of it).
    pub fn release(&mut self, tx: TxId) {
        let mut recheck = BTreeSet::new();
        let mut rescan = false;
        if self.all == Some(tx) {
            self.all = None;
            rescan = true;
        }
        if let Some(keys) = self.owned.remove(&tx) {
            for k in &keys {
                if self.held.get(k) == Some(&tx) {
                    self.held.remove(k);
                }
            }
            if !self.waiting.is_empty() {
                for k in &keys {
                    self.drop_abandoned_front(k, &mut recheck);
                    if let Some(s) = self.first_live(k) {
                        recheck.insert(s);
                    }
                }
            }
        }
        // Abandoned requests go when they are met at the head of the order or of a released
        // key's queue; whatever they held back is re-examined then. (Until then they block
        // nobody that something else does not block too: each is behind a holder or an older
        // request, whose release or grant brings it to a head.)
        while let Some((&seq, w)) = self.waiting.first_key_value() {
            if w.live() {
                break;
            }
            rescan |= matches!(w.req, LockReq::All);
            self.dequeue(seq, &mut recheck);
        }
        if rescan {
            self.recheck_behind_whole_shard(&mut recheck);
        } else if let Some(&first) = self.all_waiting.first() {
            recheck.insert(first);
        }
        if !recheck.is_empty() {
            self.grant(recheck);
        }
        for w in self.idle.drain(..) {
            let _ = w.send(());
        }
    }

    /// When a whole-shard lock or request goes away: the requests it may have held back, i.e.
    /// every queued request up to the next live whole-shard request (included).
    fn recheck_behind_whole_shard(&self, recheck: &mut BTreeSet<u64>) {
        let next_all = self
            .all_waiting
            .iter()
            .copied()
            .find(|s| self.waiting.get(s).is_some_and(Waiter::live))
            .unwrap_or(u64::MAX);
        recheck.extend(self.waiting.range(..=next_all).map(|(&s, _)| s));
    }

    /// Grants, oldest first, the requests among `recheck` that can go now.
    fn grant(&mut self, mut recheck: BTreeSet<u64>) {
        while let Some(seq) = recheck.pop_first() {
            let Some(w) = self.waiting.get(&seq) else {
                continue;
            };
            let abandoned = !w.live();
            if abandoned || self.grantable(seq, w) {
                let was_all = matches!(w.req, LockReq::All);
                let w = self.dequeue(seq, &mut recheck).expect("queued");
                if !abandoned && w.grant.send(()).is_ok() {
                    self.take(w.tx, w.req);
                } else if was_all {
                    self.recheck_behind_whole_shard(&mut recheck);
                }
            }
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
        LockReq::Keys(names.iter().map(|n| LockId::of(0, n.as_bytes())).collect())
    }

    #[test]
    fn disjoint_keys_do_not_conflict_and_overlapping_ones_queue_in_order() {
        let mut t = LockTable::default();
        assert!(t.is_idle());
        assert!(t.try_acquire(1, keys(&["a", "b"])).is_ok());
        assert!(t.try_acquire(2, keys(&["c"])).is_ok());
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
        assert!(t.try_acquire(1, keys(&["a"])).is_ok());
        let mut all = t.acquire(2, LockReq::All).expect("waits for key holder");
        assert!(
            t.try_acquire(3, keys(&["z"])).is_err(),
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
        assert!(t.try_acquire(1, keys(&["a"])).is_ok());
        let abandoned = t.acquire(2, keys(&["a", "b"])).expect("waits for a");
        let mut w3 = t
            .acquire(3, keys(&["b"]))
            .expect("queued behind 2's claim on b");
        drop(abandoned);
        t.release(9); // any release re-examines the queue
        assert_eq!(w3.try_recv().unwrap(), Some(()));
        assert!(t.try_acquire(4, keys(&["c"])).is_ok());
    }

    #[test]
    fn long_queues_of_many_key_requests_are_granted_in_order() {
        let mut t = LockTable::default();
        let many =
            |from: usize| -> Vec<String> { (from..from + 200).map(|i| format!("k{i}")).collect() };
        let req = |names: &[String]| keys(&names.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(t.try_acquire(1, req(&many(0))).is_ok());
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
    fn a_free_key_is_granted_at_once_behind_a_long_queue_on_another() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, keys(&["hot"])).is_ok());
        let mut hot: Vec<_> = (0..200u64)
            .map(|i| t.acquire(100 + i, keys(&["hot"])).expect("queued"))
            .collect();
        assert!(
            t.acquire(9999, keys(&["free"])).is_none(),
            "no earlier request wants the free key"
        );
        // A request on the hot key and a free one queues behind the hot queue, whole.
        let mut both = t.acquire(7777, keys(&["hot", "free2"])).expect("queued");
        assert!(!t.blocks(0, b"free2"));
        let mut holder = 1;
        for (i, w) in hot.iter_mut().enumerate() {
            t.release(holder);
            assert_eq!(w.try_recv().unwrap(), Some(()), "hot waiter {i} in order");
            assert!(both.try_recv().unwrap().is_none());
            holder = 100 + i as u64;
        }
        t.release(holder);
        assert_eq!(both.try_recv().unwrap(), Some(()));
        t.release(7777);
        t.release(9999);
        assert!(t.is_idle());
        assert!(t.key_queues.is_empty() && t.waiting.is_empty());
    }

    #[test]
    fn requests_behind_a_queued_whole_shard_request_wait_for_it_and_go_after_it() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, keys(&["a"])).is_ok());
        let mut w2 = t.acquire(2, keys(&["a", "b"])).expect("a is held");
        let mut all = t.acquire(3, LockReq::All).expect("keys are held");
        let mut w4 = t
            .acquire(4, keys(&["c"]))
            .expect("behind the whole-shard request");
        let mut w5 = t
            .acquire(5, keys(&["d"]))
            .expect("behind the whole-shard request");
        t.release(1);
        assert_eq!(w2.try_recv().unwrap(), Some(()));
        assert!(all.try_recv().unwrap().is_none(), "2 holds a and b");
        t.release(2);
        assert_eq!(all.try_recv().unwrap(), Some(()));
        assert!(w4.try_recv().unwrap().is_none());
        t.release(3);
        assert_eq!(w4.try_recv().unwrap(), Some(()));
        assert_eq!(w5.try_recv().unwrap(), Some(()));
        t.release(4);
        t.release(5);
        assert!(t.is_idle());
    }

    #[test]
    fn an_abandoned_whole_shard_request_lets_the_requests_behind_it_go() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, keys(&["a"])).is_ok());
        let all = t.acquire(2, LockReq::All).expect("a is held");
        let mut w3 = t
            .acquire(3, keys(&["b"]))
            .expect("behind the whole-shard request");
        drop(all);
        t.release(1);
        assert_eq!(w3.try_recv().unwrap(), Some(()));
        t.release(3);
        assert!(t.is_idle());
        assert!(t.waiting.is_empty() && t.all_waiting.is_empty());
    }

    #[test]
    fn an_abandoned_waiter_deep_in_the_queue_is_skipped_when_reached() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, keys(&["a"])).is_ok());
        let mut w2 = t.acquire(2, keys(&["a"])).expect("a is held");
        let abandoned = t.acquire(3, keys(&["a", "b"])).expect("behind 2 on a");
        let mut w4 = t.acquire(4, keys(&["b"])).expect("behind 3 on b");
        drop(abandoned);
        t.release(1);
        assert_eq!(w2.try_recv().unwrap(), Some(()));
        assert!(
            w4.try_recv().unwrap().is_none(),
            "3 is reached only as 2 moves on"
        );
        t.release(2);
        assert_eq!(w4.try_recv().unwrap(), Some(()));
        t.release(4);
        assert!(t.is_idle() && t.waiting.is_empty() && t.key_queues.is_empty());
    }

    /// Random requests and releases against a model of the FIFO rule: a request is granted
    /// exactly when no held lock and no live earlier request conflicts with it.
    #[test]
    fn grants_follow_the_fifo_rule_in_random_histories() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _round in 0..200 {
            let mut t = LockTable::default();
            // Standing requests in arrival order: (tx, keys or None for the whole shard, the
            // grant receiver while waiting, granted).
            type Standing = (u64, Option<Vec<u8>>, Option<oneshot::Receiver<()>>, bool);
            let mut reqs: Vec<Standing> = Vec::new();
            for step in 0..60u64 {
                if rng.gen_bool(0.55) || reqs.is_empty() {
                    let tx = 1000 + step;
                    let req_keys = if rng.gen_bool(0.05) {
                        None
                    } else {
                        let n = rng.gen_range(1..4);
                        Some(
                            (0..n)
                                .map(|_| rng.gen_range(b'a'..b'h'))
                                .collect::<Vec<u8>>(),
                        )
                    };
                    let req = match &req_keys {
                        None => LockReq::All,
                        Some(ks) => {
                            LockReq::Keys(ks.iter().map(|&c| LockId::of(0, &[c])).collect())
                        }
                    };
                    match t.acquire(tx, req) {
                        None => reqs.push((tx, req_keys, None, true)),
                        Some(rx) => reqs.push((tx, req_keys, Some(rx), false)),
                    }
                } else {
                    // Release a random granted one, or abandon a random waiting one.
                    let i = rng.gen_range(0..reqs.len());
                    // (Abandoned requests are released lazily; their own tests cover them.)
                    if reqs[i].3 {
                        t.release(reqs[i].0);
                        reqs.remove(i);
                    }
                }
                // Collect grants.
                for r in reqs.iter_mut() {
                    if let Some(rx) = r.2.as_mut() {
                        if rx.try_recv().unwrap() == Some(()) {
                            r.3 = true;
                            r.2 = None;
                        }
                    }
                }
                // The model: walk in arrival order; a request conflicts with anything held or
                // any earlier request still standing.
                let conflict = |a: &Option<Vec<u8>>, b: &Option<Vec<u8>>| match (a, b) {
                    (None, _) | (_, None) => true,
                    (Some(x), Some(y)) => x.iter().any(|c| y.contains(c)),
                };
                for (i, r) in reqs.iter().enumerate() {
                    let blocked = reqs[..i].iter().any(|e| conflict(&e.1, &r.1))
                        || reqs[i + 1..].iter().any(|e| e.3 && conflict(&e.1, &r.1));
                    assert_eq!(r.3, !blocked, "request {} (keys {:?})", r.0, r.1);
                }
            }
        }
    }

    #[test]
    fn a_key_hashes_to_the_same_lock_on_every_thread_and_per_database() {
        let here = LockId::of(3, b"user:{42}:name");
        let there = std::thread::spawn(|| LockId::of(3, b"user:{42}:name"))
            .join()
            .unwrap();
        assert_eq!(
            here, there,
            "every shard must lock a key under one identity"
        );
        assert_ne!(here, LockId::of(4, b"user:{42}:name"));
        assert_ne!(here, LockId::of(3, b"user:{42}:nam"));
        let k = LockKey {
            db: 3,
            key: Bytes::from_static(b"user:{42}:name"),
        };
        assert_eq!(k.id(), here);
    }

    #[test]
    fn keys_that_share_a_lock_id_are_one_lock() {
        // Two different keys whose hashes collided would get the same id: they then exclude
        // each other (a wait, never a lost exclusion), and a transaction naming both holds one
        // lock and releases it once.
        let shared = LockId { db: 0, hash: 42 };
        let mut t = LockTable::default();
        assert!(t
            .try_acquire(1, LockReq::Keys(vec![shared, shared]))
            .is_ok());
        let mut w = t
            .acquire(2, LockReq::Keys(vec![shared]))
            .expect("held by 1");
        t.release(1);
        assert_eq!(w.try_recv().unwrap(), Some(()));
        t.release(2);
        assert!(t.is_idle() && t.owned.is_empty());
    }

    #[test]
    fn abandoned_waiters_are_skipped() {
        let mut t = LockTable::default();
        assert!(t.try_acquire(1, keys(&["a"])).is_ok());
        drop(t.acquire(2, keys(&["a"])));
        t.release(1);
        assert!(t.is_idle());
    }
}

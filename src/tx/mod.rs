//! Multi-shard transactions: commands, MULTI/EXEC blocks and scripts whose keys live on more
//! than one shard run atomically and in isolation, as if one thread ran everything.
//!
//! Protocol (coordinator = the shard of the client's connection):
//! 1. Plan: the keys of every command (from the command table), grouped by owning shard.
//!    All keys on one shard: that shard runs the whole unit in one synchronous step, after
//!    waiting for any transaction holding those keys; no locks, no coordination.
//! 2. Lock and fetch: an exclusive intent lock on each key at its owner (`locks`). With two or
//!    more foreign shards the locks are first taken optimistically on every shard at once (one
//!    round trip, never waiting); if any shard refuses, everything taken is given back. Then (or
//!    straight away, with at most one foreign shard, where the ordered way costs no more
//!    messages) the locks are taken one shard at a time in ascending shard order, waiting where
//!    needed (see `locks` for why this cannot deadlock). Each owner hands back a copy of the
//!    locked entries with its grant.
//! 3. Execute: the coordinator places the copies in its own keyspace, runs the commands with
//!    their ordinary handlers in one synchronous step, and takes the foreign entries out again.
//!    No other task runs on the coordinator in between, so nobody sees the foreign entries.
//! 4. Write back and release: each owner receives its entries back, replaces the ones that
//!    changed (or deletes the ones that are gone), and releases the locks. Read-only units
//!    only release. The client's reply does not wait for this step: every later reader of
//!    those keys waits for the lock, so no client can observe the old values after the reply.
//!
//! Two-phase locking over exactly the keys involved makes every such unit serializable with
//! respect to every other command; single-shard commands on other keys never wait.
//!
//! Split commands (MSET, MGET, DEL, UNLINK, EXISTS, TOUCH: `MultiKind` in the command table)
//! skip the copies: each key's effect is independent of the others, so each owner runs the
//! command on its own keys, under the same locks, and the coordinator combines the replies
//! (OK, the values back in argument order, or the sum). With one foreign shard the locks are
//! taken in ascending shard order (or, from the higher shard, tried without waiting in the
//! other order, see `run_split`) and each shard runs its part as soon as it holds its locks;
//! with more, one optimistic round takes all locks and a second runs the parts. Either way no
//! lock is released before every lock has been granted (the lock point), and a part that ran
//! before it keeps its shard's locks until every part has run, which is what keeps a reader
//! from seeing one shard's part without the other's; a part that runs after the lock point
//! gives its shard's locks back as soon as it has run. MSET splits only without a memory
//! limit and without an AOF, where no shard can refuse its part while the others apply
//! theirs; otherwise it is a copied unit, checked once on the coordinator.
//!
//! Each split command is its own unit, even in a pipeline of them. Running a pipeline's
//! consecutive split commands as one unit (one round trip per shard for all of them) was built
//! and measured (2026-11-27, two shards on one core, `redis-benchmark -t mset -P 16 -r 100000`,
//! 50 clients): slower, 7.9 against 6.4-6.5 us of CPU per MSET. A unit of 16 ten-key MSETs
//! holds 160 random keys, so concurrent units collide on nearly every run (12,681 lock waits
//! per 12,500 units, against 4,303 per 200,000 single MSETs), and the waits cost more than the
//! round trips saved.
//!
//! This module never holds a shard-state borrow across an `.await`.

pub mod locks;
pub mod multi;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;

use crate::commands::{self, flags, CommandSpec, Ctx, MultiKind};
use crate::protocol::parse::Args;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::server::globals::unix_ms;
use crate::shard::db::deadline_of;
use crate::shard::router::ShardMsg;
use crate::shard::{execute_keyed, ClientLabel, Shard};
use crate::types::Taken;
use locks::{LockId, LockKey, LockReq, TxId};

/// Runs `f` with a command context for `db` on the given shard (inside a job).
pub fn with_ctx<R>(sh: &Shard, db: usize, f: impl FnOnce(&mut Ctx) -> R) -> R {
    let mut st = sh.state.borrow_mut();
    let mut ctx = Ctx {
        st: &mut st,
        db,
        now_ms: unix_ms(),
        globals: &sh.globals,
    };
    f(&mut ctx)
}

/// One command of a transactional unit, with the database it runs in.
#[derive(Clone)]
pub struct TxCmd {
    pub spec: &'static CommandSpec,
    pub args: Args,
    pub db: usize,
    /// Its caller counts its statistics, if any (`ShardState::uncounted`): an attempt of a
    /// blocking command, an AOF record.
    pub uncounted: bool,
}

impl TxCmd {
    pub fn new(spec: &'static CommandSpec, args: Args, db: usize) -> TxCmd {
        TxCmd {
            spec,
            args,
            db,
            uncounted: false,
        }
    }
}

/// The replies of a unit's commands, concatenated; `ends[i]` is where reply `i` ends.
#[derive(Default)]
pub struct TxReplies {
    pub buf: BytesMut,
    pub ends: Vec<usize>,
}

impl TxReplies {
    pub fn reply(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }
}

/// The (db, key) pairs a command names, with the database each lives in: the command's own,
/// except COPY's destination with a DB option.
pub(crate) fn command_keys(
    spec: &CommandSpec,
    args: &[Bytes],
    cmd_db: usize,
    databases: usize,
    mut f: impl FnMut(LockKey),
) {
    let copy_db = if spec.name == "copy" {
        commands::keys_family::copy_options(args, cmd_db, databases)
            .map(|(d, _)| d)
            .ok()
    } else {
        None
    };
    for pos in spec.keys(args) {
        let db = match copy_db {
            Some(d) if pos == 2 => d,
            _ => cmd_db,
        };
        f(LockKey {
            db: db as u32,
            key: args[pos].clone(),
        });
    }
}

/// Items without duplicates, in the order first seen. A unit names a few keys as a rule, which a
/// linear check handles best, but it may name hundreds of thousands (one MSET): past
/// `Distinct::LINEAR` items a hash set takes over, so collecting stays linear in time.
pub(crate) struct Distinct<T> {
    items: Vec<T>,
    seen: Option<std::collections::HashSet<T, ahash::RandomState>>,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            items: Vec::new(),
            seen: None,
        }
    }
}

impl<T: Eq + std::hash::Hash + Clone> Distinct<T> {
    const LINEAR: usize = 16;

    /// Room for `n` items up front, for callers that know how many may come.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Distinct {
            items: Vec::with_capacity(n),
            seen: None,
        }
    }

    /// Adds `item` unless it is there already; tells whether it was added.
    pub(crate) fn push(&mut self, item: T) -> bool {
        match &mut self.seen {
            Some(seen) => {
                if !seen.insert(item.clone()) {
                    return false;
                }
                self.items.push(item);
            }
            None => {
                if self.items.contains(&item) {
                    return false;
                }
                self.items.push(item);
                if self.items.len() > Self::LINEAR {
                    self.seen = Some(self.items.iter().cloned().collect());
                }
            }
        }
        true
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        &self.items
    }

    pub(crate) fn into_vec(self) -> Vec<T> {
        self.items
    }
}

/// Groups keys by owning shard, in ascending shard order, each key once per shard.
pub(crate) fn group_by_shard(
    sh: &Shard,
    keys: impl IntoIterator<Item = LockKey>,
) -> BTreeMap<usize, Vec<LockKey>> {
    let mut by_shard: BTreeMap<usize, Distinct<LockKey>> = BTreeMap::new();
    for k in keys {
        by_shard.entry(sh.shard_of(&k.key)).or_default().push(k);
    }
    by_shard
        .into_iter()
        .map(|(s, keys)| (s, keys.into_vec()))
        .collect()
}

/// The keys of a unit grouped by owning shard, in ascending shard order, without duplicates.
fn plan(sh: &Shard, cmds: &[TxCmd]) -> BTreeMap<usize, Vec<LockKey>> {
    let databases = sh.state.borrow().dbs.len();
    let mut keys = Vec::new();
    for c in cmds {
        command_keys(c.spec, &c.args, c.db, databases, |k| keys.push(k));
    }
    group_by_shard(sh, keys)
}

/// Runs a unit's commands one after another on `sh`, in one synchronous step.
fn run_here(sh: &Shard, cmds: &[TxCmd], resp3: bool, who: &ClientLabel) -> TxReplies {
    let mut out = TxReplies {
        buf: BytesMut::new(),
        ends: Vec::with_capacity(cmds.len()),
    };
    let TxReplies { buf, ends } = &mut out;
    run_here_into(sh, cmds, resp3, who, buf, |end| ends.push(end));
    out
}

/// `run_here`, writing the replies to `buf` and telling `ended` where each one ends.
fn run_here_into(
    sh: &Shard,
    cmds: &[TxCmd],
    resp3: bool,
    who: &ClientLabel,
    buf: &mut BytesMut,
    mut ended: impl FnMut(usize),
) {
    let mut st = sh.state.borrow_mut();
    st.in_unit = true;
    for c in cmds {
        st.uncounted = c.uncounted;
        execute_keyed(&mut st, &sh.globals, c.spec, &c.args, c.db, resp3, who, buf);
        st.uncounted = false;
        ended(buf.len());
    }
    st.in_unit = false;
    if st.blocked.has_ready() {
        crate::shard::blocking::serve_ready(&mut st, &sh.globals, unix_ms());
    }
}

/// A copy of each locked entry that is alive now (expired ones count as absent).
pub(crate) fn fetch(sh: &Shard, keys: &[LockKey]) -> Vec<Option<Taken>> {
    let now = unix_ms();
    let mut st = sh.state.borrow_mut();
    keys.iter()
        .map(|k| {
            let db = &mut st.dbs[k.db as usize];
            if db.exists(&k.key, now) {
                db.copy_out(&k.key)
            } else {
                None
            }
        })
        .collect()
}

/// Gives the owner the access metadata (LRU clock / LFU counter) its keys got while a
/// read-only unit ran over copies of them, just before the unit's locks are released.
fn record_access(sh: &Shard, accessed: Vec<(LockKey, u32)>) {
    let mut st = sh.state.borrow_mut();
    for (k, access) in accessed {
        if let Some(e) = st.dbs[k.db as usize].keys.get_mut(&k.key[..]) {
            e.set_access(access);
        }
    }
}

/// Applies a transaction's results to the owner's keys and releases its locks.
pub(crate) fn write_back(
    sh: &Shard,
    tx: Option<TxId>,
    keys: Vec<LockKey>,
    entries: Option<Vec<Option<Taken>>>,
    bracket: Option<(TxId, usize)>,
    signalled: &[(usize, Bytes)],
) {
    if let Some(entries) = entries {
        let now = unix_ms();
        let mut st = sh.state.borrow_mut();
        // Every participant of a multi-shard write logs its part as one bracketed record, even
        // when nothing of it changed here: recovery applies the unit only if all parts exist.
        if let Some((id, n)) = bracket {
            crate::persistence::aof::tx_begin(&mut st, id, n);
        }
        for (k, new) in keys.into_iter().zip(entries) {
            let db = &mut st.dbs[k.db as usize];
            let unchanged = match (db.keys.get_mut(&k.key[..]), &new) {
                (None, None) => true,
                (Some(cur), Some(new))
                    if cur.value == new.entry.value
                        && deadline_of(&db.expires, &k.key, cur) == new.expire_at =>
                {
                    // Only read: the access the unit recorded (OBJECT IDLETIME/FREQ, LRU/LFU
                    // eviction) still belongs to the owner.
                    cur.set_access(new.entry.access());
                    true
                }
                _ => false,
            };
            if unchanged {
                continue;
            }
            match new {
                Some(e) => db.insert_entry_quiet(&k.key, e, now),
                None => {
                    db.remove(&k.key);
                }
            }
            // Counted as changes by the command that ran on the coordinator.
            crate::persistence::aof::log_key_state(&mut st, k.db as usize, &k.key);
            st.blocked.touched(k.db as usize, &k.key);
        }
        if let Some((id, _)) = bracket {
            crate::persistence::aof::tx_end(&mut st, id);
        }
        // Writes that signalled a key (Redis's `signalModifiedKey`) fail its WATCHes even when
        // the value came back byte-identical; changed values were signalled above.
        for (db, key) in signalled {
            st.dbs[*db].touch_watchers(key);
        }
        crate::pubsub::tracking::flush_bcast();
        if !st.in_unit && st.blocked.has_ready() {
            crate::shard::blocking::serve_ready(&mut st, &sh.globals, now);
        }
    }
    if let Some(tx) = tx {
        release_on(sh, tx);
    }
}

/// How long a shard held whole by another shard's unit spins for its next message before it
/// parks (pinned shards only).
const HELD_WHOLE_SPIN: std::time::Duration = std::time::Duration::from_micros(200);

/// Releases `tx`'s locks on this shard, and stops spinning for messages once nobody holds the
/// shard whole. Every release goes through here, so that no path leaves a shard spinning.
pub(crate) fn release_on(sh: &Shard, tx: TxId) {
    let whole = {
        let mut locks = sh.locks.borrow_mut();
        locks.release(tx);
        locks.whole_shard_locked()
    };
    if !whole {
        glommio::set_spin_before_park_override(None);
        // A global-mode script ran commands here with the shard's blocked clients held back
        // (`in_unit`, see `crate::scripting`): serve them now that its effects are whole.
        let mut st = sh.state.borrow_mut();
        if st.in_unit {
            st.in_unit = false;
            if st.blocked.has_ready() {
                crate::shard::blocking::serve_ready(&mut st, &sh.globals, unix_ms());
            }
        }
    }
}

/// Releases a transaction's locks on every shard it still holds if the coordinator goes away
/// mid-transaction (a panic or a dropped task): keys must never stay locked forever.
pub struct HeldLocks {
    shard: Rc<Shard>,
    tx: TxId,
    shards: Vec<usize>,
}

impl HeldLocks {
    pub fn tx(&self) -> TxId {
        self.tx
    }

    /// Releases everything still held, on every shard.
    pub async fn release_all(mut self) {
        while let Some(&s) = self.shards.first() {
            self.release(s).await;
        }
    }

    /// Releases the locks on `s` (locally or by message) and forgets them.
    async fn release(&mut self, s: usize) {
        self.shards.retain(|&x| x != s);
        let tx = self.tx;
        if s == self.shard.id {
            release_on(&self.shard, tx);
        } else {
            let _ = self.shard.router.send(s, ShardMsg::Release(tx)).await;
        }
    }
}

impl Drop for HeldLocks {
    fn drop(&mut self) {
        if self.shards.is_empty() {
            return;
        }
        let shards = std::mem::take(&mut self.shards);
        let (shard, tx) = (self.shard.clone(), self.tx);
        glommio::spawn_local(async move {
            for s in shards {
                if s == shard.id {
                    release_on(&shard, tx);
                } else {
                    let _ = shard.router.send(s, ShardMsg::Release(tx)).await;
                }
            }
        })
        .detach();
    }
}

/// Takes the locks on one shard, waiting if needed, and returns copies of the entries.
async fn lock_and_fetch(
    sh: &Rc<Shard>,
    s: usize,
    tx: TxId,
    keys: Vec<LockKey>,
    want: bool,
) -> Result<Vec<Option<Taken>>, &'static str> {
    let ids = keys.iter().map(LockKey::id).collect();
    let wanted = if want { keys } else { Vec::new() };
    lock_then(sh, s, tx, ids, move |owner| {
        if want {
            fetch(owner, &wanted)
        } else {
            Vec::new()
        }
    })
    .await
}

/// Takes the transaction's locks on `keys` at shard `s`, waiting for them if needed, then runs
/// `step` there with the locks held (they stay held) and returns its result. If the coordinator
/// has gone by then, the locks are released at once.
async fn lock_then<R: Send + 'static>(
    sh: &Rc<Shard>,
    s: usize,
    tx: TxId,
    keys: Vec<LockId>,
    step: impl FnOnce(&Shard) -> R + Send + 'static,
) -> Result<R, &'static str> {
    if s == sh.id {
        // Bound first: the lock table's borrow must end before the wait.
        let wait = sh.locks.borrow_mut().acquire(tx, LockReq::Keys(keys));
        if let Some(rx) = wait {
            sh.state.borrow_mut().stats.tx_lock_waits += 1;
            rx.await.map_err(|_| ERR_SHARD_GONE)?;
        }
        return Ok(step(sh));
    }
    let (reply, rx) = oneshot::channel();
    let task: crate::shard::router::TaskJob = Box::new(move |sh: Rc<Shard>| {
        // A free lock (the common case) is taken and the step run right here: the future
        // handed back is then an empty one, which costs no allocation.
        let wait = sh.locks.borrow_mut().acquire(tx, LockReq::Keys(keys));
        let Some(granted) = wait else {
            if reply.send(step(&sh)).is_err() {
                // The coordinator is gone: nobody will release for it.
                release_on(&sh, tx);
            }
            return Box::pin(std::future::poll_fn(|_| std::task::Poll::Ready(())));
        };
        sh.state.borrow_mut().stats.tx_lock_waits += 1;
        Box::pin(async move {
            if granted.await.is_err() {
                return;
            }
            if reply.send(step(&sh)).is_err() {
                release_on(&sh, tx);
            }
        })
    });
    sh.router
        .send(s, ShardMsg::Task(task))
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    rx.await.map_err(|_| ERR_SHARD_GONE)
}

/// One optimistic attempt on every shard at once: each shard grants all its keys or none.
/// `parts` holds, per shard in ascending order, the locks to take and the keys to copy out.
async fn try_lock_all(
    sh: &Rc<Shard>,
    tx: TxId,
    parts: Vec<(usize, Vec<LockId>, Vec<LockKey>)>,
    held: &mut HeldLocks,
) -> Result<Option<BTreeMap<usize, Vec<Option<Taken>>>>, &'static str> {
    let shards: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let mut futs = Vec::with_capacity(parts.len());
    for (s, ids, wanted) in parts {
        futs.push(sh.run_on(s, move |owner| {
            if owner
                .locks
                .borrow_mut()
                .try_acquire(tx, LockReq::Keys(ids))
                .is_err()
            {
                return None;
            }
            // A split command's locks copy nothing out (no clock read, no state borrow).
            Some(if wanted.is_empty() {
                Vec::new()
            } else {
                fetch(owner, &wanted)
            })
        }));
    }
    let results = futures::future::join_all(futs).await;
    let mut fetched = BTreeMap::new();
    let mut complete = true;
    for (s, r) in shards.into_iter().zip(results) {
        match r.map_err(|_| ERR_SHARD_GONE)? {
            Some(entries) => {
                held.shards.push(s);
                fetched.insert(s, entries);
            }
            None => complete = false,
        }
    }
    if complete {
        return Ok(Some(fetched));
    }
    sh.state.borrow_mut().stats.tx_lock_retries += 1;
    for s in fetched.into_keys() {
        held.release(s).await;
    }
    Ok(None)
}

/// Takes the locks of a plan (optimistically, then shard by shard on conflict), returning copies
/// of the entries when `want` is set.
async fn lock_plan(
    sh: &Rc<Shard>,
    tx: TxId,
    plan: &BTreeMap<usize, Vec<LockKey>>,
    held: &mut HeldLocks,
    want: bool,
) -> Result<BTreeMap<usize, Vec<Option<Taken>>>, &'static str> {
    // With at most one foreign shard, taking the shards in order costs the same messages and
    // the same single round trip as the optimistic attempt (the local part needs no message),
    // and it never has to give anything back: under contention on hot keys the optimistic
    // attempt fails nearly every time and pays an extra round trip and release per run.
    let foreign = plan.keys().filter(|&&s| s != sh.id).count();
    if foreign >= 2 {
        let parts = plan
            .iter()
            .map(|(&s, keys)| {
                let wanted = if want { keys.clone() } else { Vec::new() };
                (s, keys.iter().map(LockKey::id).collect(), wanted)
            })
            .collect();
        if let Some(f) = try_lock_all(sh, tx, parts, held).await? {
            return Ok(f);
        }
    }
    let mut f = BTreeMap::new();
    for (&s, keys) in plan {
        let entries = lock_and_fetch(sh, s, tx, keys.clone(), want).await?;
        held.shards.push(s);
        f.insert(s, entries);
    }
    Ok(f)
}

/// Runs a unit of commands atomically and in isolation, wherever its keys are. Each command's
/// reply is returned in order.
pub async fn run_atomic(
    sh: &Rc<Shard>,
    cmds: Vec<TxCmd>,
    resp3: bool,
    who: &Arc<ClientLabel>,
) -> Result<TxReplies, &'static str> {
    Ok(run_atomic_watched(sh, cmds, Vec::new(), None, resp3, who)
        .await?
        .unwrap_or_default())
}

/// Expires the watched keys whose deadline passed (which sets the WATCH flag, like Redis's
/// check at EXEC) and tells whether the block must be abandoned.
fn watch_broken(sh: &Shard, watched: &[LockKey], flag: &Option<Arc<AtomicBool>>) -> bool {
    let Some(flag) = flag else {
        return false;
    };
    let now = unix_ms();
    {
        let mut st = sh.state.borrow_mut();
        for k in watched {
            if sh.shard_of(&k.key) == sh.id {
                st.dbs[k.db as usize].exists(&k.key, now);
            }
        }
    }
    flag.load(Ordering::Acquire)
}

/// `run_atomic` for an EXEC block: the watched keys join the lock set, and the block is
/// abandoned (None) if the WATCH flag is set at the instant it would run.
pub async fn run_atomic_watched(
    sh: &Rc<Shard>,
    cmds: Vec<TxCmd>,
    watched: Vec<LockKey>,
    flag: Option<Arc<AtomicBool>>,
    resp3: bool,
    who: &Arc<ClientLabel>,
) -> Result<Option<TxReplies>, &'static str> {
    let mut plan = plan(sh, &cmds);
    for k in &watched {
        let keys = plan.entry(sh.shard_of(&k.key)).or_default();
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    if plan.len() <= 1 {
        let target = plan.keys().next().copied().unwrap_or(sh.id);
        let db = cmds.first().map_or(0, |c| c.db);
        let who = who.clone();
        let unit = move |owner: &Shard| {
            if watch_broken(owner, &watched, &flag) {
                None
            } else {
                Some(run_single_unit(owner, |owner| {
                    run_here(owner, &cmds, resp3, &who)
                }))
            }
        };
        if target == sh.id {
            wait_plan_unlocked(sh, db, &plan).await;
            return Ok(unit(sh.as_ref()));
        }
        let (reply, rx) = oneshot::channel();
        let task: crate::shard::router::TaskJob = Box::new(move |owner: Rc<Shard>| {
            Box::pin(async move {
                wait_plan_unlocked(&owner, db, &plan).await;
                let _ = reply.send(unit(&owner));
            })
        });
        sh.router
            .send(target, ShardMsg::Task(task))
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
        return rx.await.map_err(|_| ERR_SHARD_GONE);
    }

    let tx = sh.new_tx_id();
    let mut held = HeldLocks {
        shard: sh.clone(),
        tx,
        shards: Vec::new(),
    };
    let fetched = lock_plan(sh, tx, &plan, &mut held, true).await?;
    // Every watched key is locked and was checked for expiry by its owner while fetching: a
    // change to one happened before this point and shows in the flag.
    if flag.as_ref().is_some_and(|f| f.load(Ordering::Acquire)) {
        held.release_all().await;
        return Ok(None);
    }
    let read_only = cmds.iter().all(|c| c.spec.has(flags::READONLY));
    let body = |owner: &Shard| (run_here(owner, &cmds, resp3, who), !read_only);
    let replies = execute_with_copies(sh, &plan, fetched, body, Some(&mut held)).await?;
    Ok(Some(replies))
}

/// Runs a single-shard unit's synchronous step; its AOF records (when more than one) are
/// bracketed so that recovery applies all of them or none.
fn run_single_unit<R>(owner: &Shard, step: impl FnOnce(&Shard) -> R) -> R {
    use crate::persistence::aof::units;
    let mark = units::mark(&owner.state.borrow());
    let r = step(owner);
    if mark.is_some() {
        units::seal_single(&mut owner.state.borrow_mut(), mark, owner.new_tx_id());
    }
    r
}

/// Waits until no transaction holds any key of the plan on this shard.
async fn wait_plan_unlocked(sh: &Shard, _db: usize, plan: &BTreeMap<usize, Vec<LockKey>>) {
    let Some(keys) = plan.get(&sh.id) else {
        return;
    };
    loop {
        let blocked = {
            let locks = sh.locks.borrow();
            !locks.is_idle() && keys.iter().any(|k| locks.blocks(k.db as usize, &k.key))
        };
        if !blocked {
            return;
        }
        let rx = sh.locks.borrow_mut().wait_release();
        let _ = rx.await;
    }
}

/// Step 3 and 4 of the protocol: run `cmds` here with the foreign entries in place, then send
/// each owner its entries back. With `held`, the owners also release the transaction's locks;
/// without, the caller holds whole-shard locks and keeps them.
async fn execute_with_copies<R>(
    sh: &Rc<Shard>,
    plan: &BTreeMap<usize, Vec<LockKey>>,
    fetched: BTreeMap<usize, Vec<Option<Taken>>>,
    body: impl FnOnce(&Shard) -> (R, bool),
    mut held: Option<&mut HeldLocks>,
) -> Result<R, &'static str> {
    let me = sh.id;
    let (replies, results, write_back_entries, bracket, mut record) = {
        let now = unix_ms();
        {
            let mut st = sh.state.borrow_mut();
            st.stats.tx_multi_shard += 1;
            for (s, entries) in fetched {
                if s == me {
                    continue;
                }
                for (k, e) in plan[&s].iter().zip(entries) {
                    if let Some(e) = e {
                        st.dbs[k.db as usize].insert_entry_quiet(&k.key, e, now);
                    }
                }
            }
        }
        // The unit's AOF bracket: its id and how many shards log a part of it.
        let bracket = (
            held.as_ref().map_or_else(|| sh.new_tx_id(), |h| h.tx),
            plan.len(),
        );
        // The coordinator's own part is bracketed once the body says it writes back (a body
        // that does not, e.g. an escalated script, leaves its records unbracketed).
        let mark = crate::persistence::aof::tx_mark(&sh.state.borrow());
        crate::pubsub::tracking::start_unit();
        sh.state.borrow_mut().unit_signalled = Some(Vec::new());
        let (replies, write_back_entries) = body(sh);
        let mut signalled = sh
            .state
            .borrow_mut()
            .unit_signalled
            .take()
            .unwrap_or_default();
        // What the unit did to foreign keys, for client-side caching: it goes to their owners
        // with the write-back (see `crate::pubsub::tracking`).
        let record = crate::pubsub::tracking::finish_unit();
        let mut st = sh.state.borrow_mut();
        if write_back_entries && plan.contains_key(&me) {
            crate::persistence::aof::tx_wrap(&mut st, mark, bracket.0, bracket.1);
        }
        type Part = (usize, Vec<LockKey>, Vec<Option<Taken>>, Vec<(usize, Bytes)>);
        let mut results: Vec<Part> = Vec::new();
        for (&s, keys) in plan {
            if s == me {
                continue;
            }
            let entries = keys
                .iter()
                .map(|k| st.dbs[k.db as usize].remove(&k.key))
                .collect();
            // The keys of this owner the unit's writes signalled.
            let (theirs, rest): (Vec<_>, Vec<_>) = signalled
                .into_iter()
                .partition(|(_, k)| sh.shard_of(k) == s);
            signalled = rest;
            results.push((s, keys.clone(), entries, theirs));
        }
        (replies, results, write_back_entries, bracket, record)
    };
    let unit_client = record.client;
    let tx = held.as_ref().map(|h| h.tx);
    if plan.contains_key(&me) {
        if let Some(h) = held.as_mut() {
            h.release(me).await;
        }
    }
    // While any client tracks keys, the reply waits until the owners have their entries back:
    // the invalidations the unit causes are then queued before its reply, as in Redis.
    let wait_for_owners = crate::pubsub::tracking::active();
    let mut written_back = Vec::new();
    for (s, keys, entries, signalled) in results {
        if let Some(h) = held.as_mut() {
            h.shards.retain(|&x| x != s);
        }
        let reads = record.replays.remove(&s).unwrap_or_default();
        let job: crate::shard::router::Job = if write_back_entries {
            Box::new(move |owner: &Shard| {
                // The changes are the unit's client's, for NOLOOP.
                crate::pubsub::tracking::set_current(unit_client);
                write_back(owner, tx, keys, Some(entries), Some(bracket), &signalled);
                crate::pubsub::tracking::replay_unit(reads);
                crate::pubsub::tracking::set_current(0);
            })
        } else {
            // A read-only unit changes no value; only the accesses it made go back.
            let accessed: Vec<(LockKey, u32)> = keys
                .iter()
                .zip(entries)
                .filter_map(|(k, e)| Some((k.clone(), e?.entry.access())))
                .collect();
            Box::new(move |owner: &Shard| {
                record_access(owner, accessed);
                crate::pubsub::tracking::replay_unit(reads);
                write_back(owner, tx, keys, None, None, &[])
            })
        };
        let job: crate::shard::router::Job = if wait_for_owners {
            let (done, rx) = oneshot::channel();
            written_back.push(rx);
            Box::new(move |owner: &Shard| {
                job(owner);
                let _ = done.send(());
            })
        } else {
            job
        };
        sh.router
            .send(s, ShardMsg::Job(job))
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
    }
    for rx in written_back {
        let _ = rx.await;
    }
    Ok(replies)
}

/// Locks every shard whole for a connection-level command that must see (or replace) the whole
/// data set at once, unless it runs inside EXEC, whose block already holds every shard: then
/// there is nothing to take (None).
pub async fn lock_all_shards_unless_in_exec(c: &Conn) -> Result<Option<HeldLocks>, &'static str> {
    if c.in_exec.is_some() {
        return Ok(None);
    }
    lock_all_shards(&c.shard).await.map(Some)
}

/// Locks every shard whole, in ascending order (FLUSHALL, SWAPDB, EXEC blocks with
/// connection-level commands).
pub async fn lock_all_shards(sh: &Rc<Shard>) -> Result<HeldLocks, &'static str> {
    let tx = sh.new_tx_id();
    let mut held = HeldLocks {
        shard: sh.clone(),
        tx,
        shards: Vec::new(),
    };
    for s in 0..sh.nshards() {
        if s == sh.id {
            let wait = sh.locks.borrow_mut().acquire(tx, LockReq::All);
            if let Some(rx) = wait {
                rx.await.map_err(|_| ERR_SHARD_GONE)?;
            }
        } else {
            let (reply, rx) = oneshot::channel();
            let task: crate::shard::router::TaskJob = Box::new(move |owner: Rc<Shard>| {
                Box::pin(async move {
                    let wait = owner.locks.borrow_mut().acquire(tx, LockReq::All);
                    if let Some(rx) = wait {
                        if rx.await.is_err() {
                            return;
                        }
                    }
                    if reply.send(()).is_err() {
                        release_on(&owner, tx);
                    } else if owner.globals.shards_pinned {
                        // Held whole, this shard only serves the holder's messages until it
                        // lets go (global-mode scripts send one per command): waiting for them
                        // spinning on its own core beats a wake-up each.
                        glommio::set_spin_before_park_override(Some(HELD_WHOLE_SPIN));
                    }
                })
            });
            sh.router
                .send(s, ShardMsg::Task(task))
                .await
                .map_err(|_| ERR_SHARD_GONE)?;
            rx.await.map_err(|_| ERR_SHARD_GONE)?;
        }
        held.shards.push(s);
    }
    Ok(held)
}

/// Runs one keyed command while the caller holds every shard whole (inside a mixed EXEC).
pub async fn run_under_global_lock(
    sh: &Rc<Shard>,
    cmd: TxCmd,
    resp3: bool,
    who: &Arc<ClientLabel>,
) -> Result<TxReplies, &'static str> {
    let cmds = vec![cmd];
    let plan = plan(sh, &cmds);
    if plan.len() <= 1 {
        let target = plan.keys().next().copied().unwrap_or(sh.id);
        let who = who.clone();
        return sh
            .run_on(target, move |owner| run_here(owner, &cmds, resp3, &who))
            .await
            .map_err(|_| ERR_SHARD_GONE);
    }
    let mut fetched = BTreeMap::new();
    for (&s, keys) in &plan {
        let keys = keys.clone();
        let entries = sh
            .run_on(s, move |owner| fetch(owner, &keys))
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
        fetched.insert(s, entries);
    }
    let read_only = cmds[0].spec.has(flags::READONLY);
    let body = |owner: &Shard| (run_here(owner, &cmds, resp3, who), !read_only);
    execute_with_copies(sh, &plan, fetched, body, None).await
}

/// Where the keys of a body run by `run_atomic_body` are, as seen from the shard running it.
#[derive(Default, Clone, Debug)]
pub struct BodyKeys {
    /// Keys owned by other shards whose entries were copied into this shard's keyspace for the
    /// run (and are written back afterwards if the body asks for it).
    pub imported: Vec<LockKey>,
    /// Keys of this shard that this unit itself holds locked (the lock table shows them as
    /// held, but the body may use them).
    pub held_here: Vec<LockKey>,
}

/// Runs an arbitrary synchronous `body` as one atomic unit over `keys`, wherever they live:
/// - all keys on one shard (or none): `body` runs on that shard (the connection's when there
///   are none) once no transaction holds those keys, without locks (with `wait_whole_shard`,
///   also once no unit holds that shard whole);
/// - keys on several shards: the keys are locked, foreign entries are copied into this shard's
///   keyspace, `body` runs here, and the foreign entries go back to their owners if it returns
///   `true` (otherwise the copies are dropped: a read-only or abandoned run).
///
/// Scripts use this for their declared keys (see `crate::scripting`).
pub async fn run_atomic_body<R, F>(
    sh: &Rc<Shard>,
    keys: Vec<LockKey>,
    wait_whole_shard: bool,
    body: F,
) -> Result<R, &'static str>
where
    R: Send + 'static,
    F: FnOnce(&Shard, &BodyKeys) -> (R, bool) + Send + 'static,
{
    let plan = group_by_shard(sh, keys);
    if plan.len() <= 1 {
        let target = plan.keys().next().copied().unwrap_or(sh.id);
        let unit = move |owner: &Shard| {
            run_single_unit(owner, |owner| body(owner, &BodyKeys::default()).0)
        };
        if target == sh.id {
            wait_plan_unlocked(sh, 0, &plan).await;
            if wait_whole_shard {
                wait_whole_shard_free(sh).await;
            }
            return Ok(unit(sh.as_ref()));
        }
        let (reply, rx) = oneshot::channel();
        let task: crate::shard::router::TaskJob = Box::new(move |owner: Rc<Shard>| {
            Box::pin(async move {
                wait_plan_unlocked(&owner, 0, &plan).await;
                if wait_whole_shard {
                    wait_whole_shard_free(&owner).await;
                }
                let _ = reply.send(unit(&owner));
            })
        });
        sh.router
            .send(target, ShardMsg::Task(task))
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
        return rx.await.map_err(|_| ERR_SHARD_GONE);
    }
    let tx = sh.new_tx_id();
    let mut held = HeldLocks {
        shard: sh.clone(),
        tx,
        shards: Vec::new(),
    };
    let fetched = lock_plan(sh, tx, &plan, &mut held, true).await?;
    let me = sh.id;
    let keys = BodyKeys {
        imported: plan
            .iter()
            .filter(|(&s, _)| s != me)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect(),
        held_here: plan.get(&me).cloned().unwrap_or_default(),
    };
    let run = move |owner: &Shard| body(owner, &keys);
    execute_with_copies(sh, &plan, fetched, run, Some(&mut held)).await
}

/// `run_atomic_body`'s one-shard branch for a caller that already knows every key is on this
/// shard (EVALSHA's hot path): waits until no other unit holds one of `keys` of `db` (then, with
/// `wait_whole_shard`, until none holds the shard whole) and runs `step` here as one unit,
/// without building a plan or sending the body anywhere.
pub async fn run_local_unit<R>(
    sh: &Shard,
    db: usize,
    keys: &[Bytes],
    wait_whole_shard: bool,
    step: impl FnOnce(&Shard) -> R,
) -> R {
    loop {
        let blocked = {
            let locks = sh.locks.borrow();
            !locks.is_idle() && keys.iter().any(|k| locks.blocks(db, k))
        };
        if !blocked {
            break;
        }
        let rx = sh.locks.borrow_mut().wait_release();
        let _ = rx.await;
    }
    if wait_whole_shard {
        wait_whole_shard_free(sh).await;
    }
    run_single_unit(sh, step)
}

/// Waits until no unit holds this shard whole (keyless work that may touch any key).
async fn wait_whole_shard_free(sh: &Shard) {
    loop {
        if !sh.locks.borrow().whole_shard_locked() {
            return;
        }
        let rx = sh.locks.borrow_mut().wait_release();
        let _ = rx.await;
    }
}

/// A command split by shard: each owner runs the command on its own keys (`part_args`), so no
/// value is copied between shards. Every part runs under the transaction's locks, and no lock
/// is released before every lock has been granted (two-phase locking: past that lock point the
/// transaction is ordered before every later user of its keys on every shard it touches), so
/// no client can see one shard's part without the others. Returns each part's reply, in shard
/// order.
///
/// With at most one foreign shard the locks are taken in ascending shard order and each shard
/// runs its part as soon as its lock is granted; the last shard's part releases its locks as
/// soon as it has run, the earlier shards' locks go after its reply: one round trip to the
/// foreign shard, plus a release message when the foreign shard is not the last. That message
/// is saved where it can be: a coordinator above its one foreign shard first tries its own
/// locks and then the foreign shard's without waiting, the foreign part running and releasing
/// at once (its grant completes the set) and the coordinator's after its reply. Holding the
/// higher shard's locks while asking for the lower's breaks the ascending order, so that
/// request must not wait: a refusal gives everything back and the ordered way follows. With more,
/// one optimistic round takes every lock at once (falling back to the ordered way on refusal)
/// and a second runs the parts in parallel, each releasing its shard's locks once it has run.
/// The command is counted once, by its first part (INFO commandstats, slow log).
///
/// Allocates little on purpose: a ten-key MSET over two shards made 12 allocations here and
/// in its parts before (counted with a uprobe on malloc). Its vectors are sized up front: the
/// whole server made 14.5 mallocs and 3.3 reallocs per such MSET with the key list and the
/// per-shard lock lists grown as they filled, 13.9-14.7 (lock waits vary) and none sized (one
/// shard: 1 and none).
async fn run_split(
    sh: &Rc<Shard>,
    mut cmd: TxCmd,
    owners: &[(usize, usize)],
    resp3: bool,
    who: &Arc<ClientLabel>,
) -> Result<Vec<(BytesMut, Args)>, &'static str> {
    let mut plan = split_locks(&cmd, owners);
    let tx = sh.new_tx_id();
    let started = std::time::Instant::now();
    let mut held = HeldLocks {
        shard: sh.clone(),
        tx,
        shards: Vec::new(),
    };
    let nparts = plan.len();
    let first = plan.first().map_or(sh.id, |&(s, _)| s);
    let spec = cmd.spec;
    let db = cmd.db;
    // Each part's arguments: copies of the shared argument buffers for a foreign part; the
    // local part takes its arguments over (they are dropped here, where their buffer lives).
    // The parts' key positions are disjoint, so the order they are built in does not matter.
    let part_of = |cmd: &mut TxCmd, s: usize| SplitPart {
        cmd: TxCmd::new(spec, part_args(cmd, owners, s, s == sh.id), db),
        tx,
        nparts,
        counted: s == first,
        resp3,
        who: who.clone(),
    };
    sh.state.borrow_mut().stats.tx_multi_shard += 1;
    let foreign = plan.iter().filter(|&&(s, _)| s != sh.id).count();
    let mut replies = Vec::with_capacity(nparts);
    if foreign >= 2
        && try_lock_all(
            sh,
            tx,
            plan.iter()
                .map(|(s, ids)| (*s, ids.as_slice().to_vec(), Vec::new()))
                .collect(),
            &mut held,
        )
        .await?
        .is_some()
    {
        // Every lock is held: past the lock point, each part gives its locks back as soon as
        // it has run. (`held` keeps them listed until then: should this future be dropped
        // before a part was sent, its drop releases them; a second release is a no-op.)
        let futs: Vec<_> = plan
            .iter()
            .map(|&(s, _)| {
                let part = part_of(&mut cmd, s);
                sh.run_on(s, move |owner| part.run_and_release(owner))
            })
            .collect();
        let results = futures::future::join_all(futs).await;
        held.shards.clear();
        for r in results {
            replies.push(r.map_err(|_| ERR_SHARD_GONE)?);
        }
    } else {
        if foreign == 1 && nparts == 2 && plan[1].0 == sh.id {
            // The coordinator is the higher of two shards: try the pair without waiting.
            let remote = plan[0].0;
            let local_ids = std::mem::take(&mut plan[1].1).into_vec();
            let local = sh
                .locks
                .borrow_mut()
                .try_acquire(tx, LockReq::Keys(local_ids));
            if local.is_ok() {
                held.shards.push(sh.id);
                let ids = std::mem::take(&mut plan[0].1).into_vec();
                let part = part_of(&mut cmd, remote);
                let remote_reply = sh
                    .run_on(remote, move |owner| {
                        // Bound first: releasing borrows the lock table again.
                        let got = owner.locks.borrow_mut().try_acquire(tx, LockReq::Keys(ids));
                        got.ok().map(|()| part.run_and_release(owner))
                    })
                    .await
                    .map_err(|_| ERR_SHARD_GONE)?;
                if let Some(r) = remote_reply {
                    // Every lock was held when that part ran, and the coordinator's part
                    // runs before anything else here can look at its keys.
                    replies.push(r);
                    replies.push(part_of(&mut cmd, sh.id).run_and_release(sh));
                    held.shards.clear();
                    return finish_split(sh, cmd, owners, replies, started, who);
                }
                held.release(sh.id).await;
            }
            sh.state.borrow_mut().stats.tx_lock_retries += 1;
            // Refused somewhere (nothing ran): the ordered way, with the lists rebuilt (the
            // arguments of the coordinator's own part are still in place).
            plan = split_locks(&cmd, owners);
        }
        let last = plan.last().map(|&(s, _)| s);
        for (s, ids) in plan {
            let part = part_of(&mut cmd, s);
            // The last lock completes the set (the lock point): that part releases its
            // shard's locks as soon as it has run, without another message.
            let at_lock_point = Some(s) == last;
            let r = lock_then(sh, s, tx, ids.into_vec(), move |owner| {
                if at_lock_point {
                    part.run_and_release(owner)
                } else {
                    part.run(owner)
                }
            })
            .await?;
            if !at_lock_point {
                held.shards.push(s);
            }
            replies.push(r);
        }
    }
    held.release_all().await;
    finish_split(sh, cmd, owners, replies, started, who)
}

/// The locks of a split command per owning shard, in ascending shard order, each key once.
fn split_locks(cmd: &TxCmd, owners: &[(usize, usize)]) -> Vec<(usize, Distinct<LockId>)> {
    let mut plan: Vec<(usize, Distinct<LockId>)> = Vec::with_capacity(2);
    for &(p, s) in owners {
        let id = LockId::of(cmd.db as u32, &cmd.args[p]);
        match plan.iter_mut().find(|(x, _)| *x == s) {
            Some((_, ids)) => {
                ids.push(id);
            }
            None => {
                // Sized for every key this shard owns (duplicates included), so that
                // collecting them never regrows.
                let n = owners.iter().filter(|&&(_, o)| o == s).count();
                let mut ids = Distinct::with_capacity(n);
                ids.push(id);
                plan.push((s, ids));
            }
        }
    }
    plan.sort_unstable_by_key(|&(s, _)| s);
    plan
}

/// A split command's slow log entry, once every part has run; hands the parts' replies on.
fn finish_split(
    sh: &Shard,
    mut cmd: TxCmd,
    owners: &[(usize, usize)],
    mut replies: Vec<(BytesMut, Args)>,
    started: std::time::Instant,
    who: &Arc<ClientLabel>,
) -> Result<Vec<(BytesMut, Args)>, &'static str> {
    let spec = cmd.spec;
    let usec = started.elapsed().as_micros() as u64;
    if sh.state.borrow().slowlog_wants(usec) {
        // The arguments the parts took, back in their places.
        let shards = part_shards(owners);
        let step = spec.step.max(1) as usize;
        for (s, (_, part)) in shards.iter().zip(&mut replies) {
            let mut from = std::mem::take(part).into_iter().skip(1);
            for &(p, _) in owners.iter().filter(|&&(_, o)| o == *s) {
                let end = (p + step).min(cmd.args.len());
                for arg in &mut cmd.args[p..end] {
                    if let Some(a) = from.next() {
                        *arg = a;
                    }
                }
            }
        }
        sh.state
            .borrow_mut()
            .maybe_slowlog(&sh.globals, &cmd.args, usec, who);
    }
    Ok(replies)
}

/// The shards of a split command's parts, in the order its parts run and reply (ascending).
fn part_shards(owners: &[(usize, usize)]) -> Vec<usize> {
    let mut shards: Vec<usize> = owners.iter().map(|&(_, s)| s).collect();
    shards.sort_unstable();
    shards.dedup();
    shards
}

/// Each key position of `cmd` with the shard that owns the key, in argument order.
fn key_owners(sh: &Shard, cmd: &TxCmd) -> Vec<(usize, usize)> {
    // The key finder's iterator gives no size hint; a command has fewer keys than arguments.
    let mut owners = Vec::with_capacity(cmd.args.len());
    owners.extend(
        cmd.spec
            .keys(&cmd.args)
            .map(|p| (p, sh.shard_of(&cmd.args[p]))),
    );
    owners
}

/// The arguments of `cmd`'s part on shard `s`: its name and, for each of its keys owned by `s`
/// (`owners`: key position and owner) in argument order, the key with the arguments that go
/// with it (MSET's value). Duplicates stay, so EXISTS k k counts twice and MSET k 1 k 2
/// leaves 2. With `take`, the arguments are moved out of `cmd` (left empty there) instead of
/// shared.
fn part_args(cmd: &mut TxCmd, owners: &[(usize, usize)], s: usize, take: bool) -> Args {
    let step = cmd.spec.step.max(1) as usize;
    let mine = owners.iter().filter(|&&(_, o)| o == s);
    let mut args: Args = Vec::with_capacity(1 + step * mine.clone().count());
    args.push(cmd.args[0].clone());
    for &(p, _) in mine {
        let end = (p + step).min(cmd.args.len());
        if take {
            args.extend(cmd.args[p..end].iter_mut().map(std::mem::take));
        } else {
            args.extend(cmd.args[p..end].iter().cloned());
        }
    }
    args
}

/// One shard's part of a split command, sendable to that shard.
struct SplitPart {
    cmd: TxCmd,
    tx: TxId,
    nparts: usize,
    /// Whether this part counts the command in the statistics.
    counted: bool,
    resp3: bool,
    who: Arc<ClientLabel>,
}

impl SplitPart {
    /// Runs the part and gives back the transaction's locks on `owner` (a part that runs past
    /// the lock point, see `run_split`).
    fn run_and_release(self, owner: &Shard) -> (BytesMut, Args) {
        let tx = self.tx;
        let r = self.run(owner);
        release_on(owner, tx);
        r
    }

    /// Runs the part on `owner`, whose locks the transaction holds. A write's AOF records are
    /// bracketed as this shard's part of the unit (an empty bracket where the part changed
    /// nothing), so recovery applies all parts or none; a read logs nothing. The part's
    /// arguments come back with its replies, for the slow log.
    fn run(self, owner: &Shard) -> (BytesMut, Args) {
        let write = self.cmd.spec.has(flags::WRITE);
        let mark = if write {
            crate::persistence::aof::tx_mark(&owner.state.borrow())
        } else {
            None
        };
        {
            let mut st = owner.state.borrow_mut();
            st.split_part = !self.counted;
            st.in_split = true;
        }
        // One command: its reply is the whole buffer (no `TxReplies` ends to allocate).
        let mut reply = BytesMut::new();
        run_here_into(
            owner,
            std::slice::from_ref(&self.cmd),
            self.resp3,
            &self.who,
            &mut reply,
            |_| {},
        );
        let mut st = owner.state.borrow_mut();
        st.split_part = false;
        st.in_split = false;
        if write {
            crate::persistence::aof::tx_wrap(&mut st, mark, self.tx, self.nparts);
        }
        (reply, self.cmd.args)
    }
}

/// Whether `cmd` may run split by shard (see `run_split`). Not with keyspace notifications on:
/// each shard would publish its part's events whenever it finishes, where the copying path runs
/// the handler once, in argument order. MSET only where a part cannot be refused while the
/// others run: without a memory limit (a shard over its share would answer OOM) and without an
/// AOF (a shard whose log failed refuses writes); elsewhere the copying path checks once, on the
/// coordinator. An MSET with a key but no value is refused whole by the copying path.
fn split_allowed(sh: &Shard, kind: MultiKind, cmd: &TxCmd) -> bool {
    if crate::pubsub::notify::any_enabled() {
        return false;
    }
    match kind {
        MultiKind::SumInt | MultiKind::Gather => true,
        MultiKind::SetPairs => {
            let st = sh.state.borrow();
            cmd.args.len() % 2 == 1 && st.config.maxmemory == 0 && st.aof.is_none()
        }
    }
}

/// Runs `cmd` split by shard and writes to `out` its parts' replies combined as `kind` says:
/// DEL, UNLINK, EXISTS, TOUCH sum them; MSET answers the first part's error, if any, else OK;
/// MGET interleaves the parts' values back into argument order (a part that did not answer
/// with an array has its reply passed on). On an error nothing is written.
async fn run_split_command(
    sh: &Rc<Shard>,
    kind: MultiKind,
    cmd: TxCmd,
    resp3: bool,
    who: &Arc<ClientLabel>,
    out: &mut BytesMut,
) -> Result<(), &'static str> {
    let owners = key_owners(sh, &cmd);
    let replies = run_split(sh, cmd, &owners, resp3, who).await?;
    match kind {
        MultiKind::SumInt => {
            let mut total = 0;
            for (r, _) in &replies {
                total += parse_int_reply(r).ok_or(ERR_BAD_SUB_REPLY)?;
            }
            crate::protocol::Reply::new(out, resp3).int(total);
        }
        MultiKind::SetPairs => match replies.iter().find(|(r, _)| r.first() != Some(&b'+')) {
            Some((failed, _)) => out.extend_from_slice(failed),
            None => crate::protocol::Reply::new(out, resp3).ok(),
        },
        MultiKind::Gather => {
            let shards = part_shards(owners.as_slice());
            let mut items = Vec::with_capacity(replies.len());
            for (r, _) in &replies {
                match crate::protocol::reply::flat_array_items(r) {
                    Some(i) => items.push(i.into_iter()),
                    None => {
                        out.extend_from_slice(r);
                        return Ok(());
                    }
                }
            }
            // An error leaves `out` as it was.
            let mark = out.len();
            out.reserve(replies.iter().map(|(r, _)| r.len()).sum::<usize>() + 16);
            crate::protocol::Reply::new(out, resp3).array(owners.len());
            for &(_, s) in &owners {
                let item = shards
                    .binary_search(&s)
                    .ok()
                    .and_then(|part| items[part].next());
                let Some(item) = item else {
                    out.truncate(mark);
                    return Err(ERR_BAD_SUB_REPLY);
                };
                out.extend_from_slice(item);
            }
        }
    }
    Ok(())
}

const ERR_BAD_SUB_REPLY: &str = "ERR internal error: bad sub-reply";

fn parse_int_reply(buf: &[u8]) -> Option<i64> {
    if buf.first() != Some(&b':') || buf.len() < 3 {
        return None;
    }
    commands::args::parse_i64(&buf[1..buf.len() - 2])
}

/// Executes one command whose keys span shards, writing its reply to the connection.
pub async fn execute_cross_shard(c: &mut Conn, spec: &'static CommandSpec, args: Vec<Bytes>) {
    let cmd = TxCmd::new(spec, args, c.db);
    let shard = c.shard.clone();
    let label = c.label.clone();
    if let Some(kind) = spec.multi.filter(|&k| split_allowed(&shard, k, &cmd)) {
        if let Err(e) = run_split_command(&shard, kind, cmd, c.resp3, &label, &mut c.out).await {
            c.reply().error(e);
        }
        return;
    }
    match run_atomic(&shard, vec![cmd], c.resp3, &label).await {
        Ok(r) => c.out.extend_from_slice(&r.buf),
        Err(e) => c.reply().error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::Distinct;

    #[test]
    fn distinct_keeps_first_occurrences_in_order_below_and_past_the_linear_limit() {
        for n in [3usize, 16, 17, 1000] {
            let mut d = Distinct::default();
            // Every value three times, interleaved: 0 1 .. n-1, then again backwards, then again.
            for i in (0..n).chain((0..n).rev()).chain(0..n) {
                d.push(i);
            }
            assert_eq!(d.into_vec(), (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }
}

//! Server-assisted client-side caching (`CLIENT TRACKING`): which clients may hold a copy of
//! which keys, and the invalidation messages that tell them when a copy went stale.
//!
//! What it owns, per shard (thread-local, like `notify`, because keys change deep inside
//! `shard::db`, which has no path back to the shard):
//! - the tracking table of the default mode: each key this shard owns that a tracking client
//!   read, with the ids of those clients. Keys are tracked by name, whatever the database, as
//!   in Redis. An entry is dropped when its invalidation goes out, so a client hears about a
//!   key once per read;
//! - a replica of every tracking client of every shard (`Target`: where its messages go, its
//!   mode, its broadcast prefixes), installed on every shard before CLIENT TRACKING replies;
//! - the broadcast (BCAST) prefixes, with the keys changed under each since the last flush.
//!
//! Where it is called: `remember` from `shard::execute_keyed` after a read-only command of a
//! tracking client; `key_modified` from `Db::touch` (insertion, deletion, expiry, eviction, a
//! deadline change) and from `execute_keyed` for the keys a write command changed in place;
//! `flush_bcast` after each command and after active expiry. Messages go straight into the
//! clients' push channels (thread-safe), so a client on another shard gets them without a hop.
//!
//! Multi-shard units run on the coordinator with copies of foreign keys. While a unit runs
//! (`start_unit`), what it does to a foreign key, reads by a tracking client and changes, is
//! recorded in order (`finish_unit`) and handed to the owner with the unit's write-back, which
//! replays it after putting the entries back (`replay_unit`): a read then a write invalidates
//! the key, a write then a read leaves it remembered, as in Redis, and a key rewritten with an
//! equal value (which the write-back skips) is still invalidated. The owner holds the key's lock
//! from the copy until that write-back, so no other write can fall between the read and the
//! memory of it.
//!
//! Cost when no client tracks anything (the default): one thread-local load and a branch per
//! changed key, no allocation.
//!
//! What it must never do: touch the keyspace, await, or leave a key that a client read without
//! an entry until an invalidation for it has gone out (a stale cache is the one failure that
//! matters here; an extra invalidation only costs the client a re-read).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::{PushMsg, PushSender};
use crate::commands::{flags, CommandSpec};
use crate::shard::slot::SlotMap;

/// The channel a RESP2 client in pub/sub mode receives redirected invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// What a command's connection tells the shards about its tracking (carried in its
/// `ClientLabel`, so it travels with every batch and unit the connection sends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Track {
    /// The client's id while it has tracking on, else 0.
    pub id: u64,
    /// Whether the keys this command reads are to be remembered for the client: tracking in
    /// the default mode, and OPTIN with CLIENT CACHING YES or OPTOUT without CLIENT CACHING NO.
    pub remember: bool,
}

/// A connection's own tracking settings (CLIENT TRACKING's options, CLIENT CACHING).
#[derive(Clone, Debug, Default)]
pub struct ClientTracking {
    /// REDIRECT's client id (0: none).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) given for the next command or transaction.
    pub caching: bool,
    /// BCAST prefixes, in order (CLIENT TRACKINGINFO lists them so).
    pub prefixes: std::collections::BTreeSet<Bytes>,
    /// Set by a shard that found the redirect target gone.
    pub broken: Arc<AtomicBool>,
}

impl ClientTracking {
    /// What the shards need to know for client `id`'s next command.
    pub fn track(&self, id: u64) -> Track {
        Track {
            id,
            remember: !self.bcast
                && if self.optin {
                    self.caching
                } else {
                    !self.caching
                },
        }
    }

    /// CLIENT TRACKINGINFO's flags, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec!["on"];
        if self.bcast {
            f.push("bcast");
        }
        if self.optin {
            f.push("optin");
            if self.caching {
                f.push("caching-yes");
            }
        }
        if self.optout {
            f.push("optout");
            if self.caching {
                f.push("caching-no");
            }
        }
        if self.noloop {
            f.push("noloop");
        }
        if self.broken.load(Ordering::Acquire) {
            f.push("broken_redirect");
        }
        f
    }
}

/// Whether one prefix starts the other (Redis's `stringCheckPrefix`): two such BCAST prefixes
/// of one client would send it the same key twice.
pub fn prefixes_overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// One tracking client, as every shard sees it.
#[derive(Clone)]
pub struct Target {
    /// The client's own push channel.
    pub own: PushSender,
    /// REDIRECT: the id of the client that receives the invalidations, and its channel.
    pub redirect: Option<(u64, PushSender)>,
    /// Set when the redirect target turned out to be gone (CLIENT TRACKINGINFO's
    /// `broken_redirect`, CLIENT LIST's flag R).
    pub broken: Arc<AtomicBool>,
    pub bcast: bool,
    pub noloop: bool,
    /// The tracking client speaks RESP3: the "everything" invalidation of a flush carries its
    /// null (`_` or `$-1`), wherever it is sent.
    pub resp3: bool,
    /// BCAST prefixes (the empty prefix when none was given).
    pub prefixes: Vec<Bytes>,
}

impl Target {
    /// Sends one invalidation (`keys` None: every key), from a BCAST `prefix` or not.
    fn send(&self, keys: Option<Vec<Bytes>>, prefix: Option<Bytes>) {
        match &self.redirect {
            None => {
                self.own.send(PushMsg::Invalidate {
                    keys,
                    prefix,
                    redirected: false,
                    null_resp3: self.resp3,
                });
            }
            Some((id, to)) => {
                let sent = to.send(PushMsg::Invalidate {
                    keys,
                    prefix,
                    redirected: true,
                    null_resp3: self.resp3,
                });
                if !sent {
                    self.broken.store(true, Ordering::Release);
                    self.own.send(PushMsg::RedirBroken { id: *id });
                }
            }
        }
    }
}

/// What a multi-shard unit did to a key another shard owns: (owner, key, the tracking client
/// that read it, or None for a change).
pub type ForeignEvent = (usize, Bytes, Option<u64>);

/// One broadcast prefix: its clients and the keys changed under it since the last flush, each
/// with the client whose command changed it (0: none, e.g. expiry), for NOLOOP.
#[derive(Default)]
struct Prefix {
    clients: Vec<u64>,
    pending: BTreeMap<Bytes, u64>,
}

#[derive(Default)]
struct State {
    shard: usize,
    slots: Option<Arc<SlotMap>>,
    clients: HashMap<u64, Target, ahash::RandomState>,
    table: HashMap<Bytes, Vec<u64>, ahash::RandomState>,
    /// Sum of the clients listed in `table` (INFO's tracking_total_items).
    items: usize,
    prefixes: BTreeMap<Bytes, Prefix>,
    /// While a multi-shard unit runs here: what it did to keys owned by other shards, in order.
    foreign: Option<Vec<ForeignEvent>>,
    /// This shard's share of `tracking-table-max-keys` (0: no limit).
    max_keys: usize,
}

impl State {
    fn owns(&self, key: &[u8]) -> bool {
        self.slots
            .as_ref()
            .is_none_or(|s| s.shard_of_key(key) == self.shard)
    }

    /// Inside a unit, notes what it did to a foreign key (outside one there are no copies).
    fn record_foreign(&mut self, key: &[u8], read_by: Option<u64>) {
        let owner = self.slots.as_ref().map_or(0, |m| m.shard_of_key(key));
        if let Some(events) = self.foreign.as_mut() {
            events.push((owner, Bytes::copy_from_slice(key), read_by));
        }
    }

    fn refresh_active(&self) {
        let on = !self.clients.is_empty() || !self.table.is_empty() || !self.prefixes.is_empty();
        ACTIVE.with(|a| a.set(on));
    }

    /// Sends the default-mode invalidation of `key` to every client that read it, and forgets
    /// the key.
    fn invalidate_tracked(&mut self, key: &[u8]) {
        let Some((key, ids)) = self.table.remove_entry(key) else {
            return;
        };
        self.items -= ids.len();
        let current = CURRENT.with(|c| c.get());
        for id in ids {
            let Some(t) = self.clients.get(&id) else {
                continue;
            };
            // A client that switched to BCAST since it read the key gets only broadcasts.
            if t.bcast || (t.noloop && id == current) {
                continue;
            }
            t.send(Some(vec![key.clone()]), None);
        }
    }

    /// Evicts tracked keys past this shard's share of `tracking-table-max-keys`, each with its
    /// invalidation (Redis's `trackingLimitUsedSlots`), at most `EVICT_STEP` at a time so that
    /// lowering the limit under a big table does not stall the shard: the cron goes on.
    fn enforce_limit(&mut self) {
        if self.max_keys == 0 {
            return;
        }
        for _ in 0..EVICT_STEP {
            if self.table.len() <= self.max_keys {
                break;
            }
            let Some(key) = self.table.keys().next().cloned() else {
                break;
            };
            let current = CURRENT.with(|c| c.replace(0));
            self.invalidate_tracked(&key);
            CURRENT.with(|c| c.set(current));
        }
    }
}

/// Most tracked keys one call evicts past the limit.
const EVICT_STEP: usize = 1000;

thread_local! {
    /// Whether this shard has anything to do when a key changes.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The tracking client whose command runs on this shard now (0: none), for NOLOOP.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// The last tracking client whose command ran here: a multi-shard unit hands it to the
    /// owners with its write-back, so that NOLOOP covers the keys it changed there.
    static UNIT_CLIENT: Cell<u64> = const { Cell::new(0) };
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Tells the running shard which keys are its own (from `Shard::new`). Without it (unit tests
/// of a lone `ShardState`) every key counts as this shard's.
pub fn install(shard: usize, slots: Arc<SlotMap>) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.shard = shard;
        s.slots = Some(slots);
    });
}

/// Applies `tracking-table-max-keys` (the whole server's limit) to this shard's table.
pub fn set_max_keys(limit: u64, nshards: usize) {
    let share = if limit == 0 {
        0
    } else {
        (limit as usize).div_ceil(nshards.max(1))
    };
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.max_keys = share;
        s.enforce_limit();
    });
}

/// The shard's periodic work: broadcasts still held (changes made outside a command, e.g. by
/// active expiry) go out, and the table keeps to its limit.
pub fn cron() {
    if !ACTIVE.with(|a| a.get()) {
        return;
    }
    flush_bcast();
    STATE.with(|s| s.borrow_mut().enforce_limit());
}

/// Installs (or replaces) a tracking client in this shard's replica.
pub fn register(id: u64, target: Target) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        remove_from_prefixes(&mut s, id);
        if target.bcast {
            for p in &target.prefixes {
                s.prefixes.entry(p.clone()).or_default().clients.push(id);
            }
        }
        s.clients.insert(id, target);
        s.refresh_active();
    });
}

/// Removes a client from this shard's replica (tracking off, RESET, disconnection). Its
/// entries in the table stay until their keys change, as in Redis; nothing is sent to it.
pub fn unregister(id: u64) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.clients.remove(&id).is_some() {
            remove_from_prefixes(&mut s, id);
        }
        s.refresh_active();
    });
}

fn remove_from_prefixes(s: &mut State, id: u64) {
    s.prefixes.retain(|_, p| {
        p.clients.retain(|&c| c != id);
        !p.clients.is_empty()
    });
}

/// Whether this shard has tracking work at all (a tracking client anywhere, or remembered
/// reads here).
#[inline]
pub fn active() -> bool {
    ACTIVE.with(|a| a.get())
}

/// Marks the start (`id` of a tracking client) or the end (0) of a command on this shard.
#[inline]
pub fn set_current(id: u64) {
    CURRENT.with(|c| c.set(id));
}

/// Remembers that client `id` read `key` (a read-only command's key, whether it exists or not).
pub fn remember(key: &Bytes, id: u64) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if !s.owns(key) {
            s.record_foreign(key, Some(id));
            return;
        }
        remember_here(&mut s, key, id);
        s.refresh_active();
        s.enforce_limit();
    });
}

fn remember_here(s: &mut State, key: &Bytes, id: u64) {
    let ids = s.table.entry(key.clone()).or_default();
    if !ids.contains(&id) {
        ids.push(id);
        s.items += 1;
    }
}

/// A multi-shard unit starts running here: record what it does to foreign keys.
pub fn start_unit() {
    UNIT_CLIENT.with(|c| c.set(0));
    STATE.with(|s| s.borrow_mut().foreign = Some(Vec::new()));
}

/// What a unit that ran here hands to the owners of its foreign keys (see `finish_unit`).
pub struct UnitRecord {
    /// Per owner: what the unit did to its keys, in order (`replay_unit`).
    pub replays: BTreeMap<usize, Vec<(Bytes, Option<u64>)>>,
    /// The tracking client whose commands ran in the unit (0: none), for NOLOOP.
    pub client: u64,
}

/// The unit is over: what it did to foreign keys, grouped by owner, and whose it was.
pub fn finish_unit() -> UnitRecord {
    let events = STATE.with(|s| s.borrow_mut().foreign.take().unwrap_or_default());
    let mut replays: BTreeMap<usize, Vec<(Bytes, Option<u64>)>> = BTreeMap::new();
    for (owner, key, read_by) in events {
        replays.entry(owner).or_default().push((key, read_by));
    }
    UnitRecord {
        replays,
        client: UNIT_CLIENT.with(|c| c.replace(0)),
    }
}

/// On the owner, after a unit's write-back: replays the unit's reads and changes of this
/// shard's keys in their order (see the module doc).
pub fn replay_unit(events: Vec<(Bytes, Option<u64>)>) {
    if events.is_empty() {
        return;
    }
    for (key, read_by) in events {
        match read_by {
            Some(id) => STATE.with(|s| {
                let mut s = s.borrow_mut();
                remember_here(&mut s, &key, id);
                s.refresh_active();
            }),
            None => key_modified(&key),
        }
    }
    STATE.with(|s| s.borrow_mut().enforce_limit());
    flush_bcast();
}

/// A key changed (Redis's `trackingInvalidateKey`): clients that read it are told, and
/// broadcast prefixes that cover it collect it for the next `flush_bcast`. A change to another
/// shard's key (a copy inside a multi-shard unit) is recorded for its owner.
#[inline]
pub fn key_modified(key: &[u8]) {
    if !ACTIVE.with(|a| a.get()) {
        return;
    }
    modified_slow(key);
}

#[cold]
#[inline(never)]
fn modified_slow(key: &[u8]) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if !s.owns(key) {
            s.record_foreign(key, None);
            return;
        }
        if !s.prefixes.is_empty() {
            let current = CURRENT.with(|c| c.get());
            let mut owned: Option<Bytes> = None;
            let mut collect = |prefix: &mut Prefix| {
                let k = owned.get_or_insert_with(|| Bytes::copy_from_slice(key));
                prefix.pending.insert(k.clone(), current);
            };
            // Few prefixes: try each; many: look up each of the key's own prefixes, so that a
            // client with thousands of prefixes does not cost every write that many compares.
            if s.prefixes.len() <= key.len() + 1 {
                for (p, prefix) in s.prefixes.iter_mut() {
                    if key.starts_with(p) {
                        collect(prefix);
                    }
                }
            } else {
                for end in 0..=key.len() {
                    if let Some(prefix) = s.prefixes.get_mut(&key[..end]) {
                        collect(prefix);
                    }
                }
            }
        }
        s.invalidate_tracked(key);
        s.refresh_active();
    });
}

/// After a command on this shard: remembers the keys a read-only command of a tracking client
/// read (Redis's `trackingRememberKeys`, EVAL_RO and friends excepted: only the commands they
/// call count), invalidates the keys a write command changed (`wrote`: it changed something;
/// changes of whole entries were already seen through `Db::touch`, this catches the values
/// changed in place: those of its written keys that `exists` still finds; a key the command
/// deleted was seen going), and sends the broadcasts it caused.
#[inline]
pub fn after_command(
    spec: &CommandSpec,
    args: &[Bytes],
    track: Track,
    wrote: bool,
    exists: impl Fn(&[u8]) -> bool,
) {
    if track.id == 0 && !ACTIVE.with(|a| a.get()) {
        return;
    }
    after_command_slow(spec, args, track, wrote, &exists);
}

#[cold]
#[inline(never)]
fn after_command_slow(
    spec: &CommandSpec,
    args: &[Bytes],
    track: Track,
    wrote: bool,
    exists: &dyn Fn(&[u8]) -> bool,
) {
    if track.id != 0 {
        UNIT_CLIENT.with(|c| c.set(track.id));
    }
    if track.remember
        && spec.has(flags::READONLY)
        && !matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        for p in spec.keys(args) {
            remember(&args[p], track.id);
        }
    }
    if wrote && ACTIVE.with(|a| a.get()) {
        for p in written_positions(spec, args) {
            if exists(&args[p]) {
                modified_slow(&args[p]);
            }
        }
    }
    flush_bcast();
    set_current(0);
}

/// The positions of the keys a write command may have changed: those its key specs do not
/// declare read-only (SINTERSTORE's destination, not its sources). All of its keys when the
/// specs cannot be followed: an extra invalidation costs a client a re-read, a missing one a
/// stale cache.
fn written_positions(spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    let specs = spec.all_key_specs();
    if !specs.is_empty() && !specs.iter().any(|k| k.has("variable_flags")) {
        if let Some(found) = crate::commands::keys_by_specs(&specs, args) {
            return found
                .into_iter()
                .filter(|&(_, j)| !specs[j].has("RO"))
                .map(|(p, _)| p)
                .collect();
        }
    }
    spec.keys(args).collect()
}

/// Sends the broadcast invalidations collected since the last call: per prefix, one message to
/// each of its clients with the changed keys in order (without the client's own changes under
/// NOLOOP).
pub fn flush_bcast() {
    if !ACTIVE.with(|a| a.get()) {
        return;
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        for (name, prefix) in s.prefixes.iter_mut() {
            if prefix.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut prefix.pending);
            for id in &prefix.clients {
                let Some(t) = s.clients.get(id) else {
                    continue;
                };
                let keys: Vec<Bytes> = pending
                    .iter()
                    .filter(|(_, &by)| !(t.noloop && by == *id))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !keys.is_empty() {
                    t.send(Some(keys), Some(name.clone()));
                }
            }
        }
    });
}

/// FLUSHDB / FLUSHALL on this shard: every remembered read is void (the clients hear it once,
/// from `invalidate_everything`).
pub fn forget_all() {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.table.clear();
        s.items = 0;
        for p in s.prefixes.values_mut() {
            p.pending.clear();
        }
        s.refresh_active();
    });
}

/// Tells every tracking client that every key may have changed (Redis's
/// `trackingInvalidateKeysOnFlush`). Called once per flush, on the flushing client's shard.
pub fn invalidate_everything() {
    STATE.with(|s| {
        let s = s.borrow();
        for t in s.clients.values() {
            t.send(None, None);
        }
    });
}

/// INFO: (tracking_clients, tracking_total_keys, tracking_total_items,
/// tracking_total_prefixes) as this shard sees them. Clients and prefixes are replicas (the
/// same on every shard); keys and items are this shard's own.
pub fn stats() -> (usize, usize, usize, usize) {
    STATE.with(|s| {
        let s = s.borrow();
        (s.clients.len(), s.table.len(), s.items, s.prefixes.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(
        bcast: bool,
        noloop: bool,
        prefixes: &[&str],
    ) -> (Target, futures::channel::mpsc::UnboundedReceiver<PushMsg>) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let t = Target {
            own: PushSender::new(tx),
            redirect: None,
            broken: Default::default(),
            bcast,
            noloop,
            resp3: true,
            prefixes: prefixes
                .iter()
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect(),
        };
        (t, rx)
    }

    fn drain(
        rx: &mut futures::channel::mpsc::UnboundedReceiver<PushMsg>,
    ) -> Vec<Option<Vec<Bytes>>> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            if let PushMsg::Invalidate { keys, .. } = m {
                out.push(keys);
            }
        }
        out
    }

    fn k(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_read_key_is_invalidated_once_and_noloop_skips_the_writer() {
        let (t1, mut rx1) = target(false, false, &[]);
        let (t2, mut rx2) = target(false, true, &[]);
        register(1, t1);
        register(2, t2);
        remember(&k("a"), 1);
        remember(&k("a"), 2);
        remember(&k("a"), 1);
        assert_eq!(stats(), (2, 1, 2, 0));
        set_current(2);
        key_modified(b"a");
        set_current(0);
        assert_eq!(drain(&mut rx1), vec![Some(vec![k("a")])]);
        assert!(drain(&mut rx2).is_empty());
        key_modified(b"a");
        assert!(drain(&mut rx1).is_empty());
        assert_eq!(stats(), (2, 0, 0, 0));
        unregister(1);
        unregister(2);
    }

    #[test]
    fn broadcasts_collect_keys_per_prefix_in_order() {
        let (t, mut rx) = target(true, false, &["u:", "v:"]);
        register(7, t);
        for key in ["u:2", "v:1", "w", "u:1"] {
            key_modified(key.as_bytes());
        }
        flush_bcast();
        assert_eq!(
            drain(&mut rx),
            vec![Some(vec![k("u:1"), k("u:2")]), Some(vec![k("v:1")])]
        );
        assert_eq!(stats().3, 2);
        unregister(7);
        assert_eq!(stats(), (0, 0, 0, 0));
        assert!(!ACTIVE.with(|a| a.get()));
    }

    #[test]
    fn the_table_keeps_to_its_share_of_the_limit() {
        let (t, mut rx) = target(false, false, &[]);
        register(3, t);
        set_max_keys(2, 1);
        for key in ["a", "b", "c"] {
            remember(&k(key), 3);
        }
        assert_eq!(stats().1, 2);
        assert_eq!(drain(&mut rx).len(), 1);
        set_max_keys(0, 1);
        for i in 0..2500 {
            remember(&Bytes::from(format!("k{i}")), 3);
        }
        // Lowering the limit under a big table evicts a step at a time; the cron goes on.
        set_max_keys(4, 2);
        assert_eq!(stats().1, 2502 - EVICT_STEP);
        cron();
        cron();
        assert_eq!(stats().1, 2);
        assert_eq!(drain(&mut rx).len(), 2500);
        set_max_keys(0, 1);
        forget_all();
        unregister(3);
    }
}

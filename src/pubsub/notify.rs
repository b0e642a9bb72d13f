//! Keyspace and keyevent notifications (`notify-keyspace-events`).
//!
//! What it owns: the event classes and their flag letters (parsing and Redis's canonical
//! string), the running shard's copy of the enabled classes, and the shard's replica of every
//! subscription that can receive a notification: the `__keyspace@...`/`__keyevent@...` channels
//! and all patterns of every connection on every shard. `notify` is called where Redis calls
//! `notifyKeyspaceEvent` (command handlers, lazy and active expiry, eviction, key creation) and
//! delivers at once, on the calling shard's thread, straight into the subscribers' push channels
//! (which are thread-safe): a command's notifications are therefore queued for every subscriber,
//! in the order they were emitted, before the command's own reply is written. A later message
//! from anyone (a PUBLISH after the reply) arrives after them, as in Redis.
//!
//! The state is thread-local because a shard is one thread and expiry and key creation happen
//! deep inside `shard::db`, which has no path back to the shard. SUBSCRIBE/PSUBSCRIBE update
//! the replicas of every shard (and wait for it) before confirming; UNSUBSCRIBE and disconnects
//! remove them the same way.
//!
//! Cost when notifications are off (the default): one thread-local load and a branch per call,
//! no allocation. When they are on but nobody can receive them, also no allocation.
//!
//! What it must never do: touch the keyspace, await, or publish the same event twice (the
//! transaction layer runs a multi-shard command's handler once, on the coordinator, with copies
//! of the foreign entries, so its notifications come from there with their own db and key;
//! copies placed or written back by that layer use `Db`'s quiet insertion). Scripts that may be
//! rolled back hold their notifications in a capture buffer until they are known to stand.

use std::cell::{Cell, RefCell};

use bytes::Bytes;

use super::{Kind, PushSender, Registry};

/// Event classes: the bits of `notify-keyspace-events`, as Redis numbers them.
pub mod class {
    /// `K`: publish on `__keyspace@<db>__:<key>`.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: publish on `__keyevent@<db>__:<event>`.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`
    pub const STRING: u32 = 1 << 3;
    /// `l`
    pub const LIST: u32 = 1 << 4;
    /// `s`
    pub const SET: u32 = 1 << 5;
    /// `h`
    pub const HASH: u32 = 1 << 6;
    /// `z`
    pub const ZSET: u32 = 1 << 7;
    /// `x`: a key expired (lazily or actively).
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: a key was evicted under `maxmemory`.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`
    pub const STREAM: u32 = 1 << 10;
    /// `m`: a read missed (not part of `A`).
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`
    pub const MODULE: u32 = 1 << 12;
    /// `n`: a key was created (not part of `A`).
    pub const NEW: u32 = 1 << 13;
    /// `A`: alias for "g$lshzxetd".
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

use class::*;

/// Type classes in the order Redis prints them when not all of `A` is set.
const TYPE_CHARS: [(u32, u8); 11] = [
    (GENERIC, b'g'),
    (STRING, b'$'),
    (LIST, b'l'),
    (SET, b's'),
    (HASH, b'h'),
    (ZSET, b'z'),
    (EXPIRED, b'x'),
    (EVICTED, b'e'),
    (STREAM, b't'),
    (MODULE, b'd'),
    (NEW, b'n'),
];

/// Redis's `keyspaceEventsStringToFlags`: None for an unknown letter.
pub fn parse_flags(s: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in s {
        flags |= match c {
            b'A' => ALL,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b'm' => KEY_MISS,
            _ => TYPE_CHARS.iter().find(|(_, ch)| *ch == c)?.0,
        };
    }
    Some(flags)
}

/// Redis's `keyspaceEventsFlagsToString`, including its quirk that `n` is not printed when all
/// of `A` is set (so "KEAn" reads back as "AKE").
pub fn flags_to_string(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (bit, ch) in TYPE_CHARS {
            if flags & bit != 0 {
                out.push(ch as char);
            }
        }
    }
    for (bit, ch) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(ch);
        }
    }
    out
}

thread_local! {
    /// The enabled classes of this shard, or 0 when nothing can be published (no `K` and no
    /// `E`): `notify` tests one bit of it.
    static ENABLED: Cell<u32> = const { Cell::new(0) };
    /// `K`/`E` bits of the configuration (where to publish).
    static TARGETS: Cell<u32> = const { Cell::new(0) };
    static STATE: RefCell<State> = RefCell::new(State::default());
}

#[derive(Default)]
struct State {
    /// Replica of every subscription that can receive a notification, all shards included.
    subs: Registry,
    /// While a capture is open: notifications held back as (channel, message).
    capture: Option<Vec<(Bytes, Bytes)>>,
}

/// Installs this shard's `notify-keyspace-events` (from `shard::memory::apply_config`).
pub fn set_flags(flags: u32) {
    let targets = flags & (KEYSPACE | KEYEVENT);
    TARGETS.with(|t| t.set(targets));
    ENABLED.with(|e| e.set(if targets == 0 { 0 } else { flags & !targets }));
}

/// Whether events of `class` are published on this shard.
#[inline]
pub fn enabled(class: u32) -> bool {
    ENABLED.with(|e| e.get()) & class != 0
}

/// Whether any event class at all is published on this shard.
#[inline]
pub fn any_enabled() -> bool {
    ENABLED.with(|e| e.get()) != 0
}

/// Publishes `event` about `key` in database `db` if its class is enabled (Redis's
/// `notifyKeyspaceEvent`).
#[inline]
pub fn notify(cls: u32, event: &'static str, key: &[u8], db: usize) {
    if ENABLED.with(|e| e.get()) & cls == 0 {
        return;
    }
    emit(event, key, db);
}

#[cold]
#[inline(never)]
fn emit(event: &'static str, key: &[u8], db: usize) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.subs.is_empty() && s.capture.is_none() {
            return;
        }
        let targets = TARGETS.with(|t| t.get());
        let mut prefix = itoa::Buffer::new();
        let dbs = prefix.format(db).as_bytes();
        let event_b = Bytes::from_static(event.as_bytes());
        if targets & KEYSPACE != 0 {
            let mut ch = Vec::with_capacity(14 + dbs.len() + key.len());
            ch.extend_from_slice(b"__keyspace@");
            ch.extend_from_slice(dbs);
            ch.extend_from_slice(b"__:");
            ch.extend_from_slice(key);
            deliver(&mut s, Bytes::from(ch), event_b.clone());
        }
        if targets & KEYEVENT != 0 {
            let mut ch = Vec::with_capacity(14 + dbs.len() + event.len());
            ch.extend_from_slice(b"__keyevent@");
            ch.extend_from_slice(dbs);
            ch.extend_from_slice(b"__:");
            ch.extend_from_slice(event.as_bytes());
            deliver(&mut s, Bytes::from(ch), Bytes::copy_from_slice(key));
        }
    });
}

fn deliver(s: &mut State, channel: Bytes, payload: Bytes) {
    match s.capture.as_mut() {
        Some(held) => held.push((channel, payload)),
        None => {
            s.subs.publish(false, &channel, &payload);
        }
    }
}

/// Starts holding this thread's notifications back (a script that may still be rolled back).
/// Returns false, and does nothing, if a capture is already open (the outer one decides).
pub fn capture_begin() -> bool {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.capture.is_some() {
            return false;
        }
        s.capture = Some(Vec::new());
        true
    })
}

/// Ends the capture: publishes what it held (`keep`) or drops it (a rolled-back run).
pub fn capture_end(keep: bool) {
    let held = STATE.with(|s| s.borrow_mut().capture.take());
    if !keep {
        return;
    }
    STATE.with(|s| {
        let s = s.borrow();
        for (channel, payload) in held.into_iter().flatten() {
            s.subs.publish(false, &channel, &payload);
        }
    });
}

/// Whether a subscription can receive notifications (and so belongs in the replicas).
pub fn relevant(kind: Kind, name: &[u8]) -> bool {
    match kind {
        Kind::Pattern => true,
        Kind::Channel => name.starts_with(b"__keyspace@") || name.starts_with(b"__keyevent@"),
        Kind::Shard => false,
    }
}

/// Adds a subscription to this shard's replica.
pub fn replica_add(kind: Kind, name: Bytes, client: u64, tx: PushSender) {
    STATE.with(|s| s.borrow_mut().subs.add(kind, name, (client, tx)));
}

/// Removes subscriptions from this shard's replica.
pub fn replica_remove(kind: Kind, names: &[Bytes], client: u64) {
    STATE.with(|s| s.borrow_mut().subs.remove_all(kind, names, client));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::PushMsg;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(parse_flags(b""), Some(0));
        assert_eq!(
            parse_flags(b"KEA").map(flags_to_string).as_deref(),
            Some("AKE")
        );
        assert_eq!(
            parse_flags(b"KEAn").map(flags_to_string).as_deref(),
            Some("AKE")
        );
        assert_eq!(
            parse_flags(b"Elg$").map(flags_to_string).as_deref(),
            Some("g$lE")
        );
        assert_eq!(
            parse_flags(b"mnK").map(flags_to_string).as_deref(),
            Some("nKm")
        );
        assert_eq!(parse_flags(b"Kq"), None);
    }

    #[test]
    fn notifications_reach_the_replica_in_order_and_only_when_enabled() {
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        replica_add(
            Kind::Pattern,
            Bytes::from_static(b"__key*"),
            7,
            PushSender::new(tx),
        );
        set_flags(0);
        notify(GENERIC, "del", b"k", 0);
        set_flags(parse_flags(b"Kg").unwrap());
        notify(STRING, "set", b"k", 0);
        notify(GENERIC, "del", b"k", 3);
        set_flags(parse_flags(b"KEA").unwrap());
        assert!(capture_begin());
        notify(LIST, "lpush", b"l", 1);
        capture_end(false);
        assert!(capture_begin());
        notify(LIST, "rpush", b"l", 1);
        capture_end(true);
        replica_remove(Kind::Pattern, &[Bytes::from_static(b"__key*")], 7);
        notify(LIST, "rpush", b"l", 1);
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            if let PushMsg::PMessage {
                channel, payload, ..
            } = m
            {
                got.push(format!(
                    "{} {}",
                    String::from_utf8_lossy(&channel),
                    String::from_utf8_lossy(&payload)
                ));
            }
        }
        assert_eq!(
            got,
            [
                "__keyspace@3__:k del",
                "__keyspace@1__:l rpush",
                "__keyevent@1__:rpush l"
            ]
        );
        set_flags(0);
    }

    #[test]
    fn the_database_announces_new_and_expired_keys_with_its_own_number() {
        use crate::shard::db::Db;
        use crate::types::{StrValue, Value};
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        replica_add(
            Kind::Channel,
            Bytes::from_static(b"__keyevent@3__:new"),
            9,
            PushSender::new(tx.clone()),
        );
        replica_add(
            Kind::Channel,
            Bytes::from_static(b"__keyevent@1__:expired"),
            9,
            PushSender::new(tx),
        );
        set_flags(parse_flags(b"Exn").unwrap());
        let v = || Value::Str(StrValue::from_bytes(b"v"));
        let mut dbs: Vec<Db> = (0..4).map(Db::numbered).collect();
        dbs[3].insert(b"a", v(), 0, 1);
        dbs[3].insert(b"a", v(), 0, 1); // an overwrite is not new
        dbs[3].insert_quiet(b"b", v(), 0, 1); // a copy moved by a transaction
        Db::swap(&mut dbs, 1, 3);
        dbs[1].set_expire(b"a", 5);
        assert!(dbs[1].lookup_notouch(b"a", 10).is_none());
        replica_remove(
            Kind::Channel,
            &[
                Bytes::from_static(b"__keyevent@3__:new"),
                Bytes::from_static(b"__keyevent@1__:expired"),
            ],
            9,
        );
        set_flags(0);
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| match m {
                PushMsg::Message { channel, payload } => format!(
                    "{} {}",
                    String::from_utf8_lossy(&channel),
                    String::from_utf8_lossy(&payload)
                ),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(got, ["__keyevent@3__:new a", "__keyevent@1__:expired a"]);
    }
}

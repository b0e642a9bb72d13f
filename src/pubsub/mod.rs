//! Publish/subscribe across shards: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs,
//! PUBLISH, SPUBLISH, PUBSUB.
//!
//! A subscription lives in the registry of the subscriber's own shard (no hop to subscribe).
//! PUBLISH visits only the shards that have subscribers at all (a bit per shard in
//! `Globals::pubsub_shards`); each one delivers to its local subscribers and reports how many
//! received the message, and the publisher replies with the sum. Messages reach a connection
//! through its unbounded push channel; the connection formats them for its protocol (RESP2
//! array or RESP3 push) when it writes them.
//!
//! Subscriptions that can receive keyspace notifications (keyspace/keyevent channels, and
//! every pattern) are also copied to every shard's notification replica (`notify`) before
//! (P)SUBSCRIBE confirms, and removed from them before (P)UNSUBSCRIBE confirms or when the
//! connection goes.
//!
//! Client-side caching (`tracking`) delivers its invalidations through the same push channels;
//! a connection writes those after the reply of the command that caused them.
//!
//! The registry is shard-local state; it never touches the keyspace.

pub mod notify;
pub mod tracking;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::channel::mpsc::UnboundedSender;
use futures::future::LocalBoxFuture;

use crate::commands::{cmd, flags::*, sub, CommandSpec, Exec, SubCommand, NO_KEYS};
use crate::config::glob_match;
use crate::protocol::Reply;
use crate::server::conn::Conn;
use crate::shard::Shard;

/// A message on its way to one subscriber.
#[derive(Clone, Debug)]
pub enum PushMsg {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    SMessage {
        channel: Bytes,
        payload: Bytes,
    },
    /// Client-side caching: these keys (None: every key) may have changed (see `tracking`).
    Invalidate {
        keys: Option<Vec<Bytes>>,
        /// The BCAST prefix that sent it (None: default mode or a flush).
        prefix: Option<Bytes>,
        /// Sent to the client a tracking client redirects to (a RESP2 one gets it as a
        /// `__redis__:invalidate` message if it is in pub/sub mode).
        redirected: bool,
        /// The tracking client speaks RESP3 (the shape of the "every key" null).
        null_resp3: bool,
    },
    /// The client this tracking client redirects to is gone.
    RedirBroken {
        id: u64,
    },
}

impl PushMsg {
    /// Writes the message for a client speaking `r`'s protocol; `subscribed`: the client is in
    /// pub/sub mode. A RESP2 client gets no invalidation of its own (RESP2 has no push type)
    /// and a redirected one only in pub/sub mode, as in Redis.
    pub fn write(&self, r: &mut Reply, subscribed: bool) {
        match self {
            PushMsg::Message { channel, payload } => {
                r.push(3);
                r.bulk(b"message");
                r.bulk(channel);
                r.bulk(payload);
            }
            PushMsg::PMessage {
                pattern,
                channel,
                payload,
            } => {
                r.push(4);
                r.bulk(b"pmessage");
                r.bulk(pattern);
                r.bulk(channel);
                r.bulk(payload);
            }
            PushMsg::SMessage { channel, payload } => {
                r.push(3);
                r.bulk(b"smessage");
                r.bulk(channel);
                r.bulk(payload);
            }
            PushMsg::Invalidate {
                keys,
                redirected,
                null_resp3,
                ..
            } => {
                if r.resp3 {
                    r.push(2);
                    r.bulk(b"invalidate");
                } else if *redirected && subscribed {
                    r.array(3);
                    r.bulk(b"message");
                    r.bulk(tracking::CHANNEL);
                } else {
                    return;
                }
                match keys {
                    Some(keys) => {
                        r.array(keys.len());
                        for k in keys {
                            r.bulk(k);
                        }
                    }
                    // The tracking client's own null, as Redis writes it.
                    None => {
                        r.buf
                            .extend_from_slice(if *null_resp3 { b"_\r\n" } else { b"$-1\r\n" })
                    }
                }
            }
            PushMsg::RedirBroken { id } => {
                if r.resp3 {
                    r.push(2);
                    r.bulk(b"tracking-redir-broken");
                    r.int(*id as i64);
                }
            }
        }
    }

    /// Whether the message is about client-side caching (it goes after the reply of the
    /// command that caused it, as Redis 7.0 sends a client's own invalidations).
    pub fn is_tracking(&self) -> bool {
        matches!(
            self,
            PushMsg::Invalidate { .. } | PushMsg::RedirBroken { .. }
        )
    }
}

impl PushMsg {
    /// About what the message takes in the subscriber's output (RESP framing included): what
    /// `client-output-buffer-limit pubsub` counts.
    pub fn wire_len(&self) -> usize {
        match self {
            PushMsg::Message { channel, payload } | PushMsg::SMessage { channel, payload } => {
                40 + channel.len() + payload.len()
            }
            PushMsg::PMessage {
                pattern,
                channel,
                payload,
            } => 56 + pattern.len() + channel.len() + payload.len(),
            PushMsg::Invalidate { keys, .. } => {
                40 + keys
                    .as_ref()
                    .map_or(0, |k| k.iter().map(|k| 16 + k.len()).sum())
            }
            PushMsg::RedirBroken { .. } => 48,
        }
    }
}

// ----- Output limits -----

/// `client-output-buffer-limit pubsub`, process-wide like the config it mirrors (hard bytes,
/// soft bytes, soft seconds); set when the config is applied.
static PUBSUB_LIMIT: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Publishes the configured pub/sub output limit to every sender.
pub fn set_output_limit(l: crate::config::ObufLimit) {
    PUBSUB_LIMIT[0].store(l.hard, Ordering::Relaxed);
    PUBSUB_LIMIT[1].store(l.soft, Ordering::Relaxed);
    PUBSUB_LIMIT[2].store(l.soft_seconds.max(0) as u64, Ordering::Relaxed);
}

/// What a subscriber has queued but not yet written, shared by every sender of its messages
/// (on any shard) and its connection, which subtracts what it wrote.
#[derive(Default)]
pub struct PushState {
    queued: AtomicUsize,
    /// When the queue went over the soft limit (Unix ms), 0 while under it.
    soft_since_ms: AtomicU64,
    /// Set once the client crossed a limit: it gets nothing more and is disconnected.
    overflow: AtomicBool,
}

impl PushState {
    /// The connection wrote messages worth `n` bytes (their `wire_len`).
    pub fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }

    pub fn overflowed(&self) -> bool {
        self.overflow.load(Ordering::Acquire)
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// The way messages reach one subscriber: its connection's queue plus the accounting that
/// enforces `client-output-buffer-limit pubsub`, so a subscriber that does not read is cut off
/// instead of growing memory without bound.
#[derive(Clone)]
pub struct PushSender {
    tx: UnboundedSender<PushMsg>,
    state: Arc<PushState>,
}

impl PushSender {
    pub fn new(tx: UnboundedSender<PushMsg>) -> PushSender {
        PushSender {
            tx,
            state: Arc::new(PushState::default()),
        }
    }

    pub fn state(&self) -> &Arc<PushState> {
        &self.state
    }

    /// Queues a message; false when the subscriber is gone. A subscriber past its limit counts
    /// as a receiver (Redis counts it too, then closes it) but gets nothing more.
    pub fn send(&self, msg: PushMsg) -> bool {
        let st = &self.state;
        if st.overflowed() {
            return !self.tx.is_closed();
        }
        let size = msg.wire_len();
        let queued = st.queued.load(Ordering::Acquire) + size;
        let hard = PUBSUB_LIMIT[0].load(Ordering::Relaxed);
        let soft = PUBSUB_LIMIT[1].load(Ordering::Relaxed);
        let mut over = hard > 0 && queued as u64 >= hard;
        if !over && soft > 0 && queued as u64 >= soft {
            let now = crate::server::globals::unix_ms();
            let since = st.soft_since_ms.load(Ordering::Acquire);
            if since == 0 {
                st.soft_since_ms.store(now, Ordering::Release);
            } else {
                over = now.saturating_sub(since) > PUBSUB_LIMIT[2].load(Ordering::Relaxed) * 1000;
            }
        } else if !over {
            st.soft_since_ms.store(0, Ordering::Release);
        }
        if over {
            st.overflow.store(true, Ordering::Release);
            // Wakes the connection, which sees the flag and closes.
            self.tx.close_channel();
            return true;
        }
        st.queued.fetch_add(size, Ordering::AcqRel);
        self.tx.unbounded_send(msg).is_ok()
    }
}

type Subscriber = (u64, PushSender);

/// One shard's subscriptions.
#[derive(Default)]
pub struct Registry {
    channels: HashMap<Bytes, Vec<Subscriber>, ahash::RandomState>,
    patterns: Vec<(Bytes, Subscriber)>,
    shard_channels: HashMap<Bytes, Vec<Subscriber>, ahash::RandomState>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Registry {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }

    /// The channels and the patterns with subscribers here (INFO's pubsub counts).
    /// The channels, patterns and shard channels with subscribers here (INFO's counts).
    pub fn names(&self) -> (Vec<Bytes>, Vec<Bytes>, Vec<Bytes>) {
        let mut patterns: Vec<Bytes> = self.patterns.iter().map(|(p, _)| p.clone()).collect();
        patterns.sort();
        patterns.dedup();
        (
            self.channels.keys().cloned().collect(),
            patterns,
            self.shard_channels.keys().cloned().collect(),
        )
    }

    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, Vec<Subscriber>, ahash::RandomState> {
        if kind == Kind::Shard {
            &mut self.shard_channels
        } else {
            &mut self.channels
        }
    }

    pub fn add(&mut self, kind: Kind, name: Bytes, sub: Subscriber) {
        match kind {
            Kind::Pattern => self.patterns.push((name, sub)),
            _ => self.map(kind).entry(name).or_default().push(sub),
        }
    }

    /// Removes `client`'s subscriptions to `names`. The patterns are one list of every
    /// client's: one pass over it for all the names, not one per name.
    pub fn remove_all(&mut self, kind: Kind, names: &[Bytes], client: u64) {
        if names.is_empty() {
            return;
        }
        match kind {
            Kind::Pattern => {
                let gone: std::collections::HashSet<&[u8], ahash::RandomState> =
                    names.iter().map(|n| &n[..]).collect();
                self.patterns
                    .retain(|(p, (c, _))| !(*c == client && gone.contains(&p[..])));
            }
            _ => {
                let map = self.map(kind);
                for name in names {
                    if let Some(v) = map.get_mut(name) {
                        v.retain(|(c, _)| *c != client);
                        if v.is_empty() {
                            map.remove(name);
                        }
                    }
                }
            }
        }
    }

    /// `client`'s subscriptions here: its channels, patterns and shard channels (a walk over
    /// every subscription; for ACL changes, not for the data path).
    pub fn subscriptions_of(&self, client: u64) -> (Vec<Bytes>, Vec<Bytes>, Vec<Bytes>) {
        let of = |m: &HashMap<Bytes, Vec<Subscriber>, ahash::RandomState>| -> Vec<Bytes> {
            m.iter()
                .filter(|(_, subs)| subs.iter().any(|(c, _)| *c == client))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let patterns = self
            .patterns
            .iter()
            .filter(|(_, (c, _))| *c == client)
            .map(|(p, _)| p.clone())
            .collect();
        (of(&self.channels), patterns, of(&self.shard_channels))
    }

    /// Delivers to the local subscribers; returns how many received the message.
    pub fn publish(&self, shard_channel: bool, channel: &Bytes, payload: &Bytes) -> i64 {
        let mut n = 0;
        if shard_channel {
            for (_, tx) in self.shard_channels.get(channel).into_iter().flatten() {
                let msg = PushMsg::SMessage {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                n += tx.send(msg) as i64;
            }
            return n;
        }
        for (_, tx) in self.channels.get(channel).into_iter().flatten() {
            let msg = PushMsg::Message {
                channel: channel.clone(),
                payload: payload.clone(),
            };
            n += tx.send(msg) as i64;
        }
        for (pattern, (_, tx)) in &self.patterns {
            if glob_match(pattern, channel, false) {
                let msg = PushMsg::PMessage {
                    pattern: pattern.clone(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                n += tx.send(msg) as i64;
            }
        }
        n
    }
}

/// Keeps the shard's bit in `Globals::pubsub_shards` in step with its registry.
fn update_presence(sh: &Shard) {
    if sh.id >= 64 {
        return;
    }
    let bit = 1u64 << sh.id;
    if sh.pubsub.borrow().is_empty() {
        sh.globals.pubsub_shards.fetch_and(!bit, Ordering::AcqRel);
    } else {
        sh.globals.pubsub_shards.fetch_or(bit, Ordering::AcqRel);
    }
}

/// The shards a PUBLISH must visit.
fn shards_with_subscribers(sh: &Shard) -> Vec<usize> {
    let n = sh.nshards();
    if n > 64 {
        return (0..n).collect();
    }
    let bits = sh.globals.pubsub_shards.load(Ordering::Acquire);
    (0..n).filter(|s| bits & (1 << s) != 0).collect()
}

/// Names in subscription order, with constant-time membership, insertion and removal: one
/// client may hold hundreds of thousands of subscriptions and drop them all in one command.
/// A removal leaves a hole in the order, closed once holes outnumber names.
#[derive(Default)]
pub struct OrderedNames {
    slots: Vec<Option<Bytes>>,
    index: HashMap<Bytes, usize, ahash::RandomState>,
}

impl OrderedNames {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds `name` at the end; false if it is there already.
    pub fn insert(&mut self, name: &Bytes) -> bool {
        if self.index.contains_key(name) {
            return false;
        }
        self.index.insert(name.clone(), self.slots.len());
        self.slots.push(Some(name.clone()));
        true
    }

    /// Removes `name`; false if it was not there.
    pub fn remove(&mut self, name: &[u8]) -> bool {
        let Some(i) = self.index.remove(name) else {
            return false;
        };
        self.slots[i] = None;
        if self.index.is_empty() {
            self.slots.clear();
        } else if self.slots.len() > 32 && self.index.len() * 2 < self.slots.len() {
            self.slots.retain(Option::is_some);
            for (i, n) in self.slots.iter().flatten().enumerate() {
                if let Some(at) = self.index.get_mut(&n[..]) {
                    *at = i;
                }
            }
        }
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.slots.iter().flatten()
    }
}

/// A connection's subscriptions (names in subscription order, as Redis reports them).
#[derive(Default)]
pub struct ConnSubs {
    pub channels: OrderedNames,
    pub patterns: OrderedNames,
    pub shard_channels: OrderedNames,
    pub tx: Option<PushSender>,
}

impl ConnSubs {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn total(&self) -> usize {
        self.count() + self.shard_channels.len()
    }

    fn list(&mut self, kind: Kind) -> &mut OrderedNames {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn reported_count(&self, kind: Kind) -> usize {
        if kind == Kind::Shard {
            self.shard_channels.len()
        } else {
            self.count()
        }
    }
}

/// Commands a RESP2 client may send while subscribed.
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

pub fn specs() -> Vec<CommandSpec> {
    let g = "pubsub";
    let f = PUBSUB | NOSCRIPT | LOADING | STALE;
    vec![
        cmd("subscribe", -2, f, NO_KEYS, g, "2.0.0", "O(N) where N is the number of channels to subscribe to.", "Listens for messages published to channels.", Exec::Conn(subscribe)),
        cmd("psubscribe", -2, f, NO_KEYS, g, "2.0.0", "O(N) where N is the number of patterns the client is already subscribed to.", "Listens for messages published to channels that match patterns.", Exec::Conn(psubscribe)),
        cmd("ssubscribe", -2, f, (1, -1, 1), g, "7.0.0", "O(N) where N is the number of shard channels to subscribe to.", "Listens for messages published to shard channels.", Exec::Conn(ssubscribe)).key_flags(&["not_key"]),
        cmd("unsubscribe", -1, f, NO_KEYS, g, "2.0.0", "O(N) where N is the number of clients already subscribed to a channel.", "Stops listening to messages posted to channels.", Exec::Conn(unsubscribe)),
        cmd("punsubscribe", -1, f, NO_KEYS, g, "2.0.0", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).", "Stops listening to messages published to channels that match patterns.", Exec::Conn(punsubscribe)),
        cmd("sunsubscribe", -1, f, (1, -1, 1), g, "7.0.0", "O(N) where N is the number of clients already subscribed to a shard channel.", "Stops listening to messages posted to shard channels.", Exec::Conn(sunsubscribe)).key_flags(&["not_key"]),
        cmd("publish", 3, PUBSUB | LOADING | STALE | FAST, NO_KEYS, g, "2.0.0", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", "Posts a message to a channel.", Exec::Conn(publish)),
        cmd("spublish", 3, PUBSUB | LOADING | STALE | FAST, KEY1_SPEC, g, "7.0.0", "O(N) where N is the number of clients subscribed to the receiving shard channel.", "Post a message to a shard channel", Exec::Conn(spublish)).key_flags(&["not_key"]),
        cmd("pubsub", -2, 0, NO_KEYS, g, "2.8.0", "Depends on subcommand.", "A container for Pub/Sub commands.", Exec::Conn(pubsub)).subcommands(PUBSUB_SUBCOMMANDS),
    ]
}

/// PUBSUB's subcommands, as Redis 7.0 declares them.
const PUBSUB_SUBCOMMANDS: &[SubCommand] = &[
    sub("pubsub|shardchannels", -2)
        .flags(PUBSUB | LOADING | STALE)
        .docs("7.0.0", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).", "Lists the shard channels with subscribers."),
    sub("pubsub|help", 2)
        .flags(LOADING | STALE)
        .docs("6.2.0", "O(1)", "Lists the PUBSUB subcommands."),
    sub("pubsub|numpat", 2)
        .flags(PUBSUB | LOADING | STALE)
        .docs("2.8.0", "O(1)", "Returns the number of pattern subscriptions."),
    sub("pubsub|numsub", -2)
        .flags(PUBSUB | LOADING | STALE)
        .docs("2.8.0", "O(N) for the NUMSUB subcommand, where N is the number of requested channels", "Returns the number of subscribers of channels."),
    sub("pubsub|shardnumsub", -2)
        .flags(PUBSUB | LOADING | STALE)
        .docs("7.0.0", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels", "Returns the number of subscribers of shard channels."),
    sub("pubsub|channels", -2)
        .flags(PUBSUB | LOADING | STALE)
        .docs("2.8.0", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", "Lists the channels with subscribers."),
];

const KEY1_SPEC: (i32, i32, i32) = (1, 1, 1);

async fn do_subscribe(c: &mut Conn, names: &[Bytes], kind: Kind) {
    let label = match kind {
        Kind::Channel => "subscribe",
        Kind::Pattern => "psubscribe",
        Kind::Shard => "ssubscribe",
    };
    let id = c.info.id;
    let tx = c.pubsub_sender();
    let mut for_replicas: Vec<Bytes> = Vec::new();
    for name in names {
        let subs = c.subs.as_mut().expect("pubsub_sender creates it");
        if subs.list(kind).insert(name) {
            c.shard
                .pubsub
                .borrow_mut()
                .add(kind, name.clone(), (id, tx.clone()));
            if notify::relevant(kind, name) {
                for_replicas.push(name.clone());
            }
        }
        let count = c.subs.as_ref().map_or(0, |s| s.reported_count(kind));
        let mut r = c.reply();
        r.push(3);
        r.bulk(label.as_bytes());
        r.bulk(name);
        r.int(count as i64);
    }
    update_presence(&c.shard);
    if !for_replicas.is_empty() {
        // Every shard must know the subscriber before the confirmation goes out: from then on
        // it receives every notification.
        let _ = c
            .shard
            .run_on_all(move |_| {
                for n in &for_replicas {
                    notify::replica_add(kind, n.clone(), id, tx.clone());
                }
            })
            .await;
    }
}

/// Unsubscribes from `names`, or from everything of that kind when `names` is empty.
pub async fn do_unsubscribe(c: &mut Conn, names: &[Bytes], kind: Kind, reply: bool) {
    let label = match kind {
        Kind::Channel => "unsubscribe",
        Kind::Pattern => "punsubscribe",
        Kind::Shard => "sunsubscribe",
    };
    let id = c.info.id;
    let targets: Vec<Bytes> = if names.is_empty() {
        c.subs
            .as_mut()
            .map(|s| s.list(kind).iter().cloned().collect())
            .unwrap_or_default()
    } else {
        names.to_vec()
    };
    let mut for_replicas: Vec<Bytes> = Vec::new();
    if targets.is_empty() && reply {
        let count = c.subs.as_ref().map_or(0, |s| s.reported_count(kind));
        let mut r = c.reply();
        r.push(3);
        r.bulk(label.as_bytes());
        r.null();
        r.int(count as i64);
    }
    let mut removed: Vec<Bytes> = Vec::new();
    for name in targets {
        if let Some(subs) = c.subs.as_mut() {
            if subs.list(kind).remove(&name) {
                removed.push(name.clone());
                if notify::relevant(kind, &name) {
                    for_replicas.push(name.clone());
                }
            }
        }
        if reply {
            let count = c.subs.as_ref().map_or(0, |s| s.reported_count(kind));
            let mut r = c.reply();
            r.push(3);
            r.bulk(label.as_bytes());
            r.bulk(&name);
            r.int(count as i64);
        }
    }
    c.shard.pubsub.borrow_mut().remove_all(kind, &removed, id);
    update_presence(&c.shard);
    if !for_replicas.is_empty() {
        let _ = c
            .shard
            .run_on_all(move |_| {
                notify::replica_remove(kind, &for_replicas, id);
            })
            .await;
    }
}

/// Drops every subscription of a closing or RESET connection.
pub async fn unsubscribe_all(c: &mut Conn) {
    if c.subs.is_some() {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            do_unsubscribe(c, &[], kind, false).await;
        }
        c.subs = None;
    }
}

fn subscribe(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move { do_subscribe(c, &a[1..], Kind::Channel).await })
}

fn psubscribe(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move { do_subscribe(c, &a[1..], Kind::Pattern).await })
}

fn ssubscribe(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    // Outside cluster mode Redis accepts shard channels of different slots in one call.
    Box::pin(async move {
        // Redis 7.0 refuses it inside EXEC; SUBSCRIBE and PSUBSCRIBE are allowed there, for
        // compatibility with earlier versions.
        if c.in_exec.is_some() {
            return c
                .reply()
                .error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        }
        do_subscribe(c, &a[1..], Kind::Shard).await
    })
}

fn unsubscribe(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move { do_unsubscribe(c, &a[1..], Kind::Channel, true).await })
}

fn punsubscribe(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move { do_unsubscribe(c, &a[1..], Kind::Pattern, true).await })
}

fn sunsubscribe(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move { do_unsubscribe(c, &a[1..], Kind::Shard, true).await })
}

async fn publish_everywhere(c: &Conn, shard_channel: bool, channel: Bytes, payload: Bytes) -> i64 {
    let mut futs = Vec::new();
    for s in shards_with_subscribers(&c.shard) {
        let (ch, p) = (channel.clone(), payload.clone());
        futs.push(c.shard.run_on(s, move |sh| {
            sh.pubsub.borrow().publish(shard_channel, &ch, &p)
        }));
    }
    futures::future::join_all(futs)
        .await
        .into_iter()
        .map(|r| r.unwrap_or(0))
        .sum()
}

fn publish(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let n = publish_everywhere(c, false, a[1].clone(), a[2].clone()).await;
        c.reply().int(n);
    })
}

fn spublish(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let n = publish_everywhere(c, true, a[1].clone(), a[2].clone()).await;
        c.reply().int(n);
    })
}

const PUBSUB_HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

/// A PUBSUB query, parsed (its answer is gathered from every shard's registry).
#[derive(Clone)]
pub(crate) enum Query {
    Help,
    Channels {
        shard_level: bool,
        pattern: Option<Bytes>,
    },
    NumSub {
        shard_level: bool,
        names: Vec<Bytes>,
    },
    NumPat,
}

/// One shard's part of a PUBSUB answer.
pub(crate) enum Part {
    Names(Vec<Bytes>),
    Counts(Vec<i64>),
}

impl Query {
    pub(crate) fn parse(a: &[Bytes]) -> Result<Query, String> {
        let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
        Ok(match (sub.as_str(), a.len()) {
            ("help", 2) => Query::Help,
            ("channels" | "shardchannels", 2 | 3) => Query::Channels {
                shard_level: sub == "shardchannels",
                pattern: a.get(2).cloned(),
            },
            ("numsub" | "shardnumsub", _) => Query::NumSub {
                shard_level: sub == "shardnumsub",
                names: a[2..].to_vec(),
            },
            ("numpat", 2) => Query::NumPat,
            ("channels" | "shardchannels", _) => {
                return Err(crate::commands::subcommand_syntax_error(&a[1], "pubsub"))
            }
            _ => return Err(crate::commands::unknown_subcommand_error(&a[1], "pubsub")),
        })
    }

    /// Whether the answer needs the registries of the shards.
    pub(crate) fn needs_shards(&self) -> bool {
        !matches!(self, Query::Help)
    }

    /// This shard's part of the answer.
    pub(crate) fn part(&self, sh: &Shard) -> Part {
        let reg = sh.pubsub.borrow();
        let map = |shard_level: bool| {
            if shard_level {
                &reg.shard_channels
            } else {
                &reg.channels
            }
        };
        match self {
            Query::Help => Part::Names(Vec::new()),
            Query::Channels {
                shard_level,
                pattern,
            } => Part::Names(
                map(*shard_level)
                    .keys()
                    .filter(|ch| pattern.as_ref().is_none_or(|p| glob_match(p, ch, false)))
                    .cloned()
                    .collect(),
            ),
            Query::NumSub { shard_level, names } => {
                let m = map(*shard_level);
                Part::Counts(
                    names
                        .iter()
                        .map(|n| m.get(n).map_or(0, |v| v.len() as i64))
                        .collect(),
                )
            }
            Query::NumPat => Part::Names(reg.patterns.iter().map(|(p, _)| p.clone()).collect()),
        }
    }

    /// The reply, from every shard's part.
    pub(crate) fn reply(&self, r: &mut crate::protocol::Reply, parts: Vec<Part>) {
        let names = |parts: Vec<Part>| {
            let mut all: Vec<Bytes> = parts
                .into_iter()
                .flat_map(|p| match p {
                    Part::Names(v) => v,
                    Part::Counts(_) => Vec::new(),
                })
                .collect();
            all.sort();
            all.dedup();
            all
        };
        match self {
            Query::Help => crate::commands::reply_help(r, "pubsub", PUBSUB_HELP),
            Query::Channels { .. } => {
                let all = names(parts);
                r.array(all.len());
                for ch in &all {
                    r.bulk(ch);
                }
            }
            Query::NumSub { names, .. } => {
                r.map(names.len());
                for (i, n) in names.iter().enumerate() {
                    r.bulk(n);
                    r.int(
                        parts
                            .iter()
                            .map(|p| match p {
                                Part::Counts(v) => v[i],
                                Part::Names(_) => 0,
                            })
                            .sum(),
                    );
                }
            }
            Query::NumPat => r.int(names(parts).len() as i64),
        }
    }
}

fn pubsub(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let q = match Query::parse(&a) {
            Ok(q) => q,
            Err(e) => return c.reply().error(&e),
        };
        let parts = if q.needs_shards() {
            let q2 = q.clone();
            c.shard
                .run_on_all(move |sh| q2.part(sh))
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        q.reply(&mut c.reply(), parts);
    })
}

#[cfg(test)]
mod tests {
    use super::OrderedNames;
    use bytes::Bytes;

    #[test]
    fn ordered_names_keep_subscription_order_through_removals_and_compaction() {
        let name = |i: usize| Bytes::from(format!("ch{i}"));
        let mut names = OrderedNames::default();
        for i in 0..100 {
            assert!(names.insert(&name(i)));
        }
        assert!(!names.insert(&name(5)), "already there");
        // Remove most of them (compaction runs along the way), then re-add one.
        for i in (0..100).filter(|i| i % 10 != 0) {
            assert!(names.remove(&name(i)));
        }
        assert!(!names.remove(&name(1)), "already gone");
        assert!(names.insert(&name(3)));
        let order: Vec<Bytes> = names.iter().cloned().collect();
        let mut want: Vec<Bytes> = (0..100).step_by(10).map(name).collect();
        want.push(name(3));
        assert_eq!(order, want);
        assert_eq!(names.len(), 11);
        for n in &want {
            assert!(names.remove(n));
        }
        assert!(names.is_empty() && names.iter().next().is_none());
    }
}

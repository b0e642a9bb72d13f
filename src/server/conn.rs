//! One client connection: read, parse, route, execute, reply.
//!
//! The connection runs on the shard that accepted it. Every complete command in the read buffer
//! is executed before the replies go out in one write. A keyed command whose key lives on this
//! shard runs inline; commands for other shards are collected per target shard and sent as one
//! batch message each, and replies are stitched back in request order. Connection-level commands
//! (SELECT, CLIENT, INFO...) and commands whose keys span shards are barriers: everything before
//! them is completed first, so a client always sees its own commands take effect in order.
//!
//! The connection never touches another shard's data; it never holds a shard-state borrow across
//! an `.await`.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::split::WriteHalf;
use crate::pubsub::PushMsg;
use bytes::{Bytes, BytesMut};
use futures::channel::mpsc::UnboundedReceiver;
use futures::future::Either;
use futures::StreamExt;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::commands::{self, flags, CommandSpec, Exec};
use crate::protocol::parse::{Args, ParseLimits, RequestParser};
use crate::protocol::Reply;
use crate::server::client::{ClientHandle, Unblock};
use crate::server::globals::unix_ms;
use crate::shard::router::BatchReply;
use crate::shard::{execute_keyed, ClientLabel, Shard};

pub const ERR_SHARD_GONE: &str = "ERR shard unavailable (server shutting down)";

/// Redis's refusal of DEBUG that `enable-debug-command` does not allow.
pub(crate) const ERR_DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    Skip,
}

/// `flush_group`'s per-flush tables, kept between flushes: one slot per shard for the batch
/// reply on its way, the reply, how many of its replies were stitched in, and the emptied
/// buffers of the last reply from that shard (the next batch's `room`).
#[derive(Default)]
struct FlushScratch {
    receivers: Vec<Option<futures::channel::oneshot::Receiver<Box<BatchReply>>>>,
    replies: Vec<Option<Box<BatchReply>>>,
    cursor: Vec<usize>,
    spare: Vec<Option<Box<BatchReply>>>,
}

/// A command waiting in the current group (see `flush_group`).
struct Pending {
    shard: usize,
    suppress: bool,
}

pub struct Conn {
    pub shard: Rc<Shard>,
    /// Shards (one bit each, see `aof::shard_bit`) whose AOF must be durable before the
    /// pending replies go out (written, and with `appendfsync always` synced).
    aof_wait: u64,
    // Split so that pub/sub messages can be written while a read is pending.
    reader: super::readiness::ConnReader,
    writer: WriteHalf<TcpStream>,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    /// The connection's user, compiled (see `crate::server::acl`), and the ACL generation it
    /// was read at.
    pub perms: Arc<crate::server::acl::Perms>,
    acl_gen: u64,
    pub info: Rc<ClientHandle>,
    pub label: Arc<ClientLabel>,
    pub out: BytesMut,
    rbuf: BytesMut,
    scratch: Box<[u8]>,
    /// Keeps the parser's working vectors from one read to the next.
    parser: RequestParser,
    pub close_after_reply: bool,
    /// QUIT arrived with its reply turned off (CLIENT REPLY OFF or SKIP): as in Redis 7.0, the
    /// connection stays open with nothing to write and its input is no longer run (it still
    /// counts against the query buffer limit).
    ignore_input: bool,
    pub reply_mode: ReplyMode,
    pub skip_next: bool,
    pub monitor_rx: Option<UnboundedReceiver<Bytes>>,
    // The current group of commands that involve other shards.
    group_order: Vec<Pending>,
    flush_scratch: FlushScratch,
    /// The table entries `run`'s prefetch pass found for a pipeline's commands (kept between
    /// reads: no allocation per pipeline).
    looked_up: Vec<Option<&'static CommandSpec>>,
    group_cmds: Vec<Vec<(u16, Args)>>,
    /// Between MULTI and EXEC/DISCARD: the queued commands.
    pub multi: Option<crate::tx::multi::MultiState>,
    /// WATCHed keys.
    pub watch: Option<crate::tx::multi::WatchState>,
    /// Set while an EXEC block runs under whole-shard locks (its commands must not lock again).
    pub in_exec: Option<crate::tx::locks::TxId>,
    /// Pub/sub subscriptions, once the client has subscribed to anything.
    pub subs: Option<crate::pubsub::ConnSubs>,
    /// CLIENT TRACKING's settings while tracking is on.
    pub tracking: Option<crate::pubsub::tracking::ClientTracking>,
    /// Broadcast invalidations that arrived while the pipeline ran (`take_pushes`).
    held_broadcasts: Vec<PushMsg>,
    /// Pub/sub messages for this client, and their accounting (`client-output-buffer-limit`).
    push_rx: Option<(
        UnboundedReceiver<crate::pubsub::PushMsg>,
        std::sync::Arc<crate::pubsub::PushState>,
    )>,
    /// Input arrived while the client was blocked: parse it before reading again.
    pending_input: bool,
    /// Set by a connection-level command that blocked (WAIT), for `run_conn` to count it.
    pub blocked_call: Option<BlockedCall>,
    /// Set by a command whose error reply counts nowhere (DEBUG ERROR: Redis writes it as a
    /// raw reply, so neither errorstats, total_error_replies nor failed_calls see it).
    pub uncounted_error: bool,
}

/// How a connection-level command that blocked ended, for its statistics.
#[derive(Clone, Copy, Debug)]
pub struct BlockedCall {
    /// Microseconds the command ran before it blocked (the wait is not counted).
    pub usec: u64,
    /// Ended by CLIENT UNBLOCK (rather than its timeout or the client leaving).
    pub unblocked: bool,
}

impl Conn {
    /// The reply writer for this client.
    pub fn reply(&mut self) -> Reply<'_> {
        Reply::new(&mut self.out, self.resp3)
    }

    pub fn set_name(&mut self, name: String) {
        *self.info.name.borrow_mut() = name;
        self.refresh_label();
    }

    /// Rebuilds the label the shards see (after SETNAME or a change of tracking).
    pub fn refresh_label(&mut self) {
        let track = self
            .tracking
            .as_ref()
            .map_or_else(Default::default, |t| t.track(self.info.id));
        self.label = Arc::new(ClientLabel {
            addr: self.info.addr.clone(),
            name: self.info.name.borrow().clone(),
            track,
        });
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.info.db.set(db);
    }

    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
        self.info.resp.set(if on { 3 } else { 2 });
        // A RESP3 client receives invalidations that another client redirects to it at any
        // time, so it listens on its push channel from now on.
        if on {
            self.push_sender();
        }
    }

    /// The sender that delivers pub/sub messages to this connection (created on first use).
    pub fn pubsub_sender(&mut self) -> crate::pubsub::PushSender {
        let tx = self.push_sender();
        self.subs.get_or_insert_with(Default::default).tx = Some(tx.clone());
        tx
    }

    /// The sender of this connection's push channel (pub/sub messages, invalidations), created
    /// on first use, here or by another connection that redirects its invalidations here.
    pub fn push_sender(&mut self) -> crate::pubsub::PushSender {
        let tx = self.info.push_sender();
        if let Some((mut rx, state)) = self.info.take_push_receiver() {
            if !self.resp3 && !self.subscribed() {
                // Invalidations redirected here before this RESP2 client subscribed had no one
                // to go to (Redis drops them).
                let mut size = 0;
                while let Ok(m) = rx.try_recv() {
                    size += m.wire_len();
                }
                state.written(size);
            }
            self.push_rx = Some((rx, state));
        }
        tx
    }

    /// Copies what CLIENT LIST reports of this connection's subscriptions and MULTI state to
    /// its handle (after each connection-level command, the only ones that change them).
    fn publish_client_state(&self) {
        let subs = self.subs.as_ref().map_or((0, 0, 0), |s| {
            (s.channels.len(), s.patterns.len(), s.shard_channels.len())
        });
        self.info.subs.set(subs);
        self.info
            .multi
            .set(self.multi.as_ref().map_or(-1, |m| m.cmds.len() as i64));
    }

    fn subscribed(&self) -> bool {
        self.subs.as_ref().is_some_and(|s| s.total() > 0)
    }

    /// A subscribed RESP2 client gets PING's answer in the shape of a message: writes it,
    /// counts the call as any other (commandstats, slow log) and returns true, or returns false
    /// for any other client.
    fn pubsub_ping(&mut self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        if !self.subscribed() || self.resp3 || args.len() > 2 {
            return false;
        }
        let started = std::time::Instant::now();
        let mut r = self.reply();
        r.array(2);
        r.bulk(b"pong");
        r.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        let usec = started.elapsed().as_micros() as u64;
        let mut st = self.shard.state.borrow_mut();
        st.count_call(commands::stat_index(spec, args), usec, false);
        st.maybe_slowlog(&self.shard.globals, args, usec, &self.label);
        true
    }

    /// The error refusing a protected command (DEBUG; MODULE LOAD, LOADEX and UNLOAD) to this
    /// client, if `enable-debug-command` or `enable-module-command` does not allow it.
    fn protected_refusal(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<&'static str> {
        use crate::config::DebugCommandPolicy;
        let config = &self.shard.state.borrow().config;
        let (policy, refusal) = match spec.subcommand(args) {
            // A container is protected where its subcommand is (MODULE LIST is not).
            Ok(Some(sub)) if !sub.has(flags::PROTECTED) => return None,
            Ok(Some(_)) => (
                config.enable_module_command,
                commands::module_family::ERR_MODULE_NOT_ALLOWED,
            ),
            _ => (config.enable_debug_command, ERR_DEBUG_NOT_ALLOWED),
        };
        let allowed = match policy {
            DebugCommandPolicy::Yes => true,
            DebugCommandPolicy::Local => self.is_local(),
            DebugCommandPolicy::No => false,
        };
        (!allowed).then_some(refusal)
    }

    /// Whether this connection comes from the loopback interface or a unix socket
    /// (enable-debug-command local).
    pub fn is_local(&self) -> bool {
        self.info.unix || self.info.addr.starts_with("127.") || self.info.addr.starts_with("[::1]")
    }
}

/// Serves one accepted connection until it closes.
/// `unix` is the path of the unix socket the connection came through (None: TCP); such a
/// client's address and local address are both `<path>:0`, as in Redis.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream, unix: Option<Rc<str>>) {
    let (addr, laddr) = match &unix {
        Some(path) => (format!("{path}:0"), format!("{path}:0")),
        None => {
            let _ = stream.set_nodelay(true);
            let addr = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?:0".into());
            let laddr = stream
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?:0".into());
            (addr, laddr)
        }
    };
    let id = shard.globals.next_client_id();
    let now = unix_ms();
    let info = Rc::new(ClientHandle {
        id,
        addr: addr.clone(),
        laddr,
        unix: unix.is_some(),
        fd: std::os::fd::AsRawFd::as_raw_fd(&stream),
        created_ms: now,
        last_ms: now.into(),
        name: Default::default(),
        db: 0.into(),
        resp: 2.into(),
        last_cmd: "NULL".into(),
        qbuf: 0.into(),
        omem: 0.into(),
        mem: (super::client::READ_BUFFER as u64).into(),
        no_evict: false.into(),
        monitor: false.into(),
        killed: false.into(),
        subs: Default::default(),
        multi: (-1).into(),
        unblock: Default::default(),
        push: Default::default(),
        push_rx: Default::default(),
        tracking: Default::default(),
        user: std::cell::RefCell::new(Arc::from("default")),
    });
    shard.clients.borrow_mut().add(info.clone());
    shard.set_client_mem(shard.client_mem.get() + info.mem.get());
    let acl_gen = shard.globals.acl.generation();
    let authenticated = shard.globals.acl.default_open();
    let perms = shard
        .globals
        .acl
        .perms(b"default")
        .expect("the default user always exists");
    let n = shard.nshards();
    let (reader, writer) = super::split::split(stream);
    let reader = super::readiness::ConnReader::new(reader);
    let mut conn = Conn {
        shard: shard.clone(),
        reader,
        writer,
        db: 0,
        resp3: false,
        authenticated,
        perms,
        acl_gen,
        info: info.clone(),
        label: Arc::new(ClientLabel {
            addr,
            name: String::new(),
            track: Default::default(),
        }),
        // Both grow with use (and give a burst back, `trim_after_burst`): an idle connection
        // holds only its read scratch.
        out: BytesMut::new(),
        rbuf: BytesMut::new(),
        scratch: vec![0u8; 16 * 1024].into_boxed_slice(),
        parser: RequestParser::default(),
        close_after_reply: false,
        ignore_input: false,
        aof_wait: 0,
        reply_mode: ReplyMode::On,
        skip_next: false,
        monitor_rx: None,
        group_order: Vec::new(),
        flush_scratch: FlushScratch::default(),
        looked_up: Vec::new(),
        group_cmds: (0..n).map(|_| Vec::new()).collect(),
        multi: None,
        watch: None,
        in_exec: None,
        subs: None,
        tracking: None,
        held_broadcasts: Vec::new(),
        push_rx: None,
        pending_input: false,
        blocked_call: None,
        uncounted_error: false,
    };
    // The registry entry goes away however the connection ends, a contained panic included.
    let _registered = Registered {
        shard: shard.clone(),
        id,
    };
    // A bug in a connection-level command costs that connection, never the shard.
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(conn.run())).await;
    if outcome.is_err() {
        tracing::error!(client = %info.addr, "connection task panicked; connection closed, shard keeps serving");
    }
    if let Some(w) = conn.watch.take() {
        crate::tx::multi::forget_watches(&shard, w).await;
    }
    crate::pubsub::unsubscribe_all(&mut conn).await;
    crate::commands::connection_family::disable_tracking(&mut conn).await;
    if info.monitor.get() {
        shard.globals.monitors.fetch_sub(1, Ordering::Relaxed);
        let _ = shard
            .run_on_all(move |sh| sh.monitors.borrow_mut().retain(|(i, _)| *i != id))
            .await;
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => {
            let now = std::time::Instant::now();
            if d > now {
                glommio::timer::sleep(d - now).await;
            }
        }
        None => futures::future::pending::<()>().await,
    }
}

/// Counts a connection in INFO's `blocked_clients` while it waits, and lets CLIENT UNBLOCK
/// reach it (the receiver it returns fires on CLIENT UNBLOCK).
struct BlockedGuard {
    shard: Rc<Shard>,
    info: Rc<ClientHandle>,
}

impl BlockedGuard {
    fn new(
        shard: &Rc<Shard>,
        info: &Rc<ClientHandle>,
    ) -> (BlockedGuard, futures::channel::oneshot::Receiver<Unblock>) {
        shard.blocked_clients.set(shard.blocked_clients.get() + 1);
        let (tx, rx) = futures::channel::oneshot::channel();
        *info.unblock.borrow_mut() = Some(tx);
        (
            BlockedGuard {
                shard: shard.clone(),
                info: info.clone(),
            },
            rx,
        )
    }
}

impl Drop for BlockedGuard {
    fn drop(&mut self) {
        self.info.unblock.borrow_mut().take();
        self.shard
            .blocked_clients
            .set(self.shard.blocked_clients.get().saturating_sub(1));
    }
}

/// Waits for CLIENT UNBLOCK; never resolves if the guard's sender is dropped without a send.
async fn unblocked(rx: &mut futures::channel::oneshot::Receiver<Unblock>) -> Unblock {
    match rx.await {
        Ok(how) => how,
        Err(_) => futures::future::pending().await,
    }
}

/// Removes a connection from its shard's registry when the connection ends.
struct Registered {
    shard: Rc<Shard>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut reg) = self.shard.clients.try_borrow_mut() {
            if let Some(c) = reg.clients.get(&self.id) {
                let left = self.shard.client_mem.get().saturating_sub(c.mem.replace(0));
                self.shard.set_client_mem(left);
            }
            reg.remove(self.id);
        }
        self.shard
            .globals
            .connected_clients
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    async fn run(&mut self) {
        let mut cmds: Vec<Args> = Vec::new();
        loop {
            if self.info.killed.get() || self.shard.globals.shutting_down() {
                return;
            }
            let (limits, qlimit, timeout, evicting) = {
                let st = self.shard.state.borrow();
                (
                    ParseLimits {
                        max_bulk_len: st.config.proto_max_bulk_len,
                        ..ParseLimits::default()
                    },
                    st.config.client_query_buffer_limit as usize,
                    st.config.timeout,
                    st.config.maxmemory_clients != 0,
                )
            };
            let n = if std::mem::take(&mut self.pending_input) {
                0
            } else {
                // Whether a busy script's loop may answer this connection meanwhile
                // (`super::busy`): only while it has nothing of its own under way.
                let servable = self.rbuf.is_empty()
                    && self.out.is_empty()
                    && self.authenticated
                    && self.multi.is_none()
                    && !self.subscribed()
                    && self.monitor_rx.is_none()
                    && self.reply_mode == ReplyMode::On
                    && !self.skip_next;
                self.reader.set_servable(servable);
                let Some(n) = self.read_some(timeout).await else {
                    return;
                };
                if let Some(held) = self.reader.take_held_output() {
                    // Replies that loop wrote and the socket did not take go out first.
                    self.out.extend_from_slice(&held);
                }
                self.rbuf.extend_from_slice(&self.scratch[..n]);
                n
            };
            if self.rbuf.len() > qlimit {
                tracing::warn!(client = %self.info.addr, "closing client that reached max query buffer length");
                return;
            }
            // Client eviction looks at what was read before any of it runs: an evicted client's
            // commands are not executed, as in Redis.
            if evicting && n > 0 {
                self.info.qbuf.set(self.rbuf.len());
                self.account_memory();
                if super::client_eviction::check(&self.shard, Some(self.info.id)) {
                    return;
                }
            }
            {
                let mut st = self.shard.state.borrow_mut();
                st.stats.net_input_bytes += n as u64;
                st.stats.reads_processed += (n > 0) as u64;
                self.info
                    .last_ms
                    .set(self.info.last_ms.get().max(st.clock_ms));
            }
            // Read and counted as Redis counts it, but not run (see `ignore_input`).
            if self.ignore_input {
                continue;
            }
            // What was sent to this client before its input arrived goes out before any reply
            // to that input (the pipeline's own broadcasts wait for its end).
            if self.push_rx.is_some() && self.tracking.is_some() {
                self.take_pushes(None, &[]);
                self.write_held_broadcasts();
            }
            let parsed = self.parser.parse(&mut self.rbuf, &limits, &mut cmds);
            self.info.qbuf.set(self.rbuf.len());
            self.account_memory();
            // One shard runs all of a pipeline's keyed commands inline, one by one: hinting
            // their keys first lets their cache misses overlap. With more shards they run in
            // per-shard batches, hinted where each batch runs (`flush_group`,
            // `Shard::execute_batch`).
            // The commands looked up for that are handed to `dispatch`, not looked up twice.
            let mut specs = std::mem::take(&mut self.looked_up);
            specs.clear();
            if cmds.len() > 1 && self.shard.nshards() == 1 && self.multi.is_none() {
                specs.extend(
                    cmds.iter()
                        .map(|a| a.first().and_then(|n| commands::lookup(n))),
                );
                if let Some(d) = self.shard.state.borrow().dbs.get(self.db) {
                    d.prefetch_batch(
                        cmds.iter()
                            .zip(&specs)
                            .filter_map(|(a, s)| Some(((*s)?, &a[..]))),
                    );
                }
            }
            for (i, args) in cmds.drain(..).enumerate() {
                self.dispatch(args, specs.get(i).copied().flatten()).await;
                if self.close_after_reply || self.monitor_rx.is_some() || self.ignore_input {
                    break;
                }
            }
            self.looked_up = specs;
            self.flush_group().await;
            if let Err(e) = parsed {
                self.reply().error(&format!("ERR {}", e.0));
                self.close_after_reply = true;
            }
            if self.aof_wait != 0 {
                let mask = std::mem::take(&mut self.aof_wait);
                crate::persistence::aof::wait_durable(&self.shard, mask).await;
            }
            self.write_held_broadcasts();
            if !self.write_out().await || self.close_after_reply {
                return;
            }
            if self.monitor_rx.is_some() {
                self.monitor_loop().await;
                return;
            }
            self.trim_after_burst(&mut cmds);
        }
    }

    /// Gives back what a burst (a big pipeline or a big argument) left in the connection's
    /// working buffers once they are empty, like Redis shrinking idle query buffers: measured,
    /// a 1 MB pipeline of 500 HSETs of 100 fields left about 100 KB per connection behind.
    fn trim_after_burst(&mut self, cmds: &mut Vec<Args>) {
        const RBUF_KEEP: usize = 64 * 1024;
        const CMDS_KEEP: usize = 256;
        if self.rbuf.is_empty() && self.rbuf.capacity() > RBUF_KEEP {
            self.rbuf = BytesMut::new();
        }
        if cmds.capacity() > CMDS_KEEP {
            *cmds = Vec::new();
        }
        self.parser.trim();
    }

    /// Waits, as a blocked client, for `rx` (served in place), the deadline, or the client
    /// closing the connection. Commands the client sends meanwhile stay in the query buffer for
    /// after the unblock, like Redis. Returns the receiver unless it completed.
    pub async fn wait_blocked(
        &mut self,
        mut rx: futures::channel::oneshot::Receiver<crate::shard::blocking::Wake>,
        deadline: Option<std::time::Instant>,
    ) -> (
        crate::commands::blocking_family::BlockOutcome,
        Option<futures::channel::oneshot::Receiver<crate::shard::blocking::Wake>>,
    ) {
        use crate::commands::blocking_family::BlockOutcome;
        use crate::shard::blocking::Wake;
        let (_blocked, mut unblock) = BlockedGuard::new(&self.shard, &self.info);
        loop {
            let timer = std::pin::pin!(until(deadline));
            let unblock = std::pin::pin!(unblocked(&mut unblock));
            let stop = futures::future::select(timer, unblock);
            let read = std::pin::pin!(self.reader.read(&mut self.scratch[..]));
            let either = futures::future::select(read, stop);
            match futures::future::select(&mut rx, either).await {
                Either::Left((Ok(Wake::Served(b)), _)) => return (BlockOutcome::Reply(b), None),
                Either::Left((Ok(Wake::Retry(key)), _)) => {
                    return (BlockOutcome::Woken(Some(key)), None)
                }
                Either::Left((Err(_), _)) => return (BlockOutcome::Gone, None),
                Either::Right((Either::Right((Either::Left(_), _)), _)) => {
                    return (BlockOutcome::TimedOut, Some(rx))
                }
                Either::Right((Either::Right((Either::Right((how, _)), _)), _)) => {
                    return (BlockOutcome::Unblocked(how), Some(rx))
                }
                Either::Right((Either::Left((res, _)), _)) => match res {
                    Ok(n) if n > 0 => {
                        let n = n.min(self.scratch.len());
                        self.rbuf.extend_from_slice(&self.scratch[..n]);
                        self.pending_input = true;
                    }
                    _ => return (BlockOutcome::Gone, Some(rx)),
                },
            }
        }
    }

    /// `wait_blocked` for a client whose keys span shards: woken by any of them to retry.
    pub async fn wait_notified(
        &mut self,
        rx: &mut futures::channel::mpsc::UnboundedReceiver<crate::shard::blocking::Wake>,
        deadline: Option<std::time::Instant>,
    ) -> crate::commands::blocking_family::BlockOutcome {
        use crate::commands::blocking_family::BlockOutcome;
        use crate::shard::blocking::Wake;
        let (_blocked, mut unblock) = BlockedGuard::new(&self.shard, &self.info);
        loop {
            let timer = std::pin::pin!(until(deadline));
            let unblock = std::pin::pin!(unblocked(&mut unblock));
            let stop = futures::future::select(timer, unblock);
            let read = std::pin::pin!(self.reader.read(&mut self.scratch[..]));
            let either = futures::future::select(read, stop);
            match futures::future::select(rx.next(), either).await {
                Either::Left((Some(Wake::Served(b)), _)) => return BlockOutcome::Reply(b),
                Either::Left((Some(Wake::Retry(key)), _)) => return BlockOutcome::Woken(Some(key)),
                Either::Left((None, _)) => return BlockOutcome::Gone,
                Either::Right((Either::Right((Either::Left(_), _)), _)) => {
                    return BlockOutcome::TimedOut
                }
                Either::Right((Either::Right((Either::Right((how, _)), _)), _)) => {
                    return BlockOutcome::Unblocked(how)
                }
                Either::Right((Either::Left((res, _)), _)) => match res {
                    Ok(n) if n > 0 => {
                        let n = n.min(self.scratch.len());
                        self.rbuf.extend_from_slice(&self.scratch[..n]);
                        self.pending_input = true;
                    }
                    _ => return BlockOutcome::Gone,
                },
            }
        }
    }

    /// Reads what the client sent into the scratch buffer; None when the connection is over
    /// (closed, failed, or idle past `timeout` seconds). While waiting, pub/sub messages for
    /// this client are written out as they arrive. Subscribers are never timed out.
    async fn read_some(&mut self, timeout: u64) -> Option<usize> {
        let subscribed = self.subscribed();
        let Conn {
            reader,
            writer,
            scratch,
            push_rx,
            resp3,
            info,
            ..
        } = self;
        // Read into an initialised scratch buffer and append what arrived: zeroing a fresh
        // window of the query buffer on every read would cost more than the copy.
        let mut read = std::pin::pin!(reader.read(&mut scratch[..]));
        // Messages first: what was sent to this client before its next command arrived goes
        // out before that command's reply, as Redis writes an invalidation or a message into
        // the client's output at once. (Polled the other way round, a redirect target whose
        // shard had not run since the push arrived answered the command first when both were
        // waiting.) Only after several writes of messages in a row does the socket get the
        // first look, so that a flood of messages cannot keep the client's own commands from
        // being read.
        const PUSH_WRITES_BEFORE_A_READ: u32 = 8;
        let mut streak = 0u32;
        loop {
            if let Some((rx, state)) = push_rx.as_mut() {
                if state.overflowed() {
                    tracing::warn!(
                        client = info.id,
                        "Client scheduled to be closed ASAP for overcoming of output buffer limits."
                    );
                    return None;
                }
                let reads_first = streak >= PUSH_WRITES_BEFORE_A_READ;
                let next = futures::future::poll_fn(|cx| {
                    use std::future::Future;
                    use std::task::Poll;
                    if !reads_first {
                        if let Poll::Ready(msg) = rx.poll_next_unpin(cx) {
                            return Poll::Ready(Either::Right(msg));
                        }
                    }
                    if let Poll::Ready(res) = read.as_mut().poll(cx) {
                        return Poll::Ready(Either::Left(res));
                    }
                    if reads_first {
                        if let Poll::Ready(msg) = rx.poll_next_unpin(cx) {
                            return Poll::Ready(Either::Right(msg));
                        }
                    }
                    Poll::Pending
                })
                .await;
                let next = match next {
                    Either::Left(res) => return res.ok().filter(|&n| n > 0),
                    Either::Right(msg) => msg,
                };
                streak = if reads_first { 0 } else { streak + 1 };
                match next {
                    Some(msg) => {
                        let mut buf = BytesMut::new();
                        let mut size = msg.wire_len();
                        msg.write(&mut Reply::new(&mut buf, *resp3), subscribed);
                        while let Ok(m) = rx.try_recv() {
                            size += m.wire_len();
                            m.write(&mut Reply::new(&mut buf, *resp3), subscribed);
                        }
                        // A subscriber that stopped reading blocks this write; the limit check
                        // on the publishers' side flags it, and the flag ends the write.
                        let write = std::pin::pin!(writer.write_all(&buf));
                        let flagged = std::pin::pin!(async {
                            while !state.overflowed() {
                                glommio::timer::sleep(Duration::from_millis(100)).await;
                            }
                        });
                        let ok = match futures::future::select(write, flagged).await {
                            Either::Left((res, _)) => res.is_ok(),
                            Either::Right(_) => false,
                        };
                        state.written(size);
                        if !ok {
                            if state.overflowed() {
                                tracing::warn!(
                                    client = info.id,
                                    "Client scheduled to be closed ASAP for overcoming of output buffer limits."
                                );
                            }
                            return None;
                        }
                        continue;
                    }
                    None => {
                        if state.overflowed() {
                            continue;
                        }
                        *push_rx = None;
                        continue;
                    }
                }
            }
            if timeout == 0 || subscribed {
                return read.await.ok().filter(|&n| n > 0);
            }
            let idle = std::pin::pin!(glommio::timer::sleep(Duration::from_secs(timeout)));
            return match futures::future::select(read.as_mut(), idle).await {
                Either::Left((res, _)) => res.ok().filter(|&n| n > 0),
                Either::Right(_) => None,
            };
        }
    }

    /// Brings the client's share of its shard's `client_mem` up to date with its buffers (what
    /// client eviction counts). An evicted client counts nothing any more.
    fn account_memory(&self) {
        if self.info.killed.get() {
            return;
        }
        let now = self.info.memory();
        let before = self.info.mem.replace(now);
        if now != before {
            let total = self.shard.client_mem.get();
            self.shard
                .set_client_mem((total + now).saturating_sub(before));
        }
    }

    /// Sends the pending replies. The connection first lets every other connection task that
    /// is ready run (a yield puts it at the back of the shard's run queue), so that one loop
    /// iteration's replies leave in one burst after all its reads and commands, as Redis writes
    /// them before it sleeps. Sent one by one between commands, each reply woke a client that had
    /// gone back to sleep after the previous one: on a VM, waking a thread on another core (an
    /// IPI) cost more than executing a pipelined SET.
    async fn write_out(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        futures_lite::future::yield_now().await;
        // Until the socket took it all, the reply counts in the client's memory.
        self.info.omem.set(self.out.len());
        self.account_memory();
        let ok = self.writer.write_all(&self.out).await.is_ok();
        self.info.omem.set(0);
        self.account_memory();
        {
            let mut st = self.shard.state.borrow_mut();
            st.stats.net_output_bytes += self.out.len() as u64;
            st.stats.writes_processed += 1;
        }
        self.out.clear();
        if self.out.capacity() > 1024 * 1024 {
            self.out = BytesMut::with_capacity(16 * 1024);
        }
        ok
    }

    /// MONITOR mode: forward the feed until the client goes away.
    async fn monitor_loop(&mut self) {
        let Some(mut rx) = self.monitor_rx.take() else {
            return;
        };
        while let Some(line) = rx.next().await {
            if self.info.killed.get() || self.shard.globals.shutting_down() {
                return;
            }
            self.out.extend_from_slice(&line);
            if !self.write_out().await {
                return;
            }
        }
    }

    /// The shard that must execute a keyed command, or None when its keys span shards.
    #[inline]
    fn route(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<usize> {
        if self.shard.nshards() == 1 {
            return Some(0);
        }
        let mut target = None;
        for pos in spec.keys(args) {
            let s = self.shard.shard_of(&args[pos]);
            match target {
                None => target = Some(s),
                Some(t) if t != s => return None,
                _ => {}
            }
        }
        Some(target.unwrap_or(self.shard.id))
    }

    /// Writes an error that is decided before execution, after everything queued before it.
    /// An EXEC refused this way discards the transaction and says why (Redis's
    /// `execCommandAbort`; the error's ERR code is dropped, others are kept). `refused` is the
    /// command and its arguments (for its statistics slot), None for an unknown command.
    async fn reject(&mut self, msg: &[u8], refused: Option<(&CommandSpec, &[Bytes])>) {
        self.flush_group().await;
        let mut abort = Vec::new();
        let msg = if refused.is_some_and(|(s, _)| s.name == "exec") {
            self.multi = None;
            crate::tx::multi::unwatch_all(self).await;
            abort.extend_from_slice(b"EXECABORT Transaction discarded because of: ");
            abort.extend_from_slice(msg.strip_prefix(b"ERR ").unwrap_or(msg));
            &abort[..]
        } else {
            if let Some(m) = self.multi.as_mut() {
                m.failed = true;
            }
            msg
        };
        let suppress = self.take_suppress();
        let mark = self.out.len();
        self.reply().error_bytes(msg);
        if suppress {
            self.out.truncate(mark);
        }
        let mut st = self.shard.state.borrow_mut();
        st.stats.error_replied(msg);
        if let Some((spec, args)) = refused {
            st.cmd_stats[commands::stat_index(spec, args)].rejected_calls += 1;
        }
    }

    /// Re-reads the connection's user after an ACL change. A user that is gone (deleted, or
    /// replaced by ACL LOAD) leaves the connection as the default user, unauthenticated, as
    /// Redis does before it closes it.
    pub fn refresh_user(&mut self) {
        let acl = &self.shard.globals.acl;
        self.acl_gen = acl.generation();
        let name = self.perms.name.clone();
        match acl.perms(name.as_bytes()) {
            Some(p) => self.perms = p,
            None => {
                if let Some(p) = acl.perms(b"default") {
                    self.set_user(p);
                }
                self.authenticated = false;
            }
        }
    }

    /// Makes `p` the connection's user (AUTH, HELLO AUTH).
    pub fn set_user(&mut self, p: Arc<crate::server::acl::Perms>) {
        *self.info.user.borrow_mut() = p.name.clone();
        self.perms = p;
    }

    /// Logs an ACL refusal and returns Redis's NOPERM error for it.
    pub fn acl_denied(
        &self,
        d: crate::server::acl::Denied,
        ctx: crate::server::acl::LogContext,
        name: &str,
        args: &[Bytes],
    ) -> String {
        use crate::server::acl::Denied;
        let msg = match d {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{name}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_string()
            }
        };
        let (reason, object) = crate::server::acl::log_reason_and_object(d, name, args);
        let user = self.perms.name.clone();
        crate::commands::acl_family::log_denied(self, reason, ctx, &object, user.as_bytes());
        msg
    }

    /// Catches up with an ACL change (one atomic load when nothing changed).
    pub fn sync_user(&mut self) {
        if self.shard.globals.acl.generation() != self.acl_gen {
            self.refresh_user();
        }
    }

    /// EXEC's check of a queued command against the rules as they are now (they may have
    /// changed since it was queued): the error to reply instead of running it, logged in the
    /// ACL log, or None when it may run.
    pub fn acl_refusal_in_exec(&mut self, spec: &CommandSpec, args: &[Bytes]) -> Option<String> {
        use crate::server::acl::{Denied, LogContext};
        self.sync_user();
        if self.perms.unrestricted {
            return None;
        }
        let d = self.perms.check(spec, args).err()?;
        let name = commands::resolve(args).map_or(spec.name, |(_, n)| n);
        self.acl_denied(d, LogContext::Multi, name, args);
        let reason = match d {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        Some(format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
        ))
    }

    fn take_suppress(&mut self) -> bool {
        let s = self.reply_mode == ReplyMode::Off || self.skip_next;
        self.skip_next = false;
        s
    }

    /// Runs one parsed command. `looked_up`: its table entry when the caller already found it
    /// (`run`'s prefetch pass), so that it is not looked up twice.
    async fn dispatch(&mut self, args: Args, looked_up: Option<&'static CommandSpec>) {
        // A container's subcommand is looked up and checked like a command of its own, and
        // Redis's errors name it in full (`config|set`).
        let (spec, name) = match commands::resolve_found(looked_up, &args) {
            Ok(x) => x,
            Err(commands::Unresolved::Unknown(msg)) => return self.reject(&msg, None).await,
            Err(commands::Unresolved::Arity(spec, name)) => {
                self.info.last_cmd.set(name);
                let msg = commands::arity_error(name);
                return self.reject(msg.as_bytes(), Some((spec, &args))).await;
            }
        };
        self.info.last_cmd.set(name);
        if spec.has(flags::PROTECTED) {
            if let Some(refusal) = self.protected_refusal(spec, &args) {
                return self.reject(refusal.as_bytes(), Some((spec, &args))).await;
            }
        }
        if !self.authenticated && !spec.has(flags::NO_AUTH) {
            return self
                .reject(b"NOAUTH Authentication required.", Some((spec, &args)))
                .await;
        }
        // ACLs: one atomic load, and one branch for a user with every permission. A command
        // refused inside MULTI for NO_MULTI gets that error first, as in Redis.
        self.sync_user();
        // Short-circuits on the first test for a user with every permission.
        #[allow(clippy::nonminimal_bool)]
        if !self.perms.unrestricted
            && !(self.multi.is_some()
                && spec.has(flags::NO_MULTI)
                && !crate::tx::multi::runs_immediately_in_multi(spec.name))
        {
            if let Err(d) = self.perms.check(spec, &args) {
                let ctx = if self.multi.is_some() {
                    crate::server::acl::LogContext::Multi
                } else {
                    crate::server::acl::LogContext::Toplevel
                };
                let msg = self.acl_denied(d, ctx, name, &args);
                return self.reject(msg.as_bytes(), Some((spec, &args))).await;
            }
        }
        // A script past busy-reply-threshold on another shard (this shard's own clients hear
        // from `super::busy` while it runs one). SHUTDOWN is allowed only with NOSAVE then.
        if !commands::allowed_while_busy(spec, name, &args) {
            if let Some(e) = self.shard.globals.scripting.busy_error() {
                return self.reject(e.as_bytes(), Some((spec, &args))).await;
            }
        }
        // Out of memory: nothing may be queued inside MULTI, and EXEC of a block that may
        // grow memory aborts it (Redis's processCommand).
        if self.multi.is_some() && self.shard.state.borrow().config.maxmemory > 0 {
            use crate::shard::memory;
            if spec.name == "exec" {
                let oom = self.multi.as_ref().is_some_and(|m| {
                    m.cmds.iter().any(|(s, a)| {
                        s.has(flags::DENYOOM) && memory::command_oom(&self.shard, s, a)
                    })
                });
                if oom {
                    return self
                        .reject(memory::ERR_OOM.as_bytes(), Some((spec, &args)))
                        .await;
                }
            } else if !matches!(spec.name, "discard" | "quit" | "reset")
                && memory::command_oom(&self.shard, spec, &args)
            {
                return self
                    .reject(memory::ERR_OOM.as_bytes(), Some((spec, &args)))
                    .await;
            }
        }
        if self.subscribed() && !self.resp3 {
            if !crate::pubsub::allowed_while_subscribed(spec.name) {
                let msg = format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", name);
                return self.reject(msg.as_bytes(), Some((spec, &args))).await;
            }
            if spec.name == "ping" && args.len() <= 2 && self.multi.is_none() {
                self.flush_group().await;
                // What was sent to this client before its PING goes out before the answer.
                self.take_pushes(None, &[]);
                let suppress = self.take_suppress();
                let mark = self.out.len();
                self.pubsub_ping(spec, &args);
                if suppress {
                    self.out.truncate(mark);
                }
                return;
            }
        }
        if let Some(m) = self.multi.as_mut() {
            if !crate::tx::multi::runs_immediately_in_multi(spec.name) {
                if spec.has(flags::NO_MULTI) {
                    return self
                        .reject(
                            b"ERR Command not allowed inside a transaction",
                            Some((spec, &args)),
                        )
                        .await;
                }
                m.cmds.push((spec, args));
                self.info.multi.set(m.cmds.len() as i64);
                self.flush_group().await;
                if !self.take_suppress() {
                    self.reply().simple("QUEUED");
                }
                return;
            }
        }
        self.wait_if_paused(spec).await;
        // MONITOR shows commands as executed (after SELECT, with the new db), like Redis.
        let monitored = self.shard.globals.monitors.load(Ordering::Relaxed) > 0
            && !spec.has(flags::SKIP_MONITOR);
        let feed_args = if monitored { Some(args.clone()) } else { None };
        // Only a subscribed connection is sent messages (a connection that unsubscribed from
        // everything keeps its receiver, with nothing more coming).
        if self.push_rx.is_some() && (self.subscribed() || self.tracking.is_some()) {
            self.execute_with_pushes(spec, args).await;
            self.after_tracked_command(spec);
        } else {
            self.execute(spec, args).await;
        }
        if let Some(a) = feed_args {
            self.feed_monitors(&a);
        }
    }

    /// `execute` for a connection that receives pub/sub messages: the messages this command
    /// caused (a PUBLISH to its own channel, keyspace events of its own write, on any shard,
    /// all queued before the command's reply was made) go out before its reply, as in Redis.
    /// A (un)subscribe's confirmation goes first instead: what arrives while it runs is for
    /// the new subscription. Commands do not wait in a group here, so each reply's place is
    /// known.
    async fn execute_with_pushes(&mut self, spec: &'static CommandSpec, args: Args) {
        self.flush_group().await;
        self.take_pushes(None, &[]);
        let mark = self.out.len();
        // The keys, in order, to put the command's own invalidations in (its keys may live on
        // several shards, which send theirs independently).
        let keys: Vec<Bytes> = if self.tracking.is_some() {
            spec.keys(&args).map(|p| args[p].clone()).collect()
        } else {
            Vec::new()
        };
        self.execute(spec, args).await;
        self.flush_group().await;
        let subscription = crate::pubsub::allowed_while_subscribed(spec.name)
            && !matches!(spec.name, "ping" | "quit" | "reset");
        self.take_pushes((!subscription).then_some(mark), &keys);
    }

    /// Writes the messages waiting for this connection into its output, at `at` (before the
    /// replies from there on) or at the end. Invalidations always go at the end: Redis 7.0
    /// sends a client's own after the reply of the command that caused them.
    ///
    /// Default-mode invalidations of one key each come in the order of `keys` (the command's
    /// keys). Broadcast ones are held until the connection writes its pipeline's replies, then
    /// merged per prefix (`write_held_broadcasts`), as Redis sends them before it sleeps.
    fn take_pushes(&mut self, at: Option<usize>, keys: &[Bytes]) {
        let subscribed = self.subscribed();
        let Some((rx, state)) = self.push_rx.as_mut() else {
            return;
        };
        let mut buf = BytesMut::new();
        let mut after = Vec::new();
        let mut size = 0;
        while let Ok(m) = rx.try_recv() {
            size += m.wire_len();
            if let PushMsg::Invalidate {
                prefix: Some(_), ..
            } = m
            {
                self.held_broadcasts.push(m);
            } else if m.is_tracking() {
                after.push(m);
            } else {
                m.write(&mut Reply::new(&mut buf, self.resp3), subscribed);
            }
        }
        if size == 0 {
            return;
        }
        state.written(size);
        match at {
            Some(i) if i < self.out.len() => {
                let replies = self.out.split_off(i);
                self.out.extend_from_slice(&buf);
                self.out.extend_from_slice(&replies);
            }
            _ => self.out.extend_from_slice(&buf),
        }
        if keys.len() > 1 {
            let place = |m: &PushMsg| match m {
                PushMsg::Invalidate { keys: Some(k), .. } if k.len() == 1 => {
                    keys.iter().position(|x| *x == k[0]).unwrap_or(keys.len())
                }
                _ => keys.len(),
            };
            after.sort_by_key(place);
        }
        for m in after {
            m.write(&mut Reply::new(&mut self.out, self.resp3), subscribed);
        }
    }

    /// Writes the broadcast invalidations held while the pipeline ran: one message per prefix
    /// (in prefix order) with its keys in order, as Redis batches them per event loop.
    fn write_held_broadcasts(&mut self) {
        if self.held_broadcasts.is_empty() {
            return;
        }
        let mut merged: std::collections::BTreeMap<
            (Bytes, bool, bool),
            std::collections::BTreeSet<Bytes>,
        > = Default::default();
        for m in self.held_broadcasts.drain(..) {
            if let PushMsg::Invalidate {
                keys: Some(keys),
                prefix: Some(p),
                redirected,
                null_resp3,
            } = m
            {
                merged
                    .entry((p, redirected, null_resp3))
                    .or_default()
                    .extend(keys);
            }
        }
        let subscribed = self.subscribed();
        for ((p, redirected, null_resp3), keys) in merged {
            PushMsg::Invalidate {
                keys: Some(keys.into_iter().collect()),
                prefix: Some(p),
                redirected,
                null_resp3,
            }
            .write(&mut Reply::new(&mut self.out, self.resp3), subscribed);
        }
    }

    /// CLIENT CACHING covers the next command, or the next transaction (Redis's
    /// `resetClient`): any command but CLIENT itself, outside MULTI, uses it up.
    fn after_tracked_command(&mut self, spec: &CommandSpec) {
        let Some(t) = self.tracking.as_mut() else {
            return;
        };
        if t.caching && spec.name != "client" && self.multi.is_none() {
            t.caching = false;
            self.refresh_label();
        }
    }

    async fn execute(&mut self, spec: &'static CommandSpec, args: Args) {
        if self.shard.aof_replies_wait.get()
            && (spec.has(flags::WRITE)
                || spec.has(flags::MAY_REPLICATE)
                // Scripts write through `redis.call`: their replies wait for those writes too.
                || matches!(spec.name, "exec" | "eval" | "evalsha" | "fcall"))
        {
            self.aof_wait |= match (spec.exec, self.route(spec, &args)) {
                // Sent to its shard in a batch, which answers only once the command's record is
                // written (`Shard::execute_batch`): the reply itself is the wait.
                (Exec::Shard(_), Some(t))
                    if t != self.shard.id
                        && !spec.has(flags::BLOCKING)
                        && self.in_exec.is_none() =>
                {
                    0
                }
                (Exec::Shard(_), Some(t)) => crate::persistence::aof::shard_bit(t),
                _ => u64::MAX,
            };
        }
        if spec.has(flags::BLOCKING)
            && self.in_exec.is_none()
            && (spec.name != "xread" || crate::commands::stream_family::xread_blocks(&args))
            && (spec.name != "xreadgroup"
                || crate::commands::stream_group_family::xreadgroup_blocks(&args))
        {
            // Redis refuses a blocking write that may grow memory before it blocks (BLMOVE,
            // BRPOPLPUSH); once blocked, the client is served whatever the memory.
            if spec.has(flags::DENYOOM)
                && crate::shard::memory::command_oom(&self.shard, spec, &args)
            {
                return self
                    .reject(
                        crate::shard::memory::ERR_OOM.as_bytes(),
                        Some((spec, &args)),
                    )
                    .await;
            }
            self.flush_group().await;
            let suppress = self.take_suppress();
            let mark = self.out.len();
            crate::commands::blocking_family::execute_blocking(self, spec, args).await;
            if suppress {
                self.out.truncate(mark);
            }
            return;
        }
        match spec.exec {
            Exec::Conn(f) => {
                self.flush_group().await;
                let off_before = self.reply_mode == ReplyMode::Off;
                let skip_taken = std::mem::take(&mut self.skip_next);
                let mark = self.out.len();
                self.run_conn(spec, f, args).await;
                self.publish_client_state();
                // CLIENT REPLY ON answers even though replies were off when it arrived.
                let suppress = skip_taken || (off_before && self.reply_mode != ReplyMode::On);
                if suppress {
                    self.out.truncate(mark);
                    if self.close_after_reply && spec.name == "quit" {
                        self.close_after_reply = false;
                        self.ignore_input = true;
                    }
                }
            }
            Exec::Shard(_) => match self.route(spec, &args) {
                Some(target) if target == self.shard.id && self.group_order.is_empty() => {
                    if self.shard.command_blocked(spec, &args, self.db) {
                        let shard = self.shard.clone();
                        shard
                            .wait_unlocked(self.db, std::iter::once((spec, &args[..])))
                            .await;
                    }
                    let suppress = self.take_suppress();
                    let mark = self.out.len();
                    {
                        let mut st = self.shard.state.borrow_mut();
                        execute_keyed(
                            &mut st,
                            &self.shard.globals,
                            spec,
                            &args,
                            self.db,
                            self.resp3,
                            &self.label,
                            &mut self.out,
                        );
                    }
                    if suppress {
                        self.out.truncate(mark);
                    }
                    self.parser.recycle(args);
                }
                Some(target) => {
                    let suppress = self.take_suppress();
                    self.group_order.push(Pending {
                        shard: target,
                        suppress,
                    });
                    self.group_cmds[target].push((spec.index() as u16, args));
                }
                None => {
                    // Statistics are counted where the command's handler runs.
                    self.flush_group().await;
                    let suppress = self.take_suppress();
                    let mark = self.out.len();
                    crate::tx::execute_cross_shard(self, spec, args).await;
                    if suppress {
                        self.out.truncate(mark);
                    }
                }
            },
        }
    }

    /// Runs a connection-level command (on its own or inside EXEC) and counts it as Redis's
    /// `call()` does: INFO commandstats and errorstats, the command count and the slow log.
    async fn run_conn(&mut self, spec: &'static CommandSpec, f: commands::ConnFn, args: Args) {
        let slot = commands::stat_index(spec, &args);
        // The slow log needs the arguments after the command took them.
        let logged = (!spec.has(flags::SKIP_SLOWLOG)
            && self.shard.state.borrow().config.slowlog_log_slower_than >= 0)
            .then(|| args.clone());
        crate::scripting::lua::take_counted_error();
        let mark = self.out.len();
        let started = std::time::Instant::now();
        f(self, args).await;
        let usec = started.elapsed().as_micros() as u64;
        let uncounted = std::mem::take(&mut self.uncounted_error);
        let failed = self.out.len() > mark && self.out[mark] == b'-' && !uncounted;
        let blocked = self.blocked_call.take();
        let mut st = self.shard.state.borrow_mut();
        // An error a script repeats from one of its commands was counted then.
        if failed && !crate::scripting::lua::take_counted_error() {
            st.stats.error_replied(&self.out[mark..]);
        }
        match blocked {
            None => st.count_call(slot, usec, failed),
            // A command that blocked (WAIT) counts as Redis counts a blocked client.
            Some(b) => {
                st.count_blocked(slot, b.usec);
                if b.unblocked {
                    st.count_unblocked(slot, b.usec, true);
                }
            }
        }
        if let Some(a) = logged {
            st.maybe_slowlog(&self.shard.globals, &a, usec, &self.label);
        }
    }

    /// Runs one queued command of an EXEC block that holds every shard whole: keyed commands
    /// go straight to their shards (jobs pass the block's own locks), connection-level ones run
    /// as usual.
    pub async fn execute_in_exec(&mut self, spec: &'static CommandSpec, args: Args) {
        match spec.exec {
            Exec::Conn(f) => self.run_conn(spec, f, args).await,
            // A SUBSCRIBE earlier in the block already changed how PING answers.
            Exec::Shard(_) if spec.name == "ping" && self.pubsub_ping(spec, &args) => {}
            Exec::Shard(_) => {
                let cmd = crate::tx::TxCmd::new(spec, args, self.db);
                let shard = self.shard.clone();
                let label = self.label.clone();
                match crate::tx::run_under_global_lock(&shard, cmd, self.resp3, &label).await {
                    Ok(r) => self.out.extend_from_slice(&r.buf),
                    Err(e) => self.reply().error(e),
                }
            }
        }
    }

    /// Executes the current group: one batch message per other shard, local commands inline,
    /// then the replies in request order.
    async fn flush_group(&mut self) {
        if self.group_order.is_empty() {
            return;
        }
        let me = self.shard.id;
        let n = self.shard.nshards();
        // Per-flush tables live in the connection between flushes (no allocation per flush).
        let FlushScratch {
            mut receivers,
            mut replies,
            mut cursor,
            mut spare,
        } = std::mem::take(&mut self.flush_scratch);
        receivers.resize_with(n, || None);
        replies.resize_with(n, || None);
        cursor.resize(n, 0);
        spare.resize_with(n, || None);
        for (s, slot) in receivers.iter_mut().enumerate() {
            if s == me || self.group_cmds[s].is_empty() {
                continue;
            }
            // The batch goes with its vector and takes the last reply's buffers along; the
            // vector that last went to that shard collects the next group for it.
            let mut room = spare[s].take().unwrap_or_default();
            let next = std::mem::take(&mut room.cmds);
            let cmds = std::mem::replace(&mut self.group_cmds[s], next);
            *slot = self
                .shard
                .router
                .send_batch(s, self.db, self.resp3, cmds, self.label.clone(), room)
                .await
                .ok();
        }
        if !self.group_cmds[me].is_empty() {
            let mut cmds = std::mem::take(&mut self.group_cmds[me]);
            if !self.shard.locks.borrow().is_idle() {
                let shard = self.shard.clone();
                let db = self.db;
                shard
                    .wait_unlocked(
                        db,
                        cmds.iter()
                            .map(|(idx, args)| (commands::spec(*idx), &args[..])),
                    )
                    .await;
            }
            let mut reply = spare[me].take().unwrap_or_default();
            let BatchReply { buf, ends, .. } = &mut *reply;
            let mut st = self.shard.state.borrow_mut();
            st.prefetch_cmds(self.db, &cmds);
            for (idx, args) in &cmds {
                execute_keyed(
                    &mut st,
                    &self.shard.globals,
                    commands::spec(*idx),
                    args,
                    self.db,
                    self.resp3,
                    &self.label,
                    buf,
                );
                ends.push(buf.len());
            }
            drop(st);
            replies[me] = Some(reply);
            for (_, args) in cmds.drain(..) {
                self.parser.recycle(args);
            }
            self.group_cmds[me] = cmds;
        }
        for s in 0..n {
            if let Some(rx) = receivers[s].take() {
                replies[s] = rx.await.ok();
            }
        }
        let order = std::mem::take(&mut self.group_order);
        for p in &order {
            let i = cursor[p.shard];
            cursor[p.shard] += 1;
            if p.suppress {
                continue;
            }
            match &replies[p.shard] {
                Some(r) if i < r.ends.len() => self.out.extend_from_slice(r.reply(i)),
                _ => self.reply().error(ERR_SHARD_GONE),
            }
        }
        self.group_order = order;
        self.group_order.clear();
        for (s, reply) in replies.iter_mut().enumerate() {
            if let Some(mut r) = reply.take() {
                // A reply from another shard brings its batch's argument vectors back, emptied:
                // they go to the parser (capped there), not to be held per shard.
                for (_, args) in r.cmds.drain(..) {
                    self.parser.recycle(args);
                }
                spare[s] = r.recycle();
            }
        }
        cursor.clear();
        self.flush_scratch = FlushScratch {
            receivers,
            replies,
            cursor,
            spare,
        };
    }

    async fn wait_if_paused(&mut self, spec: &CommandSpec) {
        loop {
            let Some((until, write_only)) = self.shard.pause.get() else {
                return;
            };
            let now = unix_ms();
            if now >= until {
                self.shard.pause.set(None);
                return;
            }
            if write_only && !spec.has(flags::WRITE) && !spec.has(flags::MAY_REPLICATE) {
                return;
            }
            let wait = (until - now).min(10);
            glommio::timer::sleep(Duration::from_millis(wait)).await;
        }
    }

    fn feed_monitors(&self, args: &[Bytes]) {
        let us = crate::server::globals::unix_us();
        // Redis names a unix-socket client by the socket's path here, not by its address.
        let who = match self.info.addr.strip_suffix(":0") {
            Some(path) if self.info.unix => format!("unix:{path}"),
            _ => self.info.addr.clone(),
        };
        let mut line = format!(
            "+{}.{:06} [{} {}]",
            us / 1_000_000,
            us % 1_000_000,
            self.db,
            who
        );
        for a in args {
            line.push(' ');
            line.push_str(&repr(a));
        }
        line.push_str("\r\n");
        let line = Bytes::from(line);
        for (_, tx) in self.shard.monitors.borrow().iter() {
            let _ = tx.unbounded_send(line.clone());
        }
    }
}

/// Quotes bytes like Redis's `sdscatrepr` (used by MONITOR).
pub fn repr(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{:02x}", c)),
        }
    }
    s.push('"');
    s
}

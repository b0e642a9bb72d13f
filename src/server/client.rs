//! Client bookkeeping on one shard: what CLIENT LIST/INFO/KILL need to know about each
//! connection the shard accepted. The connection task owns its socket; this registry only holds
//! shared descriptive state and the means to ask a connection to close.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::pubsub::PushSender;

/// The read buffer every connection has (CLIENT LIST's rbs), counted in its memory.
pub const READ_BUFFER: usize = 16384;

/// Descriptive state of one connection, updated by its task.
pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    /// Connected through the unix socket (CLIENT LIST flag U).
    pub unix: bool,
    pub fd: RawFd,
    pub created_ms: u64,
    pub last_ms: Cell<u64>,
    pub name: RefCell<String>,
    pub db: Cell<usize>,
    pub resp: Cell<u8>,
    pub last_cmd: Cell<&'static str>,
    pub qbuf: Cell<usize>,
    /// Replies written to the socket and not yet taken by it (CLIENT LIST's omem).
    pub omem: Cell<usize>,
    /// What the client's memory counts in its shard's `client_mem` (see `memory`); 0 once
    /// the client was evicted.
    pub mem: Cell<u64>,
    /// CLIENT NO-EVICT on: never disconnected by client eviction (flag e).
    pub no_evict: Cell<bool>,
    pub monitor: Cell<bool>,
    pub killed: Cell<bool>,
    /// Channels, patterns and shard channels subscribed to (CLIENT LIST's sub, psub, ssub).
    pub subs: Cell<(usize, usize, usize)>,
    /// Commands queued in MULTI, -1 outside MULTI (CLIENT LIST's multi).
    pub multi: Cell<i64>,
    /// Set while the client waits in a blocking command: CLIENT UNBLOCK sends through it.
    pub unblock: RefCell<Option<futures::channel::oneshot::Sender<Unblock>>>,
    /// The client's push channel (pub/sub messages, invalidations), once it has one.
    pub push: RefCell<Option<PushSender>>,
    /// A push channel made for the client by another connection (CLIENT TRACKING REDIRECT to
    /// it), until the client's connection takes its receiving end.
    pub push_rx: RefCell<Option<PushReceiver>>,
    /// CLIENT TRACKING as CLIENT LIST shows it: (redirect id, BCAST, broken-redirect flag) while
    /// tracking is on.
    pub tracking: RefCell<Option<(u64, bool, Arc<AtomicBool>)>>,
    /// The user the connection is authenticated as (CLIENT LIST's user, CLIENT KILL USER,
    /// ACL DELUSER).
    pub user: RefCell<Arc<str>>,
}

/// The receiving end of a push channel and its accounting.
pub type PushReceiver = (
    futures::channel::mpsc::UnboundedReceiver<crate::pubsub::PushMsg>,
    Arc<crate::pubsub::PushState>,
);

/// How CLIENT UNBLOCK ends a blocked client's wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if its timeout had expired.
    Timeout,
    /// With `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

impl ClientHandle {
    /// The sender of the client's push channel, created on first use (the connection picks
    /// up the receiving end with `take_push_receiver`).
    pub fn push_sender(&self) -> PushSender {
        if let Some(tx) = &*self.push.borrow() {
            return tx.clone();
        }
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let tx = PushSender::new(tx);
        *self.push_rx.borrow_mut() = Some((rx, tx.state().clone()));
        *self.push.borrow_mut() = Some(tx.clone());
        tx
    }

    /// The receiving end of a push channel created for this client and not yet taken.
    pub fn take_push_receiver(&self) -> Option<PushReceiver> {
        self.push_rx.borrow_mut().take()
    }

    /// What the client's buffers take, as CLIENT LIST's tot-mem and client eviction count it.
    pub fn memory(&self) -> u64 {
        (READ_BUFFER + self.qbuf.get() + self.omem.get()) as u64
    }

    /// Asks the connection to close: its pending read returns at once.
    pub fn kill(&self) {
        self.killed.set(true);
        // SAFETY: the fd stays open until the connection task drops its stream; shutdown on a
        // live socket only ends its I/O.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }

    /// Ends the client's blocking wait, if it is in one (CLIENT UNBLOCK).
    pub fn unblock(&self, how: Unblock) -> bool {
        match self.unblock.borrow_mut().take() {
            Some(tx) => tx.send(how).is_ok(),
            None => false,
        }
    }

    /// Whether the client holds a subscription (CLIENT LIST TYPE pubsub, flag P).
    pub fn is_pubsub(&self) -> bool {
        let (sub, psub, ssub) = self.subs.get();
        sub + psub + ssub > 0
    }

    /// The CLIENT LIST line for this client (without the trailing newline).
    pub fn describe(&self, now_ms: u64) -> String {
        let age = now_ms.saturating_sub(self.created_ms) / 1000;
        let idle = now_ms.saturating_sub(self.last_ms.get()) / 1000;
        let (sub, psub, ssub) = self.subs.get();
        let multi = self.multi.get();
        // Redis's letters, in its order.
        let mut flags = String::new();
        if self.monitor.get() {
            flags.push('O');
        }
        if self.is_pubsub() {
            flags.push('P');
        }
        if multi >= 0 {
            flags.push('x');
        }
        if self.unblock.borrow().is_some() {
            flags.push('b');
        }
        let tracking = self.tracking.borrow();
        if let Some((_, bcast, broken)) = &*tracking {
            flags.push('t');
            if broken.load(Ordering::Acquire) {
                flags.push('R');
            }
            if *bcast {
                flags.push('B');
            }
        }
        if self.unix {
            flags.push('U');
        }
        if self.no_evict.get() {
            flags.push('e');
        }
        let redir = tracking.as_ref().map_or(-1, |t| t.0 as i64);
        if flags.is_empty() {
            flags.push('N');
        }
        let qbuf = self.qbuf.get();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name.borrow(),
            age,
            idle,
            flags,
            self.db.get(),
            sub,
            psub,
            ssub,
            multi,
            qbuf,
            READ_BUFFER.saturating_sub(qbuf),
            READ_BUFFER,
            self.omem.get(),
            self.memory(),
            self.last_cmd.get(),
            self.user.borrow(),
            redir,
            self.resp.get()
        )
    }
}

/// The clients connected to this shard, by id (ordered, so CLIENT LIST is stable).
#[derive(Default)]
pub struct ClientRegistry {
    pub clients: BTreeMap<u64, Rc<ClientHandle>>,
}

impl ClientRegistry {
    pub fn add(&mut self, c: Rc<ClientHandle>) {
        self.clients.insert(c.id, c);
    }

    pub fn remove(&mut self, id: u64) {
        self.clients.remove(&id);
    }
}

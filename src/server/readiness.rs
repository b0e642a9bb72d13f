//! Read readiness of a shard's client sockets through one edge-triggered epoll instance per
//! shard, and the read half of a connection that uses it.
//!
//! Why not an io_uring poll per read, as glommio's streams do: that re-arms a poll for every
//! request, and every wake-up of one runs as task work on the shard's own core (a second socket
//! poll, a completion, through the signal-delivery path). With epoll the registration stays,
//! the kernel's wake-up callback only links the socket into the ready list (on the core that
//! delivered the packet), and the shard collects all ready sockets with one `epoll_wait` at the
//! end of each pass over its tasks, as an event loop does (`poll_hook`, run by the executor).
//! Only a shard about to park arms an io_uring poll on the epoll descriptor, to be woken by the
//! next event. Writes keep glommio's path.
//!
//! Measured on the 2-core VM (one shard on CPU 0, redis-benchmark on CPU 1, alternating
//! rounds). Epoll against a ring poll per read: GET at P=16 +9-12% rps and 0.78 -> 0.69 us of
//! CPU per request; SET at P=1 6.3-6.75 -> 5.85-6.25 us, Redis 5.85-6.35 us in the same
//! rounds; two shards, SET at P=1, 6.9 -> 6.4-6.5 us. The pass-end hook against re-arming the
//! ring poll after every batch (GET, P=1, 50 clients, one shard): `io_uring_enter` calls per
//! request 0.53 -> 0.22, `epoll_wait` calls 0.46 -> 0.84, CPU per request 0.5-3.5% lower in
//! each of five rounds; with two shards, no difference this VM's noise could show.
//!
//! The shard's listening sockets are in the same epoll set and are accepted from here too, so
//! that `super::busy` can accept and answer clients while a script holds the shard's thread.
//!
//! Owns: the epoll descriptor, one slot per registered socket (whether it may have data, the
//! task waiting for it, whether a busy script may answer it, and what `super::busy` read or
//! could not send for it), the executor's pass-end hook, and the pump task that holds the
//! ring poll for a parked shard. Must never block the shard (every `epoll_wait` has a zero
//! timeout), let the shard park without the ring poll armed (its sockets would have no
//! wake-up), or keep a slot for a closed socket
//! (a reused descriptor number would inherit it): `SocketReader` removes its slot when dropped,
//! before the socket closes, and `super::listen` a listener's before it closes it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::io::AsyncRead;
use glommio::net::TcpStream;

/// One registered socket.
pub(super) struct Slot {
    /// Data may be waiting (a client), or a connection (a listener): set by an epoll event (and
    /// at registration), cleared by a read or accept that came back short or empty-handed.
    pub(super) ready: bool,
    pub(super) waker: Option<Waker>,
    /// The connection waits for input with nothing of its own left to do (no partial command,
    /// no reply unsent, no MULTI...): `super::busy` may answer it while a script holds the
    /// shard. Set by the reader each time it waits, from `SocketReader::set_servable`.
    pub(super) servable: bool,
    /// What `super::busy` did for this socket while a script held the shard.
    pub(super) held: Option<Box<Held>>,
    /// A listening socket (see `Readiness::register_listener`).
    pub(super) listener: bool,
}

/// Bytes a busy script made the shard handle outside the connection's own task.
#[derive(Default)]
pub(super) struct Held {
    /// Read from a client, not yet handed to its connection (an incomplete command, or what
    /// followed a command the connection must run itself).
    pub(super) input: Vec<u8>,
    /// Replies written for a client that its socket did not take; the connection sends them
    /// before anything else.
    pub(super) output: Vec<u8>,
    /// Connections a listener accepted, not yet handed to the accept loop.
    pub(super) accepted: Vec<RawFd>,
}

/// A shard's epoll instance and its sockets.
pub struct Readiness {
    epfd: OwnedFd,
    pub(super) slots: RefCell<HashMap<RawFd, Slot, ahash::RandomState>>,
    /// Bumped whenever `super::busy` leaves replies behind for a connection, so that
    /// connections look for theirs only then.
    pub(super) held_epoch: std::cell::Cell<u64>,
    /// The executor's pass-end hook (`poll_hook`) asked the pump to arm its ring poll on the
    /// epoll descriptor, and the poll has not fired since.
    armed: std::cell::Cell<bool>,
    /// The pump, waiting for `poll_hook` to ask for the poll.
    pump_waker: RefCell<Option<Waker>>,
    /// `poll_hook`'s event buffer.
    events: RefCell<Vec<libc::epoll_event>>,
}

impl Readiness {
    /// Creates the epoll instance and spawns its pump on the current shard.
    pub fn start() -> io::Result<Rc<Readiness>> {
        // SAFETY: epoll_create1 takes no pointers; a valid descriptor is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let r = Rc::new(Readiness {
            epfd,
            slots: RefCell::new(HashMap::default()),
            held_epoch: std::cell::Cell::new(0),
            armed: std::cell::Cell::new(false),
            pump_waker: RefCell::new(None),
            events: RefCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS]),
        });
        let weak = Rc::downgrade(&r);
        glommio::spawn_local(async move {
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
            loop {
                let Some(epfd) = weak.upgrade().map(|r| r.epfd.as_raw_fd()) else {
                    return;
                };
                // The ring poll is armed only when the executor is about to park: while it has
                // work, `poll_hook` collects events at the end of every pass.
                std::future::poll_fn(|cx| match weak.upgrade() {
                    Some(r) if !r.armed.get() => {
                        *r.pump_waker.borrow_mut() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                    _ => Poll::Ready(()),
                })
                .await;
                if let Err(e) = glommio::net::readable(epfd).await {
                    // The shard's sockets have no other way to be woken: never stop pumping.
                    // Look at the epoll instance again after a pause (events that came in the
                    // meantime are still in its ready list).
                    warn_once(&format!("epoll readiness poll failed ({e}); retrying"));
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                }
                let Some(r) = weak.upgrade() else {
                    return;
                };
                r.armed.set(false);
                r.drain(&mut events);
            }
        })
        .detach();
        glommio::set_poll_hook(Some(poll_hook));
        Ok(r)
    }

    /// Collects every pending event without waiting and wakes the sockets' readers. Returns
    /// whether it woke any.
    pub(super) fn drain(&self, events: &mut [libc::epoll_event]) -> bool {
        let mut woke = false;
        loop {
            // SAFETY: `events` is a valid buffer of `events.len()` entries; timeout 0 never
            // blocks.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    0,
                )
            };
            if n <= 0 {
                return woke;
            }
            let mut slots = self.slots.borrow_mut();
            for ev in &events[..n as usize] {
                if let Some(slot) = slots.get_mut(&(ev.u64 as RawFd)) {
                    slot.ready = true;
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                        woke = true;
                    }
                }
            }
            if (n as usize) < events.len() {
                return woke;
            }
        }
    }

    /// Adds `fd` to the epoll set, unless `super::busy` already did (a connection it accepted
    /// and served while a script held the shard keeps what it read).
    pub(super) fn register(&self, fd: RawFd) -> io::Result<()> {
        if self.slots.borrow().contains_key(&fd) {
            return Ok(());
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event; the kernel copies it.
        let rc =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // Ready at first: whatever arrived before the registration is read without an event.
        self.slots.borrow_mut().insert(
            fd,
            Slot {
                ready: true,
                waker: None,
                servable: false,
                held: None,
                listener: false,
            },
        );
        Ok(())
    }

    /// Makes the listening socket `fd` non-blocking and adds it to the epoll set: connections
    /// are then accepted with [`Readiness::poll_accept`] (and by `super::busy` while a script
    /// holds the shard).
    pub fn register_listener(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: F_GETFL/F_SETFL on a descriptor the caller owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.register(fd)?;
        if let Some(slot) = self.slots.borrow_mut().get_mut(&fd) {
            slot.listener = true;
        }
        Ok(())
    }

    /// Accepts one connection on the listener `fd` (see `register_listener`), or registers the
    /// task to wake when one comes: a blocking socket like glommio's own accept gives, which the
    /// caller owns.
    pub(super) fn poll_accept(&self, fd: RawFd, cx: &mut Context<'_>) -> Poll<io::Result<RawFd>> {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(&fd) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        if let Some(held) = slot.held.as_mut() {
            if !held.accepted.is_empty() {
                return Poll::Ready(Ok(held.accepted.remove(0)));
            }
        }
        if slot.ready {
            match accept_now(fd) {
                Ok(Some(c)) => return Poll::Ready(Ok(c)),
                Ok(None) => slot.ready = false,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the listening socket `fd` out of the epoll set, before it closes: wakes its accept
    /// loop and returns the connections `super::busy` accepted for it and nobody took yet.
    pub(super) fn deregister_listener(&self, fd: RawFd) -> Vec<RawFd> {
        let slot = self.slots.borrow_mut().remove(&fd);
        self.deregister(fd);
        let Some(mut slot) = slot else {
            return Vec::new();
        };
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
        slot.held.map(|h| h.accepted).unwrap_or_default()
    }

    fn deregister(&self, fd: RawFd) {
        self.slots.borrow_mut().remove(&fd);
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL. The socket is still open
        // (its stream outlives the reader's drop).
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            );
        }
    }
}

/// Events collected per `epoll_wait`.
const EVENTS: usize = 256;

/// The shard executor's pass-end hook (`glommio::set_poll_hook`): collects ready sockets with
/// one `epoll_wait` at the end of every pass over the task queues, as an event loop does, and
/// arms the pump's ring poll only when the executor would otherwise park (`idle`) with nothing
/// ready. Re-arming the poll after every batch cost a ring submission and a completion per
/// batch: 0.61 `io_uring_enter` calls per GET at P=1 with one shard, besides 0.53 `epoll_wait`s.
fn poll_hook(idle: bool) -> bool {
    let Some(r) = SHARD_READINESS.with(|r| r.borrow().clone()) else {
        return false;
    };
    let woke = match r.events.try_borrow_mut() {
        Ok(mut events) => r.drain(&mut events),
        Err(_) => false,
    };
    if woke || !idle || r.armed.get() {
        return woke;
    }
    r.armed.set(true);
    let pump = r.pump_waker.borrow_mut().take();
    match pump {
        Some(w) => {
            w.wake();
            true
        }
        // The pump is between polls (retrying after a failed one): it arms when it comes back.
        None => false,
    }
}

thread_local! {
    static SHARD_READINESS: RefCell<Option<Rc<Readiness>>> = const { RefCell::new(None) };
    static WARNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Logs a readiness failure once per shard: a limit such as `fs.epoll.max_user_watches` would
/// otherwise log a line for every connection (or every retry) past it.
fn warn_once(msg: &str) {
    if !WARNED.with(|w| w.replace(true)) {
        tracing::warn!("{msg} (logged once per shard)");
    }
}

/// This shard's epoll instance, started on first use.
pub fn current() -> io::Result<Rc<Readiness>> {
    SHARD_READINESS.with(|r| {
        let mut r = r.borrow_mut();
        if let Some(x) = r.as_ref() {
            return Ok(x.clone());
        }
        let x = Readiness::start()?;
        *r = Some(x.clone());
        Ok(x)
    })
}

/// One `accept4` on a non-blocking listener: `None` when no connection is waiting.
pub(super) fn accept_now(fd: RawFd) -> io::Result<Option<RawFd>> {
    loop {
        // SAFETY: null address pointers are allowed; the new descriptor is the caller's.
        let c = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c >= 0 {
            return Ok(Some(c));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(None),
            // A connection reset before it was accepted, or a signal: try the next one.
            Some(libc::ECONNABORTED) | Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// The read half of a client connection, reading with `recv` when its socket is ready.
pub struct SocketReader {
    readiness: Rc<Readiness>,
    fd: RawFd,
    /// What the connection said last about itself (see `Slot::servable`).
    servable: bool,
    /// The `Readiness::held_epoch` the connection has seen.
    held_seen: u64,
    /// Keeps the socket open for as long as the reader may use its descriptor.
    _stream: Rc<RefCell<TcpStream>>,
}

impl SocketReader {
    /// Registers the socket of `stream` with the shard's epoll instance.
    pub fn new(readiness: Rc<Readiness>, stream: Rc<RefCell<TcpStream>>) -> io::Result<Self> {
        let fd = stream.borrow().as_raw_fd();
        readiness.register(fd)?;
        Ok(SocketReader {
            readiness,
            fd,
            servable: false,
            held_seen: 0,
            _stream: stream,
        })
    }

    /// Replies `super::busy` wrote for this connection that its socket did not take; the
    /// connection sends them before anything else. Cheap when there are none.
    pub fn take_held_output(&mut self) -> Option<Vec<u8>> {
        let epoch = self.readiness.held_epoch.get();
        if epoch == self.held_seen {
            return None;
        }
        self.held_seen = epoch;
        let mut slots = self.readiness.slots.borrow_mut();
        let held = slots.get_mut(&self.fd)?.held.as_mut()?;
        (!held.output.is_empty()).then(|| std::mem::take(&mut held.output))
    }
}

impl Drop for SocketReader {
    fn drop(&mut self) {
        self.readiness.deregister(self.fd);
    }
}

impl AsyncRead for SocketReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut slots = self.readiness.slots.borrow_mut();
        let Some(slot) = slots.get_mut(&self.fd) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        if let Some(held) = slot.held.as_mut() {
            if !held.input.is_empty() {
                let n = held.input.len().min(buf.len());
                buf[..n].copy_from_slice(&held.input[..n]);
                held.input.drain(..n);
                slot.servable = false;
                return Poll::Ready(Ok(n));
            }
        }
        if slot.ready {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                // A short read emptied the socket: the next data brings an event. A full one
                // may have left more behind, so the next read tries again at once.
                if (n as usize) < buf.len() {
                    slot.ready = false;
                }
                slot.servable = false;
                return Poll::Ready(Ok(n as usize));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Poll::Ready(Err(err));
            }
            slot.ready = false;
        }
        slot.servable = self.servable;
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A connection's read half: the epoll reader, or glommio's own (an io_uring poll per read)
/// where the socket could not be registered (`fs.epoll.max_user_watches` reached, say), so that
/// the client is still served.
pub enum ConnReader {
    Epoll(SocketReader),
    Uring(super::split::ReadHalf<TcpStream>),
}

impl ConnReader {
    /// Registers the socket of `half` with this shard's epoll instance, or keeps `half` (and
    /// logs why) if that fails.
    pub fn new(half: super::split::ReadHalf<TcpStream>) -> ConnReader {
        match current().and_then(|r| SocketReader::new(r, half.shared())) {
            Ok(r) => ConnReader::Epoll(r),
            Err(e) => {
                warn_once(&format!(
                    "cannot register a client socket with epoll ({e}); such sockets are read \
                     through io_uring polls"
                ));
                ConnReader::Uring(half)
            }
        }
    }
}

impl ConnReader {
    /// Says whether the connection, about to wait for input, could be answered by
    /// `super::busy` while a script holds the shard (see `Slot::servable`).
    pub fn set_servable(&mut self, servable: bool) {
        if let ConnReader::Epoll(r) = self {
            r.servable = servable;
        }
    }

    /// See [`SocketReader::take_held_output`].
    pub fn take_held_output(&mut self) -> Option<Vec<u8>> {
        match self {
            ConnReader::Epoll(r) => r.take_held_output(),
            ConnReader::Uring(_) => None,
        }
    }
}

impl AsyncRead for ConnReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnReader::Epoll(r) => Pin::new(r).poll_read(cx, buf),
            ConnReader::Uring(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

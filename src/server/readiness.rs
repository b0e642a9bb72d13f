//! Read readiness of a shard's client sockets through one edge-triggered epoll instance per
//! shard, and the read half of a connection that uses it.
//!
//! Why not an io_uring poll per read, as glommio's streams do: that re-arms a poll for every
//! request, and every wake-up of one runs as task work on the shard's own core (a second socket
//! poll, a completion, through the signal-delivery path). With epoll the registration stays,
//! the kernel's wake-up callback only links the socket into the ready list (on the core that
//! delivered the packet), and the shard collects all ready sockets with one `epoll_wait`, woken
//! by one io_uring poll on the epoll descriptor per batch. Writes keep glommio's path. Measured
//! on the 2-core VM (one shard on CPU 0, redis-benchmark on CPU 1, alternating rounds): GET at
//! P=16 +9-12% rps and 0.78 -> 0.69 us of CPU per request; SET at P=1 6.3-6.75 -> 5.85-6.25 us,
//! Redis 5.85-6.35 us in the same rounds; two shards, SET at P=1, 6.9 -> 6.4-6.5 us.
//!
//! Owns: the epoll descriptor, one slot per registered socket (whether it may have data, and the
//! task waiting for it), and the pump task that turns epoll events into wake-ups. Must never
//! block the shard (every `epoll_wait` has a zero timeout), stop the pump while the shard runs
//! (its sockets have no other wake-up), or keep a slot for a closed socket
//! (a reused descriptor number would inherit it): `SocketReader` removes its slot when dropped,
//! before the socket closes.

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
struct Slot {
    /// Data may be waiting: set by an epoll event (and at registration), cleared by a read that
    /// came back short or empty-handed.
    ready: bool,
    waker: Option<Waker>,
}

/// A shard's epoll instance and its sockets.
pub struct Readiness {
    epfd: OwnedFd,
    slots: RefCell<HashMap<RawFd, Slot, ahash::RandomState>>,
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
        });
        let weak = Rc::downgrade(&r);
        glommio::spawn_local(async move {
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
            loop {
                let Some(epfd) = weak.upgrade().map(|r| r.epfd.as_raw_fd()) else {
                    return;
                };
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
                r.drain(&mut events);
            }
        })
        .detach();
        Ok(r)
    }

    /// Collects every pending event without waiting and wakes the sockets' readers.
    fn drain(&self, events: &mut [libc::epoll_event]) {
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
                return;
            }
            let mut slots = self.slots.borrow_mut();
            for ev in &events[..n as usize] {
                if let Some(slot) = slots.get_mut(&(ev.u64 as RawFd)) {
                    slot.ready = true;
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
            }
            if (n as usize) < events.len() {
                return;
            }
        }
    }

    fn register(&self, fd: RawFd) -> io::Result<()> {
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
            },
        );
        Ok(())
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

/// The read half of a client connection, reading with `recv` when its socket is ready.
pub struct SocketReader {
    readiness: Rc<Readiness>,
    fd: RawFd,
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
            _stream: stream,
        })
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
                return Poll::Ready(Ok(n as usize));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Poll::Ready(Err(err));
            }
            slot.ready = false;
        }
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

//! A shard's listening sockets: which addresses `bind` and `port` name, one SO_REUSEPORT
//! listener per address on every shard with its accept loop, and moving every shard to another
//! address set while the server runs (CONFIG SET `port` / `bind`).
//!
//! Shard 0 drives both the first opening ([`start`]) and every change ([`relisten`]), one at a
//! time (`Shard::config_turn`). A change is made in two steps: every shard first opens
//! the listeners it lacks and accepts on them at once ([`open`]); if all could, every shard then
//! closes the listeners that are no longer wanted ([`commit`]), and if any could not, every shard
//! closes the ones it just opened ([`abort`]), so that all shards keep the same set. Addresses
//! that stay are not touched: their listeners, and the connections queued on them, stay as they
//! are.
//!
//! The `unixsocket` listener is different: a path cannot be shared through SO_REUSEPORT, so the
//! process opens one socket before the shards start ([`UnixSocket`]) and every shard accepts on
//! it through its own epoll instance; whichever shard is quickest takes each connection. It is
//! never moved (`unixsocket` is immutable) and its file is removed when the server stops.
//!
//! Owns: each shard's listeners ([`Listeners`], in `Shard::listeners`), the unix socket, their
//! accept loops, and the admission of an accepted connection (`maxclients`). Must never close a listener with
//! connections in its queue (a retired listener is drained, synchronously, right before it is
//! closed, and what it had is served), let an accept loop touch a descriptor after its listener
//! closed (descriptor numbers are reused), or join another process' SO_REUSEPORT group on an
//! address (a new address is first probed without SO_REUSEPORT). Executes no command.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::readiness::{self, Readiness};
use crate::shard::Shard;

/// One `bind` entry, resolved: the address and whether it was marked optional (`-`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub addr: SocketAddr,
    pub optional: bool,
}

/// Resolves `bind` for `port` the way Redis does: an entry containing `:` is an IPv6 address
/// (or a name resolved to its first IPv6 address), any other an IPv4 one; `*` and `::*` are the
/// wildcards; a leading `-` marks the address optional (skipped where it does not exist, see
/// [`plan`]). A name or address that does not resolve is an error, optional or not. Port 0
/// means no TCP listener at all, whatever `bind` says.
pub fn resolve(bind: &[String], port: u16) -> Result<Vec<Wanted>, String> {
    if port == 0 {
        return Ok(Vec::new());
    }
    bind.iter()
        .map(|entry| {
            let (optional, host) = match entry.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, entry.as_str()),
            };
            let v6 = host.contains(':');
            let addr = match host {
                "*" => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                "::*" => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                _ => lookup(host, port, v6)?,
            };
            Ok(Wanted { addr, optional })
        })
        .collect()
}

/// The first address of the wanted family that `host` resolves to.
fn lookup(host: &str, port: u16, v6: bool) -> Result<SocketAddr, String> {
    let fail = |why: String| cannot_listen(&format!("{host}:{port}"), &why);
    let found = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?;
    found
        .into_iter()
        .find(|a| a.is_ipv6() == v6)
        .ok_or_else(|| fail(format!("no IPv{} address", if v6 { 6 } else { 4 })))
}

fn cannot_listen(addr: &str, why: &str) -> String {
    format!("Could not create server TCP listening socket {addr}: {why}")
}

/// Whether two listening addresses conflict: same family and port, and the same address or one
/// of them the wildcard (the kernel refuses the second bind without SO_REUSEPORT, which is what
/// Redis meets with `bind 127.0.0.1 127.0.0.1` or `bind * 127.0.0.1`).
fn overlaps(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv6() == b.is_ipv6()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The errors Redis passes over for any address: the host cannot make sockets of its family.
fn family_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOPROTOOPT
                | libc::EPROTONOSUPPORT
                | libc::ESOCKTNOSUPPORT
                | libc::EPFNOSUPPORT
                | libc::EAFNOSUPPORT
        )
    )
}

/// Decides the addresses to listen on for `wanted`, given the addresses the shards hold now
/// (`held`, kept as they are). Each new address is probed: one that does not exist is skipped
/// if optional, one whose family the host lacks is skipped, and one in use by anybody else
/// (another process, or an earlier entry of `wanted`) is an error, after retrying for
/// `retry_in_use` (at startup, a killed predecessor may hold the port for a few milliseconds).
/// The error is the line to log.
pub fn plan(
    wanted: &[Wanted],
    held: &[SocketAddr],
    retry_in_use: Duration,
) -> Result<Vec<SocketAddr>, String> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for w in wanted {
        if !held.contains(&w.addr) {
            match probe_retrying(w.addr, retry_in_use) {
                Ok(()) => {}
                Err(e) if w.optional && e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => continue,
                Err(e) if family_unsupported(&e) => continue,
                // Our own listener on an overlapping address (`127.0.0.1` held, `*` wanted on
                // the same port) fails the probe too; SO_REUSEPORT lets the shards bind beside
                // it, as long as no other process listens there.
                Err(e)
                    if e.kind() == io::ErrorKind::AddrInUse
                        && held.iter().any(|h| overlaps(h, &w.addr))
                        && !foreign_listener(w.addr.port()) => {}
                Err(e) => return Err(cannot_listen(&w.addr.to_string(), &e.to_string())),
            }
        }
        if out.iter().any(|o| overlaps(o, &w.addr)) {
            let e = io::Error::from_raw_os_error(libc::EADDRINUSE);
            return Err(cannot_listen(&w.addr.to_string(), &e.to_string()));
        }
        out.push(w.addr);
    }
    Ok(out)
}

fn probe_retrying(addr: SocketAddr, retry_in_use: Duration) -> io::Result<()> {
    let deadline = Instant::now() + retry_in_use;
    loop {
        match probe(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Binds `addr` without SO_REUSEPORT and lets it go: fails if anybody listens there (SO_REUSEPORT
/// would otherwise let the shards bind beside another process silently), or if the address does
/// not exist here.
fn probe(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sk = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sk.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sk.set_only_v6(true)?;
    }
    sk.bind(&addr.into())
}

/// Whether a socket of another process listens on TCP `port` (any address): the listening
/// sockets of /proc/net/tcp and tcp6 on that port that are not among this process' open
/// descriptors. Where /proc cannot be read, says yes.
fn foreign_listener(port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return true;
    };
    let ours: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            return true;
        };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(&state), Some(&inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let on_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
                == Some(port);
            // 0A: TCP_LISTEN.
            if on_port && state == "0A" && !ours.iter().any(|o| o == inode) {
                return true;
            }
        }
    }
    false
}

/// Binds one SO_REUSEPORT listener of this shard.
fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<OwnedFd> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sk = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sk.set_reuse_address(true)?;
    sk.set_reuse_port(true)?;
    if addr.is_ipv6() {
        sk.set_only_v6(true)?;
    }
    sk.set_nonblocking(true)?;
    sk.bind(&addr.into())?;
    sk.listen(backlog.min(i32::MAX as u32) as i32)?;
    // SAFETY: the descriptor comes straight out of the socket, which gives up its ownership.
    Ok(unsafe { OwnedFd::from_raw_fd(sk.into_raw_fd()) })
}

/// One open listener of this shard.
struct Listener {
    addr: SocketAddr,
    fd: OwnedFd,
    /// The shard's epoll instance, where the listener is registered there.
    readiness: Option<Rc<Readiness>>,
    /// Shared with the accept loop; set right before the listener closes, after which the loop
    /// must not use the descriptor again.
    closed: Rc<Cell<bool>>,
}

/// A shard's listeners: those it serves, and those a change opened and has not committed yet.
#[derive(Default)]
pub struct Listeners {
    active: Vec<Listener>,
    pending: Vec<Listener>,
}

impl Listeners {
    /// The addresses this shard serves.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.active.iter().map(|l| l.addr).collect()
    }
}

/// Opens this shard's listeners for the addresses of `addrs` it does not serve yet and starts
/// accepting on them; they stay pending until [`commit`] or [`abort`]. On error, those opened so
/// far stay pending too (the caller aborts).
pub fn open(shard: &Rc<Shard>, addrs: &[SocketAddr], backlog: u32) -> Result<(), String> {
    abort(shard);
    for &addr in addrs {
        if shard
            .listeners
            .borrow()
            .active
            .iter()
            .any(|l| l.addr == addr)
        {
            continue;
        }
        let fd = bind_listener(addr, backlog)
            .map_err(|e| cannot_listen(&addr.to_string(), &e.to_string()))?;
        // Accepted through the shard's epoll instance rather than an io_uring accept, so that a
        // busy script can accept on it too (`busy`), and SCRIPT KILL reaches even a one-shard
        // server from a new connection.
        let raw = fd.as_raw_fd();
        let readiness = match readiness::current().and_then(|r| r.register_listener(raw).map(|_| r))
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("listener not registered with epoll ({e}); polling it instead");
                None
            }
        };
        let closed = Rc::new(Cell::new(false));
        let sh = shard.clone();
        let (r, c) = (readiness.clone(), closed.clone());
        glommio::spawn_local(async move { accept_loop(sh, raw, r, c, None).await }).detach();
        shard.listeners.borrow_mut().pending.push(Listener {
            addr,
            fd,
            readiness,
            closed,
        });
    }
    Ok(())
}

/// Makes this shard serve exactly `addrs`: what [`open`] opened joins, and the listeners of
/// other addresses close (after their queued connections are taken in).
pub fn commit(shard: &Rc<Shard>, addrs: &[SocketAddr]) {
    let retired = {
        let mut ls = shard.listeners.borrow_mut();
        let pending = std::mem::take(&mut ls.pending);
        ls.active.extend(pending);
        let (keep, retired): (Vec<Listener>, Vec<Listener>) =
            ls.active.drain(..).partition(|l| addrs.contains(&l.addr));
        ls.active = keep;
        retired
    };
    for l in retired {
        close(shard, l);
    }
}

/// Closes the listeners [`open`] opened (after their queued connections are taken in).
pub fn abort(shard: &Rc<Shard>) {
    let pending = std::mem::take(&mut shard.listeners.borrow_mut().pending);
    for l in pending {
        close(shard, l);
    }
}

/// Stops a listener's accept loop, takes in every connection already queued on it (and those a
/// busy script accepted for it), and closes it, all before anything else runs on the shard.
fn close(shard: &Rc<Shard>, l: Listener) {
    let raw = l.fd.as_raw_fd();
    l.closed.set(true);
    // Leaving the epoll set wakes the accept loop, which then ends (one that polls sees the
    // flag at its next turn).
    let mut queued = match &l.readiness {
        Some(r) => r.deregister_listener(raw),
        None => Vec::new(),
    };
    while let Ok(Some(c)) = readiness::accept_now(raw) {
        queued.push(c);
    }
    drop(l.fd);
    for c in queued {
        admit(shard, c, None);
    }
}

/// Accepts connections on the listener `fd` until it is closed (`closed`). `unix` is the path
/// of the unix socket `fd` is, None for a TCP listener.
async fn accept_loop(
    shard: Rc<Shard>,
    fd: RawFd,
    readiness: Option<Rc<Readiness>>,
    closed: Rc<Cell<bool>>,
    unix: Option<Rc<str>>,
) {
    loop {
        let next = std::future::poll_fn(|cx| {
            // Checked in the same poll that accepts: nothing can close the listener between.
            if closed.get() {
                return Poll::Ready(None);
            }
            match &readiness {
                Some(r) => r.poll_accept(fd, cx).map(Some),
                // Without epoll, the listener is polled: an io_uring poll would keep the socket
                // alive (and listening) past its close until the poll is cancelled.
                None => match readiness::accept_now(fd) {
                    Ok(Some(c)) => Poll::Ready(Some(Ok(c))),
                    Ok(None) => Poll::Ready(Some(Err(io::ErrorKind::WouldBlock.into()))),
                    Err(e) => Poll::Ready(Some(Err(e))),
                },
            }
        })
        .await;
        match next {
            None => return,
            Some(Ok(c)) => admit(&shard, c, unix.clone()),
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            Some(Err(e)) => {
                if shard.globals.shutting_down() {
                    return;
                }
                tracing::warn!("accept failed: {}", e);
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Takes in an accepted connection: served, or refused past `maxclients`. A unix-socket
/// connection (`unix`: the socket's path) is carried by the same stream type as a TCP one: it is
/// a descriptor read and written with the same calls; only its addresses and TCP options differ,
/// and `conn::serve` handles those.
fn admit(shard: &Rc<Shard>, fd: RawFd, unix: Option<Rc<str>>) {
    // SAFETY: the descriptor was just accepted and is owned by nobody else.
    let stream = unsafe { glommio::net::TcpStream::from_raw_fd(fd) };
    let max = shard.state.borrow().config.maxclients as usize;
    let n = shard
        .globals
        .connected_clients
        .fetch_add(1, Ordering::Relaxed)
        + 1;
    shard.state.borrow_mut().stats.total_connections_received += 1;
    if n > max {
        shard
            .globals
            .connected_clients
            .fetch_sub(1, Ordering::Relaxed);
        shard.state.borrow_mut().stats.rejected_connections += 1;
        glommio::spawn_local(async move {
            use futures_lite::AsyncWriteExt;
            let mut s = stream;
            let _ = s.write_all(b"-ERR max number of clients reached\r\n").await;
        })
        .detach();
        return;
    }
    let sh = shard.clone();
    glommio::spawn_local(async move { super::conn::serve(sh, stream, unix).await }).detach();
}

/// The process's `unixsocket` listener (see the module's doc).
pub struct UnixSocket {
    fd: OwnedFd,
    /// Where the socket file is (`dir` joined with a relative path).
    path: std::path::PathBuf,
    /// The path as configured, which names the socket's clients (`addr=u.sock:0`, as Redis,
    /// which has moved into `dir`, names them).
    name: String,
}

impl UnixSocket {
    /// Opens the socket as Redis does: a file left at `path` (by a server that did not stop
    /// cleanly) is removed first, and a non-zero `perm` is applied to the new file. The error
    /// is Redis's startup message.
    pub fn open(
        configured: &std::path::Path,
        dir: &std::path::Path,
        perm: u32,
        backlog: u32,
    ) -> Result<UnixSocket, String> {
        let path = &dir.join(configured);
        use socket2::{Domain, SockAddr, Socket, Type};
        let fail = |step: &str, e: io::Error| {
            format!(
                "Failed opening Unix socket: {step}: {}",
                crate::config::strerror(&e)
            )
        };
        let _ = std::fs::remove_file(path);
        let sk = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| fail("socket", e))?;
        let addr = SockAddr::unix(path).map_err(|e| fail("bind", e))?;
        sk.bind(&addr).map_err(|e| fail("bind", e))?;
        if perm != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
                .map_err(|e| fail("chmod", e))?;
        }
        sk.listen(backlog.min(i32::MAX as u32) as i32)
            .map_err(|e| fail("listen", e))?;
        sk.set_nonblocking(true).map_err(|e| fail("fcntl", e))?;
        Ok(UnixSocket {
            // SAFETY: the descriptor comes straight out of the socket, which gives it up.
            fd: unsafe { OwnedFd::from_raw_fd(sk.into_raw_fd()) },
            path: path.to_path_buf(),
            name: configured.to_string_lossy().into_owned(),
        })
    }

    /// The descriptor and path the shards accept on ([`accept_unix`]); valid while `self` is.
    pub fn shared(&self) -> (RawFd, String) {
        (self.fd.as_raw_fd(), self.name.clone())
    }

    /// Closes the socket and removes its file, once no shard accepts on it any more.
    pub fn remove(self) {
        drop(self.fd);
        tracing::info!("Removing the unix socket file.");
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(
                "Error removing the unix socket file: {}",
                crate::config::strerror(&e)
            );
        }
    }
}

/// Starts this shard's accept loop on the process's unix socket (`fd`, at `path`), which stays
/// open until every shard has stopped (see `super::run`).
pub fn accept_unix(shard: &Rc<Shard>, fd: RawFd, path: &str) {
    let readiness = match readiness::current().and_then(|r| r.register_listener(fd).map(|_| r)) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("unix socket not registered with epoll ({e}); polling it instead");
            None
        }
    };
    let sh = shard.clone();
    let path: Rc<str> = Rc::from(path);
    let closed = Rc::new(Cell::new(false));
    glommio::spawn_local(async move { accept_loop(sh, fd, readiness, closed, Some(path)).await })
        .detach();
}

/// Opens every shard's listeners at startup, on shard 0, before any CONFIG SET can move them.
pub async fn start(shard: &Rc<Shard>, addrs: &[SocketAddr], backlog: u32) -> Result<(), String> {
    let _turn = shard
        .config_turn
        .acquire_permit(1)
        .await
        .map_err(|_| "the configuration is closed".to_string())?;
    move_all(shard, addrs, backlog).await
}

/// Moves every shard to the addresses `bind` and `port` name (CONFIG SET), or leaves them all
/// as they are and returns the reason to log. Called on shard 0, holding `Shard::config_turn`.
pub async fn relisten(
    shard: &Rc<Shard>,
    bind: &[String],
    port: u16,
    backlog: u32,
) -> Result<(), String> {
    let held = shard.listeners.borrow().addrs();
    let addrs = plan(&resolve(bind, port)?, &held, Duration::ZERO)?;
    let same = addrs.len() == held.len() && addrs.iter().all(|a| held.contains(a));
    if !same {
        move_all(shard, &addrs, backlog).await?;
    }
    shard.globals.port.store(port, Ordering::Relaxed);
    Ok(())
}

/// Makes every shard serve exactly `addrs`: each opens what it lacks; then, if all could, each
/// closes what is no longer wanted, and if any could not, each closes what it just opened.
async fn move_all(shard: &Rc<Shard>, addrs: &[SocketAddr], backlog: u32) -> Result<(), String> {
    let n = shard.nshards();
    let opened = futures::future::join_all((0..n).map(|to| {
        let addrs = addrs.to_vec();
        shard.run_task_on(to, move |sh| async move { open(&sh, &addrs, backlog) })
    }))
    .await;
    let failure = opened.into_iter().find_map(|r| match r {
        Some(Ok(())) => None,
        Some(Err(e)) => Some(e),
        None => Some("a shard is gone (shutting down)".to_string()),
    });
    let ok = failure.is_none();
    futures::future::join_all((0..n).map(|to| {
        let addrs = addrs.to_vec();
        shard.run_task_on(to, move |sh| async move {
            if ok {
                commit(&sh, &addrs)
            } else {
                abort(&sh)
            }
        })
    }))
    .await;
    match failure {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn bind(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolve_follows_redis() {
        let got = resolve(
            &bind(&["*", "-::*", "127.0.0.1", "-::1", "localhost"]),
            7000,
        )
        .unwrap();
        let want = [
            ("0.0.0.0:7000", false),
            ("[::]:7000", true),
            ("127.0.0.1:7000", false),
            ("[::1]:7000", true),
            ("127.0.0.1:7000", false),
        ];
        for (g, (a, optional)) in got.iter().zip(want) {
            assert_eq!(
                *g,
                Wanted {
                    addr: addr(a),
                    optional
                }
            );
        }
        assert_eq!(got.len(), 5);
        // Port 0: nothing at all, not even a look at the addresses.
        assert_eq!(resolve(&bind(&["256.1.1.1"]), 0).unwrap(), []);
        // Names that do not resolve fail, optional or not; `:` means IPv6.
        for bad in ["256.1.1.1", "-256.1.1.1", "", "-", "127.0.0.1:80", "[::1]"] {
            assert!(resolve(&bind(&[bad]), 7000).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_addresses() {
        assert!(overlaps(&addr("127.0.0.1:1"), &addr("127.0.0.1:1")));
        assert!(overlaps(&addr("0.0.0.0:1"), &addr("127.0.0.1:1")));
        assert!(overlaps(&addr("127.0.0.1:1"), &addr("0.0.0.0:1")));
        assert!(overlaps(&addr("[::]:1"), &addr("[::1]:1")));
        assert!(!overlaps(&addr("127.0.0.1:1"), &addr("127.0.0.2:1")));
        assert!(!overlaps(&addr("127.0.0.1:1"), &addr("127.0.0.1:2")));
        // IPv6 listeners are IPv6-only: no overlap across families.
        assert!(!overlaps(&addr("0.0.0.0:1"), &addr("[::]:1")));
    }

    #[test]
    fn plan_probes_new_addresses() {
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let used = other.local_addr().unwrap();
        let port = used.port();
        let want = |list: &[&str], p: u16| resolve(&bind(list), p).unwrap();
        // In use by somebody (here a listener that is not ours in the sense of `held`).
        assert!(plan(&want(&["127.0.0.1"], port), &[], Duration::ZERO).is_err());
        // Not an address of this host: an error, or skipped when optional.
        let free = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert!(plan(&want(&["203.0.113.1"], free), &[], Duration::ZERO).is_err());
        assert_eq!(
            plan(
                &want(&["-203.0.113.1", "127.0.0.1"], free),
                &[],
                Duration::ZERO
            )
            .unwrap(),
            [addr(&format!("127.0.0.1:{free}"))]
        );
        // Overlapping entries fail like Redis's second bind.
        for list in [
            &["127.0.0.1", "127.0.0.1"][..],
            &["*", "127.0.0.1"],
            &["127.0.0.1", "*"],
        ] {
            assert!(
                plan(&want(list, free), &[], Duration::ZERO).is_err(),
                "{list:?}"
            );
        }
        // What the shards hold is kept without a probe; the wildcard beside a held address of
        // the same port is fine when only this process listens there.
        let held = [used];
        assert_eq!(
            plan(&want(&["127.0.0.1"], port), &held, Duration::ZERO).unwrap(),
            [used]
        );
        assert!(!foreign_listener(port), "the listener is this process' own");
        assert_eq!(
            plan(&want(&["*"], port), &held, Duration::ZERO).unwrap(),
            [addr(&format!("0.0.0.0:{port}"))]
        );
    }
}

//! Telling a service manager how the server is doing (`supervised`) and where it runs
//! (`pidfile`).
//!
//! With `supervised systemd` (or `auto` under systemd, where `NOTIFY_SOCKET` is set) the server
//! sends systemd's notifications to that socket: a status while it loads, `READY=1` once every
//! shard accepts connections, `STOPPING=1` when it shuts down. A `Type=notify` unit, such as
//! Debian's `redis-server.service`, waits for `READY=1`. With `supervised upstart` (or `auto`
//! where `UPSTART_JOB` is set) it stops itself with SIGSTOP once ready, which is how upstart's
//! `expect stop` learns it. Like Redis, a failed notification is logged and changes nothing.
//!
//! Owns: the chosen supervisor (process-wide, set once at startup) and the pid file. Must never
//! block a shard: a notification is one non-blocking datagram.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Who supervises the process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Supervisor {
    /// systemd, through the notification socket at this address (`@` first: abstract).
    Systemd(String),
    Upstart,
}

static SUPERVISOR: OnceLock<Option<Supervisor>> = OnceLock::new();

/// Decides who supervises the process from `supervised` and the environment, and tells systemd
/// that loading starts. Called once, before the shards start.
pub fn start(mode: &str) {
    let notify_socket = std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty());
    let upstart = std::env::var_os("UPSTART_JOB").is_some();
    let chosen = match mode {
        "auto" if upstart => {
            tracing::debug!("Upstart supervision detected.");
            Some(Supervisor::Upstart)
        }
        "auto" => notify_socket.map(|s| {
            tracing::debug!("Systemd supervision detected.");
            Supervisor::Systemd(s)
        }),
        "upstart" if upstart => Some(Supervisor::Upstart),
        "upstart" => {
            tracing::warn!("upstart supervision requested, but UPSTART_JOB not found!");
            None
        }
        "systemd" => match notify_socket {
            Some(s) => {
                tracing::warn!(
                    "WARNING supervised by systemd - you MUST set appropriate values for \
                     TimeoutStartSec and TimeoutStopSec in your service unit."
                );
                Some(Supervisor::Systemd(s))
            }
            None => {
                tracing::warn!(
                    "systemd supervision requested or auto-detected, but no socket \
                                specified in NOTIFY_SOCKET."
                );
                None
            }
        },
        _ => None,
    };
    let _ = SUPERVISOR.set(chosen);
    notify_systemd("STATUS=Tessera is loading...\n");
}

/// Every shard accepts connections now.
pub fn ready() {
    match SUPERVISOR.get() {
        Some(Some(Supervisor::Systemd(_))) => {
            notify_systemd("STATUS=Ready to accept connections\n");
            notify_systemd("READY=1\n");
        }
        Some(Some(Supervisor::Upstart)) => {
            // upstart's `expect stop` waits for the process to stop itself; it then continues
            // it. (Redis also unsets UPSTART_JOB for its children; Tessera starts none, and
            // changing the environment while other threads run is not safe.)
            // SAFETY: raising a signal on our own process; SIGSTOP cannot be caught.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        _ => {}
    }
}

/// The server is shutting down.
pub fn stopping() {
    notify_systemd("STOPPING=1\n");
}

/// Sends one notification to systemd, when it supervises the process.
fn notify_systemd(msg: &str) {
    let Some(Some(Supervisor::Systemd(addr))) = SUPERVISOR.get() else {
        return;
    };
    if let Err(e) = send_notification(addr, msg) {
        tracing::warn!(
            "Can't send notification to systemd: {}",
            crate::config::strerror(&e)
        );
    }
}

fn send_notification(addr: &str, msg: &str) -> std::io::Result<()> {
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    match addr.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(msg.as_bytes(), &a)?;
        }
        None => {
            sock.send_to(msg.as_bytes(), addr)?;
        }
    }
    Ok(())
}

/// The pid file, written at startup and removed when the server stops.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes the process id to `path`. As in Redis, a failure is only logged.
    pub fn create(path: &Path) -> Option<PidFile> {
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => Some(PidFile(path.to_path_buf())),
            Err(e) => {
                tracing::warn!("Failed to write PID file: {}", crate::config::strerror(&e));
                None
            }
        }
    }

    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

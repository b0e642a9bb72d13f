//! The system log (`syslog-enabled`, `syslog-ident`, `syslog-facility`): a tracing layer that
//! sends every log line, as Redis sends it, to the local syslog daemon's datagram socket
//! (`/dev/log`), in the format glibc's `syslog(3)` uses (`<PRI>Mmm dd hh:mm:ss ident[pid]: text`,
//! local time).
//!
//! It owns the socket. It never blocks or fails the caller: a daemon that is absent or not
//! reading loses the line (the socket is non-blocking and reconnected on the next line), as
//! glibc's does when opened with Redis's `LOG_NDELAY | LOG_NOWAIT`.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where the daemon listens. `TESSERA_SYSLOG_SOCKET` names another socket (the tests' stand-in
/// for a daemon).
fn socket_path() -> PathBuf {
    std::env::var_os("TESSERA_SYSLOG_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/log"))
}

/// Syslog's facility codes for `config::SYSLOG_FACILITIES`, in its order.
const FACILITY_CODES: [u32; 9] = [1, 16, 17, 18, 19, 20, 21, 22, 23];

pub struct SyslogLayer {
    ident: String,
    facility: u32,
    pid: u32,
    path: PathBuf,
    socket: Mutex<Option<UnixDatagram>>,
}

impl SyslogLayer {
    /// `facility` is an index into `config::SYSLOG_FACILITIES`.
    pub fn new(ident: &str, facility: usize) -> SyslogLayer {
        let layer = SyslogLayer {
            ident: ident.to_string(),
            facility: FACILITY_CODES[facility.min(FACILITY_CODES.len() - 1)],
            pid: std::process::id(),
            path: socket_path(),
            socket: Mutex::new(None),
        };
        // Connected now, as LOG_NDELAY asks.
        *layer.socket.lock().unwrap_or_else(|e| e.into_inner()) = layer.connect();
        layer
    }

    fn connect(&self) -> Option<UnixDatagram> {
        let s = UnixDatagram::unbound().ok()?;
        s.connect(&self.path).ok()?;
        s.set_nonblocking(true).ok()?;
        Some(s)
    }

    fn send(&self, severity: u32, text: &str) {
        let line = format!(
            "<{}>{} {}[{}]: {}",
            self.facility * 8 + severity,
            local_timestamp(),
            self.ident,
            self.pid,
            text
        );
        let mut socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..2 {
            if socket.is_none() {
                *socket = self.connect();
            }
            match socket.as_ref().map(|s| s.send(line.as_bytes())) {
                Some(Ok(_)) => return,
                // A full daemon queue drops the line rather than stall a shard.
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // The daemon restarted, or was not there yet: one reconnection.
                _ => *socket = None,
            }
        }
    }
}

/// Syslog's severity for a tracing level, following Redis's map of its own levels (warning,
/// notice, verbose, debug) onto syslog's, and Tessera's map of those onto tracing's.
fn severity(level: &Level) -> u32 {
    match *level {
        Level::ERROR | Level::WARN => 4,
        Level::INFO => 5,
        Level::DEBUG => 6,
        Level::TRACE => 7,
    }
}

/// `Mmm dd hh:mm:ss` in local time, the day padded with a space (`strftime("%h %e %T")`).
fn local_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r only writes the tm it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&now, &mut tm) };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The event's message followed by its other fields, as the log file shows them.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        text.message.push_str(&text.fields);
        self.send(severity(event.metadata().level()), &text.message);
    }
}

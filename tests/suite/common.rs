//! Shared harness for Tessera's integration tests.
//!
//! * [`Server`]: a spawned server process (Tessera or the reference redis-server) living in its
//!   own temp dir; dropping it SIGKILLs the process and removes the dir.
//! * [`RawConn`]: a raw TCP client that sends arbitrary bytes and reads exactly one RESP2/RESP3
//!   reply frame at a time, returning the raw bytes.
//! * [`resp_parse`] / [`render`]: a minimal reply tree, for normalising and for readable diffs.
//! * [`Diff`]: the differential driver: the same command goes to redis and to every Tessera
//!   instance (1 shard and 4 shards), and the replies are compared byte for byte (or after an
//!   explicit [`Norm`]alisation). A mismatch panics with test, seed, step, command and both
//!   replies rendered readably.

#![allow(dead_code)]

/// A differential test's `Diff`, or an early return when redis-server is missing (outside CI).
#[allow(unused_macros)]
macro_rules! diff_or_skip {
    ($name:expr) => {
        match Diff::new($name) {
            Some(d) => d,
            None => return,
        }
    };
}

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Development switch: `true` makes [`start_tessera`] spawn redis-server instead of the Tessera
/// binary (used to validate the harness redis-vs-redis). Must be `false` in the repository.
const DEV_USE_REDIS_AS_TESSERA: bool = false;

/// Path of the Tessera binary under test (provided by cargo for integration tests).
fn tessera_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

// ---------------------------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------------------------

pub struct Server {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Server {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh raw connection to this server.
    pub fn conn(&self) -> RawConn {
        RawConn::connect(self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `true` while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit; `true` if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        !self.is_running()
    }

    /// The last `lines` lines of the server's log file.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.dir.join("server.log"), lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

static HANDED_OUT_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A currently-free TCP port on 127.0.0.1 (bind port 0, read it, drop the listener).
/// A port is never handed out twice within one test process, so parallel tests in the same
/// binary cannot collide with each other; collisions with other processes are handled by the
/// retry loop in the start functions.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut guard = HANDED_OUT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn make_temp_dir(label: &str) -> PathBuf {
    let n = DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("{label}-test-{}-{n}-{nanos}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

enum Startup {
    Ready,
    Exited(String),
    TimedOut,
}

fn wait_ready(srv: &mut Server, timeout: Duration) -> Startup {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = ([127, 0, 0, 1], srv.port).into();
    loop {
        if let Ok(Some(status)) = srv.child.try_wait() {
            return Startup::Exited(format!("{status}"));
        }
        if Instant::now() >= deadline {
            return Startup::TimedOut;
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
            let _ = s.set_write_timeout(Some(Duration::from_millis(1000)));
            if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() {
                let mut got = Vec::new();
                let mut b = [0u8; 256];
                while !got.ends_with(b"\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&b[..n]),
                    }
                }
                if got == b"+PONG\r\n" || got.starts_with(b"-NOAUTH") {
                    // Make sure the PONG came from *our* child (a process that lost a port
                    // race exits right away).
                    std::thread::sleep(Duration::from_millis(5));
                    if let Ok(Some(status)) = srv.child.try_wait() {
                        return Startup::Exited(format!("{status}"));
                    }
                    return Startup::Ready;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns `program` (args built from port and dir) with stdout/stderr to `DIR/server.log`,
/// waits until it answers PING, retrying with another port if the process exits early.
fn spawn_server(label: &str, program: &str, mk_args: &dyn Fn(u16, &Path) -> Vec<String>) -> Server {
    let mut last = String::new();
    for attempt in 1..=8 {
        let port = free_port();
        let dir = make_temp_dir(label);
        let log_path = dir.join("server.log");
        let log = File::create(&log_path).expect("create server log");
        // The C locale: Redis collates SORT ... ALPHA with strcoll in the environment's locale.
        let child = Command::new(program)
            .env("LC_ALL", "C")
            .args(mk_args(port, &dir))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log fd")))
            .stderr(Stdio::from(log))
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                panic!("failed to spawn {label} ({program}): {e}");
            }
        };
        let mut srv = Server { port, child, dir };
        match wait_ready(&mut srv, Duration::from_secs(30)) {
            Startup::Ready => return srv,
            Startup::Exited(status) => {
                last = format!(
                    "attempt {attempt}: {label} on port {port} exited early ({status})\n--- log tail ---\n{}",
                    srv.log_tail(30)
                );
                eprintln!("{last}\n(retrying with another port)");
            }
            Startup::TimedOut => {
                panic!(
                    "{label} on port {port} did not answer PING with +PONG within 30 s\n--- log tail ({}) ---\n{}",
                    srv.dir.join("server.log").display(),
                    srv.log_tail(40)
                );
            }
        }
    }
    panic!("could not start {label}; giving up after 8 attempts. Last failure:\n{last}");
}

fn redis_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
        "--enable-debug-command",
        "yes",
        "--daemonize",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Starts Tessera with `shards` shards (plus `extra` arguments).
pub fn start_tessera(shards: usize, extra: &[&str]) -> Server {
    if DEV_USE_REDIS_AS_TESSERA {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        return spawn_server("tessera-dev-redis", "redis-server", &move |port, dir| {
            let mut a = redis_args(port, dir);
            a.extend(extra.iter().cloned());
            a
        });
    }
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    spawn_server("tessera", tessera_bin(), &move |port, dir| {
        let mut a: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--shards",
            &shards.to_string(),
            "--dir",
            &dir.display().to_string(),
            "--enable-debug-command",
            "yes",
            "--io-memory",
            "512kb",
            "--loglevel",
            "warning",
            // Like the reference redis-server: no snapshot unless a test asks for one.
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().cloned());
        a
    })
}

/// Starts Tessera the way an operator runs it: a config file first, then only `--port` and
/// `--dir` (plus `extra`), so everything else comes from the file.
pub fn start_tessera_with_config(conf: &Path, extra: &[&str]) -> Server {
    let conf = conf.display().to_string();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    spawn_server("tessera", tessera_bin(), &move |port, dir| {
        let mut a = vec![
            conf.clone(),
            "--port".to_string(),
            port.to_string(),
            "--dir".to_string(),
            dir.display().to_string(),
        ];
        a.extend(extra.iter().cloned());
        a
    })
}

fn redis_on_path() -> bool {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p).any(|d| {
                let f = d.join("redis-server");
                fs::metadata(&f).map(|m| m.is_file()).unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// Starts the reference redis-server, or returns `None` (after a loud message) when it is not
/// installed. With `TESSERA_REQUIRE_REDIS` set (CI), a missing redis-server is a failure.
///
/// The message is written straight to the process' stderr (not through `eprintln!`, which the
/// test harness captures and discards for passing tests), so it shows up in the test log.
pub fn start_redis() -> Option<Server> {
    if !redis_on_path() {
        let msg =
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                   !!! redis-server not found: differential suite NOT run                     !!!\n\
                   !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n";
        let _ = io::stderr().write_all(msg.as_bytes());
        let required = std::env::var("TESSERA_REQUIRE_REDIS")
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false);
        if required {
            panic!("redis-server not found on PATH but TESSERA_REQUIRE_REDIS is set");
        }
        return None;
    }
    Some(spawn_server("redis", "redis-server", &redis_args))
}

// ---------------------------------------------------------------------------------------------
// Raw connection
// ---------------------------------------------------------------------------------------------

pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection; holds any bytes of an incomplete frame.
    Eof(Vec<u8>),
    /// No complete frame within the timeout; holds the bytes received so far.
    Timeout(Vec<u8>),
    /// The bytes received are not valid RESP.
    Protocol(String, Vec<u8>),
    Io(io::Error),
}

pub struct RawConn {
    pub stream: TcpStream,
    pub port: u16,
    buf: Vec<u8>,
    /// When set, RESP3 push frames (`>`) are kept here instead of being returned as replies
    /// (see [`Diff::divert_pushes`]).
    pub pushes: Option<Vec<u8>>,
}

/// Encodes `args` as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl RawConn {
    pub fn connect(port: u16) -> RawConn {
        RawConn::connect_to("127.0.0.1", port)
    }

    /// A connection to `host` (an address such as `127.0.0.2`) rather than 127.0.0.1.
    pub fn connect_to(host: &str, port: u16) -> RawConn {
        let stream = TcpStream::connect((host, port))
            .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawConn {
            stream,
            port,
            buf: Vec::new(),
            pushes: None,
        }
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("send to port {} failed: {e}", self.port));
    }

    /// Reads one more chunk into the buffer, waiting at most until `deadline`.
    /// Ok(0) = EOF.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline"));
        }
        self.stream.set_read_timeout(Some(deadline - now))?;
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads exactly one complete reply frame (an attribute frame is returned together with the
    /// value it annotates). Bytes after the frame stay buffered for the next read.
    pub fn try_read_reply_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + timeout;
        loop {
            match parse_frame(&self.buf, 0) {
                Ok(Some((_, end))) if self.pushes.is_some() && self.buf[0] == b'>' => {
                    let frame: Vec<u8> = self.buf.drain(..end).collect();
                    if let Some(p) = self.pushes.as_mut() {
                        p.extend_from_slice(&frame);
                    }
                    continue;
                }
                Ok(Some((_, end))) => return Ok(self.buf.drain(..end).collect()),
                Ok(None) => {}
                Err(msg) => return Err(ReadError::Protocol(msg, self.buf.clone())),
            }
            match self.fill(deadline) {
                Ok(0) => return Err(ReadError::Eof(std::mem::take(&mut self.buf))),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(ReadError::Timeout(self.buf.clone()))
                }
                Err(e) if is_reset(&e) => {
                    return Err(ReadError::Eof(std::mem::take(&mut self.buf)))
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    pub fn try_read_reply(&mut self) -> Result<Vec<u8>, ReadError> {
        self.try_read_reply_timeout(REPLY_TIMEOUT)
    }

    /// Reads one complete reply frame (5 s timeout); panics on timeout, EOF or bad RESP.
    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply() {
            Ok(r) => r,
            Err(e) => panic!(
                "port {}: failed to read a reply: {}",
                self.port,
                describe_read_error(&e)
            ),
        }
    }

    /// Encodes `args` as a RESP array, sends it and reads one reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_reply()
    }

    /// Convenience: splits `line` on spaces (no quoting; `''` = empty argument) and runs it with
    /// [`RawConn::cmd`].
    pub fn cmd_str(&mut self, line: &str) -> Vec<u8> {
        let parts = split_cmd(line);
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        self.cmd(&refs)
    }

    /// Collects whatever arrives within `wait` (used to assert that *no* reply is sent).
    pub fn read_for(&mut self, wait: Duration) -> Vec<u8> {
        let deadline = Instant::now() + wait;
        while let Ok(n) = self.fill(deadline) {
            if n == 0 {
                break;
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Waits up to `timeout` for the server to close the connection. Returns `Ok(extra)` with any
    /// bytes that arrived before the close, `Err(bytes)` if it was still open at the deadline.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(0) => return Ok(std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(self.buf.clone()),
                Err(_) => return Ok(std::mem::take(&mut self.buf)),
            }
        }
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

pub fn describe_read_error(e: &ReadError) -> String {
    match e {
        ReadError::Eof(b) => format!("connection closed by server (partial bytes: {})", escape(b)),
        ReadError::Timeout(b) => format!(
            "no complete reply within {:?} (received so far: {})",
            REPLY_TIMEOUT,
            escape(b)
        ),
        ReadError::Protocol(m, b) => {
            format!("invalid RESP from server: {m} (bytes: {})", escape(b))
        }
        ReadError::Io(e) => format!("I/O error: {e}"),
    }
}

/// Splits a command line on spaces (no quoting; empty parts are dropped). A token that is
/// exactly `''` stands for an empty argument.
pub fn split_cmd(line: &str) -> Vec<Vec<u8>> {
    // A quoted argument would be cut at its spaces and sent with its quotes, and both servers
    // would then agree on an error: a test that checks nothing. Such lines go through `cmd`.
    assert!(
        !line.contains('"'),
        "split_cmd splits at spaces only and {line:?} has a quote: pass its arguments whole with cmd(&[...])"
    );
    line.split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == "''" {
                Vec::new()
            } else {
                s.as_bytes().to_vec()
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// RESP parsing / rendering
// ---------------------------------------------------------------------------------------------

/// Minimal RESP2/RESP3 reply tree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Simple(Vec<u8>),          // +
    Error(Vec<u8>),           // -
    Int(i64),                 // :
    Bulk(Vec<u8>),            // $
    NilBulk,                  // $-1
    Array(Vec<Value>),        // *
    NilArray,                 // *-1
    Null,                     // _
    Double(Vec<u8>),          // ,  (kept as text)
    Bool(bool),               // #
    BlobError(Vec<u8>),       // !
    Verbatim(Vec<u8>),        // =  (payload incl. the "txt:" prefix)
    BigNum(Vec<u8>),          // (
    Map(Vec<(Value, Value)>), // %
    Set(Vec<Value>),          // ~
    Push(Vec<Value>),         // >
    /// `|` attribute map followed by the value it annotates.
    Attr(Vec<(Value, Value)>, Box<Value>),
}

impl Value {
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::NilBulk | Value::NilArray | Value::Null)
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_) | Value::BlobError(_))
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Simple(b) | Value::Verbatim(b) => Some(b),
            _ => None,
        }
    }
    pub fn items(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    if from >= buf.len() {
        return None;
    }
    buf[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

fn parse_len(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad length/integer {:?}", String::from_utf8_lossy(line)))
}

/// Parses one frame starting at `pos`. `Ok(None)` = incomplete, `Ok(Some((v, end)))` = complete
/// frame ending (exclusive) at `end`, `Err` = malformed.
pub fn parse_frame(buf: &[u8], pos: usize) -> Result<Option<(Value, usize)>, String> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let t = buf[pos];
    let Some(eol) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..eol];
    let next = eol + 2;
    let blob = |len: i64| -> Result<Option<(Vec<u8>, usize)>, String> {
        if len < 0 {
            return Err(format!("negative blob length {len}"));
        }
        let end = next + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(format!("blob of length {len} not followed by CRLF"));
        }
        Ok(Some((buf[next..end].to_vec(), end + 2)))
    };
    let agg = |n: usize, mut at: usize| -> Result<Option<(Vec<Value>, usize)>, String> {
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            match parse_frame(buf, at)? {
                None => return Ok(None),
                Some((v, e)) => {
                    out.push(v);
                    at = e;
                }
            }
        }
        Ok(Some((out, at)))
    };
    let pairs = |v: Vec<Value>| -> Vec<(Value, Value)> {
        let mut it = v.into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        out
    };
    Ok(match t {
        b'+' => Some((Value::Simple(line.to_vec()), next)),
        b'-' => Some((Value::Error(line.to_vec()), next)),
        b':' => Some((Value::Int(parse_len(line)?), next)),
        b'_' => {
            if !line.is_empty() {
                return Err("null frame with payload".into());
            }
            Some((Value::Null, next))
        }
        b',' => Some((Value::Double(line.to_vec()), next)),
        b'(' => Some((Value::BigNum(line.to_vec()), next)),
        b'#' => match line {
            b"t" => Some((Value::Bool(true), next)),
            b"f" => Some((Value::Bool(false), next)),
            _ => return Err("bad boolean".into()),
        },
        b'$' | b'!' | b'=' => {
            let len = parse_len(line)?;
            if len == -1 && t == b'$' {
                Some((Value::NilBulk, next))
            } else {
                blob(len)?.map(|(b, e)| {
                    (
                        match t {
                            b'$' => Value::Bulk(b),
                            b'!' => Value::BlobError(b),
                            _ => Value::Verbatim(b),
                        },
                        e,
                    )
                })
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_len(line)?;
            if n == -1 && t == b'*' {
                Some((Value::NilArray, next))
            } else if n < 0 {
                return Err(format!("negative aggregate length {n}"));
            } else {
                let count = if t == b'%' || t == b'|' {
                    2 * n as usize
                } else {
                    n as usize
                };
                match agg(count, next)? {
                    None => None,
                    Some((items, end)) => match t {
                        b'*' => Some((Value::Array(items), end)),
                        b'~' => Some((Value::Set(items), end)),
                        b'>' => Some((Value::Push(items), end)),
                        b'%' => Some((Value::Map(pairs(items)), end)),
                        _ => parse_frame(buf, end)?
                            .map(|(inner, e)| (Value::Attr(pairs(items), Box::new(inner)), e)),
                    },
                }
            }
        }
        other => return Err(format!("unknown RESP type byte {:?}", other as char)),
    })
}

/// Parses one complete reply (panics if the bytes are not exactly one valid frame).
pub fn resp_parse(bytes: &[u8]) -> Value {
    match parse_frame(bytes, 0) {
        Ok(Some((v, end))) if end == bytes.len() => v,
        Ok(Some((_, end))) => panic!("trailing bytes after reply: {}", escape(&bytes[end..])),
        Ok(None) => panic!("incomplete reply: {}", escape(bytes)),
        Err(e) => panic!("invalid reply ({e}): {}", escape(bytes)),
    }
}

/// Escapes bytes for display: printable ASCII as is, `\r \n \t \\ \"`, others as `\xNN`.
/// Long strings are shortened (head ... tail, with the total length).
pub fn escape(b: &[u8]) -> String {
    fn esc(out: &mut String, b: &[u8]) {
        for &c in b {
            match c {
                b'\r' => out.push_str("\\r"),
                b'\n' => out.push_str("\\n"),
                b'\t' => out.push_str("\\t"),
                b'\\' => out.push_str("\\\\"),
                b'"' => out.push_str("\\\""),
                0x20..=0x7e => out.push(c as char),
                _ => out.push_str(&format!("\\x{c:02x}")),
            }
        }
    }
    let mut out = String::new();
    if b.len() > 400 {
        esc(&mut out, &b[..300]);
        out.push_str(&format!("...<{} bytes total>...", b.len()));
        esc(&mut out, &b[b.len() - 60..]);
    } else {
        esc(&mut out, b);
    }
    out
}

/// For transcripts too long for [`escape`] to show whole: where `other` first departs from
/// `reference`, with up to 200 bytes of each from a little before that point (empty for short
/// ones, which are shown whole anyway).
fn first_difference(reference: &[u8], other: &[u8]) -> String {
    if reference.len().max(other.len()) <= 400 {
        return String::new();
    }
    let at = reference
        .iter()
        .zip(other)
        .position(|(a, b)| a != b)
        .unwrap_or(reference.len().min(other.len()));
    let from = at.saturating_sub(40);
    // 200 bytes are under `escape`'s limit, so it shows them whole.
    let window = |b: &[u8]| escape(&b[from.min(b.len())..(from + 200).min(b.len())]);
    format!(
        "\nfirst difference at byte {at}; from byte {from}:\n  redis : {}\n  other : {}",
        window(reference),
        window(other)
    )
}

/// Readable one-line rendering of a reply tree.
/// Copies the directory `from` into `to` (created if missing), subdirectories included.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// The key-value pairs of a map reply: a RESP3 map, or a RESP2 array of alternating keys and
/// values; nothing for any other reply.
pub fn map_pairs(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(p) => p.clone(),
        Value::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        _ => Vec::new(),
    }
}

pub fn render(v: &Value) -> String {
    fn list(items: &[Value]) -> String {
        items.iter().map(render).collect::<Vec<_>>().join(", ")
    }
    fn map(pairs: &[(Value, Value)]) -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{} => {}", render(k), render(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }
    match v {
        Value::Simple(s) => format!("+{}", escape(s)),
        Value::Error(s) => format!("-{}", escape(s)),
        Value::Int(i) => format!("(integer) {i}"),
        Value::Bulk(b) => format!("\"{}\"", escape(b)),
        Value::NilBulk => "(nil bulk $-1)".into(),
        Value::NilArray => "(nil array *-1)".into(),
        Value::Null => "(null _)".into(),
        Value::Double(d) => format!("(double) {}", escape(d)),
        Value::Bool(b) => format!("(bool) {b}"),
        Value::BlobError(s) => format!("!{}", escape(s)),
        Value::Verbatim(s) => format!("(verbatim) \"{}\"", escape(s)),
        Value::BigNum(s) => format!("(bignum) {}", escape(s)),
        Value::Array(items) => format!("[{}]", list(items)),
        Value::Set(items) => format!("~{{{}}}", list(items)),
        Value::Push(items) => format!(">[{}]", list(items)),
        Value::Map(p) => format!("%{{{}}}", map(p)),
        Value::Attr(p, inner) => format!("|{{{}}} {}", map(p), render(inner)),
    }
}

/// Renders raw reply bytes (parsed if possible, escaped raw otherwise).
pub fn render_raw(bytes: &[u8]) -> String {
    match parse_frame(bytes, 0) {
        Ok(Some((v, end))) if end == bytes.len() => render(&v),
        _ => format!("<raw> \"{}\"", escape(bytes)),
    }
}

/// Renders a command for messages: `SET "k" "v"`.
pub fn render_cmd(args: &[&[u8]]) -> String {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                escape(a)
            } else {
                format!("\"{}\"", escape(a))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

/// How two replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Raw bytes must be identical.
    Exact,
    /// Top-level array/set elements are sorted first (KEYS: order differs by design).
    Sorted,
    /// A `[cursor, [items]]` scan reply: the cursor compared as is, the items sorted (SSCAN of a
    /// set whose order differs by design).
    SortedScan,
    /// Integers are reduced to -2 / -1 / ">=0" (TTL, PTTL, EXPIRETIME, PEXPIRETIME).
    TtlClass,
    /// Only nil vs non-nil (RANDOMKEY). Errors are still compared exactly.
    NilOrNot,
    /// Same reply type recursively and same aggregate lengths; scalar contents ignored
    /// (errors still compared exactly). For TIME, CLIENT ID, LASTSAVE, ...
    Shape,
    /// Only the top-level type byte is compared (INFO, CLIENT LIST, SLOWLOG GET, ...).
    TypeOnly,
    /// A field/value reply (a flat array of pairs, or a map): the field names compared exactly
    /// and in order, the values by shape (MEMORY STATS).
    FieldNames,
    /// Only whether it is an error (the reply is still read to keep the stream in sync).
    ErrorOrNot,
    /// HELLO: map keys in order and proto/mode/role/modules compared; id, server, version
    /// blanked.
    Hello,
}

pub fn normalize(v: Value, n: Norm) -> Value {
    fn shape(v: Value) -> Value {
        match v {
            Value::Simple(_) => Value::Simple(vec![]),
            Value::Int(_) => Value::Int(0),
            Value::Bulk(_) => Value::Bulk(vec![]),
            Value::Double(_) => Value::Double(vec![]),
            Value::Bool(_) => Value::Bool(false),
            Value::Verbatim(_) => Value::Verbatim(vec![]),
            Value::BigNum(_) => Value::BigNum(vec![]),
            Value::Array(i) => Value::Array(i.into_iter().map(shape).collect()),
            Value::Set(i) => Value::Set(i.into_iter().map(shape).collect()),
            Value::Push(i) => Value::Push(i.into_iter().map(shape).collect()),
            Value::Map(p) => Value::Map(p.into_iter().map(|(k, v)| (shape(k), shape(v))).collect()),
            Value::Attr(p, inner) => Value::Attr(
                p.into_iter().map(|(k, v)| (shape(k), shape(v))).collect(),
                Box::new(shape(*inner)),
            ),
            other => other,
        }
    }
    match n {
        Norm::Exact => v,
        Norm::Sorted => match v {
            Value::Array(mut i) => {
                i.sort();
                Value::Array(i)
            }
            Value::Set(mut i) => {
                i.sort();
                Value::Set(i)
            }
            other => other,
        },
        Norm::SortedScan => match v {
            Value::Array(mut parts) if parts.len() == 2 => {
                if let Value::Array(items) | Value::Set(items) = &mut parts[1] {
                    items.sort();
                }
                Value::Array(parts)
            }
            other => other,
        },
        Norm::TtlClass => match v {
            Value::Int(i) if i >= 0 => Value::Simple(b">=0".to_vec()),
            other => other,
        },
        Norm::NilOrNot => match v {
            x if x.is_nil() => Value::Simple(b"nil".to_vec()),
            x if x.is_error() => x,
            _ => Value::Simple(b"non-nil".to_vec()),
        },
        Norm::Shape => shape(v),
        Norm::FieldNames => match v {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| if i % 2 == 0 { x } else { shape(x) })
                    .collect(),
            ),
            Value::Map(pairs) => {
                Value::Map(pairs.into_iter().map(|(k, v)| (k, shape(v))).collect())
            }
            other => other,
        },
        Norm::TypeOnly => match v {
            x if x.is_error() => x,
            Value::Simple(_) => Value::Simple(vec![]),
            Value::Int(_) => Value::Int(0),
            Value::Bulk(_) => Value::Bulk(vec![]),
            // Keep the 3-byte format ("txt") of a verbatim string.
            Value::Verbatim(b) => Value::Verbatim(b.iter().take(3).copied().collect()),
            Value::Array(_) => Value::Array(vec![]),
            Value::Set(_) => Value::Set(vec![]),
            Value::Map(_) => Value::Map(vec![]),
            other => shape(other),
        },
        Norm::ErrorOrNot => {
            if v.is_error() {
                Value::Simple(b"error".to_vec())
            } else {
                Value::Simple(b"not an error".to_vec())
            }
        }
        Norm::Hello => {
            let blank = |pairs: Vec<(Value, Value)>| -> Vec<(Value, Value)> {
                pairs
                    .into_iter()
                    .map(|(k, v)| {
                        let key = k
                            .as_bytes()
                            .map(|b| b.to_ascii_lowercase())
                            .unwrap_or_default();
                        match key.as_slice() {
                            b"id" | b"server" | b"version" => (k, shape(v)),
                            _ => (k, v),
                        }
                    })
                    .collect()
            };
            match v {
                Value::Map(p) => Value::Map(blank(p)),
                Value::Array(items) => {
                    // RESP2 HELLO: flat key/value array.
                    let mut out = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        out.push((k, v));
                    }
                    let blanked = blank(out);
                    Value::Array(blanked.into_iter().flat_map(|(k, v)| [k, v]).collect())
                }
                other => other,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Differential driver
// ---------------------------------------------------------------------------------------------

/// One server under comparison with its open connections.
pub struct Target {
    pub name: String,
    pub server: Server,
    pub conns: Vec<RawConn>,
}

impl Target {
    fn new(name: String, server: Server) -> Target {
        let c = server.conn();
        Target {
            name,
            server,
            conns: vec![c],
        }
    }
}

/// Runs the same commands against redis (the reference, `targets[0]`) and every Tessera
/// instance, comparing replies.
pub struct Diff {
    pub test: String,
    pub seed: Option<u64>,
    /// Index of the generator step (randomized tests), used for the reproduction hint.
    pub gen_step: Option<usize>,
    /// The environment variable the randomized test reads its seeds from (reproduction hint;
    /// `DIFF_SEEDS`, or `DIFF_RESP3_SEEDS` for a test named `*resp3*`, unless set).
    pub seed_env: &'static str,
    /// Number of commands sent so far (every command, including probes and checkpoints).
    pub step: usize,
    pub section: String,
    pub targets: Vec<Target>,
    /// Index of the connection used by `cmd` (see [`Diff::open_conn`]).
    pub active: usize,
    /// Currently selected db of each connection (tracked from successful SELECTs).
    pub dbs: Vec<usize>,
    history: VecDeque<String>,
    dump: bool,
}

/// Shard counts every differential test runs Tessera with (env `DIFF_SHARDS=1,4` overrides).
pub fn shard_counts() -> Vec<usize> {
    env_list("DIFF_SHARDS", &[1, 4])
}

/// A comma-separated list from the environment (a test's seeds, `DIFF_SEEDS=1,2,3`), or
/// `default` when the variable is unset or names nothing.
pub fn env_list<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    std::env::var(name)
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect::<Vec<T>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// A number from the environment (a test's seed or step count), or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Reads a subscriber's messages up to the `__marker__` message (see
/// [`Diff::subscribe_keyspace`]).
pub fn read_until_marker(c: &mut RawConn) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let frame = c.read_reply();
        let done = frame.windows(10).any(|w| w == b"__marker__");
        out.extend_from_slice(&frame);
        if done {
            return out;
        }
    }
}

impl Diff {
    /// Opens a RESP2 subscriber on every target to every keyspace and keyevent channel and to
    /// `__marker__`, and returns its connection index (see [`Diff::compare_notifications`]).
    pub fn subscribe_keyspace(&mut self) -> usize {
        let sub = self.open_conn();
        self.each("subscribe", |t, _| {
            let c = &mut t.conns[sub];
            let mut out = c.cmd_str("PSUBSCRIBE __key*__:*");
            out.extend(c.cmd_str("SUBSCRIBE __marker__"));
            out
        });
        sub
    }

    /// Compares what subscriber `sub` received since the last check: a PUBLISH to
    /// `__marker__` from connection 0 comes after every notification already queued.
    pub fn compare_notifications(&mut self, sub: usize, what: &str) {
        self.use_conn(0);
        self.s("PUBLISH __marker__ end");
        self.each(&format!("{what}: notifications"), |t, _| {
            read_until_marker(&mut t.conns[sub])
        });
    }

    /// redis + Tessera with 1 shard + Tessera with 4 shards. `None` if redis is not installed
    /// (a loud message was printed).
    pub fn new(test: &str) -> Option<Diff> {
        Diff::with_shards(test, &shard_counts())
    }

    pub fn with_shards(test: &str, shards: &[usize]) -> Option<Diff> {
        let redis = start_redis()?;
        let mut targets = vec![Target::new("redis".into(), redis)];
        for &n in shards {
            let name = format!("tessera({n} shard{})", if n == 1 { "" } else { "s" });
            targets.push(Target::new(name, start_tessera(n, &[])));
        }
        Some(Diff {
            test: test.to_string(),
            seed: None,
            gen_step: None,
            seed_env: if test.contains("resp3") {
                "DIFF_RESP3_SEEDS"
            } else {
                "DIFF_SEEDS"
            },
            step: 0,
            section: String::new(),
            targets,
            active: 0,
            dbs: vec![0],
            history: VecDeque::new(),
            dump: std::env::var_os("DIFF_DUMP").is_some(),
        })
    }

    /// Opens one more connection on every target and returns its index.
    pub fn open_conn(&mut self) -> usize {
        for t in &mut self.targets {
            let c = t.server.conn();
            t.conns.push(c);
        }
        self.dbs.push(0);
        self.targets[0].conns.len() - 1
    }

    /// The db selected on the active connection.
    pub fn db(&self) -> usize {
        self.dbs[self.active]
    }

    pub fn use_conn(&mut self, idx: usize) {
        self.active = idx;
    }

    pub fn section(&mut self, name: &str) {
        self.section = name.to_string();
    }

    fn remember(&mut self, line: String) {
        if self.history.len() == 12 {
            self.history.pop_front();
        }
        self.history.push_back(line);
    }

    fn fail(&self, what: &str, reference: &str, other_name: &str, other: &str, norm: Norm) -> ! {
        let mut msg = String::new();
        msg.push_str("\n========== DIFFERENTIAL MISMATCH ==========\n");
        msg.push_str(&format!("test:    {}\n", self.test));
        if let Some(seed) = self.seed {
            msg.push_str(&format!("seed:    {seed}\n"));
        }
        msg.push_str(&format!(
            "step:    {} (command #{} of this test)\n",
            self.gen_step
                .map(|g| format!("generator step {g}"))
                .unwrap_or_else(|| format!("#{}", self.step)),
            self.step
        ));
        if !self.section.is_empty() {
            msg.push_str(&format!("section: {}\n", self.section));
        }
        msg.push_str(&format!("db:      {} (conn #{})\n", self.db(), self.active));
        msg.push_str(&format!("command: {what}\n"));
        msg.push_str(&format!("compare: {norm:?}\n"));
        let w = other_name.len().max(5);
        msg.push_str(&format!("{:<w$} : {reference}\n", "redis"));
        msg.push_str(&format!("{other_name:<w$} : {other}\n"));
        if !self.history.is_empty() {
            msg.push_str("previous commands (oldest first):\n");
            for h in &self.history {
                msg.push_str(&format!("    {h}\n"));
            }
        }
        if let (Some(seed), Some(g)) = (self.seed, self.gen_step) {
            // The test binary is the crate this harness is compiled into; the test function
            // is named like the Diff (a filter, not an exact path: the Diff does not know its
            // module).
            msg.push_str(&format!(
                "reproduce: {}={seed} DIFF_STEPS={} cargo test --release --test {} {}\n",
                self.seed_env,
                g + 1,
                env!("CARGO_CRATE_NAME"),
                self.test
            ));
        }
        panic!("{msg}");
    }

    /// Sends `args` to every target, compares the replies under `norm` and returns redis' raw
    /// reply.
    pub fn cmd_norm(&mut self, args: &[&[u8]], norm: Norm) -> Vec<u8> {
        let what = render_cmd(args);
        let frame = encode(args);
        let replies = self.raw_all(&frame, &what);
        self.check(&what, &replies, norm);
        self.check_pushes(&what);
        if args.len() == 2 && args[0].eq_ignore_ascii_case(b"SELECT") && replies[0] == b"+OK\r\n" {
            if let Some(db) = std::str::from_utf8(args[1])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                self.dbs[self.active] = db;
            }
        }
        if args.len() == 1 && args[0].eq_ignore_ascii_case(b"RESET") && replies[0] == b"+RESET\r\n"
        {
            self.dbs[self.active] = 0;
        }
        if self.dump {
            eprintln!(
                "[{} #{}] {what}  ->  {}",
                self.test,
                self.step,
                render_raw(&replies[0])
            );
        }
        self.remember(format!(
            "#{} {what} -> {}",
            self.step,
            render_raw(&replies[0])
        ));
        self.step += 1;
        replies.into_iter().next().unwrap()
    }

    /// Sends raw `bytes` to every target and reads one reply from each.
    fn raw_all(&mut self, bytes: &[u8], what: &str) -> Vec<Vec<u8>> {
        let active = self.active;
        let mut out = Vec::new();
        for i in 0..self.targets.len() {
            let t = &mut self.targets[i];
            let conn = &mut t.conns[active];
            if let Err(e) = conn.try_send(bytes) {
                let name = t.name.clone();
                self.fail(
                    what,
                    "(sent fine)",
                    &name,
                    &format!("<send failed: {e}>"),
                    Norm::Exact,
                );
            }
            match conn.try_read_reply() {
                Ok(r) => out.push(r),
                Err(e) => {
                    let name = t.name.clone();
                    let log = if i == 0 {
                        String::new()
                    } else {
                        format!("\n--- {name} log tail ---\n{}", t.server.log_tail(20))
                    };
                    let reference = out
                        .first()
                        .map(|r| render_raw(r))
                        .unwrap_or_else(|| "(not read)".into());
                    self.fail(
                        what,
                        &reference,
                        &name,
                        &format!("<{}>{log}", describe_read_error(&e)),
                        Norm::Exact,
                    );
                }
            }
        }
        out
    }

    /// From now on the active connection's push frames (RESP3 `>`) are set aside and compared
    /// on their own, exactly, after each command (or batch): a command's own pushes follow its
    /// reply, so they are compared with the next command's.
    pub fn divert_pushes(&mut self) {
        let active = self.active;
        for t in &mut self.targets {
            t.conns[active].pushes = Some(Vec::new());
        }
    }

    /// Compares the push frames the active connection received so far (see `divert_pushes`).
    fn check_pushes(&mut self, what: &str) {
        let active = self.active;
        if self.targets[0].conns[active].pushes.is_none() {
            return;
        }
        let got: Vec<Vec<u8>> = self
            .targets
            .iter_mut()
            .map(|t| {
                t.conns[active]
                    .pushes
                    .as_mut()
                    .map(std::mem::take)
                    .unwrap_or_default()
            })
            .collect();
        let what = format!("push frames received up to the reply of {what}");
        if self.dump && got.iter().any(|g| !g.is_empty()) {
            for (t, g) in self.targets.iter().zip(&got) {
                eprintln!("    [{}] {what}: {}", t.name, escape(g));
            }
        }
        self.check(&what, &got, Norm::Exact);
    }

    /// Compares replies (index 0 = redis) under `norm`; panics on mismatch.
    pub fn check(&self, what: &str, replies: &[Vec<u8>], norm: Norm) {
        let reference = &replies[0];
        for (i, r) in replies.iter().enumerate().skip(1) {
            let same = if norm == Norm::Exact {
                r == reference
            } else {
                match (parse_frame(reference, 0), parse_frame(r, 0)) {
                    (Ok(Some((a, _))), Ok(Some((b, _)))) => {
                        normalize(a, norm) == normalize(b, norm)
                    }
                    _ => r == reference,
                }
            };
            if !same {
                let show = |b: &[u8]| {
                    let base = render_raw(b);
                    if norm == Norm::Exact {
                        format!("{base}\n{:>8}raw: \"{}\"", "", escape(b))
                    } else {
                        let n = parse_frame(b, 0)
                            .ok()
                            .flatten()
                            .map(|(v, _)| render(&normalize(v, norm)))
                            .unwrap_or_default();
                        format!("{base}\n{:>8}normalised: {n}", "")
                    }
                };
                self.fail(
                    what,
                    &show(reference),
                    &self.targets[i].name,
                    &show(r),
                    norm,
                );
            }
        }
    }

    /// Sends all `cmds` to every target as one pipelined write, then compares the replies one
    /// by one (each under its own [`Norm`]). Returns redis' raw replies.
    pub fn batch(&mut self, cmds: &[(Vec<Vec<u8>>, Norm)]) -> Vec<Vec<u8>> {
        let whats: Vec<String> = cmds
            .iter()
            .map(|(a, _)| render_cmd(&a.iter().map(|x| x.as_slice()).collect::<Vec<_>>()))
            .collect();
        let mut payload = Vec::new();
        for (a, _) in cmds {
            payload.extend(encode(&a.iter().map(|x| x.as_slice()).collect::<Vec<_>>()));
        }
        let active = self.active;
        let mut per_target: Vec<Vec<Vec<u8>>> = Vec::new();
        for i in 0..self.targets.len() {
            let t = &mut self.targets[i];
            let conn = &mut t.conns[active];
            let mut replies = Vec::new();
            let mut err = None;
            if let Err(e) = conn.try_send(&payload) {
                err = Some(format!("<send failed: {e}>"));
            } else {
                for _ in 0..cmds.len() {
                    match conn.try_read_reply() {
                        Ok(r) => replies.push(r),
                        Err(e) => {
                            err = Some(format!("<{}>", describe_read_error(&e)));
                            break;
                        }
                    }
                }
            }
            if let Some(e) = err {
                let name = t.name.clone();
                let n = replies.len();
                let log = if i == 0 {
                    String::new()
                } else {
                    format!("\n--- {name} log tail ---\n{}", t.server.log_tail(20))
                };
                self.step += n;
                self.fail(
                    &format!("{} (in a pipelined batch)", whats[n.min(whats.len() - 1)]),
                    "(see other targets)",
                    &name,
                    &format!("{e}{log}"),
                    Norm::Exact,
                );
            }
            per_target.push(replies);
        }
        self.check_pushes(&format!("a batch ending with {}", whats[whats.len() - 1]));
        for (j, (a, norm)) in cmds.iter().enumerate() {
            let replies: Vec<Vec<u8>> = per_target.iter().map(|r| r[j].clone()).collect();
            self.check(&whats[j], &replies, *norm);
            if a.len() == 2 && a[0].eq_ignore_ascii_case(b"SELECT") && replies[0] == b"+OK\r\n" {
                if let Some(db) = std::str::from_utf8(&a[1]).ok().and_then(|s| s.parse().ok()) {
                    self.dbs[self.active] = db;
                }
            }
            if self.dump {
                eprintln!(
                    "[{} #{}] {}  ->  {}",
                    self.test,
                    self.step,
                    whats[j],
                    render_raw(&replies[0])
                );
            }
            self.remember(format!(
                "#{} {} -> {}",
                self.step,
                whats[j],
                render_raw(&replies[0])
            ));
            self.step += 1;
        }
        per_target.into_iter().next().unwrap()
    }

    /// Exact byte comparison; returns redis' raw reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.cmd_norm(args, Norm::Exact)
    }

    /// Exact comparison of a space-separated command line.
    pub fn s(&mut self, line: &str) -> Vec<u8> {
        self.s_norm(line, Norm::Exact)
    }

    pub fn s_norm(&mut self, line: &str, norm: Norm) -> Vec<u8> {
        let parts = split_cmd(line);
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        self.cmd_norm(&refs, norm)
    }

    /// Runs every line of `lines` with exact comparison.
    pub fn script(&mut self, lines: &[&str]) {
        for l in lines {
            self.s(l);
        }
    }

    /// Runs `f` against every target (with its server port and its active connection) and
    /// compares the byte transcripts it returns.
    pub fn each<F>(&mut self, what: &str, mut f: F)
    where
        F: FnMut(&mut Target, usize) -> Vec<u8>,
    {
        let active = self.active;
        let mut outs = Vec::new();
        for t in &mut self.targets {
            outs.push(f(t, active));
        }
        if self.dump {
            eprintln!(
                "[{} #{}] {what}  ->  {}",
                self.test,
                self.step,
                escape(&outs[0])
            );
        }
        for (i, o) in outs.iter().enumerate().skip(1) {
            if o != &outs[0] {
                self.fail(
                    what,
                    &format!("\"{}\"", escape(&outs[0])),
                    &self.targets[i].name,
                    &format!("\"{}\"{}", escape(o), first_difference(&outs[0], o)),
                    Norm::Exact,
                );
            }
        }
        self.remember(format!("#{} {what}", self.step));
        self.step += 1;
    }

    /// Full SCAN iteration (with the given extra arguments, e.g. `MATCH k* COUNT 3`) on every
    /// target; compares the sorted, de-duplicated key sets. Errors on the first call are
    /// compared exactly.
    pub fn scan_all(&mut self, extra: &[&[u8]]) {
        let what = format!("SCAN <full iteration> {}", render_cmd(extra));
        let active = self.active;
        let mut sets: Vec<Result<Vec<Vec<u8>>, String>> = Vec::new();
        for t in &mut self.targets {
            sets.push(scan_iterate(&mut t.conns[active], extra));
        }
        let show = |r: &Result<Vec<Vec<u8>>, String>| match r {
            Ok(keys) => format!(
                "{{{}}}",
                keys.iter()
                    .map(|k| format!("\"{}\"", escape(k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => e.clone(),
        };
        for i in 1..sets.len() {
            if sets[i] != sets[0] {
                self.fail(
                    &what,
                    &show(&sets[0]),
                    &self.targets[i].name,
                    &show(&sets[i]),
                    Norm::Sorted,
                );
            }
        }
        self.remember(format!("#{} {what} -> {}", self.step, show(&sets[0])));
        self.step += 1;
    }
}

/// Iterates SCAN from cursor 0 to the end; returns the sorted, de-duplicated keys, or a
/// description of the first error reply / anomaly.
fn scan_iterate(conn: &mut RawConn, extra: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
    let mut cursor = b"0".to_vec();
    let mut keys = std::collections::BTreeSet::new();
    for round in 0..100_000 {
        let mut args: Vec<&[u8]> = vec![b"SCAN", &cursor];
        args.extend_from_slice(extra);
        conn.try_send(&encode(&args))
            .map_err(|e| format!("<send failed: {e}>"))?;
        let reply = conn
            .try_read_reply()
            .map_err(|e| format!("<{}>", describe_read_error(&e)))?;
        let v = resp_parse(&reply);
        let (next, batch) = match &v {
            Value::Array(items) if items.len() == 2 => match (&items[0], items[1].items()) {
                (Value::Bulk(c), Some(batch)) => (c.clone(), batch.clone()),
                _ => {
                    return Err(format!(
                        "malformed SCAN reply in round {round}: {}",
                        render(&v)
                    ))
                }
            },
            _ if round == 0 => return Err(render(&v)),
            _ => return Err(format!("round {round}: {}", render(&v))),
        };
        for k in batch {
            match k {
                Value::Bulk(b) => {
                    keys.insert(b);
                }
                other => return Err(format!("non-bulk key in SCAN reply: {}", render(&other))),
            }
        }
        if next == b"0" {
            return Ok(keys.into_iter().collect());
        }
        cursor = next;
    }
    Err("SCAN did not return cursor 0 within 100000 rounds".into())
}

// =============================================================================================
// Multi-connection transcripts (pub/sub, blocking): a scenario drives several raw connections
// and logs what each received; redis and Tessera (1 and 4 shards) must log the same.
// =============================================================================================

/// Runs `scenario` against redis and every Tessera shard count; transcripts must match.
pub fn compare_transcripts(name: &str, scenario: fn(u16) -> Vec<String>) {
    let Some(redis) = start_redis() else {
        return;
    };
    let expected = scenario(redis.port);
    for shards in [1, 4] {
        let t = start_tessera(shards, &[]);
        let got = scenario(t.port);
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            assert_eq!(e, g, "{}: step {} differs with {} shards", name, i, shards);
        }
        assert_eq!(expected.len(), got.len(), "{}: transcript length", name);
    }
}

/// Sends one command line (split like redis-cli) without reading a reply.
pub fn send_line(c: &mut RawConn, line: &str) {
    let args = split_cmd(line);
    let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    c.send(&encode(&refs));
}

/// Sends one command given as its arguments (spaces and all) and logs the one reply it gets.
pub fn logged_args(c: &mut RawConn, log: &mut Vec<String>, args: &[&str]) {
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&encode(&refs));
    log.push(format!("{:?} -> {}", args, render_raw(&c.read_reply())));
}

/// Reads one reply and logs it under `what` (a blocked client's answer).
pub fn logged_reply(c: &mut RawConn, log: &mut Vec<String>, what: &str) {
    log.push(format!("{}: {}", what, render_raw(&c.read_reply())));
}

/// Waits until the server on `port` reports `n` blocked clients (never by sleeping a guessed
/// time).
pub fn wait_blocked_clients(port: u16, n: usize) {
    let mut c = RawConn::connect(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("blocked_clients:{n}\r\n");
    loop {
        let info = c.cmd(&[b"INFO", b"clients"]);
        if String::from_utf8_lossy(&info).contains(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port}: never saw {}: {}",
            want.trim(),
            String::from_utf8_lossy(&info)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The value of INFO field `name` in the raw INFO reply `info`, trimmed; `?` when missing.
pub fn info_field(info: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(info);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or("?")
        .trim()
        .to_string()
}

/// INFO field `name` of `section` as a number; -1 when missing or not a number.
pub fn info_num(c: &mut RawConn, section: &str, name: &str) -> i64 {
    let info = c.cmd(&[b"INFO", section.as_bytes()]);
    info_field(&info, name).parse().unwrap_or(-1)
}

/// Sends `line` and logs the one reply it gets.
pub fn logged_cmd(c: &mut RawConn, log: &mut Vec<String>, line: &str) {
    send_line(c, line);
    log.push(format!("{} -> {}", line, render_raw(&c.read_reply())));
}

/// A redis-server of a test's own, loading `dir/file` at startup (killed on drop).
pub struct RedisOnFile {
    child: Child,
    pub port: u16,
}

impl RedisOnFile {
    pub fn conn(&self) -> RawConn {
        RawConn::connect(self.port)
    }
}

impl Drop for RedisOnFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts redis-server on `dir/file` and waits until it answers PONG (not -LOADING).
pub fn redis_on_file(dir: &Path, file: &str) -> RedisOnFile {
    let port = free_port();
    let log = fs::File::create(dir.join(format!("{file}.log"))).unwrap();
    let child = Command::new("redis-server")
        .args(redis_args(port, dir))
        .args(["--dbfilename", file])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start redis-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            let mut c = RawConn::connect(port);
            // Answers -LOADING while the file loads.
            if c.cmd(&[b"PING"]) == b"+PONG\r\n" {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not start on {file}: {}",
            fs::read_to_string(dir.join(format!("{file}.log"))).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    RedisOnFile { child, port }
}

/// Starts Tessera on a free port with `args` under a file-size limit of `limit` bytes (writes
/// past it fail with EFBIG, like a full disk) and waits until it accepts connections. Returns
/// the process (the caller kills it) and the port.
pub fn spawn_tessera_fsize_limited(args: &[&str], limit: u64) -> (Child, u16) {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let mut cmd = Command::new(tessera_bin());
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Only the soft limit: the test may lift it again (space returns) without
            // privileges.
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start tessera");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tessera did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

/// Whether redis-server and redis-check-rdb are installed; with TESSERA_REQUIRE_REDIS (CI)
/// their absence is a failure, not a skip.
pub fn redis_tools() -> bool {
    let have = |bin: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {bin}"))
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if have("redis-server") && have("redis-check-rdb") {
        return true;
    }
    assert!(
        std::env::var_os("TESSERA_REQUIRE_REDIS").is_none(),
        "redis-server / redis-check-rdb not installed"
    );
    eprintln!("redis-server / redis-check-rdb not installed: skipped");
    false
}

// ---------------------------------------------------------------------------------------------
// INFO latencystats
// ---------------------------------------------------------------------------------------------

/// What of an INFO reply does not depend on timing, for comparing INFO latencystats: the
/// section headers and field names in order, except that `latency_percentiles_usec_*` lines
/// (printed in hash-table order by Redis) are sorted and shown as their name and percentile
/// labels, each value replaced by `#` when it has Redis's `%.3f` shape (digits, a point, three
/// digits) and kept, to show the difference, when not. Other fields' values are dropped.
pub fn latencystats_shape(raw: &[u8]) -> String {
    let v = resp_parse(raw);
    let Some(text) = v.as_bytes() else {
        return format!("<not a string: {}>", render_raw(raw));
    };
    let text = String::from_utf8_lossy(text);
    let value_ok = |v: &str| {
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        !int.is_empty()
            && int.bytes().all(|c| c.is_ascii_digit())
            && frac.len() == 3
            && frac.bytes().all(|c| c.is_ascii_digit())
    };
    let mut out: Vec<String> = Vec::new();
    let mut latency: Vec<String> = Vec::new();
    let flush = |out: &mut Vec<String>, latency: &mut Vec<String>| {
        latency.sort();
        out.append(latency);
    };
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            flush(&mut out, &mut latency);
            out.push(line.to_string());
            continue;
        }
        let (name, values) = line.split_once(':').unwrap_or((line, ""));
        if !name.starts_with("latency_percentiles_usec_") {
            out.push(name.to_string());
            continue;
        }
        let shapes: Vec<String> = values
            .split(',')
            .filter(|x| !x.is_empty())
            .map(|pv| match pv.split_once('=') {
                Some((label, value)) if value_ok(value) => format!("{label}=#"),
                _ => format!("{pv}(bad)"),
            })
            .collect();
        latency.push(format!("{name}:{}", shapes.join(",")));
    }
    flush(&mut out, &mut latency);
    out.join("\n")
}

/// The `cmdstat_` lines of an INFO commandstats reply without their timing fields (`usec`,
/// `usec_per_call`), sorted: the call, rejected and failed counts, which compare across servers.
pub fn commandstats_counts(info: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(info);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .map(|l| {
            l.split(',')
                .filter(|f| !f.contains("usec"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn first_difference_points_at_the_byte_and_shows_both_sides() {
    let a = vec![b'a'; 600];
    let mut b = a.clone();
    b[500] = b'\n';
    let msg = first_difference(&a, &b);
    assert!(
        msg.contains("first difference at byte 500; from byte 460:"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("  other : {}\\n", "a".repeat(40))),
        "{msg}"
    );
    // A longer transcript that merely goes on: the difference is where the shorter one ends.
    let longer = [&a[..], b"more"].concat();
    assert!(first_difference(&a, &longer).contains("at byte 600"));
    // Short replies are shown whole by `escape` already.
    assert_eq!(first_difference(b"+OK\r\n", b"+NO\r\n"), "");
}

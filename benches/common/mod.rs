//! What the side-by-side benchmark runners share: Redis Cluster's CRC16, the guard that kills
//! a child server when a runner exits, server log tails, free ports, CPU placement (`taskset`
//! for servers, affinity for the runner's own threads) and per-process CPU time, and a minimal
//! RESP client (encoder, a reply reader that only finds where replies end, a cheap RNG for key
//! picks). It
//! only helps run benchmarks and must never depend on the crate under test.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Owns a child process; kills and reaps it on drop (normal exit or panic).
pub struct ChildGuard {
    pub child: Child,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Make the child receive SIGKILL if this runner dies without unwinding (SIGKILL, abort).
/// Children are spawned from the main thread only, which lives for the whole run, so the
/// per-thread semantics of PDEATHSIG are harmless.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn prctl(option: std::os::raw::c_int, ...) -> std::os::raw::c_int;
    }
    const PR_SET_PDEATHSIG: std::os::raw::c_int = 1;
    const SIGKILL: std::os::raw::c_ulong = 9;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}

/// Run a short command and return its trimmed stdout (None on any failure).
pub fn capture(prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reserve `n` distinct free ports (all listeners held at once so the kernel cannot hand out
/// the same port twice), then release them.
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Median of the finite values; None when there are none.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

// ------------------------------------------------------------------ RESP --

pub fn connect(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// Send one command on a fresh connection and return its single reply, raw.
pub fn call(port: u16, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    call_timeout(port, args, Duration::from_secs(2))
}

pub fn call_timeout(port: u16, args: &[&[u8]], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = connect(port, timeout)?;
    let mut req = Vec::new();
    encode(&mut req, args);
    s.write_all(&req)?;
    let mut rd = ReplyReader::new();
    rd.read_replies(&mut s, 1)?;
    Ok(rd.last)
}

pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Where the line starting at `pos` ends (index of its `\r`), if complete.
fn line_end(buf: &[u8], pos: usize) -> Option<usize> {
    buf[pos..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| pos + i)
}

fn header_int(buf: &[u8], from: usize, to: usize) -> std::io::Result<i64> {
    std::str::from_utf8(&buf[from..to])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad RESP length"))
}

/// Skip one complete RESP2 value at `pos`: `Ok(Some(end))`, or `Ok(None)` if more bytes are
/// needed. Error replies (nested ones too, e.g. inside EXEC's array) are counted into `errors`.
fn skip_value(buf: &[u8], pos: usize, errors: &mut u64) -> std::io::Result<Option<usize>> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let Some(eol) = line_end(buf, pos) else {
        return Ok(None);
    };
    let after = eol + 2;
    match buf[pos] {
        b'+' | b':' => Ok(Some(after)),
        b'-' => {
            *errors += 1;
            Ok(Some(after))
        }
        b'$' => {
            let len = header_int(buf, pos + 1, eol)?;
            if len < 0 {
                return Ok(Some(after));
            }
            let end = after + len as usize + 2;
            Ok((end <= buf.len()).then_some(end))
        }
        b'*' => {
            let n = header_int(buf, pos + 1, eol)?;
            let mut p = after;
            for _ in 0..n.max(0) {
                match skip_value(buf, p, errors)? {
                    Some(e) => p = e,
                    None => return Ok(None),
                }
            }
            Ok(Some(p))
        }
        other => Err(std::io::Error::other(format!(
            "unexpected RESP type byte {:?}",
            other as char
        ))),
    }
}

/// Reads whole replies off a connection, keeping partial ones for the next read.
pub struct ReplyReader {
    buf: Vec<u8>,
    pub errors: u64,
    /// Bytes of the last complete reply, for `call`.
    pub last: Vec<u8>,
}

impl ReplyReader {
    pub fn new() -> Self {
        ReplyReader {
            buf: Vec::with_capacity(64 * 1024),
            errors: 0,
            last: Vec::new(),
        }
    }

    pub fn read_replies(&mut self, s: &mut TcpStream, mut want: usize) -> std::io::Result<()> {
        let mut pos = 0;
        let mut chunk = [0u8; 64 * 1024];
        while want > 0 {
            match skip_value(&self.buf, pos, &mut self.errors)? {
                Some(end) => {
                    if want == 1 {
                        self.last.clear();
                        self.last.extend_from_slice(&self.buf[pos..end]);
                    }
                    pos = end;
                    want -= 1;
                }
                None => {
                    self.buf.drain(..pos);
                    pos = 0;
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Err(std::io::Error::other("server closed the connection"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }
}

/// xorshift64*: cheap, deterministic per thread, good enough for key picks.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, v: &'a [u64]) -> &'a u64 {
        &v[self.below(v.len() as u64) as usize]
    }
}

/// The two servers a runner compares: stock redis-server (`REDIS_SERVER`, else on PATH) and
/// Tessera (`TESSERA_BIN`, else the binary cargo built).
pub struct Bins {
    pub redis_server: String,
    pub tessera: PathBuf,
    /// TESSERA_BIN is really a redis-server (validation mode).
    pub tessera_is_redis: bool,
}

impl Bins {
    pub fn from_env() -> Result<Bins, String> {
        let tessera = std::env::var_os("TESSERA_BIN")
            .map(PathBuf::from)
            .or_else(|| option_env!("CARGO_BIN_EXE_tessera").map(PathBuf::from))
            .ok_or("no tessera binary: CARGO_BIN_EXE_tessera unset and TESSERA_BIN not given")?;
        let tessera_is_redis = tessera
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("redis-server"));
        Ok(Bins {
            redis_server: std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
            tessera,
            tessera_is_redis,
        })
    }

    /// The `v=` of `redis-server --version`.
    pub fn redis_version(&self) -> Result<String, String> {
        capture(&self.redis_server, &["--version"])
            .and_then(|s| {
                s.split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").map(str::to_string))
            })
            .ok_or_else(|| format!("cannot run `{} --version`", self.redis_server))
    }
}

/// Cargo's target directory (where runners keep their logs).
pub fn target_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// What a report says about the machine it ran on.
pub struct Host {
    /// UTC, to the minute.
    pub date: String,
    pub cpu_model: String,
    pub nproc: usize,
}

impl Host {
    pub fn probe() -> Host {
        Host {
            date: capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown date".into()),
            cpu_model: fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                })
                .unwrap_or_else(|| "?".into()),
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
        }
    }
}

/// `prog args`, or `taskset -c cpus prog args` when `cpus` is given.
pub fn pinned_command(prog: &Path, args: &[String], cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus]).arg(prog).args(args);
            cmd
        }
        None => {
            let mut cmd = Command::new(prog);
            cmd.args(args);
            cmd
        }
    }
}

/// Restricts this process's threads (and the threads it starts later) to the CPUs of a
/// `taskset -c` style list such as `1`, `0-1` or `1,3`.
pub fn pin_current_process(cpus: &str) -> Result<(), String> {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for part in cpus.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let (lo, hi): (usize, usize) = match (lo.parse(), hi.parse()) {
            (Ok(l), Ok(h)) if l <= h && h < libc::CPU_SETSIZE as usize => (l, h),
            _ => return Err(format!("bad CPU list {cpus:?}")),
        };
        for c in lo..=hi {
            // SAFETY: `c` is below CPU_SETSIZE, the size of `set`.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread, whose mask
    // threads started afterwards inherit.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity({cpus}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// utime + stime (clock ticks) of the whole process, all threads included.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may contain spaces and ')': fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field 14 → index 11, field 15 → index 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second, the unit of `cpu_ticks`.
pub fn clk_tck() -> f64 {
    capture("getconf", &["CLK_TCK"])
        .and_then(|s| s.parse().ok())
        .unwrap_or(100.0)
}

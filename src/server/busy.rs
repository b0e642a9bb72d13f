//! Serving a shard's own clients while a script on it runs past `busy-reply-threshold`.
//!
//! A script holds its shard's thread until it ends, so the shard's connections (and, with one
//! shard, the whole server) would hear nothing: no `-BUSY`, and no way to send SCRIPT KILL.
//! Redis answers clients from inside its script hook; so does this module, called from the
//! script's tick once the run is busy. It reads the shard's ready client sockets itself,
//! accepts new connections on its listeners, and answers each complete command as Redis's
//! `processCommand` would during a busy script: unknown commands and wrong arity get their
//! errors, SCRIPT KILL and FUNCTION KILL act, SHUTDOWN NOSAVE stops the server, and everything
//! else gets `-BUSY`.
//!
//! Owns no state: what it reads and does not consume stays in the socket's readiness slot
//! (`readiness::Held`), where the connection's own reader finds it first. Must never run a
//! command that touches the keyspace or a connection's state, nor answer a connection that is
//! in the middle of something (a partial command, MULTI, a subscription, CLIENT REPLY OFF, not
//! yet authenticated...): only sockets whose connection marked itself servable are read, and
//! the first command it cannot answer (AUTH, HELLO, MULTI, QUIT...) ends its service, with
//! that command and all after it left for the connection.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};

use super::readiness::{self, Held};
use crate::commands;
use crate::commands::args::eq_ic;
use crate::protocol::parse::{parse_requests, ParseLimits};
use crate::protocol::Reply;
use crate::shard::Shard;

/// How much one client may have read for it per visit; the rest waits for the next tick.
const READ_PER_VISIT: usize = 64 * 1024;

/// Answers what the shard's clients sent while its script is busy (see the module docs).
pub fn serve_while_busy(sh: &Shard) {
    let Ok(r) = readiness::current() else {
        return;
    };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    r.drain(&mut events);
    let open = sh.globals.acl.default_open();
    let (listeners, clients): (Vec<RawFd>, Vec<RawFd>) = {
        let slots = r.slots.borrow();
        let listeners = slots
            .iter()
            .filter(|(_, s)| s.listener && s.ready)
            .map(|(&fd, _)| fd)
            .collect();
        let clients = slots
            .iter()
            .filter(|(_, s)| !s.listener && s.servable)
            .map(|(&fd, _)| fd)
            .collect();
        (listeners, clients)
    };
    let mut visit = clients;
    for l in listeners {
        for _ in 0..64 {
            match readiness::accept_now(l) {
                Ok(Some(fd)) => {
                    if r.register(fd).is_err() {
                        // SAFETY: `fd` was just accepted and is owned by nobody else.
                        unsafe { libc::close(fd) };
                        continue;
                    }
                    let mut slots = r.slots.borrow_mut();
                    if let Some(s) = slots.get_mut(&fd) {
                        s.servable = open;
                    }
                    if let Some(s) = slots.get_mut(&l) {
                        s.held
                            .get_or_insert_with(Default::default)
                            .accepted
                            .push(fd);
                        if let Some(w) = s.waker.take() {
                            w.wake();
                        }
                    }
                    visit.push(fd);
                }
                Ok(None) => {
                    if let Some(s) = r.slots.borrow_mut().get_mut(&l) {
                        s.ready = false;
                    }
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let mut left_output = false;
    for fd in visit {
        let mut slots = r.slots.borrow_mut();
        let Some(slot) = slots.get_mut(&fd) else {
            continue;
        };
        let ready = slot.ready;
        let held = slot.held.get_or_insert_with(Default::default);
        let (still_ready, keep_serving) = serve_client(sh, fd, ready, held);
        left_output |= !held.output.is_empty();
        let wake = !held.input.is_empty() || !held.output.is_empty();
        slot.ready = still_ready;
        slot.servable = keep_serving;
        if wake {
            // The connection must find what was left for it once the script ends, even if its
            // socket brings nothing new.
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }
    if left_output {
        r.held_epoch.set(r.held_epoch.get() + 1);
    }
}

/// Reads what `fd` has, answers its complete commands and keeps the rest in `held`. Returns
/// whether the socket may still have data, and whether the connection may be served again.
fn serve_client(sh: &Shard, fd: RawFd, mut ready: bool, held: &mut Held) -> (bool, bool) {
    if ready {
        let mut chunk = [0u8; 16 * 1024];
        let mut got = 0;
        while got < READ_PER_VISIT {
            // SAFETY: `chunk` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    fd,
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // EOF or an error stays for the connection's own read to see; nothing waiting
                // (EAGAIN) waits for the next event.
                if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
                {
                    ready = false;
                }
                break;
            }
            held.input.extend_from_slice(&chunk[..n as usize]);
            got += n as usize;
            if (n as usize) < chunk.len() {
                ready = false;
                break;
            }
        }
    }
    if held.input.is_empty() || !held.output.is_empty() {
        return (ready, held.output.is_empty());
    }
    let mut buf = BytesMut::from(&held.input[..]);
    let mut cmds = Vec::new();
    let limits = ParseLimits {
        max_bulk_len: sh.state.borrow().config.proto_max_bulk_len,
        ..ParseLimits::default()
    };
    if parse_requests(&mut buf, &limits, &mut cmds).is_err() {
        // The connection reports the protocol error itself, after the script.
        return (ready, false);
    }
    let mut served = 0;
    let mut keep_serving = true;
    for args in &cmds {
        if !writable(fd) {
            keep_serving = false;
            break;
        }
        let mut out = BytesMut::new();
        match answer(sh, args, &mut Reply::new(&mut out, false)) {
            Answer::Replied => {}
            Answer::Leave => {
                keep_serving = false;
                break;
            }
        }
        served += 1;
        send_all(fd, &out, &mut held.output);
        if !held.output.is_empty() {
            keep_serving = false;
            break;
        }
    }
    if served > 0 {
        // What was not answered goes back in front of the unparsed rest, as commands again.
        // (A request is written like an array reply of bulk strings.)
        let mut rest = BytesMut::new();
        {
            let mut w = Reply::new(&mut rest, false);
            for args in &cmds[served..] {
                w.array(args.len());
                for a in args {
                    w.bulk(a);
                }
            }
        }
        rest.extend_from_slice(&buf);
        held.input = rest.to_vec();
    }
    (ready, keep_serving)
}

enum Answer {
    Replied,
    /// The connection must run this command itself (it is allowed while busy but needs the
    /// connection's state): stop serving it.
    Leave,
}

/// What Redis answers to `args` while a script is busy.
fn answer(sh: &Shard, args: &[Bytes], r: &mut Reply) -> Answer {
    let shared = &sh.globals.scripting;
    // Looked up and checked as the connection would (`Conn::dispatch`), before the busy check.
    let (spec, name) = match commands::resolve(args) {
        Ok(x) => x,
        Err(commands::Unresolved::Unknown(e)) => {
            r.error_bytes(&e);
            return Answer::Replied;
        }
        Err(commands::Unresolved::Arity(_, name)) => {
            r.error(&commands::arity_error(name));
            return Answer::Replied;
        }
    };
    let busy = shared
        .busy_error()
        .unwrap_or(crate::scripting::ERR_BUSY_EVAL);
    match name {
        "script|kill" | "function|kill" => {
            match crate::scripting::kill_busy(shared, name == "script|kill") {
                Ok(()) => r.ok(),
                Err(e) => r.error(e),
            }
            Answer::Replied
        }
        "shutdown" if args[1..].iter().any(|a| eq_ic(a, "nosave")) => {
            for s in shared.slots.iter() {
                s.kill.store(true, Ordering::Release);
            }
            sh.globals.request_shutdown();
            Answer::Leave
        }
        _ if commands::allowed_while_busy(spec, name, args) => Answer::Leave,
        _ => {
            r.error(busy);
            Answer::Replied
        }
    }
}

/// Whether a small reply can be written to `fd` now (the socket has room, so `send` takes all
/// of it).
fn writable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; timeout 0 never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLOUT != 0
}

/// Sends `bytes` without blocking; what the socket does not take goes to `left`.
fn send_all(fd: RawFd, bytes: &[u8], left: &mut Vec<u8>) {
    let mut sent = 0;
    while sent < bytes.len() {
        // SAFETY: the range is within `bytes`.
        let n = unsafe {
            libc::send(
                fd,
                bytes[sent..].as_ptr().cast(),
                bytes.len() - sent,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n <= 0 {
            break;
        }
        sent += n as usize;
    }
    left.extend_from_slice(&bytes[sent..]);
}

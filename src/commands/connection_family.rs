//! Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET and CLIENT.
//!
//! Apart from PING and ECHO (plain shard-local replies), these run at connection level because
//! they read or change the client's own state. CLIENT LIST/KILL/PAUSE reach every shard by
//! message, since each shard keeps the registry of the connections it accepted.

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{eq_ic, int_arg, text, ERR_SYNTAX};
use super::{cmd, flags::*, sub, CommandSpec, Ctx, Exec, SubCommand, NO_KEYS};
use crate::protocol::Reply;
use crate::server::client::Unblock;
use crate::server::conn::{Conn, ReplyMode, ERR_SHARD_GONE};
use crate::server::globals::unix_ms;

pub fn specs() -> Vec<CommandSpec> {
    let g = "connection";
    vec![
        cmd("ping", -1, FAST, NO_KEYS, g, "1.0.0", "O(1)", "Returns PONG, or the given message.", Exec::Shard(ping)).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        cmd("echo", 2, FAST | LOADING | STALE, NO_KEYS, g, "1.0.0", "O(1)", "Returns the given string.", Exec::Shard(echo)),
        cmd("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, NO_KEYS, g, "1.0.0", "O(1)", "Closes the connection.", Exec::Conn(quit)),
        cmd("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NO_KEYS, g, "6.0.0", "O(1)", "Handshakes with the server: protocol version, authentication, client name.", Exec::Conn(hello)),
        cmd("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NO_KEYS, g, "1.0.0", "O(N) where N is the number of passwords defined for the user", "Authenticates the connection.", Exec::Conn(auth)),
        cmd("select", 2, LOADING | STALE | FAST, NO_KEYS, g, "1.0.0", "O(1)", "Changes the selected database.", Exec::Conn(select)),
        cmd("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NO_KEYS, g, "6.2.0", "O(1)", "Resets the connection to its initial state.", Exec::Conn(reset)),
        cmd("client", -2, NOSCRIPT | LOADING | STALE, NO_KEYS, g, "2.4.0", "Depends on subcommand", "Inspects and controls client connections (ID, SETNAME, GETNAME, LIST, INFO, KILL, PAUSE, UNPAUSE, REPLY, UNBLOCK).", Exec::Conn(client)).subcommands(CLIENT_SUBCOMMANDS),
    ]
}

/// CLIENT's subcommands, as Redis 7.0 declares them.
const CLIENT_SUBCOMMANDS: &[SubCommand] = &[
    sub("client|tracking", -3)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs(
            "6.0.0",
            "O(1). Some options may introduce additional complexity.",
            "Turns server-assisted client-side caching on or off.",
        ),
    sub("client|getredir", 2)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs(
            "6.0.0",
            "O(1)",
            "Returns the client ID to which tracking notifications are redirected.",
        ),
    sub("client|kill", -3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "2.4.0",
            "O(N) where N is the number of client connections",
            "Closes the connections that match a filter.",
        ),
    sub("client|list", -2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(&["nondeterministic_output"])
        .docs(
            "2.4.0",
            "O(N) where N is the number of client connections",
            "Lists the open connections and their state.",
        ),
    sub("client|pause", -3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "2.9.50",
            "O(1)",
            "Suspends commands from clients for a time.",
        ),
    sub("client|reply", 3)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs(
            "3.2.0",
            "O(1)",
            "Turns the server's replies to this connection on or off, or skips the next one.",
        ),
    sub("client|setname", 3)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs("2.6.9", "O(1)", "Names the connection."),
    sub("client|trackinginfo", 2)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs(
            "6.2.0",
            "O(1)",
            "Returns the connection's client-side caching settings.",
        ),
    sub("client|id", 2).flags(NOSCRIPT | LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Returns the unique ID of the connection.",
    ),
    sub("client|unblock", -3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "5.0.0",
            "O(log N) where N is the number of client connections",
            "Wakes a client blocked in a blocking command.",
        ),
    sub("client|getname", 2)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs("2.6.9", "O(1)", "Returns the name of the connection."),
    sub("client|no-evict", 3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "7.0.0",
            "O(1)",
            "Sets whether the connection may be evicted under client memory pressure.",
        ),
    sub("client|info", 2)
        .flags(NOSCRIPT | LOADING | STALE)
        .tips(&["nondeterministic_output"])
        .docs(
            "6.2.0",
            "O(1)",
            "Returns information about the connection, in CLIENT LIST's format.",
        ),
    sub("client|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Lists the CLIENT subcommands.",
    ),
    sub("client|caching", 3)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs(
            "6.0.0",
            "O(1)",
            "Tells whether the keys the next command reads are tracked (client-side caching).",
        ),
    sub("client|unpause", 2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "6.2.0",
            "O(N) Where N is the number of paused clients",
            "Resumes commands suspended by CLIENT PAUSE.",
        ),
];

fn ping(_ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match a.len() {
        1 => r.simple("PONG"),
        2 => r.bulk(&a[1]),
        _ => r.error(&super::arity_error("ping")),
    }
}

fn echo(_ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    r.bulk(&a[1]);
}

fn quit(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        c.reply().ok();
        c.close_after_reply = true;
    })
}

/// Authenticates the connection as `user` (Redis's ACLAuthenticateUser): on failure the attempt
/// goes to the ACL log, under the command's name as sent.
fn authenticate(c: &mut Conn, user: &[u8], pass: &[u8], cmd_name: &[u8]) -> bool {
    match c.shard.globals.acl.authenticate(user, pass) {
        Some(p) => {
            c.authenticated = true;
            c.set_user(p);
            true
        }
        None => {
            let ctx = if c.multi.is_some() {
                crate::server::acl::LogContext::Multi
            } else {
                crate::server::acl::LogContext::Toplevel
            };
            super::acl_family::log_denied(
                c,
                crate::server::acl::LogReason::Auth,
                ctx,
                cmd_name,
                user,
            );
            false
        }
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if a.len() > 3 {
            return c.reply().error(ERR_SYNTAX);
        }
        let (user, pass): (&[u8], &[u8]) = if a.len() == 2 {
            let nopass = c
                .shard
                .globals
                .acl
                .lock()
                .get(b"default")
                .is_some_and(|d| d.nopass);
            if nopass {
                return c.reply().error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            }
            (b"default", &a[1])
        } else {
            (&a[1], &a[2])
        };
        if authenticate(c, user, pass, &a[0]) {
            c.reply().ok();
        } else {
            c.reply().error(WRONGPASS);
        }
    })
}

/// A client name may not contain spaces, newlines or other special characters.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

const ERR_BAD_NAME: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";

fn hello(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let mut ver = 0;
        let mut next = 1;
        if a.len() >= 2 {
            match super::args::parse_i64(&a[1]) {
                Some(v) => ver = v,
                None => {
                    return c
                        .reply()
                        .error("ERR Protocol version is not an integer or out of range")
                }
            }
            next = 2;
            if !(2..=3).contains(&ver) {
                return c.reply().error("NOPROTO unsupported protocol version");
            }
        }
        let mut creds: Option<(Bytes, Bytes)> = None;
        let mut name: Option<Bytes> = None;
        let mut j = next;
        while j < a.len() {
            let more = a.len() - 1 - j;
            if eq_ic(&a[j], "auth") && more >= 2 {
                creds = Some((a[j + 1].clone(), a[j + 2].clone()));
                j += 2;
            } else if eq_ic(&a[j], "setname") && more >= 1 {
                if !valid_client_name(&a[j + 1]) {
                    return c.reply().error(ERR_BAD_NAME);
                }
                name = Some(a[j + 1].clone());
                j += 1;
            } else {
                return c.reply().error(&format!(
                    "ERR Syntax error in HELLO option '{}'",
                    text(&a[j])
                ));
            }
            j += 1;
        }
        if let Some((u, p)) = &creds {
            if !authenticate(c, u, p, &a[0]) {
                return c.reply().error(WRONGPASS);
            }
        }
        if !c.authenticated {
            return c.reply().error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        if let Some(n) = name {
            c.set_name(text(&n));
        }
        if ver != 0 {
            c.set_resp3(ver == 3);
        }
        let id = c.info.id as i64;
        let proto = if c.resp3 { 3 } else { 2 };
        let mut r = c.reply();
        r.map(7);
        r.bulk(b"server");
        r.bulk(b"redis");
        r.bulk(b"version");
        r.bulk(crate::REDIS_VERSION.as_bytes());
        r.bulk(b"proto");
        r.int(proto);
        r.bulk(b"id");
        r.int(id);
        r.bulk(b"mode");
        r.bulk(b"standalone");
        r.bulk(b"role");
        r.bulk(b"master");
        r.bulk(b"modules");
        r.array(0);
    })
}

fn select(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let n = c.shard.state.borrow().dbs.len();
        match super::keys_family::db_index(&a[1], n) {
            Ok(db) => {
                c.set_db(db);
                c.reply().ok()
            }
            Err(e) => c.reply().error(e),
        }
    })
}

fn reset(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        c.multi = None;
        crate::tx::multi::unwatch_all(c).await;
        crate::pubsub::unsubscribe_all(c).await;
        disable_tracking(c).await;
        c.set_db(0);
        c.set_resp3(false);
        c.set_name(String::new());
        c.reply_mode = ReplyMode::On;
        c.skip_next = false;
        // Back to the default user, authenticated only if it needs no password (Redis's
        // clientSetDefaultAuth).
        if let Some(p) = c.shard.globals.acl.perms(b"default") {
            c.set_user(p);
        }
        c.authenticated = c.shard.globals.acl.default_open();
        c.reply().simple("RESET");
    })
}

const CLIENT_HELP: &[&str] = &[
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
];

/// Filter of CLIENT KILL (new form).
#[derive(Clone, Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    /// Some(pubsub?) for TYPE normal / pubsub, Some(None) for the replication types (no
    /// client is of those).
    typ: Option<Option<bool>>,
    user: Option<String>,
    skip_id: Option<u64>,
}

fn client(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let sub = text(&a[1]).to_ascii_lowercase();
        let argc = a.len();
        let arity = |ok: bool, c: &mut Conn| -> bool {
            if !ok {
                c.reply()
                    .error(&super::arity_error(&format!("client|{}", sub)));
            }
            ok
        };
        match sub.as_str() {
            "help" if argc == 2 => super::reply_help(&mut c.reply(), "client", CLIENT_HELP),
            "id" => {
                if arity(argc == 2, c) {
                    let id = c.info.id as i64;
                    c.reply().int(id);
                }
            }
            "getname" => {
                if arity(argc == 2, c) {
                    let name = c.info.name.borrow().clone();
                    if name.is_empty() {
                        c.reply().null();
                    } else {
                        c.reply().bulk(name.as_bytes());
                    }
                }
            }
            "setname" => {
                if arity(argc == 3, c) {
                    if !valid_client_name(&a[2]) {
                        return c.reply().error(ERR_BAD_NAME);
                    }
                    c.set_name(text(&a[2]));
                    c.reply().ok();
                }
            }
            "info" => {
                if arity(argc == 2, c) {
                    let mut line = c.info.describe(unix_ms());
                    line.push('\n');
                    c.reply().verbatim("txt", line.as_bytes());
                }
            }
            "list" => client_list(c, &a).await,
            "tracking" => {
                if arity(argc >= 3, c) {
                    client_tracking(c, &a).await
                }
            }
            "caching" => {
                if arity(argc == 3, c) {
                    client_caching(c, &a[2])
                }
            }
            "getredir" => {
                if arity(argc == 2, c) {
                    let redir = c.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
                    c.reply().int(redir);
                }
            }
            "trackinginfo" => {
                if arity(argc == 2, c) {
                    client_trackinginfo(c)
                }
            }
            "kill" => {
                if arity(argc >= 3, c) {
                    client_kill(c, &a).await
                }
            }
            "unblock" => {
                if argc > 4 {
                    // Redis's table allows any count here; its handler rejects the rest.
                    c.reply()
                        .error(&super::subcommand_syntax_error(&a[1], "client"));
                } else if arity(argc == 3 || argc == 4, c) {
                    client_unblock(c, &a).await
                }
            }
            // Redis's CLIENT PAUSE takes extra arguments to its own syntax error.
            "pause" if argc > 4 => c
                .reply()
                .error(&crate::commands::subcommand_syntax_error(&a[1], "client")),
            "pause" => {
                if arity(argc == 3 || argc == 4, c) {
                    client_pause(c, &a).await
                }
            }
            "unpause" => {
                if arity(argc == 2, c) {
                    let _ = c.shard.run_on_all(|sh| sh.pause.set(None)).await;
                    c.reply().ok();
                }
            }
            // Keeps the client out of client eviction (`maxmemory-clients`).
            "no-evict" => {
                if arity(argc == 3, c) {
                    if eq_ic(&a[2], "on") || eq_ic(&a[2], "off") {
                        c.info.no_evict.set(eq_ic(&a[2], "on"));
                        c.reply().ok();
                    } else {
                        c.reply().error(ERR_SYNTAX);
                    }
                }
            }
            "reply" => {
                if arity(argc == 3, c) {
                    if eq_ic(&a[2], "on") {
                        c.reply_mode = ReplyMode::On;
                        c.skip_next = false;
                        c.reply().ok();
                    } else if eq_ic(&a[2], "off") {
                        c.reply_mode = ReplyMode::Off;
                    } else if eq_ic(&a[2], "skip") {
                        if c.reply_mode == ReplyMode::On {
                            c.skip_next = true;
                        }
                    } else {
                        c.reply().error(ERR_SYNTAX);
                    }
                }
            }
            _ => c
                .reply()
                .error(&super::unknown_subcommand_error(&a[1], "client")),
        }
    })
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix ...] [BCAST] [OPTIN] [OPTOUT]
/// [NOLOOP], checked in Redis 7.0's order. ON installs the client on every shard (see
/// `crate::pubsub::tracking`) before it answers, so the next command's reads are remembered
/// wherever their keys live.
async fn client_tracking(c: &mut Conn, a: &[Bytes]) {
    use crate::pubsub::tracking::{self, ClientTracking, Target};
    let mut redirect: Option<(u64, crate::pubsub::PushSender)> = None;
    let (mut bcast, mut optin, mut optout, mut noloop) = (false, false, false, false);
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq_ic(&a[j], "redirect") && more {
            j += 1;
            if redirect.is_some() {
                return c
                    .reply()
                    .error("ERR A client can only redirect to a single other client");
            }
            let Some(id) = super::args::parse_i64(&a[j]) else {
                return c.reply().error(super::args::ERR_NOT_INT);
            };
            match find_push_sender(c, id).await {
                Some(tx) => redirect = Some((id as u64, tx)),
                None => {
                    return c
                        .reply()
                        .error("ERR The client ID you want redirect to does not exist")
                }
            }
        } else if eq_ic(&a[j], "bcast") {
            bcast = true;
        } else if eq_ic(&a[j], "optin") {
            optin = true;
        } else if eq_ic(&a[j], "optout") {
            optout = true;
        } else if eq_ic(&a[j], "noloop") {
            noloop = true;
        } else if eq_ic(&a[j], "prefix") && more {
            j += 1;
            prefixes.push(a[j].clone());
        } else {
            return c.reply().error(ERR_SYNTAX);
        }
        j += 1;
    }
    if eq_ic(&a[2], "off") {
        disable_tracking(c).await;
        return c.reply().ok();
    }
    if !eq_ic(&a[2], "on") {
        return c.reply().error(ERR_SYNTAX);
    }
    let current = c.tracking.clone();
    let err = if !bcast && !prefixes.is_empty() {
        Some("ERR PREFIX option requires BCAST mode to be enabled".to_string())
    } else if current.as_ref().is_some_and(|t| t.bcast != bcast) {
        Some("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".to_string())
    } else if bcast && (optin || optout) {
        Some("ERR OPTIN and OPTOUT are not compatible with BCAST".to_string())
    } else if optin && optout {
        Some("ERR You can't specify both OPTIN mode and OPTOUT mode".to_string())
    } else if current
        .as_ref()
        .is_some_and(|t| (optin && t.optout) || (optout && t.optin))
    {
        Some("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".to_string())
    } else if bcast {
        prefix_collision(current.as_ref(), &prefixes)
    } else {
        None
    };
    if let Some(e) = err {
        return c.reply().error(&e);
    }
    let mut t = ClientTracking {
        redirect: redirect.as_ref().map_or(0, |r| r.0),
        bcast,
        optin,
        optout,
        noloop,
        caching: current.as_ref().is_some_and(|t| t.caching),
        prefixes: current.map(|t| t.prefixes).unwrap_or_default(),
        broken: Default::default(),
    };
    if bcast {
        if prefixes.is_empty() {
            t.prefixes.insert(Bytes::new());
        }
        t.prefixes.extend(prefixes);
    }
    let target = Target {
        own: c.push_sender(),
        redirect,
        broken: t.broken.clone(),
        bcast,
        noloop,
        resp3: c.resp3,
        prefixes: if bcast {
            t.prefixes.iter().cloned().collect()
        } else {
            Vec::new()
        },
    };
    let id = c.info.id;
    if c.shard
        .run_on_all(move |_| tracking::register(id, target.clone()))
        .await
        .is_err()
    {
        return c.reply().error(ERR_SHARD_GONE);
    }
    *c.info.tracking.borrow_mut() = Some((t.redirect, bcast, t.broken.clone()));
    c.tracking = Some(t);
    c.refresh_label();
    c.reply().ok()
}

/// Redis's check that no two BCAST prefixes of one client cover each other: the new ones
/// against those the client has, then among themselves.
fn prefix_collision(
    current: Option<&crate::pubsub::tracking::ClientTracking>,
    new: &[Bytes],
) -> Option<String> {
    use crate::pubsub::tracking::prefixes_overlap;
    let have = current.map_or(0, |t| t.prefixes.len());
    if new.len().saturating_mul(new.len() + have) > 1_000_000 {
        return prefix_collision_sorted(current, new);
    }
    for (i, p) in new.iter().enumerate() {
        if let Some(have) = current.and_then(|t| t.prefixes.iter().find(|h| prefixes_overlap(h, p)))
        {
            return Some(overlap_error(p, have, true));
        }
        if let Some(other) = new[i + 1..].iter().find(|o| prefixes_overlap(p, o)) {
            return Some(overlap_error(p, other, false));
        }
    }
    None
}

/// `prefix_collision` for very many prefixes, in O(n log n) rather than Redis's O(n²): in
/// sorted order a prefix and any string it starts sit next to each other or have only strings
/// it also starts between them, so comparing neighbours finds an overlap if there is one.
/// Which overlapping pair the error names may differ from Redis's.
fn prefix_collision_sorted(
    current: Option<&crate::pubsub::tracking::ClientTracking>,
    new: &[Bytes],
) -> Option<String> {
    use crate::pubsub::tracking::prefixes_overlap;
    // The client's prefixes never overlap one another, except the empty one that BCAST without
    // PREFIX adds, which covers everything.
    if let (Some(first), Some(t)) = (new.first(), current) {
        if t.prefixes.contains(&Bytes::new()) {
            return Some(overlap_error(first, b"", true));
        }
    }
    let mut all: Vec<(&Bytes, bool)> = new.iter().map(|p| (p, true)).collect();
    if let Some(t) = current {
        all.extend(t.prefixes.iter().map(|p| (p, false)));
    }
    all.sort_unstable();
    for w in all.windows(2) {
        let ((a, a_new), (b, b_new)) = (w[0], w[1]);
        if !(a_new || b_new) || !prefixes_overlap(a, b) {
            continue;
        }
        let (p, other, existing) = if a_new { (a, b, !b_new) } else { (b, a, true) };
        return Some(overlap_error(p, other, existing));
    }
    None
}

/// Redis's error for a BCAST prefix that overlaps one the client has (`existing`) or another
/// one of the same command.
fn overlap_error(prefix: &[u8], other: &[u8], existing: bool) -> String {
    format!(
        "ERR Prefix '{}' overlaps with {} '{}'. Prefixes for a single client must not overlap.",
        String::from_utf8_lossy(prefix),
        if existing {
            "an existing prefix"
        } else {
            "another provided prefix"
        },
        String::from_utf8_lossy(other)
    )
}

/// The push channel of client `id` on whichever shard serves it (created if it has none yet,
/// for its connection to take up), or None if there is no such client.
async fn find_push_sender(c: &Conn, id: i64) -> Option<crate::pubsub::PushSender> {
    on_client(c, u64::try_from(id).ok()?, |h| h.push_sender()).await
}

/// Turns tracking off (CLIENT TRACKING OFF, RESET, the connection's end): the client leaves
/// every shard's replica and its prefixes. What it read stays in the tables until those keys
/// change, as in Redis; nothing more is sent to it.
pub async fn disable_tracking(c: &mut Conn) {
    if c.tracking.take().is_none() {
        return;
    }
    let id = c.info.id;
    let _ = c
        .shard
        .run_on_all(move |_| crate::pubsub::tracking::unregister(id))
        .await;
    *c.info.tracking.borrow_mut() = None;
    c.refresh_label();
}

/// CLIENT CACHING YES|NO: whether the next command's (or transaction's) reads are remembered,
/// against the OPTIN or OPTOUT default.
fn client_caching(c: &mut Conn, arg: &Bytes) {
    let Some(t) = c.tracking.as_mut() else {
        return c.reply().error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if eq_ic(arg, "yes") {
        if !t.optin {
            return c.reply().error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if eq_ic(arg, "no") {
        if !t.optout {
            return c.reply().error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return c.reply().error(ERR_SYNTAX);
    }
    t.caching = true;
    c.refresh_label();
    c.reply().ok()
}

/// CLIENT TRACKINGINFO: flags (a set), redirect (-1 off, 0 none) and prefixes.
fn client_trackinginfo(c: &mut Conn) {
    let t = c.tracking.clone();
    let mut r = c.reply();
    r.map(3);
    r.bulk(b"flags");
    match &t {
        None => {
            r.set(1);
            r.bulk(b"off");
        }
        Some(t) => {
            let flags = t.flags();
            r.set(flags.len());
            for f in flags {
                r.bulk(f.as_bytes());
            }
        }
    }
    r.bulk(b"redirect");
    r.int(t.as_ref().map_or(-1, |t| t.redirect as i64));
    r.bulk(b"prefixes");
    let prefixes = t.map(|t| t.prefixes).unwrap_or_default();
    r.array(prefixes.len());
    for p in &prefixes {
        r.bulk(p);
    }
}

/// CLIENT LIST [TYPE type | ID id [id ...]], parsed like Redis 7.0: TYPE only as the one
/// filter, ID with every id a number (one that matches no client, zero or negative included,
/// just lists nothing); with IDs the lines come in the order asked, repeats included.
async fn client_list(c: &mut Conn, a: &[Bytes]) {
    let mut ids: Option<Vec<u64>> = None;
    // Some(pubsub?) for TYPE normal / pubsub; no clients are of the replication types.
    let mut only_type: Option<Option<bool>> = None;
    if a.len() == 4 && eq_ic(&a[2], "type") {
        let t = text(&a[3]).to_ascii_lowercase();
        match t.as_str() {
            "normal" => only_type = Some(Some(false)),
            "pubsub" => only_type = Some(Some(true)),
            "master" | "replica" | "slave" => only_type = Some(None),
            _ => return c.reply().error(&format!("ERR Unknown client type '{}'", t)),
        }
    } else if a.len() >= 4 && eq_ic(&a[2], "id") {
        let mut v = Vec::with_capacity(a.len() - 3);
        for arg in &a[3..] {
            match int_arg(arg) {
                // No client has an id below 1.
                Ok(id) => v.push(u64::try_from(id).unwrap_or(0)),
                Err(_) => return c.reply().error("ERR Invalid client ID"),
            }
        }
        ids = Some(v);
    } else if a.len() != 2 {
        return c.reply().error(ERR_SYNTAX);
    }
    let me = c.info.id;
    let lines = c
        .shard
        .run_on_all(move |sh| {
            let now = unix_ms();
            sh.clients
                .borrow()
                .clients
                .values()
                // A killed client is gone for everyone at once, like in Redis, even if its
                // task has not finished closing yet.
                .filter(|cl| !cl.killed.get() || cl.id == me)
                .map(|cl| (cl.id, cl.is_pubsub(), cl.describe(now)))
                .collect::<Vec<_>>()
        })
        .await;
    let Ok(lines) = lines else {
        return c.reply().error(ERR_SHARD_GONE);
    };
    let mut all: Vec<(u64, bool, String)> = lines.into_iter().flatten().collect();
    let mut out = String::new();
    match ids {
        Some(ids) => {
            let by_id: std::collections::HashMap<u64, String> =
                all.into_iter().map(|(id, _, line)| (id, line)).collect();
            for id in ids {
                if let Some(line) = by_id.get(&id) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        None => {
            all.sort_by_key(|(id, _, _)| *id);
            for (_, pubsub, line) in all {
                if only_type.is_some_and(|t| t != Some(pubsub)) {
                    continue;
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    c.reply().verbatim("txt", out.as_bytes());
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends the wait of a client blocked in a blocking command,
/// on whichever shard it is connected to.
async fn client_unblock(c: &mut Conn, a: &[Bytes]) {
    let id = match int_arg(&a[2]) {
        Ok(id) => id,
        Err(e) => return c.reply().error(e),
    };
    let how = match a.get(3) {
        None => Unblock::Timeout,
        Some(r) if eq_ic(r, "timeout") => Unblock::Timeout,
        Some(r) if eq_ic(r, "error") => Unblock::Error,
        Some(_) => {
            return c
                .reply()
                .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        }
    };
    let Ok(id) = u64::try_from(id) else {
        return c.reply().int(0);
    };
    let done = on_client(c, id, move |cl| cl.unblock(how))
        .await
        .unwrap_or(false);
    c.reply().int(done as i64);
}

/// Runs `f` on the handle of client `id`, on whichever shard serves it; None if there is no
/// such client.
async fn on_client<R, F>(c: &Conn, id: u64, f: F) -> Option<R>
where
    R: Send + 'static,
    F: Fn(&crate::server::client::ClientHandle) -> R + Send + Clone + 'static,
{
    let found = c
        .shard
        .run_on_all(move |sh| sh.clients.borrow().clients.get(&id).map(|h| f(h)))
        .await
        .ok()?;
    found.into_iter().flatten().next()
}

async fn client_kill(c: &mut Conn, a: &[Bytes]) {
    let old_form = a.len() == 3;
    let mut f = KillFilter::default();
    if old_form {
        f.addr = Some(text(&a[2]));
    } else {
        let mut skipme = true;
        let mut j = 2;
        while j < a.len() {
            if j + 1 >= a.len() {
                return c.reply().error(ERR_SYNTAX);
            }
            let v = text(&a[j + 1]);
            if eq_ic(&a[j], "id") {
                match int_arg(&a[j + 1]) {
                    Ok(id) if id > 0 => f.id = Some(id as u64),
                    _ => return c.reply().error("ERR client-id should be greater than 0"),
                }
            } else if eq_ic(&a[j], "type") {
                match v.to_ascii_lowercase().as_str() {
                    "normal" => f.typ = Some(Some(false)),
                    "pubsub" => f.typ = Some(Some(true)),
                    "master" | "replica" | "slave" => f.typ = Some(None),
                    _ => return c.reply().error(&format!("ERR Unknown client type '{}'", v)),
                }
            } else if eq_ic(&a[j], "addr") {
                f.addr = Some(v);
            } else if eq_ic(&a[j], "laddr") {
                f.laddr = Some(v);
            } else if eq_ic(&a[j], "user") {
                if c.shard.globals.acl.perms(&a[j + 1]).is_none() {
                    return c.reply().error(&format!("ERR No such user '{}'", v));
                }
                f.user = Some(v);
            } else if eq_ic(&a[j], "skipme") {
                if eq_ic(&a[j + 1], "yes") {
                    skipme = true;
                } else if eq_ic(&a[j + 1], "no") {
                    skipme = false;
                } else {
                    return c.reply().error(ERR_SYNTAX);
                }
            } else {
                return c.reply().error(ERR_SYNTAX);
            }
            j += 2;
        }
        if skipme {
            f.skip_id = Some(c.info.id);
        }
    }
    let me = c.info.id;
    let filter = f.clone();
    let killed = c
        .shard
        .run_on_all(move |sh| {
            let f = &filter;
            let reg = sh.clients.borrow();
            let mut n = 0;
            for cl in reg.clients.values() {
                if f.skip_id == Some(cl.id)
                    || f.id.is_some_and(|id| id != cl.id)
                    || f.addr.as_ref().is_some_and(|x| *x != cl.addr)
                    || f.laddr.as_ref().is_some_and(|x| *x != cl.laddr)
                    || f.user.as_ref().is_some_and(|u| **u != **cl.user.borrow())
                    || f.typ.is_some_and(|t| t != Some(cl.is_pubsub()))
                {
                    continue;
                }
                if cl.id != me {
                    cl.kill();
                } else {
                    cl.killed.set(true);
                }
                n += 1;
            }
            n
        })
        .await;
    let Ok(killed) = killed else {
        return c.reply().error(ERR_SHARD_GONE);
    };
    let total: i64 = killed.iter().sum();
    if c.info.killed.get() {
        c.close_after_reply = true;
    }
    if old_form {
        if total == 0 {
            c.reply().error("ERR No such client");
        } else {
            c.reply().ok();
        }
    } else {
        c.reply().int(total);
    }
}

async fn client_pause(c: &mut Conn, a: &[Bytes]) {
    let ms = match super::args::parse_i64(&a[2]) {
        Some(v) if v < 0 => return c.reply().error("ERR timeout is negative"),
        Some(v) => v as u64,
        None => {
            return c
                .reply()
                .error("ERR timeout is not an integer or out of range")
        }
    };
    let write_only = if a.len() == 4 {
        if eq_ic(&a[3], "write") {
            true
        } else if eq_ic(&a[3], "all") {
            false
        } else {
            return c
                .reply()
                .error("ERR CLIENT PAUSE mode must be WRITE or ALL");
        }
    } else {
        false
    };
    // Redis adds the time in a signed 64-bit number: past its range the end lies in the
    // past, so such a pause ends at once (and leaves a running one alone).
    let Some(until) = unix_ms().checked_add(ms).filter(|&u| u <= i64::MAX as u64) else {
        return c.reply().ok();
    };
    let _ = c
        .shard
        .run_on_all(move |sh| {
            // A new pause never shortens a longer one, as in Redis.
            let cur = sh.pause.get();
            let keep = matches!(cur, Some((u, w)) if u > until && (!w || write_only));
            if !keep {
                sh.pause.set(Some((until, write_only)));
            }
        })
        .await;
    c.reply().ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::tracking::ClientTracking;

    /// The sorted check for many prefixes finds an overlap exactly when Redis's pairwise check
    /// does, the client's empty prefix included.
    #[test]
    fn sorted_prefix_check_agrees_with_the_pairwise_one() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let word = |next: &mut dyn FnMut(u64) -> u64| {
            let len = next(4);
            Bytes::from(
                (0..len)
                    .map(|_| b"ab"[next(2) as usize])
                    .collect::<Vec<u8>>(),
            )
        };
        for _ in 0..5000 {
            let mut current = ClientTracking::default();
            // Existing prefixes are valid: pairwise apart, plus maybe the empty one.
            for _ in 0..next(4) {
                let w = word(&mut next);
                if !w.is_empty() && current.prefixes.iter().all(|p| !tracking_overlap(p, &w)) {
                    current.prefixes.insert(w);
                }
            }
            if next(4) == 0 {
                current.prefixes.insert(Bytes::new());
            }
            let new: Vec<Bytes> = (0..next(5)).map(|_| word(&mut next)).collect();
            for cur in [None, Some(&current)] {
                assert_eq!(
                    prefix_collision(cur, &new).is_some(),
                    prefix_collision_sorted(cur, &new).is_some(),
                    "current {:?}, new {:?}",
                    cur.map(|c| &c.prefixes),
                    new
                );
            }
        }
    }

    fn tracking_overlap(a: &[u8], b: &[u8]) -> bool {
        crate::pubsub::tracking::prefixes_overlap(a, b)
    }
}

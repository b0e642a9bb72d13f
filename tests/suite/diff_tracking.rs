//! Differential tests of client-side caching (CLIENT TRACKING, CACHING, GETREDIR,
//! TRACKINGINFO) against redis-server: the same steps on every server, then everything each
//! connection received, invalidation pushes included, compared byte for byte.
//!
//! After every step each connection sends a marker PING and its bytes are read up to the
//! marker's reply: a command's own reply, the invalidations that followed it and those that
//! other connections' commands caused all land in that connection's transcript, in the order
//! received. (A shard sends an invalidation before the reply of the command that caused it, and
//! a connection writes the invalidations waiting for it before it answers the PING, so the
//! comparison does not depend on timing.) Client ids differ between servers, so each
//! connection's id is written as `<idN>` in the transcripts; `$ID<n>` in a step stands for
//! connection n's id.
//!
//! Keys that one multi-key write changes on several shards at once are hash-tagged: with 4
//! shards their owners send their invalidations independently, so only a command's own client
//! gets them in its key order (see the README's compatibility notes).

use crate::common::*;

use std::time::Duration;

/// A marker reply: PING's answer in RESP2/RESP3, and in RESP2 pub/sub mode.
fn is_marker(frame: &[u8]) -> bool {
    frame == b"+PONG\r\n" || frame == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
}

fn read_to_marker(c: &mut RawConn) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let f = c.read_reply();
        if is_marker(&f) {
            return out;
        }
        out.extend_from_slice(&f);
    }
}

/// The client id of every connection of every target (`ids[target][conn]`).
fn client_ids(d: &mut Diff) -> Vec<Vec<i64>> {
    d.targets
        .iter_mut()
        .map(|t| {
            t.conns
                .iter_mut()
                .map(|c| {
                    let r = c.cmd_str("CLIENT ID");
                    resp_parse(&r).as_int().expect("CLIENT ID")
                })
                .collect()
        })
        .collect()
}

/// Runs `steps` on every target; after each, compares what every connection received. A step
/// is `N command` (connection N sends it; `|` separates the commands of one pipeline),
/// `sleep MS`, or `N close` (connection N goes away).
fn run(d: &mut Diff, steps: &[&str]) -> Vec<Vec<i64>> {
    let ids = client_ids(d);
    let nconns = ids[0].len();
    let mut closed = vec![false; nconns];
    // Connections inside MULTI: their marker would be queued, so their replies are read one
    // per command instead.
    let mut in_multi = vec![false; nconns];
    for step in steps {
        if let Some(ms) = step.strip_prefix("sleep ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let (who, line) = step.split_once(' ').expect("step: N command");
        let who: usize = who.parse().expect("step: connection number");
        if line == "close" {
            for t in &mut d.targets {
                t.conns[who].shutdown_write();
                let _ = t.conns[who].wait_closed(Duration::from_secs(5));
            }
            closed[who] = true;
            // The server notices the close on its own time.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let queued = in_multi[who] || line.eq_ignore_ascii_case("multi");
        if line.eq_ignore_ascii_case("multi") {
            in_multi[who] = true;
        } else if line.eq_ignore_ascii_case("exec") || line.eq_ignore_ascii_case("discard") {
            in_multi[who] = false;
        }
        let queued = queued && in_multi[who];
        let mut ti = 0;
        let closed_now = closed.clone();
        d.each(step, |t, _| {
            let my_ids = &ids[ti];
            ti += 1;
            let mut text = line.to_string();
            for (i, id) in my_ids.iter().enumerate().rev() {
                text = text.replace(&format!("$ID{i}"), &id.to_string());
            }
            // The sender's marker goes in the same write as its commands: broadcasts its own
            // commands caused come after it (Redis sends them when it is done with what it
            // read), and the next step's transcript shows them.
            let mut payload = Vec::new();
            let cmds: Vec<&str> = text.split('|').collect();
            for cmd in &cmds {
                let args = split_quoted(cmd.trim());
                let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                payload.extend(encode(&refs));
            }
            if !queued {
                payload.extend(encode(&[b"PING"]));
            }
            t.conns[who].send(&payload);
            // The sender's replies first: only then are the other connections' invalidations
            // certain to be on their way.
            let mut got = vec![Vec::new(); t.conns.len()];
            let order = std::iter::once(who).chain((0..t.conns.len()).filter(|&i| i != who));
            for i in order {
                if closed_now[i] {
                    continue;
                }
                let c = &mut t.conns[i];
                if i == who && queued {
                    for _ in &cmds {
                        got[i].extend(c.read_reply());
                    }
                    continue;
                }
                if i != who {
                    c.send(&encode(&[b"PING"]));
                }
                got[i] = read_to_marker(c);
            }
            let mut transcript = Vec::new();
            for (i, g) in got.into_iter().enumerate() {
                if closed_now[i] {
                    continue;
                }
                transcript.extend(format!("[{i}] ").into_bytes());
                transcript.extend(g);
                transcript.push(b'\n');
            }
            let mut s = String::from_utf8_lossy(&transcript).into_owned();
            for (i, id) in my_ids.iter().enumerate() {
                for before in ["id\r\n", "redirect\r\n", "tracking-redir-broken\r\n"] {
                    s = s.replace(
                        &format!("{before}:{id}\r\n"),
                        &format!("{before}:<id{i}>\r\n"),
                    );
                }
                if line.contains("GETREDIR") {
                    s = s.replace(&format!("] :{id}\r\n"), &format!("] :<id{i}>\r\n"));
                }
            }
            s.into_bytes()
        });
    }
    ids
}

/// Splits a command line at spaces, keeping a double-quoted argument whole.
fn split_quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn diff(test: &str, conns: usize) -> Option<Diff> {
    let mut d = Diff::new(test)?;
    for _ in 1..conns {
        d.open_conn();
    }
    Some(d)
}

/// CLIENT INFO's `flags=` and `redir=` fields of connection `conn` on every target, compared
/// (the redirect written as the connection number it names).
fn client_flags(d: &mut Diff, ids: &[Vec<i64>], conn: usize, what: &str) {
    let mut ti = 0;
    d.each(what, |t, _| {
        let my_ids = &ids[ti];
        ti += 1;
        let raw = t.conns[conn].cmd_str("CLIENT INFO");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut out = String::new();
        for field in text.split_whitespace() {
            if let Some(f) = field.strip_prefix("flags=") {
                out.push_str(&format!("flags={f} "));
            }
            if let Some(r) = field.strip_prefix("redir=") {
                let named = my_ids
                    .iter()
                    .position(|id| id.to_string() == r)
                    .map_or(r.to_string(), |i| format!("<id{i}>"));
                out.push_str(&format!("redir={named}"));
            }
        }
        out.into_bytes()
    });
}

/// INFO's tracking fields on every target, compared.
fn tracking_info(d: &mut Diff, what: &str) {
    d.use_conn(0);
    d.each(what, |t, _| {
        let c = &mut t.conns[0];
        let mut out = Vec::new();
        for section in ["clients", "stats"] {
            let raw = c.cmd_str(&format!("INFO {section}"));
            let text = String::from_utf8_lossy(&raw).into_owned();
            for line in text.lines().filter(|l| l.starts_with("tracking_")) {
                out.extend(line.as_bytes());
                out.push(b'\n');
            }
        }
        out
    });
}

#[test]
fn tracking_default_mode_like_redis() {
    let Some(mut d) = diff("tracking_default_mode_like_redis", 2) else {
        return;
    };
    run(
        &mut d,
        &[
            "0 HELLO 3",
            "0 CLIENT TRACKING on",
            "0 CLIENT TRACKINGINFO",
            "0 CLIENT GETREDIR",
            // Reads are remembered whether the key exists or not; one invalidation per read.
            "0 GET k1",
            "0 MGET {m}a {m}b",
            "0 SET k1 x",
            "1 SET {m}a y",
            "1 SET {m}a z",
            "0 GET {m}a",
            "1 DEL {m}a {m}b {m}c",
            "1 DEL {m}a",
            // Values changed in place, and writes that change nothing.
            "0 HGETALL h",
            "1 HSET h f v",
            "1 HSET h f v2",
            "0 HGET h f",
            "1 HSET h f v2",
            "0 SMEMBERS s",
            "1 SADD s a",
            "0 SCARD s",
            "1 SADD s a",
            "1 SREM s nope",
            "1 SADD s b",
            "0 GET cnt",
            "1 INCR cnt",
            "0 STRLEN cnt",
            "1 INCRBYFLOAT cnt 1.5",
            "0 GET cnt",
            "1 SET cnt 1 NX",
            "1 SET cnt 1 XX",
            "0 LRANGE {l}a 0 -1",
            "0 LLEN {l}b",
            "1 RPUSH {l}a 1 2",
            "0 LINDEX {l}a 0",
            "1 LMOVE {l}a {l}b LEFT RIGHT",
            // A store invalidates its destination, not its sources.
            "0 SMEMBERS {s}src",
            "0 SMEMBERS {s}dst",
            "1 SADD {s}src m",
            "0 SMEMBERS {s}src",
            "1 SINTERSTORE {s}dst {s}src",
            "0 ZRANGE z 0 -1",
            "1 ZADD z 1 a",
            "0 ZSCORE z a",
            "1 ZADD z 1 a",
            "1 ZADD z 2 a",
            // Deadlines, renames, moves.
            "0 GET t",
            "1 SET t v",
            "0 TTL t",
            "1 EXPIRE t 100",
            "0 TTL t",
            "1 PERSIST t",
            "0 EXISTS t",
            "1 RENAME t {t}x",
            "0 TYPE {t}x",
            "1 MOVE {t}x 1",
            "0 GET {t}x",
            "1 COPY k1 {t}x",
            // A wrong-type read is remembered too; a failed write changes nothing.
            "0 LLEN k1",
            "1 LPUSH k1 a",
            "1 APPEND k1 b",
            // Tracking ignores the database a key is in.
            "0 SELECT 2",
            "0 GET dbk",
            "0 SELECT 0",
            "1 SET dbk 1",
            "1 FLUSHDB",
            "0 GET k1",
            "1 FLUSHALL",
            "1 DEBUG RELOAD",
            "0 CLIENT TRACKING off",
            "0 CLIENT TRACKINGINFO",
            "0 GET k1",
            "1 SET k1 q",
        ],
    );
}

#[test]
fn tracking_expiry_and_scripts_like_redis() {
    let Some(mut d) = diff("tracking_expiry_and_scripts_like_redis", 2) else {
        return;
    };
    run(
        &mut d,
        &[
            "0 HELLO 3",
            "0 CLIENT TRACKING on",
            // Active expiry invalidates a tracked key.
            "0 GET e",
            "1 SET e 1 PX 100",
            "0 GET e",
            "sleep 400",
            "0 GET e",
            // Lazy expiry by the tracking client's own read: the invalidation follows the
            // reply, and the key is remembered again.
            "1 DEBUG SET-ACTIVE-EXPIRE 0",
            "1 SET e2 1 PX 50",
            "0 GET e2",
            "sleep 100",
            "0 GET e2",
            "1 SET e2 2",
            "1 DEBUG SET-ACTIVE-EXPIRE 1",
            // Scripts: the reads of the commands a script calls are remembered.
            "0 EVAL \"return redis.call('get', KEYS[1])\" 1 sk",
            "1 SET sk 1",
            "0 EVAL_RO \"return redis.call('get', KEYS[1])\" 1 sk2",
            "1 SET sk2 1",
            "1 EVAL \"redis.call('set', KEYS[1], 'x') return 1\" 1 sk2",
            "0 GET sk3",
            "1 EVAL \"return redis.call('incr', KEYS[1])\" 1 sk3",
            // MULTI/EXEC: reads in the block are remembered; a read and a write of the same
            // key in one block invalidates it after EXEC's reply.
            "0 MULTI",
            "0 GET {x}1",
            "0 SET {x}2 v",
            "0 GET {x}2",
            "0 EXEC",
            "1 MSET {x}1 a {x}2 b",
            "0 MULTI",
            "0 GET mk",
            "0 SET mk 1",
            "0 EXEC",
        ],
    );
}

#[test]
fn tracking_optin_optout_noloop_like_redis() {
    let Some(mut d) = diff("tracking_optin_optout_noloop_like_redis", 2) else {
        return;
    };
    run(
        &mut d,
        &[
            "0 HELLO 3",
            "0 CLIENT TRACKING on OPTIN",
            "0 GET o1",
            "0 CLIENT CACHING yes",
            "0 CLIENT TRACKINGINFO",
            "0 GET o2",
            "0 CLIENT TRACKINGINFO",
            "0 GET o3",
            "1 MSET o1 1",
            "1 MSET o2 1",
            "1 MSET o3 1",
            // CACHING covers the next command, CLIENT commands aside, or a whole transaction.
            "0 CLIENT CACHING yes|CLIENT GETNAME|GET o4|GET o5",
            "1 SET o4 1",
            "1 SET o5 1",
            "0 CLIENT CACHING yes",
            "0 MULTI",
            "0 GET o6",
            "0 GET o7",
            "0 EXEC",
            "0 GET o8",
            "1 SET o6 1",
            "1 SET o7 1",
            "1 SET o8 1",
            "0 CLIENT CACHING no",
            "0 CLIENT TRACKING on OPTOUT",
            "0 CLIENT TRACKING off",
            "0 CLIENT TRACKING on OPTOUT",
            "0 GET p1",
            "0 CLIENT CACHING no",
            "0 GET p2",
            "0 GET p3",
            "1 SET p1 1",
            "1 SET p2 1",
            "1 SET p3 1",
            "0 CLIENT CACHING yes",
            "0 CLIENT TRACKINGINFO",
            // NOLOOP: no invalidation for the client's own writes.
            "0 CLIENT TRACKING off",
            "0 CLIENT TRACKING on NOLOOP",
            "0 CLIENT TRACKINGINFO",
            "0 GET n1",
            "0 GET n2",
            "0 SET n1 1",
            "1 SET n2 1",
            "1 SET n1 2",
            // RESET turns tracking off.
            "0 RESET",
            "0 CLIENT TRACKINGINFO",
            "0 CLIENT GETREDIR",
        ],
    );
    tracking_info(&mut d, "INFO tracking fields");
}

#[test]
fn tracking_bcast_like_redis() {
    let Some(mut d) = diff("tracking_bcast_like_redis", 2) else {
        return;
    };
    let ids = run(
        &mut d,
        &[
            "0 HELLO 3",
            "0 CLIENT TRACKING on BCAST PREFIX u: PREFIX v:",
            "0 CLIENT TRACKINGINFO",
            "1 SET u:1 a",
            "1 SET w 1",
            "1 MSET {v:}1 a {v:}2 b",
            // The client's own writes: after the whole pipeline's replies, one message per
            // prefix.
            "0 SET u:5 1",
            "0 SET u:6 1|GET zz|SET v:1 x|SET u:2 y",
            "1 DEL u:1 u:9",
            "0 CLIENT TRACKING on BCAST PREFIX u",
            "0 CLIENT TRACKING on BCAST PREFIX x PREFIX xy",
            "0 CLIENT TRACKING on BCAST PREFIX z",
            "0 CLIENT TRACKINGINFO",
            "1 SET zed 1",
            "0 CLIENT TRACKING on",
            "0 CLIENT TRACKING on BCAST OPTIN",
            "0 CLIENT TRACKING off",
            "0 CLIENT TRACKINGINFO",
            "1 SET u:1 b",
            // BCAST without a prefix covers every key; NOLOOP skips the client's own.
            "0 CLIENT TRACKING on BCAST NOLOOP",
            "0 CLIENT TRACKINGINFO",
            "1 SET anything 1",
            "0 SET mine 1",
            "1 SET e 1 PX 50",
            "sleep 400",
            "1 FLUSHALL",
        ],
    );
    client_flags(&mut d, &ids, 0, "CLIENT INFO in BCAST mode");
    client_flags(&mut d, &ids, 1, "CLIENT INFO without tracking");
    tracking_info(&mut d, "INFO tracking fields");
}

#[test]
fn tracking_redirect_like_redis() {
    let Some(mut d) = diff("tracking_redirect_like_redis", 4) else {
        return;
    };
    let ids = run(
        &mut d,
        &[
            // 2: a RESP2 subscriber to the invalidation channel; 0 redirects to it.
            "2 SUBSCRIBE __redis__:invalidate",
            "0 CLIENT TRACKING on REDIRECT $ID2",
            "0 CLIENT TRACKINGINFO",
            "0 CLIENT GETREDIR",
            "0 GET r1",
            "1 SET r1 1",
            "0 GET r1",
            "0 SET r1 2",
            "0 GET r2",
            "1 FLUSHALL",
            // 3: a RESP3 client that never subscribed still gets redirected pushes.
            "3 HELLO 3",
            "0 CLIENT TRACKING on REDIRECT $ID3",
            "0 GET r3",
            "1 SET r3 1",
            "1 FLUSHDB",
            // The target goes away: the redirect is broken.
            "0 CLIENT TRACKING on REDIRECT $ID2",
            "0 GET r4",
            "2 close",
            "1 SET r4 1",
            "0 CLIENT TRACKINGINFO",
            // RESP3 tracking client with a broken redirect is told so.
            "3 CLIENT TRACKING on REDIRECT $ID1",
            "3 GET r5",
            "1 close",
            "0 SET r5 1",
            "3 CLIENT TRACKINGINFO",
        ],
    );
    client_flags(
        &mut d,
        &ids,
        0,
        "CLIENT INFO of a RESP2 client with a broken redirect",
    );
    client_flags(
        &mut d,
        &ids,
        3,
        "CLIENT INFO of a RESP3 client with a broken redirect",
    );
}

#[test]
fn tracking_errors_like_redis() {
    let Some(mut d) = Diff::new("tracking_errors_like_redis") else {
        return;
    };
    d.script(&[
        "CLIENT TRACKING",
        "CLIENT TRACKING maybe",
        "CLIENT TRACKING on foo",
        "CLIENT TRACKING on REDIRECT",
        "CLIENT TRACKING on REDIRECT x",
        "CLIENT TRACKING on REDIRECT 999999",
        "CLIENT TRACKING on REDIRECT -1",
        "CLIENT TRACKING on PREFIX a",
        "CLIENT TRACKING on PREFIX",
        "CLIENT TRACKING on OPTIN OPTOUT",
        "CLIENT TRACKING on BCAST OPTIN",
        "CLIENT TRACKING on BCAST OPTOUT",
        "CLIENT TRACKING on BCAST PREFIX a PREFIX ab",
        "CLIENT TRACKING on BCAST PREFIX ab PREFIX a",
        "CLIENT TRACKING off BOGUS",
        "CLIENT TRACKING off",
        "CLIENT CACHING",
        "CLIENT CACHING yes",
        "CLIENT CACHING maybe",
        "CLIENT GETREDIR",
        "CLIENT GETREDIR x",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKINGINFO x",
        "CLIENT TRACKING on",
        "CLIENT CACHING yes",
        "CLIENT CACHING no",
        "CLIENT CACHING maybe",
        "CLIENT TRACKING on OPTIN",
        "CLIENT TRACKING on BCAST",
        "CLIENT TRACKING off",
        "CLIENT TRACKING on OPTIN",
        "CLIENT CACHING no",
        "CLIENT TRACKING on OPTOUT",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKING on OPTIN NOLOOP",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKING off",
        "CLIENT TRACKING on BCAST PREFIX a",
        "CLIENT TRACKING on BCAST PREFIX abc",
        "CLIENT TRACKING on BCAST PREFIX b",
        "CLIENT TRACKING on BCAST",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKING off",
        "CLIENT TRACKINGINFO",
        "CLIENT GETREDIR",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.call('client', 'tracking', 'on')",
        b"0",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.call('client', 'trackinginfo')",
        b"0",
    ]);
    d.script(&[
        "MULTI",
        "CLIENT TRACKING on",
        "CLIENT GETREDIR",
        "EXEC",
        "CLIENT TRACKING off",
    ]);
    tracking_info(&mut d, "INFO tracking fields");
}

/// Reads of keys on several shards: a split MGET, a copied multi-key read, MULTI/EXEC and a
/// script over two shards (every pair of keys here lives on two shards of four). Each read key
/// is remembered at its owner and invalidated once by the next write.
#[test]
fn tracking_across_shards_like_redis() {
    let Some(mut d) = diff("tracking_across_shards_like_redis", 2) else {
        return;
    };
    run(
        &mut d,
        &[
            "0 HELLO 3",
            "0 CLIENT TRACKING on",
            "0 MGET ma mb",
            "1 SET ma 1",
            "1 SET mb 1",
            "0 SINTER sa sb",
            "1 SADD sa x",
            "1 SADD sb y",
            "0 MULTI",
            "0 GET xa",
            "0 GET xb",
            "0 EXEC",
            "1 SET xa 1",
            "1 SET xb 1",
            "0 EVAL \"return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}\" 2 ya yb",
            "1 SET ya 1",
            "1 SET yb 1",
            // A read and a write in one unit over two shards: the write invalidates the read.
            "0 MULTI",
            "0 GET k1",
            "0 SET k2 v",
            "0 SET k1 v",
            "0 EXEC",
            "1 SET k2 w",
            // The client's own write over two shards: its invalidations come in key order.
            // (Another client would get them in the order the two shards send them.)
            "0 MGET xa xb",
            "0 DEL xa xb",
            "1 SET xa 2",
            // NOLOOP covers the client's own writes through a unit over two shards.
            "0 CLIENT TRACKING on NOLOOP",
            "0 MGET xa xb",
            "0 MULTI",
            "0 SET xa 3",
            "0 SET xb 3",
            "0 EXEC",
            "1 MSET xa 4 xb 4",
            "0 CLIENT TRACKING off",
            "0 CLIENT TRACKING on BCAST NOLOOP",
            "0 MULTI",
            "0 SET ya 3",
            "0 SET yb 3",
            "0 EXEC",
            "1 SET ya 4",
        ],
    );
    tracking_info(&mut d, "INFO tracking fields");
}

/// Connections to `port` on the shard a `DEBUG SLEEP` blocks and on the other one, told apart by
/// which of them answer a PING while that shard sleeps: (the sleeper, near, far). Under heavy
/// load a far connection may answer late and count as near, which only weakens the test, never
/// fails it. With 16 candidates spread by SO_REUSEPORT both sides are all but certain to be
/// filled; if not, the test says so and stops.
fn split_by_shard(port: u16) -> Option<(RawConn, Vec<RawConn>, Vec<RawConn>)> {
    let mut sleeper = RawConn::connect(port);
    let mut cands: Vec<RawConn> = (0..16).map(|_| RawConn::connect(port)).collect();
    for c in &mut cands {
        assert_eq!(c.cmd_str("PING"), b"+PONG\r\n");
    }
    let answered = during_pause(&mut sleeper, &mut cands, |_| b"PING".to_vec());
    let (mut near, mut far) = (Vec::new(), Vec::new());
    for (c, (is_far, reply)) in cands.into_iter().zip(answered) {
        assert_eq!(reply, b"+PONG\r\n");
        if is_far {
            far.push(c);
        } else {
            near.push(c);
        }
    }
    if near.is_empty() || far.len() < 2 {
        eprintln!("the 16 connections did not spread over both shards; skipping");
        return None;
    }
    Some((sleeper, near, far))
}

/// Sends `cmd(i)` (words separated by single spaces) on each of `conns` while the sleeper's shard
/// is held in `DEBUG SLEEP`, and returns, per connection, whether its reply came during the
/// pause, with the reply.
fn during_pause(
    sleeper: &mut RawConn,
    conns: &mut [RawConn],
    cmd: impl Fn(usize) -> Vec<u8>,
) -> Vec<(bool, Vec<u8>)> {
    sleeper.send(&encode(&[b"DEBUG", b"SLEEP", b"0.4"]));
    std::thread::sleep(Duration::from_millis(100));
    for (i, c) in conns.iter_mut().enumerate() {
        let line = cmd(i);
        let args: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        c.send(&encode(&args));
    }
    std::thread::sleep(Duration::from_millis(100));
    let early: Vec<Option<Vec<u8>>> = conns
        .iter_mut()
        .map(|c| c.try_read_reply_timeout(Duration::from_millis(1)).ok())
        .collect();
    assert_eq!(sleeper.read_reply(), b"+OK\r\n");
    conns
        .iter_mut()
        .zip(early)
        .map(|(c, e)| match e {
            Some(r) => (true, r),
            None => (false, c.read_reply()),
        })
        .collect()
}

/// An invalidation sent to a redirect target before that client's next command arrived goes out
/// before the command's reply, as in Redis (it writes the invalidation into the target's output
/// at once), also when the target's shard only gets to both after a pause. The target's shard
/// is held in `DEBUG SLEEP` while another shard's write sends the invalidation and the target's
/// PING arrives; when it wakes, both are waiting. (Tessera alone: the pause needs two shards.)
#[test]
fn redirected_invalidation_precedes_the_next_reply_after_a_pause() {
    let srv = start_tessera(2, &[]);
    let Some((mut sleeper, mut near, mut far)) = split_by_shard(srv.port) else {
        return;
    };
    // A key of the far shard: a far connection's GET of it answers while the near shard
    // sleeps. Each round tries one key per far connection.
    let mut key = None;
    for round in 0..8 {
        let name = |i: usize| format!("inv:{round}:{i}");
        let answered = during_pause(&mut sleeper, &mut far, |i| {
            format!("GET {}", name(i)).into_bytes()
        });
        if let Some(i) = answered.iter().position(|(early, _)| *early) {
            key = Some(name(i));
            break;
        }
    }
    let key = key.expect("no key of the far shard found in 8 rounds");
    let mut target = near.remove(0);
    let mut writer = far.pop().unwrap();
    let mut tracker = far.pop().unwrap();

    assert_eq!(target.cmd_str("HELLO 3")[0], b'%');
    let tid = resp_parse(&target.cmd_str("CLIENT ID")).as_int().unwrap();
    assert_eq!(
        tracker.cmd_str(&format!("CLIENT TRACKING on REDIRECT {tid}")),
        b"+OK\r\n"
    );
    assert_eq!(tracker.cmd(&[b"GET", key.as_bytes()]), b"$-1\r\n");

    sleeper.send(&encode(&[b"DEBUG", b"SLEEP", b"0.4"]));
    std::thread::sleep(Duration::from_millis(100));
    // The write runs on the far shard and sends the invalidation before its reply.
    assert_eq!(writer.cmd(&[b"SET", key.as_bytes(), b"1"]), b"+OK\r\n");
    target.send(&encode(&[b"PING"]));
    assert_eq!(sleeper.read_reply(), b"+OK\r\n");
    let first = target.read_reply();
    let want = format!(
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n",
        key.len()
    );
    assert_eq!(
        String::from_utf8_lossy(&first),
        want,
        "the invalidation must come before PING's reply"
    );
    assert_eq!(target.read_reply(), b"+PONG\r\n");
}

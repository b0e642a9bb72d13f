//! Differential tests of ACL users and permissions against redis-server 7.0 (Tessera with 1 and
//! 4 shards): ACL SETUSER / GETUSER / LIST over many rule combinations and every error, AUTH and
//! HELLO on separate connections, NOPERM for commands, subcommands, keys (read and write
//! patterns) and channels, MULTI queueing, ACL DRYRUN, ACL LOG (ages and client details masked)
//! and ACL DELUSER closing the deleted user's connections.
//!
//! Rules whose description has several single-command rules are avoided or compared with those
//! rules sorted: Redis lists them in its hash table's order, Tessera in table order.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::*;

/// A user description with its single-command rules (which follow the categories) sorted,
/// selector by selector.
fn sorted_rules(s: &str) -> String {
    let mut out = Vec::new();
    for (i, part) in s.split('(').enumerate() {
        let (body, close) = match part.strip_suffix(") ").or_else(|| part.strip_suffix(')')) {
            Some(b) => (b, true),
            None => (part.trim_end(), false),
        };
        let mut fixed = Vec::new();
        let mut singles = Vec::new();
        for t in body.split(' ') {
            let single = (t.starts_with('+') || t.starts_with('-')) && !t[1..].starts_with('@');
            if single {
                singles.push(t);
            } else {
                fixed.push(t);
            }
        }
        singles.sort();
        fixed.extend(singles);
        let mut seg = fixed.join(" ");
        if i > 0 {
            seg = format!("({seg}");
        }
        if close {
            seg.push(')');
        }
        out.push(seg);
    }
    out.join(" ")
}

/// A reply with every string canonicalized by [`sorted_rules`].
fn canon(v: Value) -> Value {
    match v {
        Value::Bulk(b) => Value::Bulk(sorted_rules(&String::from_utf8_lossy(&b)).into_bytes()),
        Value::Array(items) => Value::Array(items.into_iter().map(canon).collect()),
        Value::Map(pairs) => Value::Map(pairs.into_iter().map(|(k, v)| (k, canon(v))).collect()),
        other => other,
    }
}

/// Runs `line` everywhere and compares the replies with single-command rules sorted.
fn rules_cmd(d: &mut Diff, line: &str) {
    d.each(&format!("{line} (single-command rules sorted)"), |t, a| {
        render(&canon(resp_parse(&t.conns[a].cmd_str(line)))).into_bytes()
    });
}

#[test]
fn setuser_getuser_list() {
    let mut d = diff_or_skip!("setuser_getuser_list");
    d.section("rule combinations");
    let combos: &[&str] = &[
        "u1",
        "u1 on",
        "u1 off nopass",
        "u1 reset",
        "u1 on >p1 >p2 <p1",
        "u1 #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a",
        "u1 !f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a",
        "u1 resetpass",
        "u1 ~a* ~b* %R~r* %W~w* %RW~rw* %R~a*",
        "u1 allkeys",
        "u1 resetkeys ~x",
        "u1 &c1 &c2* allchannels",
        "u1 resetchannels &n*",
        "u1 +@all",
        "u1 allcommands -@dangerous",
        "u1 nocommands +@read",
        "u1 -@all +@string -set",
        "u1 -@all +@hash +@list",
        "u1 +@all -@write",
        "u1 +@all -@stream -@geo",
        "u1 -@all +config|get",
        "u1 -@all +client",
        "u1 +@all -client|kill",
        "u1 -@all +select|0 +select|1",
        "u1 -@all +get +xadd",
        "u1 +@all -@slow +@fast",
        "u1 -@all +@pubsub +@connection",
        "u1 skip-sanitize-payload",
        "u1 sanitize-payload",
        "u1 (~x* +get) (%R~y +@read &ch)",
        "u1 (~x* +get",
        "u1 +hget)",
        "u1 clearselectors",
        "u1 ON RESETKEYS NOPASS AllKeys",
        "u2 on >secret ~k* +@all -flushall (~q* +lpush)",
        "u3 %R~ro* %W~wo* ~both* -@all +get +set +mget +mset +copy +lmove &pub* +publish +subscribe +psubscribe +ssubscribe +spublish",
    ];
    for c in combos {
        d.s(&format!("ACL SETUSER {c}"));
        let user = c.split(' ').next().unwrap();
        rules_cmd(&mut d, &format!("ACL GETUSER {user}"));
        rules_cmd(&mut d, "ACL LIST");
        d.s("ACL USERS");
    }
    d.section("errors");
    for c in [
        "ACL SETUSER e1 ~x allkeys ~y",
        "ACL SETUSER e1 &x allchannels &y",
        "ACL SETUSER e1 +nosuchcommand",
        "ACL SETUSER e1 -nosuchcommand",
        "ACL SETUSER e1 +@nosuchcategory",
        "ACL SETUSER e1 +config|nosuch",
        "ACL SETUSER e1 +config|get|x",
        "ACL SETUSER e1 +config|",
        "ACL SETUSER e1 -select|0",
        "ACL SETUSER e1 #abc",
        "ACL SETUSER e1 #F64551FCD6F07823CB87971CFB91446425DA18286B3AB1EF935E0CBD7A69F68A",
        "ACL SETUSER e1 !abc",
        "ACL SETUSER e1 <nosuchpass",
        "ACL SETUSER e1 %~x",
        "ACL SETUSER e1 %RR~x",
        "ACL SETUSER e1 %X~x",
        "ACL SETUSER e1 bogus",
        "ACL SETUSER e1 (~x bogus)",
        "ACL SETUSER e1 (~x",
        "ACL SETUSER e1 on (",
        "ACL SETUSER e1 ()",
        "ACL SETUSER e1 on ~a bogus",
        "ACL GETUSER e1",
        "ACL GETUSER nosuch",
        "ACL SETUSER",
        "ACL GETUSER",
        "ACL GETUSER a b",
        "ACL DELUSER default",
        "ACL DELUSER e1 default",
        "ACL DELUSER nosuch e1 u2",
        "ACL LIST x",
        "ACL USERS x",
        "ACL WHOAMI x",
        "ACL NOSUCH",
        "ACL",
        "ACL HELP",
        "ACL CAT",
        "ACL CAT nosuch",
        "ACL CAT a b",
        "ACL GENPASS 0",
        "ACL GENPASS 4097",
        "ACL GENPASS -1",
        "ACL GENPASS abc",
        "ACL LOAD",
        "ACL SAVE",
        "ACL LOG abc",
        "ACL LOG 1 2",
    ] {
        d.s(c);
    }
    d.cmd(&[b"ACL", b"SETUSER", b"a b"]);
    d.cmd(&[b"ACL", b"SETUSER", b"a\0b"]);
    d.cmd(&[b"ACL", b"SETUSER", b"sp", b"~a b"]);
    d.cmd(&[b"ACL", b"SETUSER", b"sp", b"&a\tb"]);
    rules_cmd(&mut d, "ACL LIST");
    d.section("genpass lengths");
    for bits in ["", "1", "4", "5", "255", "4096"] {
        d.each(&format!("ACL GENPASS {bits} (length)"), |t, a| {
            let r = resp_parse(&t.conns[a].cmd_str(&format!("ACL GENPASS {bits}")));
            let s = r.as_bytes().unwrap_or_default().to_vec();
            let hex = s
                .iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
            format!("{} {hex}", s.len()).into_bytes()
        });
    }
}

#[test]
fn acl_cat_lists_categories() {
    let mut d = diff_or_skip!("acl_cat_lists_categories");
    d.s("ACL CAT");
    // Tessera lists the commands it has; Redis's list is filtered to those.
    let have: HashSet<Vec<u8>> = {
        let t = &mut d.targets[1];
        match resp_parse(&t.conns[0].cmd_str("COMMAND LIST")) {
            Value::Array(v) => v
                .iter()
                .filter_map(|x| x.as_bytes().map(<[u8]>::to_vec))
                .collect(),
            _ => HashSet::new(),
        }
    };
    for cat in [
        "keyspace",
        "read",
        "write",
        "set",
        "sortedset",
        "list",
        "hash",
        "string",
        "pubsub",
        "admin",
        "fast",
        "slow",
        "blocking",
        "dangerous",
        "connection",
        "transaction",
        "scripting",
        "STRING",
    ] {
        d.each(
            &format!("ACL CAT {cat} (sorted, Tessera's commands)"),
            |t, a| {
                let mut v: Vec<Vec<u8>> =
                    match resp_parse(&t.conns[a].cmd_str(&format!("ACL CAT {cat}"))) {
                        Value::Array(v) => v
                            .iter()
                            .filter_map(|x| x.as_bytes().map(<[u8]>::to_vec))
                            .filter(|n| have.contains(n))
                            .collect(),
                        other => vec![render(&other).into_bytes()],
                    };
                v.sort();
                v.join(&b' ')
            },
        );
    }
}

#[test]
fn auth_and_hello() {
    let mut d = diff_or_skip!("auth_and_hello");
    d.script(&[
        "ACL SETUSER alice on >pa ~* &* +@all",
        "ACL SETUSER bob off >pb ~* +@all",
        "ACL SETUSER carol on nopass ~c* -@all +get +set +acl|whoami",
    ]);
    let c1 = d.open_conn();
    d.use_conn(c1);
    d.script(&[
        "ACL WHOAMI",
        "AUTH alice wrong",
        "AUTH alice pa",
        "ACL WHOAMI",
        "AUTH bob pb",
        "AUTH nosuch x",
        "AUTH carol anything",
        "ACL WHOAMI",
        "GET c1",
        "GET other",
        "SET c1 v",
        "DEL c1",
        "PING",
        "AUTH x",
        "AUTH a b c",
        "RESET",
        "ACL WHOAMI",
    ]);
    d.s_norm("HELLO 3 AUTH alice pa", Norm::Hello);
    d.s("ACL WHOAMI");
    d.s("HELLO 3 AUTH alice wrong");
    d.s("HELLO 2 AUTH bob pb");
    d.s_norm("HELLO 2 AUTH carol x SETNAME n1", Norm::Hello);
    d.s("ACL WHOAMI");
    d.s("CLIENT GETNAME");
    d.use_conn(0);
    d.script(&[
        "CONFIG SET requirepass sekret",
        "ACL GETUSER default",
        "AUTH sekret",
        "AUTH default sekret",
    ]);
    let c2 = d.open_conn();
    d.use_conn(c2);
    d.script(&[
        "PING",
        "ACL WHOAMI",
        "AUTH wrong",
        "AUTH sekret",
        "PING",
        "HELLO 2 AUTH default nope",
    ]);
    d.use_conn(0);
    d.script(&[
        "ACL SETUSER default >second",
        "CONFIG GET requirepass",
        "ACL GETUSER default",
    ]);
    d.cmd(&[b"CONFIG", b"SET", b"requirepass", b""]);
    d.script(&["ACL GETUSER default", "AUTH x"]);
    d.s("ACL LOG RESET");
}

#[test]
fn permissions_commands_keys_channels() {
    let mut d = diff_or_skip!("permissions_commands_keys_channels");
    d.script(&[
        "SET rx 1",
        "SET wx 1",
        "ACL SETUSER p on nopass %R~r* %W~w* ~both* &pub* -@all +get +set +mget +mset +copy +lmove +rpush +del +publish +spublish +subscribe +psubscribe +ssubscribe +unsubscribe +config|get +client|id +multi +exec +discard +object|encoding +sort +eval +ping",
        "ACL SETUSER q on nopass ~* &* +@all -debug -flushall -config|set",
        "ACL SETUSER s on nopass -@all +get ~a* (~b* +set) (%R~c* +@read)",
    ]);
    let c = d.open_conn();
    d.use_conn(c);
    d.s("AUTH p x");
    for line in [
        "GET rx",
        "GET wx",
        "GET both",
        "GET other",
        "SET wx 2",
        "SET rx 2",
        "SET rx 2 GET",
        "SET both 2 GET",
        "MGET rx both",
        "MGET rx wx",
        "MSET wa 1 wb 2",
        "MSET wa 1 rb 2",
        "COPY rx wy",
        "COPY wx wy",
        "LMOVE rl wl LEFT RIGHT",
        "RPUSH rl a",
        "DEL wa",
        "DEL ra",
        "HGET rx f",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 0",
        "CLIENT INFO",
        "OBJECT ENCODING rx",
        "OBJECT FREQ rx",
        "SORT rx",
        "PUBLISH pub1 m",
        "PUBLISH other m",
        "SPUBLISH pub1 m",
        "SPUBLISH other m",
        "PING",
    ] {
        d.s(line);
    }
    d.s("MULTI");
    d.s("GET rx");
    d.s("GET other");
    d.s("HGET rx f");
    d.s("EXEC");
    d.s("MULTI");
    d.s("GET rx");
    d.s("SET wq 1");
    d.s("EXEC");
    d.s("SUBSCRIBE pub1 other");
    d.s("PSUBSCRIBE pub*");
    d.s("PSUBSCRIBE pub1*");
    d.s("SSUBSCRIBE other");
    d.s("SUBSCRIBE pubx");
    d.s("UNSUBSCRIBE");
    d.s("RESET");
    d.s("AUTH q x");
    d.script(&[
        "DEBUG SLEEP 0",
        "FLUSHALL",
        "CONFIG SET maxmemory 0",
        "CONFIG GET maxmemory",
        "GET any",
    ]);
    d.s("AUTH s x");
    d.script(&[
        "GET a1",
        "GET b1",
        "GET c1",
        "SET b1 v",
        "SET a1 v",
        "HGET c1 f",
        "HGET b1 f",
        "SET c1 v",
        "TYPE c1",
    ]);
    // Commands a script runs are checked against its caller's user: after `noscript`, before
    // the read-only check; redis.call's error carries the script's position.
    d.section("scripts");
    d.s("AUTH p x");
    for body in [
        "return redis.pcall('get','rx')",
        "return redis.pcall('get','other')",
        "return redis.pcall('set','rx','v')",
        "return redis.pcall('set','wx','v')",
        "return redis.pcall('hget','rx','f')",
        "return redis.pcall('publish','other','m')",
        "return redis.pcall('publish','pub1','m')",
        "return redis.pcall('debug','sleep','0')",
        "return redis.pcall('nosuch')",
        "return redis.call('hget','rx','f')",
        "return redis.call('get','both1')",
    ] {
        d.cmd(&[b"EVAL", body.as_bytes(), b"0"]);
    }
    d.cmd(&[b"EVAL_RO", b"return redis.pcall('hset','rx','f','v')", b"0"]);
    d.cmd(&[b"EVAL_RO", b"return redis.pcall('set','wx','v')", b"0"]);
    d.s("AUTH s x");
    d.cmd(&[b"EVAL", b"return redis.pcall('get','a1')", b"0"]);
    d.use_conn(0);
    d.section("dryrun");
    for line in [
        "ACL DRYRUN p GET rx",
        "ACL DRYRUN p SET rx v",
        "ACL DRYRUN p SET wx v GET",
        "ACL DRYRUN p HGET rx f",
        "ACL DRYRUN p PUBLISH nope m",
        "ACL DRYRUN p SUBSCRIBE pub1 nope",
        "ACL DRYRUN p PSUBSCRIBE pub1",
        "ACL DRYRUN p CONFIG GET x",
        "ACL DRYRUN p CONFIG SET x y",
        "ACL DRYRUN p CONFIG NOSUCH",
        "ACL DRYRUN p NOSUCH",
        "ACL DRYRUN p GET",
        "ACL DRYRUN p MSET wa 1 rb 2",
        "ACL DRYRUN nosuch GET x",
        "ACL DRYRUN s SET b1 v",
        "ACL DRYRUN s SET c1 v",
        "ACL DRYRUN s GET z",
        "ACL DRYRUN q FLUSHALL",
        "ACL DRYRUN default FLUSHALL",
        "ACL DRYRUN p",
    ] {
        d.s(line);
    }
}

/// ACL LOG with the fields that differ by nature masked: `age-seconds`, and in `client-info`
/// everything but `cmd=` and `user=`.
fn masked_log(reply: &[u8]) -> String {
    let v = resp_parse(reply);
    let Value::Array(entries) = v else {
        return render(&v);
    };
    let mut out = Vec::new();
    for e in entries {
        let items = match e {
            Value::Array(i) => i,
            Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            other => vec![other],
        };
        let mut fields = Vec::new();
        for pair in items.chunks(2) {
            let k = pair[0]
                .as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let val = match k.as_str() {
                "age-seconds" => "<age>".to_string(),
                "client-info" => {
                    let s = pair[1]
                        .as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    s.split(' ')
                        .filter(|f| {
                            f.starts_with("cmd=")
                                || f.starts_with("user=")
                                || f.starts_with("db=")
                                || f.starts_with("multi=")
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                _ => render(&pair[1]),
            };
            fields.push(format!("{k}={val}"));
        }
        out.push(fields.join(", "));
    }
    out.join("\n")
}

#[test]
fn acl_log_entries() {
    let mut d = diff_or_skip!("acl_log_entries");
    d.script(&[
        "ACL LOG RESET",
        "ACL SETUSER lg on >pw ~k* &ch -@all +get +publish +multi +exec +acl|log",
    ]);
    let c = d.open_conn();
    d.use_conn(c);
    d.script(&[
        "AUTH lg wrong",
        "AUTH nobody x",
        "AUTH lg pw",
        "SET k1 v",
        "SET k1 v",
        "GET other",
        "PUBLISH nope m",
        "MULTI",
        "SET k2 v",
        "DISCARD",
    ]);
    d.use_conn(0);
    for line in ["ACL LOG", "ACL LOG 2", "ACL LOG 0", "ACL LOG -1"] {
        d.each(&format!("{line} (masked)"), |t, a| {
            masked_log(&t.conns[a].cmd_str(line)).into_bytes()
        });
    }
    d.s("ACL LOG RESET");
    d.s("ACL LOG");
}

#[test]
fn deluser_closes_connections() {
    let mut d = diff_or_skip!("deluser_closes_connections");
    d.s("ACL SETUSER gone on nopass ~* +@all");
    let c = d.open_conn();
    d.use_conn(c);
    d.s("AUTH gone x");
    d.s_norm("CLIENT LIST TYPE normal", Norm::TypeOnly);
    d.use_conn(0);
    d.s("ACL DELUSER gone");
    d.each("the deleted user's connection is closed", |t, _| {
        match t.conns[c].wait_closed(Duration::from_secs(5)) {
            Ok(_) => b"closed".to_vec(),
            Err(_) => b"open".to_vec(),
        }
    });
    d.s("ACL SETUSER self on nopass ~* +@all");
    let c2 = d.open_conn();
    d.use_conn(c2);
    d.s("AUTH self x");
    d.s("ACL DELUSER self");
    d.each(
        "a client deleting its own user is closed after the reply",
        |t, _| match t.conns[c2].wait_closed(Duration::from_secs(5)) {
            Ok(_) => b"closed".to_vec(),
            Err(_) => b"open".to_vec(),
        },
    );
    d.use_conn(0);
    d.s("ACL SETUSER k on nopass ~* +@all");
    let c3 = d.open_conn();
    d.use_conn(c3);
    d.s("AUTH k x");
    d.use_conn(0);
    d.s("CLIENT KILL USER k");
    d.s("CLIENT KILL USER nosuch");
    d.each("CLIENT KILL USER closes", |t, _| {
        match t.conns[c3].wait_closed(Duration::from_secs(5)) {
            Ok(_) => b"closed".to_vec(),
            Err(_) => b"open".to_vec(),
        }
    });
}

/// Whether a connection still answers (a PING, allowed while subscribed) or was closed.
fn alive_or_closed(c: &mut RawConn) -> Vec<u8> {
    if c.try_send(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return b"closed".to_vec();
    }
    match c.try_read_reply_timeout(Duration::from_secs(5)) {
        Ok(reply) => reply,
        Err(_) => b"closed".to_vec(),
    }
}

/// Rules changed after the fact: EXEC checks each queued command again (refused ones answer
/// NOPERM and are logged in context `multi`, the others run), calls a script makes that the
/// rules refuse are logged in context `lua`, and ACL SETUSER closes the user's subscribed
/// connections whose channels it revokes (Redis 7.0's superset shortcut included).
#[test]
fn rules_changed_under_exec_scripts_and_subscribers() {
    let mut d = diff_or_skip!("rules_changed_under_exec_scripts_and_subscribers");
    d.section("EXEC re-checks queued commands");
    d.script(&["ACL LOG RESET", "ACL SETUSER ex on nopass ~* &* +@all"]);
    let c = d.open_conn();
    d.use_conn(c);
    d.script(&[
        "AUTH ex x",
        "MULTI",
        "SET k v",
        "GET k",
        "PUBLISH ch x",
        "INCR n",
        "SET k2 w",
    ]);
    d.use_conn(0);
    d.s("ACL SETUSER ex -set resetkeys ~k* resetchannels");
    d.use_conn(c);
    d.s("EXEC");
    d.script(&["MULTI", "GET k2", "EXEC"]);
    d.use_conn(0);
    d.each("ACL LOG (masked)", |t, a| {
        masked_log(&t.conns[a].cmd_str("ACL LOG")).into_bytes()
    });

    d.section("calls refused inside scripts");
    d.script(&["ACL LOG RESET", "ACL SETUSER sc on nopass +eval +get ~a*"]);
    let s = d.open_conn();
    d.use_conn(s);
    d.s("AUTH sc x");
    for body in [
        "return redis.pcall('set','a1','x')",
        "return redis.pcall('get','b1')",
        "return redis.pcall('get','b1')",
        "return redis.pcall('publish','c','x')",
    ] {
        d.cmd(&[b"EVAL", body.as_bytes(), b"0"]);
    }
    d.cmd(&[b"EVAL", b"return redis.call('get',KEYS[1])", b"1", b"a1"]);
    d.use_conn(0);
    d.each("ACL LOG (masked)", |t, a| {
        masked_log(&t.conns[a].cmd_str("ACL LOG")).into_bytes()
    });

    d.section("ACL SETUSER closes subscribers whose channels it revokes");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("allchannels", "SUBSCRIBE foo", "resetchannels", "closed"),
        (
            "resetchannels &foo",
            "SUBSCRIBE foo",
            "resetchannels",
            "closed",
        ),
        (
            "resetchannels &f*",
            "SUBSCRIBE foo",
            "resetchannels &fo*",
            "stays",
        ),
        ("resetchannels &f*", "PSUBSCRIBE f*", "&x", "stays"),
        (
            "resetchannels &f*",
            "PSUBSCRIBE fo*",
            "resetchannels &f*",
            "closed",
        ),
        (
            "resetchannels &f*",
            "SSUBSCRIBE foo",
            "resetchannels",
            "closed",
        ),
        (
            "resetchannels &f*",
            "SUBSCRIBE foo",
            "resetchannels (+@all &foo)",
            "stays",
        ),
        ("resetchannels &f*", "SUBSCRIBE foo", "-@all", "stays"),
        ("resetchannels &f*", "SUBSCRIBE foo", "allchannels", "stays"),
    ];
    for (i, (before, subscribe, change, _what_redis_does)) in cases.iter().enumerate() {
        let user = format!("ps{i}");
        d.s(&format!("ACL SETUSER {user} on nopass +@all {before}"));
        let sub = d.open_conn();
        d.use_conn(sub);
        d.s(&format!("AUTH {user} x"));
        d.s(subscribe);
        d.use_conn(0);
        d.s(&format!("ACL SETUSER {user} {change}"));
        d.each(
            &format!("{subscribe} after '{before}' then '{change}'"),
            |t, _| alive_or_closed(&mut t.conns[sub]),
        );
    }
}

//! Differential tests of MULTI/EXEC/DISCARD/WATCH/UNWATCH against redis-server (1 and 4
//! shards). Keys are untagged on purpose: with 4 shards most blocks span shards.

use crate::common::*;

#[test]
fn multi_exec_queueing_and_errors() {
    let mut d = diff_or_skip!("multi_exec_queueing_and_errors");
    d.section("basic block");
    d.script(&[
        "EXEC",
        "DISCARD",
        "MULTI",
        "MULTI",
        "WATCH x",
        "SET a 1",
        "INCR a",
        "MSET b 2 c 3 d 4",
        "MGET a b c d",
        "DEL a b",
        "EXISTS a b c d",
        "EXEC",
        "EXEC",
    ]);
    d.section("runtime errors do not roll back");
    d.script(&[
        "MULTI",
        "SET s x",
        "INCR s",
        "RENAME nokey other",
        "SET t y",
        "EXEC",
        "MGET s t",
    ]);
    d.section("queueing errors abort");
    d.script(&[
        "MULTI",
        "SET a",
        "SET b 1",
        "NOSUCHCOMMAND x",
        "EXEC",
        "GET b",
        "MULTI",
        "EXEC",
        "MULTI",
        "SET q 1",
        "DISCARD",
        "GET q",
        "DISCARD",
    ]);
    d.section("cross-shard commands inside a block");
    d.script(&[
        "MSET k1 a k2 b k3 c",
        "MULTI",
        "RENAME k1 k4",
        "COPY k2 k5",
        "MSETNX k6 x k7 y",
        "MGET k1 k2 k3 k4 k5 k6 k7",
        "DEL k3 k4",
        "EXEC",
        "MGET k1 k2 k3 k4 k5 k6 k7",
    ]);
    d.section("connection-level commands inside a block");
    d.script(&[
        "MULTI", "SET a 1", "SELECT 1", "SET a 2", "DBSIZE", "EXEC", "GET a", "SELECT 0", "GET a",
        "MULTI", "INCR c", "FLUSHALL", "INCR c", "EXEC", "DBSIZE",
    ]);
    d.section("RESP3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "MULTI", "SET a 1", "GET a", "EXEC", "WATCH a", "SET a 2", "MULTI", "GET a", "EXEC",
    ]);
    d.s_norm("HELLO 2", Norm::Hello);
    d.section("QUIT inside MULTI");
    d.script(&["MULTI", "SET z 1", "QUIT"]);
}

#[test]
fn watch_semantics() {
    let mut d = diff_or_skip!("watch_semantics");
    let other = d.open_conn();
    let me = 0;
    d.section("touched by this client");
    d.script(&[
        "SET a 1", "WATCH a", "SET a 2", "MULTI", "INCR a", "EXEC", "GET a",
    ]);
    d.section("touched by another client, on another shard's key");
    d.script(&["WATCH a b c", "MULTI", "INCR a"]);
    d.use_conn(other);
    d.s("SET c 9");
    d.use_conn(me);
    d.script(&["EXEC", "GET a"]);
    d.section("untouched");
    d.script(&["WATCH a b c", "MULTI", "INCR a", "EXEC", "GET a"]);
    d.section("no-op writes do not touch");
    d.script(&[
        "WATCH a",
        "SETNX a 5",
        "MULTI",
        "PING",
        "EXEC",
        "WATCH nokey",
        "DEL nokey",
        "MULTI",
        "PING",
        "EXEC",
    ]);
    d.section("delete and re-create, in-place modifications");
    d.script(&[
        "WATCH zz",
        "SET zz 1",
        "DEL zz",
        "MULTI",
        "PING",
        "EXEC",
        "HSET h f 1",
        "WATCH h",
        "HSET h f 2",
        "MULTI",
        "HGET h f",
        "EXEC",
        "WATCH h",
        "HINCRBY h f 1",
        "MULTI",
        "HGET h f",
        "EXEC",
    ]);
    d.section("expire, rename and flush touch");
    d.script(&[
        "SET e 1",
        "WATCH e",
        "EXPIRE e 100",
        "MULTI",
        "PING",
        "EXEC",
        "SET r1 x",
        "WATCH r2",
        "RENAME r1 r2",
        "MULTI",
        "PING",
        "EXEC",
        "SET f 1",
        "WATCH f",
        "FLUSHDB",
        "MULTI",
        "PING",
        "EXEC",
        "WATCH gone",
        "FLUSHALL",
        "MULTI",
        "PING",
        "EXEC",
    ]);
    d.section("UNWATCH and DISCARD forget");
    d.script(&[
        "SET u 1", "WATCH u", "UNWATCH", "SET u 2", "MULTI", "GET u", "EXEC", "WATCH u", "MULTI",
        "DISCARD", "SET u 3", "MULTI", "GET u", "EXEC",
    ]);
    d.section("SWAPDB touches watched keys in both databases");
    d.script(&[
        "SET sw 1",
        "WATCH sw",
        "SWAPDB 0 1",
        "MULTI",
        "PING",
        "EXEC",
        "SWAPDB 0 1",
    ]);
    d.section("big watched values: touched when a write changes them, not copied");
    // Over 64 KB each, so Tessera does not copy them before every write (it decides from what
    // the command did instead); the outcomes below are Redis's either way.
    let members: Vec<String> = (0..3000).map(|i| format!("{i} member:{i}")).collect();
    d.s(&format!("ZADD bigz {}", members.join(" ")));
    let fields: Vec<String> = (0..3000).map(|i| format!("field:{i} value:{i}")).collect();
    d.s(&format!("HSET bigh {}", fields.join(" ")));
    d.s(&format!(
        "SADD bigs {}",
        (0..3000)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for (write, on_other) in [
        // No change: no signal in Redis either.
        ("ZADD bigz 5 member:5", true),
        ("ZREM bigz nobody", true),
        ("SADD bigs s1", false),
        // A change.
        ("ZADD bigz 6 member:5", true),
        ("ZINCRBY bigz 1 member:7", false),
        // Redis signals HSET even when the value is the same.
        ("HSET bigh field:1 value:1", true),
        ("HDEL bigh nofield", false),
        // A big key only read by a write elsewhere stays untouched.
        ("SUNIONSTORE dest bigs", true),
        ("ZUNIONSTORE zdest 1 bigz", false),
        ("DEL bigs", true),
    ] {
        d.s("WATCH bigz bigh bigs");
        if on_other {
            d.use_conn(other);
        }
        d.s(write);
        d.use_conn(me);
        d.script(&["MULTI", "ZCARD bigz", "EXEC"]);
    }
    d.section("many keys on every shard, named twice, over two WATCH calls");
    let many: Vec<String> = (0..300).map(|i| format!("w:{i}")).collect();
    let watch_all = format!("WATCH {} {}", many.join(" "), many[..50].join(" "));
    for (touch, forget) in [(None, false), (Some("w:299"), false), (Some("w:7"), true)] {
        d.s(&watch_all);
        d.s("WATCH w:0 w:1");
        if forget {
            d.s("UNWATCH");
        }
        if let Some(k) = touch {
            d.use_conn(other);
            d.s(&format!("SET {k} x"));
            d.use_conn(me);
        }
        d.script(&["MULTI", "INCR w:count", "EXEC"]);
    }
}

#[test]
fn watch_expired_key_fails_exec() {
    let mut d = diff_or_skip!("watch_expired_key_fails_exec");
    d.script(&["SET e 1 PX 50", "WATCH e"]);
    std::thread::sleep(std::time::Duration::from_millis(120));
    d.script(&["MULTI", "PING", "EXEC"]);
}

#[test]
fn exec_refused_before_it_runs_discards_the_transaction() {
    let mut d = diff_or_skip!("exec_refused_before_it_runs_discards_the_transaction");
    d.section("wrong arity");
    d.script(&[
        "MULTI", "SET a 1", "EXEC x", "EXEC", "DISCARD", "GET a", "EXEC x",
    ]);
    d.section("the watch goes with it");
    d.script(&[
        "SET w 1", "WATCH w", "MULTI", "EXEC x", "SET w 5", "MULTI", "GET w", "EXEC",
    ]);
}

#[test]
fn queue_time_errors_of_container_commands() {
    let mut d = diff_or_skip!("queue_time_errors_of_container_commands");
    let refused = [
        "CONFIG SET",
        "CONFIG NOSUCH",
        "config nosuch",
        "CLIENT NOSUCH",
        "CLIENT HELP x",
        "CLIENT ID x",
        "CLIENT UNBLOCK",
        "SCRIPT NOSUCH",
        "SCRIPT LOAD",
        "FUNCTION NOSUCH",
        "FUNCTION DELETE",
        "OBJECT NOSUCH x",
        "OBJECT ENCODING",
        "PUBSUB NOSUCH",
        "PUBSUB NUMPAT x",
        "MEMORY NOSUCH",
        "MEMORY USAGE",
        "COMMAND NOSUCH",
        "COMMAND COUNT x",
        "SLOWLOG NOSUCH",
        "SLOWLOG LEN x",
        "CONFIG",
        "DEBUG SLEEP 0",
        "DEBUG NOSUCH",
        "DEBUG",
    ];
    d.section("outside MULTI");
    d.script(&refused);
    d.section("each aborts the transaction when queued");
    for line in refused {
        d.script(&["MULTI", "SET q 1", line, "EXEC", "GET q"]);
    }
    d.section("valid subcommands are queued");
    d.script(&[
        "MULTI",
        "CLIENT GETNAME",
        "CONFIG GET notify-keyspace-events",
        "PUBSUB NUMPAT",
        "pubsub numsub a b",
        "OBJECT ENCODING nokey",
        "SLOWLOG GET 1 2",
        "PUBSUB CHANNELS a b",
        "EXEC",
    ]);
}

#[test]
fn monitor_and_wait_inside_exec() {
    let mut d = diff_or_skip!("monitor_and_wait_inside_exec");
    d.section("MONITOR is refused inside EXEC and the client stays a normal one");
    d.script(&[
        "MULTI", "MONITOR", "PING", "EXEC", "MULTI", "SET m 1", "EXEC", "GET m",
    ]);
    d.section("WAIT: no replicas");
    d.script(&[
        "WAIT 0 0",
        "WAIT -1 0",
        "WAIT x 0",
        "WAIT 99999999999999999999 0",
        "WAIT 0 x",
        "WAIT 0 -1",
        "WAIT 0 1.5",
        "WAIT 0 9223372036854775807",
        "WAIT 1 50",
        "WAIT 1",
        "MULTI",
        "WAIT 1 0",
        "WAIT 0 0",
        "WAIT x 0",
        "EXEC",
        "MULTI",
        "WAIT 1",
        "EXEC",
    ]);
    d.cmd(&[b"EVAL", b"return redis.call('wait','0','0')", b"0"]);
}

/// Writes that change nothing, or change something without changing the bytes: the change
/// count (INFO `rdb_changes_since_last_save`, which drives the `save` rules; a command that
/// counts none is not logged either) and whether a WATCH on the key fails the next EXEC. Each
/// case starts from an empty server; keys carry one tag, so they share a shard also with 4
/// shards. A `~` before a command compares only its change count (SPOP picks at random).
#[test]
fn change_counts_and_watch_of_writes_that_change_little() {
    let mut d = diff_or_skip!("change_counts_and_watch_of_writes_that_change_little");
    let cases: &[(&[&str], &str)] = &[
        (&["RPUSH {t}k a b"], "LREM {t}k 0 z"),
        (&["RPUSH {t}k a b a d a"], "LREM {t}k 0 a"),
        (&["RPUSH {t}k a b"], "LINSERT {t}k BEFORE z b"),
        (&[], "LINSERT {t}k BEFORE z b"),
        (&["RPUSH {t}k a b a"], "LINSERT {t}k BEFORE a z"),
        (&["RPUSH {t}k a b"], "LTRIM {t}k 0 -1"),
        (&["RPUSH {t}k a b c d e"], "LTRIM {t}k 1 2"),
        (&["RPUSH {t}k a b c d e"], "LTRIM {t}k 5 2"),
        (&["RPUSH {t}k a b"], "LSET {t}k 0 a"),
        (&["RPUSH {t}k a b c d e"], "LPOP {t}k 3"),
        (&["RPUSH {t}k a b c d e"], "LPOP {t}k 0"),
        (&[], "RPOP {t}k 2"),
        (&[], "RPOPLPUSH {t}k {t}j"),
        (&["RPUSH {t}k a b"], "LMOVE {t}k {t}j LEFT RIGHT"),
        (&["RPUSH {t}k a"], "LMOVE {t}k {t}k LEFT LEFT"),
        (&["RPUSH {t}k a"], "RPOPLPUSH {t}k {t}k"),
        (&[], "LMPOP 1 {t}k LEFT"),
        (&["RPUSH {t}k a b c d e"], "LMPOP 1 {t}k LEFT COUNT 3"),
        (&["RPUSH {t}k a b c d e"], "BLMPOP 0 1 {t}k LEFT COUNT 3"),
        (&["RPUSH {t}k a b c d e"], "BLMOVE {t}k {t}j LEFT RIGHT 0"),
        (&["SADD {t}k a"], "SREM {t}k z"),
        (&[], "SPOP {t}k"),
        (&["SADD {t}k a b c d e"], "~SPOP {t}k 3"),
        (&["SADD {t}k a b c d e"], "~SPOP {t}k 10"),
        (&["SADD {t}k a b c d e"], "SPOP {t}k 0"),
        (&["SADD {t}k a"], "SMOVE {t}k {t}j z"),
        (&["SADD {t}k a b c", "SADD {t}j a"], "SMOVE {t}k {t}j a"),
        (&["SADD {t}k a b c"], "SMOVE {t}k {t}j a"),
        (&["SADD {t}k a b c"], "SMOVE {t}k {t}k a"),
        (&["SADD {t}s a b"], "SINTERSTORE {t}d {t}s {t}x"),
        (
            &["SADD {t}s a b", "SADD {t}x c", "SET {t}d v"],
            "SINTERSTORE {t}d {t}s {t}x",
        ),
        (&[], "SUNIONSTORE {t}d {t}s {t}x"),
        (
            &["SADD {t}s a b", "SADD {t}x a b"],
            "SDIFFSTORE {t}d {t}s {t}x",
        ),
        (&["SADD {t}s a", "SADD {t}k a"], "SUNIONSTORE {t}k {t}s"),
        (&[], "ZUNIONSTORE {t}d 2 {t}s {t}x"),
        (
            &["ZADD {t}s 1 a 2 b", "ZADD {t}x 1 c"],
            "ZINTERSTORE {t}d 2 {t}s {t}x",
        ),
        (
            &["ZADD {t}s 1 a", "ZADD {t}x 1 c", "SET {t}d v"],
            "ZINTERSTORE {t}d 2 {t}s {t}x",
        ),
        (&[], "ZRANGESTORE {t}d {t}s 0 -1"),
        (
            &["ZADD {t}s 1 a 2 b", "SET {t}d v"],
            "ZRANGESTORE {t}d {t}s 5 6",
        ),
        (&["ZADD {t}k 1 a"], "ZREMRANGEBYSCORE {t}k 5 6"),
        (&["ZADD {t}k 1 a 2 b 3 c"], "ZREMRANGEBYSCORE {t}k 1 2"),
        (&["ZADD {t}k 1 a 2 b 3 c"], "ZREMRANGEBYRANK {t}k 0 -1"),
        (&["ZADD {t}k 0 a 0 b 0 c"], "ZREMRANGEBYLEX {t}k [a [b"),
        (&["ZADD {t}k 1 a"], "ZREMRANGEBYLEX {t}k [x [y"),
        (&[], "ZPOPMIN {t}k"),
        (&["ZADD {t}k 1 a 2 b 3 c"], "ZPOPMIN {t}k 2"),
        (&["ZADD {t}k 1 a 2 b 3 c"], "ZPOPMAX {t}k 0"),
        (&[], "ZMPOP 1 {t}k MIN"),
        (&["ZADD {t}k 1 a 2 b 3 c"], "ZMPOP 1 {t}k MIN COUNT 2"),
        (&["ZADD {t}k 1 a 2 b 3 c"], "BZMPOP 0 1 {t}k MIN COUNT 2"),
        (&["ZADD {t}k 1 a"], "ZADD {t}k 1 a"),
        (&["ZADD {t}k 1 a"], "ZINCRBY {t}k 0 a"),
        (&[], "SORT {t}s STORE {t}d"),
        (&["RPUSH {t}s c a b"], "SORT {t}s ALPHA STORE {t}d"),
        (&["SET {t}d v"], "SORT {t}s ALPHA STORE {t}d"),
        (
            &["RPUSH {t}s a", "RPUSH {t}k a"],
            "SORT {t}s ALPHA STORE {t}k",
        ),
        (&["SET {t}k v"], "SWAPDB 0 1"),
        (&["SET {t}k v"], "SWAPDB 0 0"),
        (&["SET {t}k v"], "SET {t}k v"),
        (&["HSET {t}k f v"], "HSET {t}k f v"),
        (&["HSET {t}k f v"], "HSETNX {t}k f v"),
        (&["HSET {t}k f 1"], "HINCRBY {t}k f 0"),
        (&["SET {t}k 5"], "INCRBY {t}k 0"),
        (&["SET {t}k 5"], "DECRBY {t}k 0"),
        (&["SET {t}k 5"], "INCRBYFLOAT {t}k 0"),
        (&["SET {t}k abc"], "SETRANGE {t}k 0 a"),
        (&["SET {t}k v"], "MSET {t}j w {t}k v"),
        (&["SET {t}s v", "SET {t}k v"], "COPY {t}s {t}k REPLACE"),
        (&["SETBIT {t}k 3 1"], "SETBIT {t}k 3 1"),
        (&["SET {t}k v"], "DEL {t}k {t}j"),
        (&["SET {t}k v"], "RENAME {t}k {t}k"),
        (&["SET {t}k v"], "PERSIST {t}k"),
        (
            &["XADD {t}k 1-0 f v", "XGROUP CREATE {t}k g 0"],
            "XGROUP CREATECONSUMER {t}k g c",
        ),
    ];
    // The key named last is the one WATCHed (a store's destination).
    for (setup, line) in cases {
        let (line, compare_reply) = match line.strip_prefix('~') {
            Some(l) => (l, false),
            None => (*line, true),
        };
        let watched = split_cmd(line)
            .into_iter()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .rfind(|p| p.starts_with("{t}"))
            .unwrap_or_default();
        let setup: Vec<String> = setup.iter().map(|s| s.to_string()).collect();
        let line = line.to_string();
        d.section(&line);
        d.each(
            &format!("{line}: reply, changes, WATCH {watched}"),
            |t, c| {
                let conn = &mut t.conns[c];
                conn.cmd_str("FLUSHALL");
                for s in &setup {
                    conn.cmd_str(s);
                }
                conn.cmd_str(&format!("WATCH {watched}"));
                let changes = |conn: &mut RawConn| {
                    let info =
                        String::from_utf8_lossy(&conn.cmd_str("INFO persistence")).into_owned();
                    info.lines()
                        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .unwrap_or(-1)
                };
                let before = changes(conn);
                let reply = conn.cmd_str(&line);
                let after = changes(conn);
                conn.cmd_str("MULTI");
                conn.cmd_str("PING");
                let exec = conn.cmd_str("EXEC");
                let mut out = if compare_reply { reply } else { Vec::new() };
                out.extend_from_slice(format!(" changes {} exec ", after - before).as_bytes());
                out.extend_from_slice(&exec);
                conn.cmd_str("SELECT 0");
                out
            },
        );
    }
    // The same writes inside a transaction whose keys span shards (untagged keys), sent by
    // another client: its units work on copies, and still fail the watcher's EXEC where Redis's
    // do.
    let other = d.open_conn();
    d.use_conn(0);
    for (setup, block) in [
        ("HSET k f v", "HSET k f v"),
        ("SET k 5", "INCRBY k 0"),
        ("HSET k f v", "HSETNX k f v"),
        ("RPUSH k a b", "LSET k 0 a"),
        ("RPUSH k a b", "LREM k 0 z"),
    ] {
        d.section(&format!("across shards: {block}"));
        d.each(
            &format!("MULTI {block}, SET other 1, EXEC; the watcher's EXEC"),
            |t, c| {
                t.conns[c].cmd_str("FLUSHALL");
                t.conns[c].cmd_str(setup);
                t.conns[c].cmd_str("WATCH k");
                let o = &mut t.conns[other];
                o.cmd_str("MULTI");
                o.cmd_str(block);
                o.cmd_str("SET other 1");
                let mut out = o.cmd_str("EXEC");
                t.conns[c].cmd_str("MULTI");
                t.conns[c].cmd_str("PING");
                out.extend_from_slice(&t.conns[c].cmd_str("EXEC"));
                out
            },
        );
    }
    // Single commands over keys of several shards (with 4 shards k, s and x are on three
    // different ones) that replace the watched destination with the same value: Redis signals
    // the destination all the same.
    for (setup, command) in [
        (&["SADD s a", "SADD k a"][..], "SUNIONSTORE k s"),
        (&["SADD s a", "SADD x a", "SADD k a"], "SINTERSTORE k s x"),
        (&["SADD s a", "SADD k a"], "SDIFFSTORE k s j"),
        (&["SET s v", "SET k v"], "COPY s k REPLACE"),
        (&["SET s v", "SET k v"], "RENAME s k"),
        (&["SET s abc", "SET k abc"], "BITOP AND k s"),
        (&["RPUSH s a b", "RPUSH k a b"], "SORT s ALPHA STORE k"),
        (&["ZADD s 1 a", "ZADD k 1 a"], "ZUNIONSTORE k 1 s"),
        (&["ZADD s 1 a", "ZADD k 1 a"], "ZRANGESTORE k s 0 -1"),
        (&["PFADD s a", "PFADD k a"], "PFMERGE k s"),
        (
            &["GEOADD s 1 1 a", "GEOADD k 1 1 a"],
            "GEOSEARCHSTORE k s FROMLONLAT 1 1 BYRADIUS 10 km",
        ),
        (&["SET s v", "SET k v"], "MSET s v k v"),
        (&["SADD s a", "SADD k a"], "SMOVE s k a"),
        (&["SET k v"], "SUNIONSTORE k s"),
        (&[], "SUNIONSTORE k s"),
    ] {
        d.section(&format!("across shards: {command}"));
        d.each(&format!("{command}; the watcher's EXEC"), |t, c| {
            t.conns[c].cmd_str("FLUSHALL");
            for line in setup {
                t.conns[c].cmd_str(line);
            }
            t.conns[c].cmd_str("WATCH k");
            let mut out = t.conns[other].cmd_str(command);
            t.conns[c].cmd_str("MULTI");
            t.conns[c].cmd_str("PING");
            out.extend_from_slice(&t.conns[c].cmd_str("EXEC"));
            out
        });
    }
    d.s("FLUSHALL");
}

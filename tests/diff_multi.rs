//! Differential tests of MULTI/EXEC/DISCARD/WATCH/UNWATCH against redis-server (1 and 4
//! shards). Keys are untagged on purpose: with 4 shards most blocks span shards.

#[macro_use]
mod common;

use common::*;

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

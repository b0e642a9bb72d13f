//! Pub/sub against redis-server: each scenario runs on redis and on Tessera (1 and 4 shards)
//! with several connections (so subscribers and publishers sit on different shards), and the
//! transcripts of everything every connection received must be identical.

use crate::common::*;
use std::time::Duration;

/// Like `logged_cmd` for replies whose order is Redis's hash-table order: items are sorted.
fn cmd_sorted(c: &mut RawConn, log: &mut Vec<String>, line: &str) {
    send_line(c, line);
    let mut items: Vec<String> = match resp_parse(&c.read_reply()) {
        Value::Array(items) => items.iter().map(render).collect(),
        other => vec![render(&other)],
    };
    items.sort();
    log.push(format!("{} -> sorted {:?}", line, items));
}

/// Records the next `n` frames pushed to `c`.
fn pushed(c: &mut RawConn, log: &mut Vec<String>, n: usize) {
    for _ in 0..n {
        log.push(format!("push {}", render_raw(&c.read_reply())));
    }
}

/// Asserts nothing more arrives on `c` for a moment.
fn quiet(c: &mut RawConn, log: &mut Vec<String>) {
    let extra = c.read_for(Duration::from_millis(100));
    log.push(format!("quiet: {}", render_raw(&extra)));
}

#[test]
fn subscribe_publish_unsubscribe() {
    compare_transcripts("subscribe_publish_unsubscribe", |port| {
        let mut log = Vec::new();
        let mut subs: Vec<RawConn> = (0..4).map(|_| RawConn::connect(port)).collect();
        let mut publisher = RawConn::connect(port);
        for (i, s) in subs.iter_mut().enumerate() {
            send_line(s, &format!("SUBSCRIBE news ch{}", i));
            pushed(s, &mut log, 2);
        }
        send_line(&mut subs[0], "PSUBSCRIBE n* c?0");
        pushed(&mut subs[0], &mut log, 2);
        logged_cmd(&mut publisher, &mut log, "PUBLISH news hello");
        logged_cmd(&mut publisher, &mut log, "PUBLISH ch0 zero");
        logged_cmd(&mut publisher, &mut log, "PUBLISH ch3 three");
        logged_cmd(&mut publisher, &mut log, "PUBLISH nobody x");
        pushed(&mut subs[0], &mut log, 5);
        for s in subs.iter_mut().skip(1) {
            pushed(s, &mut log, 1);
        }
        pushed(&mut subs[3], &mut log, 1);
        // Restricted commands and PING while subscribed (RESP2).
        logged_cmd(&mut subs[1], &mut log, "GET x");
        logged_cmd(&mut subs[1], &mut log, "PING");
        logged_cmd(&mut subs[1], &mut log, "PING hi");
        logged_cmd(&mut publisher, &mut log, "PUBSUB NUMSUB news ch0 ch9");
        logged_cmd(&mut publisher, &mut log, "PUBSUB NUMPAT");
        cmd_sorted(&mut publisher, &mut log, "PUBSUB CHANNELS ch*");
        // INFO's counts: distinct channels and patterns over the whole server.
        let info = String::from_utf8_lossy(&publisher.cmd(&[b"INFO", b"stats"])).to_string();
        for line in info.lines() {
            if line.starts_with("pubsub_") {
                log.push(line.to_string());
            }
        }
        send_line(&mut subs[1], "UNSUBSCRIBE news");
        pushed(&mut subs[1], &mut log, 1);
        logged_cmd(&mut publisher, &mut log, "PUBLISH news again");
        pushed(&mut subs[0], &mut log, 2);
        pushed(&mut subs[2], &mut log, 1);
        pushed(&mut subs[3], &mut log, 1);
        quiet(&mut subs[1], &mut log);
        send_line(&mut subs[0], "PUNSUBSCRIBE c?0");
        pushed(&mut subs[0], &mut log, 1);
        send_line(&mut subs[1], "UNSUBSCRIBE ch1");
        pushed(&mut subs[1], &mut log, 1);
        logged_cmd(&mut subs[1], &mut log, "UNSUBSCRIBE");
        logged_cmd(&mut subs[1], &mut log, "SET now allowed");
        logged_cmd(&mut subs[2], &mut log, "RESET");
        logged_cmd(&mut publisher, &mut log, "PUBLISH ch2 after-reset");
        logged_cmd(
            &mut publisher,
            &mut log,
            "PUBSUB NUMSUB ch0 ch1 ch2 ch3 news",
        );
        logged_cmd(&mut publisher, &mut log, "PUBSUB HELP");
        logged_cmd(&mut publisher, &mut log, "PUBSUB NOPE");
        logged_cmd(&mut publisher, &mut log, "PUBLISH a");
        logged_cmd(&mut publisher, &mut log, "UNSUBSCRIBE");
        logged_cmd(&mut publisher, &mut log, "PUNSUBSCRIBE");
        log
    });
}

#[test]
fn resp3_pushes_and_shard_channels() {
    compare_transcripts("resp3_pushes_and_shard_channels", |port| {
        let mut log = Vec::new();
        let mut sub = RawConn::connect(port);
        let mut publisher = RawConn::connect(port);
        send_line(&mut sub, "HELLO 3");
        sub.read_reply();
        send_line(&mut sub, "SUBSCRIBE a");
        pushed(&mut sub, &mut log, 1);
        // RESP3 clients may run any command while subscribed.
        logged_cmd(&mut sub, &mut log, "SET k v");
        logged_cmd(&mut sub, &mut log, "PING");
        logged_cmd(&mut publisher, &mut log, "PUBLISH a m1");
        pushed(&mut sub, &mut log, 1);
        send_line(&mut sub, "SSUBSCRIBE {t}1 {t}2");
        pushed(&mut sub, &mut log, 2);
        send_line(&mut sub, "SSUBSCRIBE x y");
        pushed(&mut sub, &mut log, 2);
        logged_cmd(&mut publisher, &mut log, "SPUBLISH {t}1 m2");
        logged_cmd(&mut publisher, &mut log, "PUBLISH {t}1 not-shard");
        pushed(&mut sub, &mut log, 1);
        cmd_sorted(&mut publisher, &mut log, "PUBSUB SHARDCHANNELS");
        logged_cmd(&mut publisher, &mut log, "PUBSUB SHARDNUMSUB {t}1 {t}3");
        send_line(&mut sub, "SUNSUBSCRIBE {t}2");
        pushed(&mut sub, &mut log, 1);
        quiet(&mut sub, &mut log);
        log
    });
}

/// A RESP3 client's own messages (a PUBLISH to a channel it listens to, keyspace events of its
/// own writes, on any shard) come before the reply of the command that caused them, as in
/// Redis 7.0; a (un)subscribe's confirmation comes before anything sent on the new channel.
/// Inside EXEC they come before the EXEC reply (Redis 7.0 puts them inside the array, which
/// RESP3 forbids; 7.2 puts them after it), so that case is checked on Tessera only.
#[test]
fn resp3_own_messages_come_before_the_reply() {
    compare_transcripts("resp3_own_messages_come_before_the_reply", |port| {
        let mut log = Vec::new();
        let mut c = RawConn::connect(port);
        send_line(&mut c, "HELLO 3");
        c.read_reply();
        logged_cmd(&mut c, &mut log, "CONFIG SET notify-keyspace-events KEA");
        send_line(&mut c, "SUBSCRIBE a b __keyevent@0__:set");
        pushed(&mut c, &mut log, 3);
        send_line(&mut c, "PSUBSCRIBE a* __keyspace@0__:k*");
        pushed(&mut c, &mut log, 2);
        // Frames in the order they arrive: messages, then the reply.
        send_line(&mut c, "PUBLISH a self");
        pushed(&mut c, &mut log, 3);
        send_line(&mut c, "SET k1 v");
        pushed(&mut c, &mut log, 3);
        // Keys on every shard with 4 shards; a split MSET and DEL.
        send_line(&mut c, "MSET k1 1 k2 2 k3 3 k4 4 k5 5");
        pushed(&mut c, &mut log, 11);
        send_line(&mut c, "DEL k1 k2 k3");
        pushed(&mut c, &mut log, 4);
        c.send(&encode(&[
            b"EVAL",
            b"redis.call('set','k7','1') return redis.call('publish','b','x')",
            b"0",
        ]));
        pushed(&mut c, &mut log, 4);
        // A pipeline keeps each reply after its own messages.
        c.send(&encode(&[b"PUBLISH", b"b", b"p1"]));
        c.send(&encode(&[b"PING"]));
        c.send(&encode(&[b"PUBLISH", b"b", b"p2"]));
        pushed(&mut c, &mut log, 5);
        send_line(&mut c, "UNSUBSCRIBE b");
        pushed(&mut c, &mut log, 1);
        logged_cmd(&mut c, &mut log, "CONFIG SET notify-keyspace-events ''");
        quiet(&mut c, &mut log);
        log
    });
    let t = start_tessera(4, &[]);
    let mut c = RawConn::connect(t.port);
    send_line(&mut c, "HELLO 3");
    c.read_reply();
    send_line(&mut c, "SUBSCRIBE a");
    c.read_reply();
    for line in ["MULTI", "PUBLISH a 1", "PING"] {
        send_line(&mut c, line);
        c.read_reply();
    }
    send_line(&mut c, "EXEC");
    assert_eq!(
        c.read_reply(),
        b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\n1\r\n".to_vec()
    );
    assert_eq!(c.read_reply(), b"*2\r\n:1\r\n+PONG\r\n".to_vec());
}

/// A subscriber that stops reading is disconnected once its pending messages pass
/// `client-output-buffer-limit pubsub` (hard limit here), on Redis and on Tessera alike; the
/// publisher and everyone else carry on.
#[test]
fn slow_subscriber_is_cut_off_by_the_output_buffer_limit() {
    let check = |port: u16, what: &str| {
        let mut p = RawConn::connect(port);
        assert_eq!(
            p.cmd(&[
                b"CONFIG",
                b"SET",
                b"client-output-buffer-limit",
                b"pubsub 256kb 128kb 60"
            ]),
            b"+OK\r\n"
        );
        let mut sub = RawConn::connect(port);
        send_line(&mut sub, "SUBSCRIBE slow");
        sub.read_reply();
        // Far more than the limit plus what the socket buffers can absorb.
        let payload = vec![b'x'; 4096];
        let mut cut = false;
        for i in 0..20_000 {
            let n = p.cmd(&[b"PUBLISH", b"slow", &payload]);
            assert!(
                n == b":1\r\n" || n == b":0\r\n",
                "{}: PUBLISH {}",
                what,
                String::from_utf8_lossy(&n)
            );
            if n == b":0\r\n" {
                cut = true;
                break;
            }
            if i % 500 == 499 {
                let numsub = p.cmd(&[b"PUBSUB", b"NUMSUB", b"slow"]);
                if numsub.ends_with(b":0\r\n") {
                    cut = true;
                    break;
                }
            }
        }
        assert!(
            cut,
            "{}: the subscriber that never reads was never cut off",
            what
        );
        assert_eq!(p.cmd(&[b"PING"]), b"+PONG\r\n", "{}", what);
    };
    if let Some(redis) = start_redis() {
        check(redis.port, "redis");
    }
    for shards in [1, 4] {
        let t = start_tessera(shards, &[]);
        check(t.port, &format!("tessera {} shards", shards));
    }
}

#[test]
fn subscribe_commands_inside_exec() {
    let mut d = diff_or_skip!("subscribe_commands_inside_exec");
    d.section("SSUBSCRIBE is refused inside EXEC");
    d.script(&["MULTI", "SSUBSCRIBE s", "PING", "EXEC", "PING"]);
    d.section("SUBSCRIBE and PSUBSCRIBE run, and the rest of the block sees a subscriber");
    d.script(&[
        "SET x 1",
        "MULTI",
        "SUBSCRIBE ch",
        "PSUBSCRIBE p*",
        "PING",
        "PING hi",
        "GET x",
        "EXEC",
        "PING",
    ]);
    d.section("refused while subscribed, container commands named in full");
    d.script(&[
        "CLIENT ID",
        "CLIENT SETNAME n",
        "client getname",
        "CONFIG GET x",
        "CLIENT NOSUCH",
        "CLIENT",
        "GET x",
        "MULTI",
        "EXEC",
        "EXEC x",
        "UNSUBSCRIBE ch",
        "PUNSUBSCRIBE p*",
        "PING",
        "EXEC",
    ]);
    d.section("RESP3: no subscribed mode");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "MULTI",
        "SUBSCRIBE ch",
        "PING",
        "SSUBSCRIBE s",
        "EXEC",
        "PING",
        "UNSUBSCRIBE ch",
    ]);
    d.s_norm("HELLO 2", Norm::Hello);
}

#[test]
fn pubsub_subcommand_arity_errors() {
    let mut d = diff_or_skip!("pubsub_subcommand_arity_errors");
    d.script(&[
        "PUBSUB CHANNELS a b",
        "pubsub channels a b",
        "PUBSUB SHARDCHANNELS a b",
        "PUBSUB NUMPAT x",
        "PUBSUB HELP x",
        "PUBSUB NOSUCH",
        "PUBSUB",
        "PUBSUB CHANNELS",
        "PUBSUB NUMSUB",
        "PUBSUB SHARDNUMSUB",
        "PUBSUB NUMPAT",
    ]);
}

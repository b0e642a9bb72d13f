//! Pub/sub against redis-server: each scenario runs on redis and on Tessera (1 and 4 shards)
//! with several connections (so subscribers and publishers sit on different shards), and the
//! transcripts of everything every connection received must be identical.

mod common;

use common::*;
use std::time::Duration;

/// Runs `scenario` against redis and every Tessera shard count; transcripts must match.
fn compare(name: &str, scenario: fn(u16) -> Vec<String>) {
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

fn send(c: &mut RawConn, line: &str) {
    let args = split_cmd(line);
    let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    c.send(&encode(&refs));
}

/// Sends `line` and records the one reply it gets.
fn cmd(c: &mut RawConn, log: &mut Vec<String>, line: &str) {
    send(c, line);
    log.push(format!("{} -> {}", line, render_raw(&c.read_reply())));
}

/// Like `cmd` for replies whose order is Redis's hash-table order: items are sorted.
fn cmd_sorted(c: &mut RawConn, log: &mut Vec<String>, line: &str) {
    send(c, line);
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
    compare("subscribe_publish_unsubscribe", |port| {
        let mut log = Vec::new();
        let mut subs: Vec<RawConn> = (0..4).map(|_| RawConn::connect(port)).collect();
        let mut publisher = RawConn::connect(port);
        for (i, s) in subs.iter_mut().enumerate() {
            send(s, &format!("SUBSCRIBE news ch{}", i));
            pushed(s, &mut log, 2);
        }
        send(&mut subs[0], "PSUBSCRIBE n* c?0");
        pushed(&mut subs[0], &mut log, 2);
        cmd(&mut publisher, &mut log, "PUBLISH news hello");
        cmd(&mut publisher, &mut log, "PUBLISH ch0 zero");
        cmd(&mut publisher, &mut log, "PUBLISH ch3 three");
        cmd(&mut publisher, &mut log, "PUBLISH nobody x");
        pushed(&mut subs[0], &mut log, 5);
        for s in subs.iter_mut().skip(1) {
            pushed(s, &mut log, 1);
        }
        pushed(&mut subs[3], &mut log, 1);
        // Restricted commands and PING while subscribed (RESP2).
        cmd(&mut subs[1], &mut log, "GET x");
        cmd(&mut subs[1], &mut log, "PING");
        cmd(&mut subs[1], &mut log, "PING hi");
        cmd(&mut publisher, &mut log, "PUBSUB NUMSUB news ch0 ch9");
        cmd(&mut publisher, &mut log, "PUBSUB NUMPAT");
        cmd_sorted(&mut publisher, &mut log, "PUBSUB CHANNELS ch*");
        // INFO's counts: distinct channels and patterns over the whole server.
        let info = String::from_utf8_lossy(&publisher.cmd(&[b"INFO", b"stats"])).to_string();
        for line in info.lines() {
            if line.starts_with("pubsub_") {
                log.push(line.to_string());
            }
        }
        send(&mut subs[1], "UNSUBSCRIBE news");
        pushed(&mut subs[1], &mut log, 1);
        cmd(&mut publisher, &mut log, "PUBLISH news again");
        pushed(&mut subs[0], &mut log, 2);
        pushed(&mut subs[2], &mut log, 1);
        pushed(&mut subs[3], &mut log, 1);
        quiet(&mut subs[1], &mut log);
        send(&mut subs[0], "PUNSUBSCRIBE c?0");
        pushed(&mut subs[0], &mut log, 1);
        send(&mut subs[1], "UNSUBSCRIBE ch1");
        pushed(&mut subs[1], &mut log, 1);
        cmd(&mut subs[1], &mut log, "UNSUBSCRIBE");
        cmd(&mut subs[1], &mut log, "SET now allowed");
        cmd(&mut subs[2], &mut log, "RESET");
        cmd(&mut publisher, &mut log, "PUBLISH ch2 after-reset");
        cmd(
            &mut publisher,
            &mut log,
            "PUBSUB NUMSUB ch0 ch1 ch2 ch3 news",
        );
        cmd(&mut publisher, &mut log, "PUBSUB HELP");
        cmd(&mut publisher, &mut log, "PUBSUB NOPE");
        cmd(&mut publisher, &mut log, "PUBLISH a");
        cmd(&mut publisher, &mut log, "UNSUBSCRIBE");
        cmd(&mut publisher, &mut log, "PUNSUBSCRIBE");
        log
    });
}

#[test]
fn resp3_pushes_and_shard_channels() {
    compare("resp3_pushes_and_shard_channels", |port| {
        let mut log = Vec::new();
        let mut sub = RawConn::connect(port);
        let mut publisher = RawConn::connect(port);
        send(&mut sub, "HELLO 3");
        sub.read_reply();
        send(&mut sub, "SUBSCRIBE a");
        pushed(&mut sub, &mut log, 1);
        // RESP3 clients may run any command while subscribed.
        cmd(&mut sub, &mut log, "SET k v");
        cmd(&mut sub, &mut log, "PING");
        cmd(&mut publisher, &mut log, "PUBLISH a m1");
        pushed(&mut sub, &mut log, 1);
        send(&mut sub, "SSUBSCRIBE {t}1 {t}2");
        pushed(&mut sub, &mut log, 2);
        send(&mut sub, "SSUBSCRIBE x y");
        pushed(&mut sub, &mut log, 2);
        cmd(&mut publisher, &mut log, "SPUBLISH {t}1 m2");
        cmd(&mut publisher, &mut log, "PUBLISH {t}1 not-shard");
        pushed(&mut sub, &mut log, 1);
        cmd_sorted(&mut publisher, &mut log, "PUBSUB SHARDCHANNELS");
        cmd(&mut publisher, &mut log, "PUBSUB SHARDNUMSUB {t}1 {t}3");
        send(&mut sub, "SUNSUBSCRIBE {t}2");
        pushed(&mut sub, &mut log, 1);
        quiet(&mut sub, &mut log);
        log
    });
}

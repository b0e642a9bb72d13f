//! Blocking pops against redis-server: each scenario runs on redis and on Tessera (1 and 4
//! shards) with several connections, and the transcripts must be identical. A client is known
//! to be blocked when INFO reports it (`blocked_clients`), never by sleeping.

use crate::common::*;

#[test]
fn immediate_timeout_and_errors() {
    compare_transcripts("immediate_timeout_and_errors", |port| {
        let mut log = Vec::new();
        let mut c = RawConn::connect(port);
        for line in [
            "RPUSH l a b c",
            "BLPOP l 0",
            "BRPOP nokey l 0",
            "BLPOP nokey 0.01",
            "BRPOP nokey 0.01",
            "RPUSH l d",
            "BLMOVE l dst LEFT RIGHT 0",
            "BRPOPLPUSH l dst 0",
            "BLMOVE nokey dst LEFT RIGHT 0.01",
            "BRPOPLPUSH nokey dst 0.01",
            "LRANGE dst 0 -1",
            "RPUSH m 1 2 3 4",
            "BLMPOP 0 2 nokey m RIGHT COUNT 3",
            "BLMPOP 0.01 1 nokey LEFT",
            "ZADD z 1 a 2 b 3 c",
            "BZPOPMIN z 0",
            "BZPOPMAX nokey z 0",
            "BZMPOP 0 2 nokey z MIN COUNT 5",
            "BZPOPMIN z 0.01",
            "BZMPOP 0.01 1 z MAX",
            "BLPOP l x",
            "BLPOP l -1",
            "BLPOP l 1e400",
            "BLMPOP x 1 a LEFT",
            "BLMPOP 0 0 a LEFT",
            "BLMPOP 0 1 a UP",
            "BLMPOP 0 1 a LEFT COUNT 0",
            "BZMPOP 0 1 a MAX COUNT 0",
            // numkeys, the direction and COUNT are checked before the timeout.
            "BLMPOP k a b c d e f g",
            "BZMPOP k a b c d e f g",
            "BLMPOP k abc a LEFT",
            "BLMPOP k 5 a LEFT",
            "BLMPOP -1 5 a LEFT",
            "BLMPOP -1 1 a MIDDLE",
            "BLMPOP -1 1 a LEFT COUNT 0",
            "BZMPOP -1 0 a MIN",
            "BZMPOP -1 9 a MIN",
            "BLMPOP -1 1 a LEFT",
            // Up to i64::MAX milliseconds a timeout is valid (it does not expire here).
            "RPUSH ready x y",
            "BLPOP ready 9.2e15",
            "BLPOP ready 9223372036854774",
            "BLPOP ready 9223372036854776",
            "BLMOVE a b UP RIGHT 0",
            "BLPOP l",
            "SET s str",
            "BLPOP s 0",
            "BLPOP nokey s 0",
            "BZPOPMIN s 0",
            "RPUSH l2 x",
            "BLMOVE l2 s LEFT LEFT 0",
            "LLEN l2",
            "MULTI",
            "BLPOP nokey 0",
            "BLMOVE nokey b LEFT LEFT 0",
            "BZPOPMIN nokey 0",
            "BLMPOP 0 1 nokey LEFT",
            "RPUSH q 1",
            "BLPOP q 0",
            "EXEC",
            "HELLO 3",
            "BLPOP nokey 0.01",
            "BLMOVE nokey dst LEFT RIGHT 0.01",
            "ZADD z3 1 a",
            "BZPOPMIN z3 0",
            "BZPOPMIN z3 0.01",
        ] {
            if line == "HELLO 3" {
                send_line(&mut c, line);
                c.read_reply();
                continue;
            }
            logged_cmd(&mut c, &mut log, line);
        }
        log
    });
}

#[test]
fn served_in_fifo_order_before_the_next_command() {
    compare_transcripts("served_in_fifo_order_before_the_next_command", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut b = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        send_line(&mut a, "BLPOP q 0");
        wait_blocked_clients(port, 1);
        send_line(&mut b, "BRPOP q other 0");
        wait_blocked_clients(port, 2);
        // One push of three elements: the oldest waiter gets the head, the next the tail, and
        // the pusher's own next command sees what is left.
        logged_cmd(&mut p, &mut log, "LPUSH q x y z");
        logged_reply(&mut a, &mut log, "a");
        logged_reply(&mut b, &mut log, "b");
        logged_cmd(&mut p, &mut log, "LRANGE q 0 -1");
        // A blocked client's pipelined commands run after it is served.
        send_line(&mut a, "BLPOP q2 0");
        send_line(&mut a, "SET after-unblock 1");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "RPUSH q2 v");
        logged_reply(&mut a, &mut log, "a");
        logged_reply(&mut a, &mut log, "a");
        logged_cmd(&mut p, &mut log, "GET after-unblock");
        // Sorted sets.
        send_line(&mut a, "BZPOPMIN zq 0");
        wait_blocked_clients(port, 1);
        send_line(&mut b, "BZMPOP 0 2 zq zq2 MAX COUNT 2");
        wait_blocked_clients(port, 2);
        logged_cmd(&mut p, &mut log, "ZADD zq 3 c 1 a 2 b");
        logged_reply(&mut a, &mut log, "a");
        logged_reply(&mut b, &mut log, "b");
        logged_cmd(&mut p, &mut log, "ZCARD zq");
        // BLMPOP with COUNT.
        send_line(&mut a, "BLMPOP 0 2 m1 m2 RIGHT COUNT 2");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "RPUSH m2 1 2 3");
        logged_reply(&mut a, &mut log, "a");
        // One transaction feeding several keys: the keys are served in the order they became
        // ready (a common hash tag keeps the block on one shard).
        send_line(&mut a, "BLPOP {r}a {r}b 0");
        wait_blocked_clients(port, 1);
        send_line(&mut b, "BLPOP {r}b {r}a 0");
        wait_blocked_clients(port, 2);
        let mut c = RawConn::connect(port);
        send_line(&mut c, "BRPOP {r}a 0");
        wait_blocked_clients(port, 3);
        for line in ["MULTI", "RPUSH {r}b b1", "RPUSH {r}a a1 a2", "EXEC"] {
            logged_cmd(&mut p, &mut log, line);
        }
        logged_reply(&mut a, &mut log, "a");
        logged_reply(&mut b, &mut log, "b");
        logged_reply(&mut c, &mut log, "c");
        log
    });
}

#[test]
fn blmove_chains_and_cross_shard_keys() {
    compare_transcripts("blmove_chains_and_cross_shard_keys", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut b = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        // a moves from src to dst; b waits on dst: one push feeds both, in order.
        send_line(&mut a, "BLMOVE {c}src {c}dst RIGHT LEFT 0");
        wait_blocked_clients(port, 1);
        send_line(&mut b, "BLPOP {c}dst 0");
        wait_blocked_clients(port, 2);
        logged_cmd(&mut p, &mut log, "RPUSH {c}src e1");
        logged_reply(&mut a, &mut log, "a");
        logged_reply(&mut b, &mut log, "b");
        logged_cmd(&mut p, &mut log, "EXISTS {c}src {c}dst");
        // Keys on different shards (untagged): served whichever gets data.
        send_line(&mut a, "BLPOP k1 k2 k3 0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "RPUSH k3 v3");
        logged_reply(&mut a, &mut log, "a");
        send_line(&mut a, "BRPOPLPUSH from to 0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "RPUSH from f1 f2");
        logged_reply(&mut a, &mut log, "a");
        logged_cmd(&mut p, &mut log, "LRANGE from 0 -1");
        logged_cmd(&mut p, &mut log, "LRANGE to 0 -1");
        // A push inside MULTI/EXEC serves waiters after the whole block.
        send_line(&mut a, "BLPOP mq 0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "MULTI");
        logged_cmd(&mut p, &mut log, "RPUSH mq 1 2");
        logged_cmd(&mut p, &mut log, "LPOP mq");
        logged_cmd(&mut p, &mut log, "EXEC");
        logged_reply(&mut a, &mut log, "a");
        log
    });
}

/// A BLMOVE/BRPOPLPUSH whose source and destination are on different shards is served in its
/// turn among the clients blocked on its source, like any other: the oldest waiter gets the
/// pushed element, whether it is such a BLMOVE or a client behind it. With 2, 3 and 4 shards q
/// and p1 share a shard while p2 and p3 are on others; with one shard all are served in place.
/// Each write is followed by the replies of the clients it serves: Tessera moves such an
/// element after the push has replied (the README's compatibility notes say so), so the next
/// command waits for the move's reply instead of racing it.
#[test]
fn cross_shard_blmove_is_served_in_its_turn() {
    compare_transcripts("cross_shard_blmove_is_served_in_its_turn", |port| {
        let mut log = Vec::new();
        let mut conns: Vec<RawConn> = (0..3).map(|_| RawConn::connect(port)).collect();
        let mut p = RawConn::connect(port);
        let mut scene = |p: &mut RawConn,
                         log: &mut Vec<String>,
                         setup: &[&str],
                         blocks: &[&str],
                         writes: &[(&str, &[usize])]| {
            logged_cmd(p, log, "FLUSHALL");
            for line in setup {
                logged_cmd(p, log, line);
            }
            for (i, line) in blocks.iter().enumerate() {
                send_line(&mut conns[i], line);
                wait_blocked_clients(port, i + 1);
            }
            for (line, served) in writes {
                logged_cmd(p, log, line);
                for &i in served.iter() {
                    logged_reply(&mut conns[i], log, &format!("c{i}"));
                }
            }
            for key in ["q", "p1", "p2", "p3"] {
                logged_cmd(p, log, &format!("LRANGE {key} 0 -1"));
            }
        };
        // Before a client served in place, on the same push.
        scene(
            &mut p,
            &mut log,
            &[],
            &["BLMOVE q p2 LEFT RIGHT 0", "BLMOVE q p1 LEFT RIGHT 0"],
            &[("RPUSH q x", &[0]), ("RPUSH q y", &[1])],
        );
        // Pushes to its destination do not wake it or cost it its place.
        scene(
            &mut p,
            &mut log,
            &[],
            &["BLMOVE q p2 LEFT RIGHT 0", "BLPOP q 0"],
            &[
                ("RPUSH p2 z", &[]),
                ("RPUSH q x", &[0]),
                ("RPUSH q y", &[1]),
            ],
        );
        // Several in a row, one push for all.
        scene(
            &mut p,
            &mut log,
            &[],
            &[
                "BLMOVE q p2 LEFT RIGHT 0",
                "BRPOPLPUSH q p3 0",
                "BLMOVE q p1 LEFT LEFT 0",
            ],
            &[("RPUSH q x y z", &[0, 1, 2])],
        );
        // Behind a client served in place.
        scene(
            &mut p,
            &mut log,
            &[],
            &[
                "BLPOP q 0",
                "BLMOVE q p2 RIGHT LEFT 0",
                "BLMOVE q p3 LEFT LEFT 0",
            ],
            &[
                ("RPUSH q x", &[0]),
                ("RPUSH q y", &[1]),
                ("RPUSH q w", &[2]),
            ],
        );
        // A destination of the wrong type: that client gets the error, the next the element.
        scene(
            &mut p,
            &mut log,
            &["SET p2 str"],
            &["BLMOVE q p2 LEFT RIGHT 0", "BLPOP q 0"],
            &[("RPUSH q x", &[0, 1])],
        );
        // A transaction that pushes and pops again feeds nobody; the next push does.
        scene(
            &mut p,
            &mut log,
            &[],
            &["BLMOVE q p2 LEFT RIGHT 0", "BLPOP q 0"],
            &[
                ("MULTI", &[]),
                ("RPUSH q x", &[]),
                ("LPOP q", &[]),
                ("EXEC", &[]),
                ("RPUSH q y", &[0]),
                ("RPUSH q v", &[1]),
            ],
        );
        // Timed out with another client behind it: that one is served as usual.
        scene(
            &mut p,
            &mut log,
            &[],
            &["BLMOVE q p2 LEFT RIGHT 0.1", "BLPOP q 0"],
            &[("BLPOP nothing 0.6", &[0]), ("RPUSH q x", &[1])],
        );
        log
    });
}

#[test]
fn clients_blocked_over_several_shards_are_served_in_place() {
    // With 4 shards t and q live on different shards. A client blocked on both is served the
    // moment one of them gets something, from that key alone, in its turn among the clients
    // blocked on that key, as Redis serves it.
    compare_transcripts(
        "clients_blocked_over_several_shards_are_served_in_place",
        |port| {
            let mut log = Vec::new();
            let mut a = RawConn::connect(port);
            let mut b = RawConn::connect(port);
            let mut p = RawConn::connect(port);
            let mut both_then_one = |p: &mut RawConn,
                                     log: &mut Vec<String>,
                                     setup: &[&str],
                                     a_blocks: &str,
                                     b_blocks: &str,
                                     writes: &[&str]| {
                logged_cmd(p, log, "FLUSHALL");
                for line in setup {
                    logged_cmd(p, log, line);
                }
                send_line(&mut a, a_blocks);
                wait_blocked_clients(port, 1);
                send_line(&mut b, b_blocks);
                wait_blocked_clients(port, 2);
                for line in writes {
                    logged_cmd(p, log, line);
                }
                logged_reply(&mut a, log, "a");
                logged_reply(&mut b, log, "b");
            };
            // The oldest waiter first, whichever shards its other keys are on.
            both_then_one(
                &mut p,
                &mut log,
                &[],
                "BLPOP t q 0",
                "BLPOP t 0",
                &["RPUSH t x", "RPUSH t y"],
            );
            both_then_one(
                &mut p,
                &mut log,
                &[],
                "BRPOP q t 0",
                "BLPOP q 0",
                &["RPUSH q x", "RPUSH q y"],
            );
            both_then_one(
                &mut p,
                &mut log,
                &[],
                "BZPOPMIN q t 0",
                "BZPOPMAX t 0",
                &["ZADD t 1 x", "ZADD t 2 y"],
            );
            both_then_one(
                &mut p,
                &mut log,
                &[],
                "BLMPOP 0 2 t q LEFT COUNT 5",
                "BLMPOP 0 1 q RIGHT",
                &["RPUSH q a b", "RPUSH q c", "RPUSH t d"],
            );
            // From the key that got something first, that key alone.
            both_then_one(
                &mut p,
                &mut log,
                &[],
                "BLPOP t q 0",
                "BLPOP q 0",
                &["RPUSH q 1", "RPUSH t 2", "RPUSH q 3"],
            );
            both_then_one(
                &mut p,
                &mut log,
                &["XADD t 1-0 f v"],
                "XREAD BLOCK 0 STREAMS t q $ $",
                "XREAD BLOCK 0 STREAMS q t $ $",
                &["XADD q 1-0 f v", "XADD t 2-0 f v"],
            );
            // Consumer groups: the group moves on the key served only.
            let groups = [
                "XGROUP CREATE t g $ MKSTREAM",
                "XGROUP CREATE q g $ MKSTREAM",
            ];
            both_then_one(
                &mut p,
                &mut log,
                &groups,
                "XREADGROUP GROUP g a BLOCK 0 STREAMS t q > >",
                "XREADGROUP GROUP g b BLOCK 0 STREAMS t >",
                &["XADD t 1-0 f v", "XADD t 2-0 f v", "XADD q 1-0 f v"],
            );
            logged_cmd(&mut p, &mut log, "XINFO GROUPS q");
            logged_cmd(&mut p, &mut log, "XPENDING t g");
            // A key deleted or a group destroyed under a blocked XREADGROUP ends it, in its turn.
            both_then_one(
                &mut p,
                &mut log,
                &groups,
                "XREADGROUP GROUP g a BLOCK 0 STREAMS t q > >",
                "BLPOP u 0",
                &["DEL t", "RPUSH u z"],
            );
            both_then_one(
                &mut p,
                &mut log,
                &groups,
                "XREADGROUP GROUP g a BLOCK 0 STREAMS q t > >",
                "XREADGROUP GROUP g b BLOCK 0 STREAMS t >",
                &["XGROUP DESTROY t g"],
            );
            // Timeouts.
            both_then_one(
                &mut p,
                &mut log,
                &[],
                "BLPOP t q 0.5",
                "BZPOPMIN q t 0.5",
                &[],
            );
            logged_cmd(&mut p, &mut log, "INFO errorstats");
            log
        },
    );
}

#[test]
fn disconnect_and_wrong_type_while_blocked() {
    compare_transcripts("disconnect_and_wrong_type_while_blocked", |port| {
        let mut log = Vec::new();
        let mut p = RawConn::connect(port);
        {
            let mut gone = RawConn::connect(port);
            send_line(&mut gone, "BLPOP dq 0");
            wait_blocked_clients(port, 1);
        }
        wait_blocked_clients(port, 0);
        logged_cmd(&mut p, &mut log, "RPUSH dq kept");
        logged_cmd(&mut p, &mut log, "LRANGE dq 0 -1");
        // The key becomes a string: the waiter stays blocked, then gets a list.
        let mut a = RawConn::connect(port);
        send_line(&mut a, "BLPOP wt 0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "SET wt string");
        logged_cmd(&mut p, &mut log, "DEL wt");
        logged_cmd(&mut p, &mut log, "RPUSH wt finally");
        logged_reply(&mut a, &mut log, "a");
        // Timeouts answer with a null array in both protocols' shape.
        logged_cmd(&mut a, &mut log, "BLPOP never 0.05");
        logged_cmd(&mut a, &mut log, "BZPOPMIN never 0.05");
        logged_cmd(&mut a, &mut log, "BLMOVE never x LEFT LEFT 0.05");
        log
    });
}

/// The waiter's flags field in CLIENT LIST ("b" while blocked).
fn client_flags(p: &mut RawConn, id: &str) -> String {
    let list = p.cmd(&[b"CLIENT", b"LIST", b"ID", id.as_bytes()]);
    let list = String::from_utf8_lossy(&list).into_owned();
    list.split(' ')
        .find_map(|f| f.strip_prefix("flags="))
        .unwrap_or("?")
        .to_string()
}

#[test]
fn client_unblock() {
    compare_transcripts("client_unblock", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        let id = match resp_parse(&a.cmd(&[b"CLIENT", b"ID"])) {
            Value::Int(n) => n.to_string(),
            other => panic!("CLIENT ID: {:?}", other),
        };
        let unblock = |p: &mut RawConn, log: &mut Vec<String>, how: &str| {
            let line = format!("CLIENT UNBLOCK {} {}", id, how);
            send_line(p, line.trim_end());
            log.push(format!(
                "CLIENT UNBLOCK <id> {} -> {}",
                how,
                render_raw(&p.read_reply())
            ));
        };
        log.push(format!("flags idle: {}", client_flags(&mut p, &id)));
        unblock(&mut p, &mut log, "");
        // One shard, then keys on several shards; TIMEOUT (default) and ERROR.
        for (cmd, how) in [
            ("BLPOP uq 0", ""),
            ("BRPOP uq1 uq2 uq3 0", "TIMEOUT"),
            ("BLMOVE uq ud LEFT RIGHT 0", "ERROR"),
            ("BZPOPMAX uz1 uz2 0", "ERROR"),
            ("BLMPOP 0 2 uq uq9 LEFT", "timeout"),
            // WAIT for replicas that never come: only its timeout or CLIENT UNBLOCK ends it.
            ("WAIT 1 0", ""),
            ("WAIT 2 100000", "ERROR"),
        ] {
            send_line(&mut a, cmd);
            wait_blocked_clients(port, 1);
            log.push(format!("flags blocked: {}", client_flags(&mut p, &id)));
            unblock(&mut p, &mut log, how);
            logged_reply(&mut a, &mut log, cmd);
            wait_blocked_clients(port, 0);
            unblock(&mut p, &mut log, how);
        }
        // The unblocked client goes on normally.
        logged_cmd(&mut a, &mut log, "RPUSH uq x");
        logged_cmd(&mut a, &mut log, "BLPOP uq 0");
        for line in [
            "CLIENT UNBLOCK",
            "CLIENT UNBLOCK x",
            "CLIENT UNBLOCK 1.5",
            "CLIENT UNBLOCK -1",
            "CLIENT UNBLOCK 99999 foo",
            "CLIENT UNBLOCK 99999 error",
            "CLIENT UNBLOCK 99999 TIMEOUT x",
        ] {
            logged_cmd(&mut p, &mut log, line);
        }
        log
    });
}

#[test]
fn keys_fed_by_move_copy_and_swapdb_wake_waiters() {
    compare_transcripts("keys_fed_by_move_copy_and_swapdb_wake_waiters", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        logged_cmd(&mut a, &mut log, "SELECT 1");
        for feed in [
            &["RPUSH q m", "MOVE q 1"][..],
            &["RPUSH src c", "COPY src q DB 1"],
            &["RPUSH q s1 s2", "SWAPDB 0 1"],
            &["ZADD z 1 m", "MOVE z 1"],
        ] {
            let wait = if feed[0].starts_with("ZADD") {
                "BZPOPMIN z 0"
            } else {
                "BLPOP q 0"
            };
            send_line(&mut a, wait);
            wait_blocked_clients(port, 1);
            for line in feed {
                logged_cmd(&mut p, &mut log, line);
            }
            logged_reply(&mut a, &mut log, wait);
            logged_cmd(&mut a, &mut log, "LRANGE q 0 -1");
            logged_cmd(&mut p, &mut log, "FLUSHALL");
        }
        log
    });
}

#[test]
fn scripts_feed_blocked_clients_only_once_they_end() {
    compare_transcripts("scripts_feed_blocked_clients_only_once_they_end", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        send_line(&mut a, "BLPOP a 0");
        wait_blocked_clients(port, 1);
        // Scripts that push and take back (a declared key, then computed names: on several
        // shards those run in global mode): the blocked client sees nothing of them.
        let undo = "redis.call('rpush',KEYS[1],'1') return redis.call('lpop',KEYS[1])";
        logged_args(&mut p, &mut log, &["EVAL", undo, "1", "a"]);
        let undo2 = "redis.call('rpush','a','2') return redis.call('lpop','a')";
        logged_args(&mut p, &mut log, &["EVAL", undo2, "0"]);
        let del = "local r1=redis.call('rpush','a','x') local r2=redis.call('del','a') \
                   return {r1,r2,redis.call('exists','a')}";
        logged_args(&mut p, &mut log, &["EVAL", del, "0"]);
        // A script that leaves elements: the client gets one after the script's reply.
        let feed = "redis.call('rpush','a','v','w') return redis.call('llen','a')";
        logged_args(&mut p, &mut log, &["EVAL", feed, "0"]);
        logged_reply(&mut a, &mut log, "a");
        logged_cmd(&mut p, &mut log, "LRANGE a 0 -1");
        // Sorted sets, with a script whose declared keys span shards.
        send_line(&mut a, "BZPOPMIN z 0");
        wait_blocked_clients(port, 1);
        let zs = "redis.call('zadd',KEYS[1],'1','m') redis.call('set',KEYS[2],'x') \
                  return redis.call('zcard',KEYS[1])";
        logged_args(&mut p, &mut log, &["EVAL", zs, "2", "z", "other"]);
        logged_reply(&mut a, &mut log, "a");
        // Functions too.
        let lib = "#!lua name=feedlib\nredis.register_function('pushdel', function(keys) \
                   redis.call('rpush', keys[1], 'f') return redis.call('del', keys[1]) end)";
        logged_args(&mut p, &mut log, &["FUNCTION", "LOAD", "REPLACE", lib]);
        send_line(&mut a, "BLPOP fk 0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "FCALL pushdel 1 fk");
        logged_cmd(&mut p, &mut log, "RPUSH fk last");
        logged_reply(&mut a, &mut log, "a");
        logged_cmd(&mut p, &mut log, "FUNCTION DELETE feedlib");
        log
    });
}

/// The statistics of blocking commands, as Redis 7.0 keeps them: a call that blocks is counted
/// then, and its latency recorded only once it is served or ended by CLIENT UNBLOCK (as a
/// failed call, either way); a timeout records none. INFO latencystats compared by names and
/// value shapes (timings differ), commandstats by counts, errorstats exactly. Keys on one
/// shard and on several (`k1 k2 k3`).
#[test]
fn blocked_commands_statistics_and_latency() {
    compare_transcripts("blocked_commands_statistics_and_latency", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        let id = match resp_parse(&a.cmd(&[b"CLIENT", b"ID"])) {
            Value::Int(n) => n.to_string(),
            other => panic!("CLIENT ID: {:?}", other),
        };
        let stats = |p: &mut RawConn, log: &mut Vec<String>| {
            log.push(latencystats_shape(&p.cmd(&[b"INFO", b"latencystats"])));
            let lines: Vec<String> = commandstats_counts(&p.cmd(&[b"INFO", b"commandstats"]))
                .into_iter()
                .filter(|l| {
                    ["blpop", "brpop", "blmove", "bzpopmin", "bzmpop", "wait"]
                        .iter()
                        .any(|c| l.starts_with(&format!("cmdstat_{c}:")))
                })
                .collect();
            log.push(lines.join(" "));
            log.push(render_raw(&p.cmd(&[b"INFO", b"errorstats"])));
        };
        logged_cmd(&mut p, &mut log, "CONFIG RESETSTAT");
        // Timeouts: counted calls, no latency.
        for line in [
            "BLPOP nokey 0.01",
            "BZPOPMIN nokey 0.01",
            "BRPOP k1 k2 k3 0.01",
            "WAIT 1 10",
        ] {
            logged_cmd(&mut a, &mut log, line);
        }
        stats(&mut p, &mut log);
        // Served at once, refused by the handler (failed, recorded), or in MULTI (never
        // blocks).
        for line in [
            "RPUSH now x",
            "BLPOP now 0",
            "SET str v",
            "BLPOP str 0",
            "BLPOP str abc",
            "BZMPOP 0 0 z MIN",
            "MULTI",
            "BRPOP nokey 0",
            "EXEC",
        ] {
            logged_cmd(&mut a, &mut log, line);
        }
        stats(&mut p, &mut log);
        logged_cmd(&mut p, &mut log, "CONFIG RESETSTAT");
        // Served after blocking, on one shard and across shards.
        for (cmd, push) in [
            ("BLPOP bq 0", "RPUSH bq x"),
            ("BRPOP k1 k2 k3 0", "RPUSH k2 y"),
            ("BLMOVE from to LEFT RIGHT 0", "RPUSH from z"),
        ] {
            send_line(&mut a, cmd);
            wait_blocked_clients(port, 1);
            logged_cmd(&mut p, &mut log, push);
            logged_reply(&mut a, &mut log, cmd);
        }
        stats(&mut p, &mut log);
        // CLIENT UNBLOCK, TIMEOUT (the default) and ERROR: failed calls with their latency.
        for (cmd, how) in [
            ("BZPOPMIN uz 0", ""),
            ("BLPOP k1 k2 k3 0", "ERROR"),
            ("BLPOP uq 0", "ERROR"),
            ("WAIT 1 0", "TIMEOUT"),
        ] {
            send_line(&mut a, cmd);
            wait_blocked_clients(port, 1);
            let line = format!("CLIENT UNBLOCK {id} {how}");
            send_line(&mut p, line.trim_end());
            log.push(format!(
                "CLIENT UNBLOCK <id> {how} -> {}",
                render_raw(&p.read_reply())
            ));
            logged_reply(&mut a, &mut log, cmd);
            wait_blocked_clients(port, 0);
        }
        stats(&mut p, &mut log);
        log
    });
}

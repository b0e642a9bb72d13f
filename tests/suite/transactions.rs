//! Isolation of multi-shard units under concurrency: no client ever observes half of a
//! multi-key command, MULTI/EXEC block or script whose keys span shards.
//!
//! Each test runs writers and readers on separate connections (so on different shards'
//! connection loops) against a 4-shard server, with keys chosen to live on different shards,
//! and checks an invariant that any partial effect would break. No timing is asserted.

use crate::common::*;
use std::thread;

/// Keys with no hash tag, spread over shards.
fn spread_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acct:{}", i)).collect()
}

fn ints(reply: &[u8]) -> Vec<Option<i64>> {
    match resp_parse(reply) {
        Value::Array(items) => items.iter().map(|v| v.as_int_like()).collect(),
        other => panic!("expected an array, got {:?}", other),
    }
}

trait IntLike {
    fn as_int_like(&self) -> Option<i64>;
}

impl IntLike for Value {
    fn as_int_like(&self) -> Option<i64> {
        self.as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
    }
}

/// Waits for the writers, then for the readers, each of which returns how many of its reads
/// saw a written value (and checked it): a run where no reader saw anything checked nothing.
fn join_checked(writers: Vec<thread::JoinHandle<()>>, readers: Vec<thread::JoinHandle<usize>>) {
    for w in writers {
        w.join().unwrap();
    }
    let seen: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(seen > 0, "readers never saw a value");
}

#[test]
fn cross_shard_mset_is_never_seen_half_done() {
    let server = start_tessera(4, &[]);
    let keys = spread_keys(6);
    let port = server.port;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for i in 0..1500 {
                    let v = (w * 1_000_000 + i).to_string();
                    let mut args: Vec<&[u8]> = vec![b"MSET"];
                    for k in &keys {
                        args.push(k.as_bytes());
                        args.push(v.as_bytes());
                    }
                    assert_eq!(c.cmd(&args), b"+OK\r\n");
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut seen = 0;
                for _ in 0..1500 {
                    let mut args: Vec<&[u8]> = vec![b"MGET"];
                    args.extend(keys.iter().map(|k| k.as_bytes()));
                    let vals = ints(&c.cmd(&args));
                    assert!(
                        vals.windows(2).all(|w| w[0] == w[1]),
                        "MGET saw a partial MSET: {:?}",
                        vals
                    );
                    seen += vals[0].is_some() as usize;
                }
                seen
            })
        })
        .collect();
    join_checked(writers, readers);
}

#[test]
fn cross_shard_rename_ring_keeps_exactly_one_key() {
    // A token moves around a ring of keys on different shards with RENAME; EXISTS over the
    // whole ring must always count exactly one.
    let server = start_tessera(4, &[]);
    let keys = spread_keys(5);
    let mut c = server.conn();
    assert_eq!(c.cmd(&[b"SET", keys[0].as_bytes(), b"token"]), b"+OK\r\n");
    let port = server.port;
    let mover = {
        let keys = keys.clone();
        thread::spawn(move || {
            let mut c = RawConn::connect(port);
            for i in 0..2000 {
                let (a, b) = (&keys[i % keys.len()], &keys[(i + 1) % keys.len()]);
                assert_eq!(c.cmd(&[b"RENAME", a.as_bytes(), b.as_bytes()]), b"+OK\r\n");
            }
        })
    };
    let checker = {
        let keys = keys.clone();
        thread::spawn(move || {
            let mut c = RawConn::connect(port);
            for _ in 0..2000 {
                let mut args: Vec<&[u8]> = vec![b"EXISTS"];
                args.extend(keys.iter().map(|k| k.as_bytes()));
                assert_eq!(c.cmd(&args), b":1\r\n", "token lost or duplicated");
            }
        })
    };
    mover.join().unwrap();
    checker.join().unwrap();
}

#[test]
fn msetnx_across_shards_is_all_or_nothing_under_races() {
    // Two clients race MSETNX on overlapping key sets spanning shards: exactly one wins each
    // round and every key carries the winner's value.
    let server = start_tessera(4, &[]);
    let port = server.port;
    for round in 0..200 {
        let keys = [
            format!("r{}:a", round),
            format!("r{}:b", round),
            format!("r{}:c", round),
        ];
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let keys = keys.clone();
                thread::spawn(move || {
                    let mut c = RawConn::connect(port);
                    let v = format!("w{}", w);
                    let mut args: Vec<&[u8]> = vec![b"MSETNX"];
                    // Writer 1 uses the keys in reverse order: lock ordering must not matter.
                    let order: Vec<&String> = if w == 0 {
                        keys.iter().collect()
                    } else {
                        keys.iter().rev().collect()
                    };
                    for k in order {
                        args.push(k.as_bytes());
                        args.push(v.as_bytes());
                    }
                    c.cmd(&args) == b":1\r\n"
                })
            })
            .collect();
        let wins: usize = handles
            .into_iter()
            .map(|h| h.join().unwrap() as usize)
            .sum();
        assert_eq!(wins, 1, "round {}: exactly one MSETNX must win", round);
        let mut c = server.conn();
        let mut args: Vec<&[u8]> = vec![b"MGET"];
        args.extend(keys.iter().map(|k| k.as_bytes()));
        let reply = resp_parse(&c.cmd(&args));
        let vals: Vec<Vec<u8>> = reply
            .items()
            .unwrap()
            .iter()
            .map(|v| v.as_bytes().unwrap().to_vec())
            .collect();
        assert!(
            vals.windows(2).all(|w| w[0] == w[1]),
            "mixed winners: {:?}",
            vals
        );
    }
}

#[test]
fn multi_exec_transfers_keep_the_total() {
    // Transfers between accounts on different shards inside MULTI/EXEC; concurrent MGETs of
    // all accounts must always see the same total.
    let server = start_tessera(4, &[]);
    let keys = spread_keys(4);
    let port = server.port;
    let mut c = server.conn();
    for k in &keys {
        assert_eq!(c.cmd(&[b"SET", k.as_bytes(), b"1000"]), b"+OK\r\n");
    }
    let movers: Vec<_> = (0..2)
        .map(|w| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for i in 0..800 {
                    let from = &keys[(i + w) % keys.len()];
                    let to = &keys[(i * 3 + 1 + w) % keys.len()];
                    assert_eq!(c.cmd(&[b"MULTI"]), b"+OK\r\n");
                    assert_eq!(c.cmd(&[b"DECRBY", from.as_bytes(), b"7"]), b"+QUEUED\r\n");
                    assert_eq!(c.cmd(&[b"INCRBY", to.as_bytes(), b"7"]), b"+QUEUED\r\n");
                    let r = c.cmd(&[b"EXEC"]);
                    assert!(r.starts_with(b"*2\r\n"), "EXEC failed: {:?}", r);
                }
            })
        })
        .collect();
    let checker = {
        let keys = keys.clone();
        thread::spawn(move || {
            let mut c = RawConn::connect(port);
            for _ in 0..1500 {
                let mut args: Vec<&[u8]> = vec![b"MGET"];
                args.extend(keys.iter().map(|k| k.as_bytes()));
                let total: i64 = ints(&c.cmd(&args)).into_iter().map(|v| v.unwrap()).sum();
                assert_eq!(total, 4000, "saw a transfer half done");
            }
        })
    };
    for m in movers {
        m.join().unwrap();
    }
    checker.join().unwrap();
}

#[test]
fn watch_based_increments_never_lose_an_update() {
    // The classic optimistic-locking loop: GET, then MULTI SET EXEC under WATCH. Each
    // successful EXEC adds exactly one; concurrent clients must never overwrite each other.
    let server = start_tessera(4, &[]);
    let port = server.port;
    let mut c = server.conn();
    assert_eq!(c.cmd(&[b"SET", b"counter", b"0"]), b"+OK\r\n");
    let workers: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut wins = 0;
                while wins < 150 {
                    assert_eq!(c.cmd(&[b"WATCH", b"counter", b"other"]), b"+OK\r\n");
                    let v: i64 = resp_parse(&c.cmd(&[b"GET", b"counter"]))
                        .as_int_like()
                        .unwrap();
                    assert_eq!(c.cmd(&[b"MULTI"]), b"+OK\r\n");
                    let next = (v + 1).to_string();
                    assert_eq!(
                        c.cmd(&[b"SET", b"counter", next.as_bytes()]),
                        b"+QUEUED\r\n"
                    );
                    assert_eq!(c.cmd(&[b"SET", b"other", next.as_bytes()]), b"+QUEUED\r\n");
                    let r = c.cmd(&[b"EXEC"]);
                    if r.starts_with(b"*2\r\n") {
                        wins += 1;
                    } else {
                        assert_eq!(r, b"*-1\r\n");
                    }
                }
                wins
            })
        })
        .collect();
    let wins: i64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(
        c.cmd(&[b"GET", b"counter"]),
        format!("${}\r\n{}\r\n", wins.to_string().len(), wins).into_bytes()
    );
}

#[test]
fn blocking_consumers_get_every_element_exactly_once() {
    consume_everything_once(b"1", std::time::Duration::ZERO);
}

#[test]
fn blocking_consumers_timing_out_lose_nothing() {
    // Timeouts of 10 ms race the pushes that serve the clients blocked over several shards:
    // pushes come about every millisecond, so most waits end near one.
    consume_everything_once(b"0.01", std::time::Duration::from_millis(2));
}

/// Producers push numbered items to queues on different shards; consumers block on all queues
/// at once (one registration per shard under a shared claim) or on one queue (served in place
/// on its shard), with `timeout`; each producer waits `pace` between pushes. Every item must be
/// consumed exactly once.
fn consume_everything_once(timeout: &'static [u8], pace: std::time::Duration) {
    let server = start_tessera(4, &[]);
    let port = server.port;
    let queues = spread_keys(3);
    let per_producer = 300;
    let consumers: Vec<_> = (0..3)
        .map(|i| {
            let queues = queues.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut got = Vec::new();
                loop {
                    let mut args: Vec<&[u8]> = vec![b"BLPOP"];
                    if i == 0 {
                        args.push(queues[0].as_bytes());
                    } else {
                        args.extend(queues.iter().map(|q| q.as_bytes()));
                    }
                    args.push(timeout);
                    let reply = resp_parse(&c.cmd(&args));
                    if let Some(kv) = reply.items() {
                        let v = kv[1].as_int_like().unwrap();
                        if v < 0 {
                            return got;
                        }
                        got.push(v);
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let queues = queues.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for i in 0..per_producer {
                    let v = (p * per_producer + i).to_string();
                    let q = &queues[i as usize % queues.len()];
                    c.cmd(&[b"RPUSH", q.as_bytes(), v.as_bytes()]);
                    thread::sleep(pace);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    // Once the consumers have drained every queue, one stop marker per consumer on the queue
    // every consumer watches.
    let mut c = server.conn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left: i64 = queues
            .iter()
            .map(|q| {
                resp_parse(&c.cmd(&[b"LLEN", q.as_bytes()]))
                    .as_int()
                    .unwrap()
            })
            .sum();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "consumers stalled with {} items left",
            left
        );
        thread::sleep(std::time::Duration::from_millis(5));
    }
    for _ in 0..3 {
        c.cmd(&[b"RPUSH", queues[0].as_bytes(), b"-1"]);
    }
    let mut all: Vec<i64> = consumers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    let expected: Vec<i64> = (0..2 * per_producer as i64).collect();
    assert_eq!(all, expected, "items lost or duplicated");
}

/// A Lua transfer between two accounts: `declared` passes the accounts as KEYS, otherwise the
/// script builds the key names itself (escalation to global mode).
fn lua_transfer(c: &mut RawConn, from: &str, to: &str, declared: bool) -> Vec<u8> {
    if declared {
        let s = "local v = tonumber(redis.call('GET', KEYS[1])) \
                 redis.call('SET', KEYS[1], v - 7) \
                 return redis.call('INCRBY', KEYS[2], 7)";
        c.cmd(&[b"EVAL", s.as_bytes(), b"2", from.as_bytes(), to.as_bytes()])
    } else {
        let s = "local v = tonumber(redis.call('GET', ARGV[1])) \
                 redis.call('SET', ARGV[1], v - 7) \
                 return redis.call('INCRBY', ARGV[2], 7)";
        c.cmd(&[b"EVAL", s.as_bytes(), b"0", from.as_bytes(), to.as_bytes()])
    }
}

fn lua_transfers_keep_the_total(declared: bool, shards: usize) {
    let server = start_tessera(shards, &[]);
    let keys = spread_keys(4);
    let port = server.port;
    let mut c = server.conn();
    for k in &keys {
        assert_eq!(c.cmd(&[b"SET", k.as_bytes(), b"1000"]), b"+OK\r\n");
    }
    let movers: Vec<_> = (0..2)
        .map(|w| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for i in 0..400 {
                    let from = &keys[(i + w) % keys.len()];
                    let to = &keys[(i * 3 + 1 + w) % keys.len()];
                    if from == to {
                        continue;
                    }
                    let r = lua_transfer(&mut c, from, to, declared);
                    assert!(r.starts_with(b":"), "transfer failed: {:?}", r);
                }
            })
        })
        .collect();
    let checker = {
        let keys = keys.clone();
        thread::spawn(move || {
            let mut c = RawConn::connect(port);
            let script = "local t = 0 for i = 0, 3 do t = t + tonumber(redis.call('GET', 'acct:' .. i)) end return t";
            for i in 0..600 {
                if i % 2 == 0 {
                    let mut args: Vec<&[u8]> = vec![b"MGET"];
                    args.extend(keys.iter().map(|k| k.as_bytes()));
                    let total: i64 = ints(&c.cmd(&args)).into_iter().map(|v| v.unwrap()).sum();
                    assert_eq!(total, 4000, "MGET saw a transfer half done");
                } else {
                    let r = c.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
                    assert_eq!(r, b":4000\r\n", "a script saw a transfer half done");
                }
            }
        })
    };
    for m in movers {
        m.join().unwrap();
    }
    checker.join().unwrap();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let total: i64 = ints(&c.cmd(&args)).into_iter().map(|v| v.unwrap()).sum();
    assert_eq!(total, 4000);
}

#[test]
fn lua_transfers_with_declared_keys_keep_the_total() {
    lua_transfers_keep_the_total(true, 4);
}

#[test]
fn lua_transfers_with_undeclared_keys_keep_the_total() {
    lua_transfers_keep_the_total(false, 4);
}

/// Two shards on a machine with two or more cores are pinned one per core: global-mode runs
/// then wait for the other shard's answers spinning, and the held shard spins for its next
/// message (four shards on two cores, above, take the sleeping and yielding paths).
#[test]
fn lua_transfers_with_undeclared_keys_keep_the_total_on_pinned_shards() {
    lua_transfers_keep_the_total(false, 2);
}

#[test]
fn rate_limiter_and_lock_release_scripts_under_concurrency() {
    // The fixed-window rate limiter and the "release the lock only if we own it" script that
    // client libraries ship, hammered by several clients: the limiter must admit exactly
    // `limit` requests per window, and only the owner may release a lock.
    let server = start_tessera(4, &[]);
    let port = server.port;
    let limiter = "local current = redis.call('INCR', KEYS[1]) \
                   if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
                   if current > tonumber(ARGV[1]) then return 0 end return 1";
    let admitted: i64 = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut n = 0;
                for _ in 0..100 {
                    let r = c.cmd(&[
                        b"EVAL",
                        limiter.as_bytes(),
                        b"1",
                        b"rl:window",
                        b"150",
                        b"100000",
                    ]);
                    if r == b":1\r\n" {
                        n += 1;
                    } else {
                        assert_eq!(r, b":0\r\n");
                    }
                }
                n
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(
        admitted, 150,
        "the limiter admitted a wrong number of requests"
    );

    let release = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
    let handles: Vec<_> = (0..3)
        .map(|w| {
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let me = format!("owner{}", w);
                let mut held = 0;
                for round in 0..150 {
                    let lock = format!("lock:{}", round % 5);
                    let r = c.cmd(&[
                        b"SET",
                        lock.as_bytes(),
                        me.as_bytes(),
                        b"NX",
                        b"PX",
                        b"10000",
                    ]);
                    if r == b"+OK\r\n" {
                        held += 1;
                        // Someone else's release must not free our lock.
                        let other = format!("owner{}", (w + 1) % 3);
                        let r = c.cmd(&[
                            b"EVAL",
                            release.as_bytes(),
                            b"1",
                            lock.as_bytes(),
                            other.as_bytes(),
                        ]);
                        assert_eq!(r, b":0\r\n");
                        let r = c.cmd(&[
                            b"EVAL",
                            release.as_bytes(),
                            b"1",
                            lock.as_bytes(),
                            me.as_bytes(),
                        ]);
                        assert_eq!(r, b":1\r\n", "the owner could not release its lock");
                    }
                }
                held
            })
        })
        .collect();
    let held: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(held > 0);
}

#[test]
fn busy_script_gets_busy_replies_elsewhere_and_script_kill_stops_it() {
    let server = start_tessera(2, &["--busy-reply-threshold", "100"]);
    let port = server.port;
    // New connections land on either shard; one on the busy shard just waits, one on the
    // other shard must get BUSY and can kill the script.
    let runner = thread::spawn(move || {
        let mut c = RawConn::connect(port);
        c.cmd(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"])
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    let mut saw_busy = false;
    let mut killed = false;
    // Each try lands on the busy shard with probability 1/2: 24 tries miss the other shard
    // once in 16 million runs (8 missed it in one full-suite run).
    for _ in 0..24 {
        let mut c = RawConn::connect(port);
        c.send(&encode(&[b"GET", b"x"]));
        match c.try_read_reply_timeout(std::time::Duration::from_millis(300)) {
            Ok(r) => {
                assert!(
                    r.starts_with(b"-BUSY Redis is busy running a script."),
                    "{:?}",
                    r
                );
                saw_busy = true;
                assert_eq!(c.cmd(&[b"SCRIPT", b"KILL"]), b"+OK\r\n");
                killed = true;
                break;
            }
            Err(_) => continue,
        }
    }
    assert!(saw_busy && killed, "no client on another shard saw BUSY");
    let r = runner.join().unwrap();
    assert!(
        r.starts_with(b"-ERR Script killed by user with SCRIPT KILL..."),
        "{:?}",
        String::from_utf8_lossy(&r)
    );
}

fn info_field(c: &mut RawConn, section: &str, field: &str) -> i64 {
    let info = c.cmd(&[b"INFO", section.as_bytes()]);
    let info = String::from_utf8_lossy(&info).into_owned();
    let prefix = format!("{}:", field);
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {} in {}", field, info))
}

/// A client blocked on keys of several shards waits for a push; it must not wake itself.
/// (Its own failed attempt used to count as a write to its keys, so it retried in a loop,
/// burning a core and starving INFO's view of it for seconds.)
#[test]
fn cross_shard_blocked_client_stays_asleep_until_fed() {
    let server = start_tessera(4, &[]);
    let port = server.port;
    // Two keys on different shards.
    let (a, b) = (0..100)
        .map(|i| (format!("qa{}", i), format!("qb{}", i)))
        .find(|(a, b)| {
            let map = tessera::shard::slot::SlotMap::new(4);
            map.shard_of_key(a.as_bytes()) != map.shard_of_key(b.as_bytes())
        })
        .unwrap();
    let mut waiter = RawConn::connect(port);
    let mut probe = RawConn::connect(port);
    send_line(&mut waiter, &format!("BRPOP {} {} 0", a, b));
    while info_field(&mut probe, "clients", "blocked_clients") != 1 {
        thread::sleep(std::time::Duration::from_millis(5));
    }
    let before = info_field(&mut probe, "stats", "multi_shard_transactions");
    thread::sleep(std::time::Duration::from_millis(300));
    let after = info_field(&mut probe, "stats", "multi_shard_transactions");
    assert_eq!(
        before, after,
        "the blocked client retried while nothing was pushed"
    );
    assert_eq!(probe.cmd(&[b"LPUSH", b.as_bytes(), b"x"]), b":1\r\n");
    assert_eq!(
        waiter.read_reply(),
        format!("*2\r\n${}\r\n{}\r\n$1\r\nx\r\n", b.len(), b).into_bytes()
    );
}

/// Two keys owned by different shards of a 4-shard server.
fn keys_on_two_shards(prefix: &str) -> (String, String) {
    let map = tessera::shard::slot::SlotMap::new(4);
    (0..100)
        .map(|i| (format!("{prefix}a{i}"), format!("{prefix}b{i}")))
        .find(|(a, b)| map.shard_of_key(a.as_bytes()) != map.shard_of_key(b.as_bytes()))
        .unwrap()
}

/// An MSET split by shard runs each shard's pairs on their owner. A client that reads one key
/// with GET and then the other must never find the second older than the first: that would
/// mean one part of an MSET was visible while the other was not yet applied (a part released
/// its locks before every part had run).
#[test]
fn split_mset_parts_become_visible_together() {
    let server = start_tessera(4, &[]);
    let port = server.port;
    let (a, b) = keys_on_two_shards("split");
    let writer = {
        let (a, b) = (a.clone(), b.clone());
        thread::spawn(move || {
            let mut c = RawConn::connect(port);
            for i in 1..=3000i64 {
                let v = i.to_string();
                let args: [&[u8]; 5] = [
                    b"MSET",
                    a.as_bytes(),
                    v.as_bytes(),
                    b.as_bytes(),
                    v.as_bytes(),
                ];
                assert_eq!(c.cmd(&args), b"+OK\r\n");
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (first, second) = if r == 0 {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let get = |c: &mut RawConn, k: &str| -> i64 {
                    match resp_parse(&c.cmd(&[b"GET", k.as_bytes()])) {
                        Value::NilBulk => 0,
                        v => v.as_int_like().expect("an integer value"),
                    }
                };
                let mut checked = 0;
                for _ in 0..3000 {
                    let x = get(&mut c, &first);
                    let y = get(&mut c, &second);
                    assert!(
                        y >= x,
                        "read {first}={x} and then {second}={y}: a part of MSET {x} was seen alone"
                    );
                    checked += (x > 0) as usize;
                }
                checked
            })
        })
        .collect();
    join_checked(vec![writer], readers);
}

/// A command split by shard is one command to its client: INFO commandstats counts it once,
/// and its reply is the whole command's.
#[test]
fn split_commands_count_once_and_reply_as_one() {
    let server = start_tessera(4, &[]);
    let mut c = RawConn::connect(server.port);
    let keys = spread_keys(8);
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for k in &keys {
        mset.push(k.as_bytes());
        mset.push(b"v");
    }
    // A key set twice keeps its last value, as in Redis.
    mset.extend([keys[0].as_bytes(), &b"last"[..]]);
    assert_eq!(c.cmd(&mset), b"+OK\r\n");
    assert_eq!(c.cmd(&[b"GET", keys[0].as_bytes()]), b"$4\r\nlast\r\n");
    // MGET puts each shard's values back in argument order, duplicates and misses included;
    // a key of another type reads as nil.
    assert_eq!(c.cmd(&[b"LPUSH", b"alist", b"x"]), b":1\r\n");
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend([keys[1].as_bytes(), b"missing", keys[0].as_bytes(), b"alist"]);
    mget.extend(keys[2..].iter().map(|k| k.as_bytes()));
    mget.push(keys[1].as_bytes());
    let mut want = b"*11\r\n$1\r\nv\r\n$-1\r\n$4\r\nlast\r\n$-1\r\n".to_vec();
    for _ in 2..8 {
        want.extend_from_slice(b"$1\r\nv\r\n");
    }
    want.extend_from_slice(b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&mget), want);
    let mut exists: Vec<&[u8]> = vec![b"EXISTS"];
    exists.extend(keys.iter().map(|k| k.as_bytes()));
    exists.push(keys[1].as_bytes());
    exists.push(b"missing");
    assert_eq!(c.cmd(&exists), b":9\r\n");
    let mut del: Vec<&[u8]> = vec![b"DEL"];
    del.extend(keys.iter().map(|k| k.as_bytes()));
    assert_eq!(c.cmd(&del), b":8\r\n");
    // Odd pair counts are refused whole, before anything is split.
    assert_eq!(
        c.cmd(&[b"MSET", keys[0].as_bytes(), b"1", keys[1].as_bytes()]),
        &b"-ERR wrong number of arguments for 'mset' command\r\n"[..]
    );
    assert_eq!(c.cmd(&[b"EXISTS", keys[0].as_bytes()]), b":0\r\n");
    let stats = String::from_utf8_lossy(&c.cmd(&[b"INFO", b"commandstats"])).into_owned();
    for (cmd, calls) in [("mset", 2), ("mget", 1), ("exists", 2), ("del", 1)] {
        let line = stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .unwrap_or_else(|| panic!("no {cmd} in {stats}"));
        assert!(
            line.starts_with(&format!("cmdstat_{cmd}:calls={calls},")),
            "{line}"
        );
    }
    assert!(info_field(&mut c, "stats", "multi_shard_transactions") >= 3);
}

/// Keys with no hash tag that a 2-shard server places on shard 0 and on shard 1.
fn keys_per_shard_of_two(prefix: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let map = tessera::shard::slot::SlotMap::new(2);
    let (mut zero, mut one) = (Vec::new(), Vec::new());
    for i in 0.. {
        let k = format!("{prefix}{i}");
        if map.shard_of_key(k.as_bytes()) == 0 {
            if zero.len() < n {
                zero.push(k);
            }
        } else if one.len() < n {
            one.push(k);
        }
        if zero.len() == n && one.len() == n {
            break;
        }
    }
    (zero, one)
}

/// Pipelined two-shard split commands from a connection on either shard (so with the
/// connection's own shard first or second in lock order): every reply keeps its order and
/// value, including commands that name keys an earlier command of the same pipeline wrote,
/// replies switched off by CLIENT REPLY SKIP, and single-shard commands in between.
#[test]
fn pipelined_two_shard_splits_reply_in_order_from_either_shard() {
    let server = start_tessera(2, &[]);
    // Enough connections that both shards serve some (SO_REUSEPORT spreads them).
    for conn in 0..8 {
        let (z, o) = keys_per_shard_of_two(&format!("pl{conn}:"), 4);
        let (z, o): (Vec<&[u8]>, Vec<&[u8]>) = (
            z.iter().map(|k| k.as_bytes()).collect(),
            o.iter().map(|k| k.as_bytes()).collect(),
        );
        let mut c = RawConn::connect(server.port);
        let mut wire = Vec::new();
        let mut expect: Vec<Vec<u8>> = Vec::new();
        let mut step = |cmd: &[&[u8]], reply: &[u8]| {
            wire.extend(encode(cmd));
            expect.push(reply.to_vec());
        };
        step(&[b"MSET", z[0], b"a", o[0], b"b"], b"+OK\r\n");
        step(&[b"MSET", z[1], b"c", o[1], b"d"], b"+OK\r\n");
        // Same keys again: held by the commands above until their batch is done.
        step(&[b"MSET", z[0], b"e", o[1], b"f"], b"+OK\r\n");
        step(
            &[b"MGET", o[0], z[0], o[1], z[1], b"nokey"],
            b"*5\r\n$1\r\nb\r\n$1\r\ne\r\n$1\r\nf\r\n$1\r\nc\r\n$-1\r\n",
        );
        step(&[b"EXISTS", z[0], o[0], z[2], o[2], z[0]], b":3\r\n");
        step(&[b"CLIENT", b"REPLY", b"SKIP"], b"");
        step(&[b"MSET", z[2], b"g", o[2], b"h"], b"");
        step(&[b"GET", z[2]], b"$1\r\ng\r\n");
        step(&[b"MGET", z[2], o[2]], b"*2\r\n$1\r\ng\r\n$1\r\nh\r\n");
        step(&[b"LPUSH", z[3], b"x"], b":1\r\n");
        step(
            &[b"MGET", z[3], o[3], o[2]],
            b"*3\r\n$-1\r\n$-1\r\n$1\r\nh\r\n",
        );
        step(&[b"MSET", z[3], b"i", o[3], b"j"], b"+OK\r\n");
        step(&[b"DEL", z[0], o[0], z[1], o[1], b"nokey"], b":4\r\n");
        step(&[b"TOUCH", z[2], o[2], z[3], o[3], z[0]], b":4\r\n");
        step(&[b"UNLINK", o[2], z[2]], b":2\r\n");
        step(
            &[b"MGET", z[3], o[3], z[2]],
            b"*3\r\n$1\r\ni\r\n$1\r\nj\r\n$-1\r\n",
        );
        // Back to empty, for the next round of the same pipeline.
        step(&[b"DEL", o[3], z[3]], b":2\r\n");
        for _ in 0..3 {
            c.send(&wire);
            for (i, want) in expect.iter().enumerate().filter(|(_, w)| !w.is_empty()) {
                assert_eq!(
                    String::from_utf8_lossy(&c.read_reply()),
                    String::from_utf8_lossy(want),
                    "connection {conn}, reply to pipelined command {i}"
                );
            }
        }
    }
}

/// Pipelines of two-shard MSETs from several connections on both shards, all on the same keys,
/// against pipelined MGET readers: every MGET sees one MSET whole, and the writers' conflicting
/// transactions all finish.
#[test]
fn pipelined_two_shard_msets_are_never_seen_half_done() {
    let server = start_tessera(2, &[]);
    let port = server.port;
    let (z, o) = keys_per_shard_of_two("plw:", 3);
    let keys: Vec<String> = z.into_iter().chain(o).collect();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for round in 0..150 {
                    let mut wire = Vec::new();
                    for i in 0..16 {
                        let v = (w * 1_000_000 + round * 16 + i).to_string();
                        // Every other MSET names only two of the keys (one per shard), so
                        // batches mix full and partial overlaps.
                        let mut args: Vec<&[u8]> = vec![b"MSET"];
                        let named: Vec<&String> = if i % 2 == 0 {
                            keys.iter().collect()
                        } else {
                            vec![&keys[0], &keys[5]]
                        };
                        for k in &named {
                            args.push(k.as_bytes());
                            args.push(v.as_bytes());
                        }
                        wire.extend(encode(&args));
                    }
                    c.send(&wire);
                    for _ in 0..16 {
                        assert_eq!(c.read_reply(), b"+OK\r\n");
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut seen = 0;
                for _ in 0..150 {
                    let mut wire = Vec::new();
                    for i in 0..16 {
                        let mut args: Vec<&[u8]> = vec![b"MGET"];
                        if i % 2 == 0 {
                            args.extend(keys.iter().map(|k| k.as_bytes()));
                        } else {
                            args.extend([keys[0].as_bytes(), keys[5].as_bytes()]);
                        }
                        wire.extend(encode(&args));
                    }
                    c.send(&wire);
                    for i in 0..16 {
                        let vals = ints(&c.read_reply());
                        if i % 2 == 0 {
                            // Keys 1-4 are only ever written together with 0 and 5 by full
                            // MSETs; 0 and 5 also by partial ones. So 1-4 agree, 0 and 5 agree.
                            assert!(
                                vals[1..5].windows(2).all(|w| w[0] == w[1]),
                                "MGET saw a partial MSET: {vals:?}"
                            );
                            assert_eq!(vals[0], vals[5], "MGET saw a partial MSET: {vals:?}");
                        } else {
                            assert_eq!(vals[0], vals[1], "MGET saw a partial MSET: {vals:?}");
                        }
                        seen += vals[0].is_some() as usize;
                    }
                }
                seen
            })
        })
        .collect();
    join_checked(writers, readers);
}

/// A two-shard MSET whose connection is on the higher shard takes its own shard's lock and
/// then the other's without waiting (out of shard order), and on a refusal gives back what it
/// took and takes them again in order. Many writers on the same two keys (one per shard) make
/// refusals certain in practice: 24 connections leave shard 1 with fewer than two of them once
/// in about 600,000 runs. Whichever way each MSET went, no reader sees the two keys differ, no
/// writer is left waiting, and the refusals show in INFO.
#[test]
fn two_shard_msets_refused_without_waiting_take_their_locks_in_order() {
    let server = start_tessera(2, &[]);
    let port = server.port;
    let (z, o) = keys_per_shard_of_two("pair:", 1);
    let (z, o) = (z[0].clone(), o[0].clone());
    let writers: Vec<_> = (0..24)
        .map(|w| {
            let (z, o) = (z.clone(), o.clone());
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for round in 0..40 {
                    let mut wire = Vec::new();
                    for i in 0..8 {
                        let v = (w * 1_000_000 + round * 8 + i).to_string();
                        let args: [&[u8]; 5] = [
                            b"MSET",
                            z.as_bytes(),
                            v.as_bytes(),
                            o.as_bytes(),
                            v.as_bytes(),
                        ];
                        wire.extend(encode(&args));
                    }
                    c.send(&wire);
                    for _ in 0..8 {
                        assert_eq!(c.read_reply(), b"+OK\r\n");
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (z, o) = (z.clone(), o.clone());
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut seen = 0;
                for _ in 0..400 {
                    let vals = ints(&c.cmd(&[b"MGET", z.as_bytes(), o.as_bytes()]));
                    assert_eq!(vals[0], vals[1], "MGET saw a partial MSET: {vals:?}");
                    seen += vals[0].is_some() as usize;
                }
                seen
            })
        })
        .collect();
    join_checked(writers, readers);
    let mut c = RawConn::connect(port);
    let vals = ints(&c.cmd(&[b"MGET", z.as_bytes(), o.as_bytes()]));
    assert!(vals[0].is_some() && vals[0] == vals[1], "{vals:?}");
    assert!(
        info_field(&mut c, "stats", "multi_shard_lock_retries") > 0,
        "no pair attempt was refused: the fallback went untested"
    );
}

/// The reliable-queue pattern over shards: consumers move jobs with BLMOVE into lists of their
/// own (most of them on other shards than the queue, so their moves are multi-shard
/// transactions woken in their turn), next to BLPOP consumers on the same queue, while
/// producers push. Every job ends up in exactly one place, and no consumer is left asleep
/// with jobs queued: each stops only after a one-second wait that found nothing, once the
/// producers are done.
#[test]
fn cross_shard_blmove_consumers_take_every_job_exactly_once() {
    let server = start_tessera(4, &[]);
    let port = server.port;
    const JOBS: usize = 1200;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumers: Vec<_> = (0..6)
        .map(|i| {
            let done = done.clone();
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mine = format!("processing:{i}");
                let mut popped = Vec::new();
                loop {
                    let reply = if i < 4 {
                        c.cmd(&[b"BLMOVE", b"jobs", mine.as_bytes(), b"LEFT", b"RIGHT", b"1"])
                    } else {
                        c.cmd(&[b"BLPOP", b"jobs", b"1"])
                    };
                    match resp_parse(&reply) {
                        Value::NilBulk | Value::NilArray => {
                            if done.load(std::sync::atomic::Ordering::SeqCst) {
                                break;
                            }
                        }
                        Value::Bulk(_) => assert!(i < 4, "{reply:?}"),
                        Value::Array(items) => {
                            let Value::Bulk(job) = &items[1] else {
                                panic!("{reply:?}")
                            };
                            popped.push(String::from_utf8(job.clone()).unwrap());
                        }
                        other => panic!("consumer {i}: {other:?}"),
                    }
                }
                popped
            })
        })
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|w| {
            thread::spawn(move || {
                let mut c = RawConn::connect(port);
                for n in (w..JOBS).step_by(2) {
                    let job = format!("job{n}");
                    assert!(c
                        .cmd(&[b"RPUSH", b"jobs", job.as_bytes()])
                        .starts_with(b":"));
                    if n % 50 == 0 {
                        thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut all: Vec<String> = Vec::new();
    for c in consumers {
        all.extend(c.join().unwrap());
    }
    let mut c = RawConn::connect(port);
    for i in 0..4 {
        let key = format!("processing:{i}");
        let Value::Array(items) = resp_parse(&c.cmd(&[b"LRANGE", key.as_bytes(), b"0", b"-1"]))
        else {
            panic!("LRANGE {key}")
        };
        for item in items {
            let Value::Bulk(job) = item else {
                panic!("{key}")
            };
            all.push(String::from_utf8(job).unwrap());
        }
    }
    assert_eq!(c.cmd(&[b"LLEN", b"jobs"]), b":0\r\n");
    all.sort();
    let mut want: Vec<String> = (0..JOBS).map(|n| format!("job{n}")).collect();
    want.sort();
    assert_eq!(all.len(), JOBS, "jobs lost or duplicated");
    assert_eq!(all, want);
}

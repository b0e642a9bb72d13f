//! Real client use from the `redis` crate against a 4-shard server: the patterns people build
//! on Redis for shared state — a lock (SET NX PX + a Lua compare-and-delete) and fixed- and
//! sliding-window rate limiters in Lua, invoked with EVALSHA (falling back to EVAL the first
//! time, as the crate's `Script` does). Many threads race; the invariants would break if any
//! script or command were not atomic, or if keys on different shards were handled separately.
//! No timing is asserted.

use crate::common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

fn client(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", port))
        .unwrap()
        .get_connection()
        .unwrap()
}

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"#;

#[test]
fn lock_with_set_nx_px_and_lua_release() {
    let srv = start_tessera(4, &[]);
    let port = srv.port;
    let acquired = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let acquired = acquired.clone();
            thread::spawn(move || {
                let mut con = client(port);
                let release = redis::Script::new(RELEASE);
                let mut mine = 0;
                while mine < 40 {
                    let token = format!("t{}-{}", t, mine);
                    let ok: Option<String> = redis::cmd("SET")
                        .arg("lock:res")
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(30_000)
                        .query(&mut con)
                        .unwrap();
                    if ok.is_none() {
                        // Someone else holds it; a wrong token never releases it.
                        let n: i64 = release
                            .key("lock:res")
                            .arg("not-the-owner")
                            .invoke(&mut con)
                            .unwrap();
                        assert_eq!(n, 0);
                        continue;
                    }
                    // The critical section: a read-modify-write no one else may interleave.
                    let v: Option<i64> = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
                    let _: () = redis::cmd("SET")
                        .arg("counter")
                        .arg(v.unwrap_or(0) + 1)
                        .query(&mut con)
                        .unwrap();
                    let n: i64 = release
                        .key("lock:res")
                        .arg(&token)
                        .invoke(&mut con)
                        .unwrap();
                    assert_eq!(n, 1, "the owner's release must delete the lock");
                    mine += 1;
                    acquired.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = client(port);
    let counter: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(counter as usize, acquired.load(Ordering::SeqCst));
    assert_eq!(counter, 240);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("lock:res")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0);
}

const FIXED_WINDOW: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if n > tonumber(ARGV[2]) then
    return 0
end
return 1
"#;

/// Two limits at once, a per-user key and a global key on different shards: a request counts
/// only if both windows have room, and then against both (a cross-shard atomic script).
const SLIDING_WINDOW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1]) * 1000
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
        return 0
    end
end
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, ARGV[1])
end
return 1
"#;

#[test]
fn fixed_and_sliding_window_rate_limiters() {
    let srv = start_tessera(4, &[]);
    let port = srv.port;
    // Fixed window: 6 threads x 100 requests against a limit of 150 in a 60 s window.
    let allowed = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let allowed = allowed.clone();
            thread::spawn(move || {
                let mut con = client(port);
                let limiter = redis::Script::new(FIXED_WINDOW);
                for _ in 0..100 {
                    let ok: i64 = limiter
                        .key("rl:fixed")
                        .arg(60_000)
                        .arg(150)
                        .invoke(&mut con)
                        .unwrap();
                    allowed.fetch_add(ok as usize, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(allowed.load(Ordering::SeqCst), 150);
    let mut con = client(port);
    let n: i64 = redis::cmd("GET").arg("rl:fixed").query(&mut con).unwrap();
    assert_eq!(n, 600);
    let ttl: i64 = redis::cmd("PTTL").arg("rl:fixed").query(&mut con).unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "window TTL {}", ttl);

    // Sliding window: per-user limit 30 for each of 3 users, global limit 70.
    let map = tessera::shard::slot::SlotMap::new(4);
    let global = "rl:global";
    let users: Vec<String> = (0..200)
        .map(|i| format!("rl:user:{}", i))
        .filter(|u| map.shard_of_key(u.as_bytes()) != map.shard_of_key(global.as_bytes()))
        .take(3)
        .collect();
    let per_user: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let user = users[t % 3].clone();
            let count = per_user[t % 3].clone();
            thread::spawn(move || {
                let mut con = client(port);
                let limiter = redis::Script::new(SLIDING_WINDOW);
                for i in 0..40 {
                    let ok: i64 = limiter
                        .key(&user)
                        .key(global)
                        .arg(60_000)
                        .arg(format!("req-{}-{}", t, i))
                        .arg(30)
                        .arg(70)
                        .invoke(&mut con)
                        .unwrap();
                    count.fetch_add(ok as usize, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total: usize = per_user.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert_eq!(total, 70, "the global window admits exactly its limit");
    for (u, c) in users.iter().zip(&per_user) {
        let card: usize = redis::cmd("ZCARD").arg(u).query(&mut con).unwrap();
        assert_eq!(card, c.load(Ordering::SeqCst), "{}", u);
        assert!(card <= 30, "{} admitted {}", u, card);
    }
    let card: usize = redis::cmd("ZCARD").arg(global).query(&mut con).unwrap();
    assert_eq!(card, 70);
}

//! Client eviction (`maxmemory-clients`, Redis 7.0): once the memory every client connection
//! takes (its read buffer, query buffer and unsent replies: CLIENT LIST's `tot-mem`) reaches
//! the limit, the biggest clients are disconnected until it is under the limit again, except
//! clients that asked not to be (CLIENT NO-EVICT on).
//!
//! Each shard keeps the sum of its own clients' memory (`Shard::client_mem`) as they account
//! for it (`Conn::account_memory`) and publishes it in `Globals`; the check adds up every
//! shard's published sum. Over the limit, each shard publishes the size of its biggest
//! evictable client, and only the shard holding the biggest of all disconnects it, so the
//! clients go biggest first across shards as they do in one Redis. A shard checks after each
//! read of a client that grew its query buffer and on each cron tick, so a big client on an
//! idle shard goes within one tick. This module never touches the keyspace and never
//! disconnects a client that set NO-EVICT.

use std::sync::atomic::Ordering;

use crate::shard::Shard;

/// Redis's floor: a smaller setting would leave no room to even connect and fix it.
const MIN_LIMIT: u64 = 128 * 1024;

/// The limit in bytes, 0 when there is none: `maxmemory-clients` in bytes, or (negative) a
/// percentage of `maxmemory`, which means no limit while `maxmemory` is 0.
pub fn limit(maxmemory_clients: i64, maxmemory: u64) -> u64 {
    let bytes = match maxmemory_clients {
        0 => return 0,
        n if n < 0 => {
            if maxmemory == 0 {
                return 0;
            }
            (maxmemory as f64 * (-n) as f64 / 100.0) as u64
        }
        n => n as u64,
    };
    bytes.max(MIN_LIMIT)
}

/// Publishes this shard's client memory and, while all clients together are at or over the
/// limit and this shard holds the biggest evictable client, disconnects it. True when it
/// disconnected `current` (the caller's own client).
///
/// Shards decide one at a time (`Globals::client_evicting`), each from the totals and biggest
/// clients the others published; a shard publishes its biggest client before the total that
/// puts it over the limit (release/acquire), so a shard that sees that total also sees which
/// client is the biggest and leaves it to its owner instead of evicting a smaller one.
pub fn check(sh: &Shard, current: Option<u64>) -> bool {
    let limit = {
        let st = sh.state.borrow();
        limit(st.config.maxmemory_clients, st.config.maxmemory)
    };
    let g = &sh.globals;
    let (Some(mine), Some(largest)) = (g.client_mem.get(sh.id), g.client_largest.get(sh.id)) else {
        return false;
    };
    let mine = &mine.0;
    let own = sh.client_mem.get();
    if limit == 0 {
        return false;
    }
    let over = own + others(sh) >= limit;
    largest.store(
        if over {
            biggest_client(sh).map_or(0, |c| c.mem.get())
        } else {
            0
        },
        Ordering::Relaxed,
    );
    mine.store(own, Ordering::Release);
    if !over
        || g.client_evicting
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return false;
    }
    let mut evicted_current = false;
    loop {
        let own = sh.client_mem.get();
        if own + others(sh) < limit {
            largest.store(0, Ordering::Relaxed);
            mine.store(own, Ordering::Release);
            break;
        }
        let victim = biggest_client(sh);
        let size = victim.as_ref().map_or(0, |c| c.mem.get());
        largest.store(size, Ordering::Relaxed);
        mine.store(own, Ordering::Release);
        let Some(victim) = victim else {
            break;
        };
        // Another shard's client is bigger (ties go to the lowest shard): that shard evicts it
        // at its next check.
        let bigger_elsewhere = g.client_largest.iter().enumerate().any(|(s, l)| {
            let l = l.load(Ordering::Relaxed);
            s != sh.id && (l > size || (l == size && s < sh.id))
        });
        if bigger_elsewhere {
            break;
        }
        tracing::info!(
            "Evicting client: {}",
            victim.describe(crate::server::globals::unix_ms())
        );
        victim.kill();
        // Its memory leaves the count now, not when its task has wound down.
        sh.set_client_mem(own.saturating_sub(size));
        victim.mem.set(0);
        sh.state.borrow_mut().stats.evicted_clients += 1;
        evicted_current |= current == Some(victim.id);
    }
    g.client_evicting.store(false, Ordering::Release);
    evicted_current
}

/// What the other shards last published of their clients' memory.
fn others(sh: &Shard) -> u64 {
    (sh.globals.client_mem.iter().enumerate())
        .filter(|(s, _)| *s != sh.id)
        .map(|(_, m)| m.0.load(Ordering::Acquire))
        .sum()
}

/// This shard's biggest client that may be evicted (the oldest among equals).
fn biggest_client(sh: &Shard) -> Option<std::rc::Rc<crate::server::client::ClientHandle>> {
    sh.clients
        .borrow()
        .clients
        .values()
        .filter(|c| !c.no_evict.get() && !c.killed.get())
        .max_by_key(|c| (c.mem.get(), std::cmp::Reverse(c.id)))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_redis_computes_them() {
        assert_eq!(limit(0, 1 << 30), 0);
        assert_eq!(limit(-10, 0), 0);
        assert_eq!(limit(-10, 1 << 30), (1 << 30) / 10);
        assert_eq!(limit(-1, 1 << 20), MIN_LIMIT);
        assert_eq!(limit(200, 0), MIN_LIMIT);
        assert_eq!(limit(1 << 30, 0), 1 << 30);
    }
}

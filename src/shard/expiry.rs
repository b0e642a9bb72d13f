//! Active expiry: each shard periodically samples its keys with a deadline and deletes the
//! expired ones, so memory held by keys nobody reads stays bounded.
//!
//! Like Redis's slow cycle: up to `hz` times a second, per database, sample 20 volatile keys,
//! delete the expired ones, and repeat while more than a quarter of the sample was expired — but
//! never for longer than a slice of the cycle (25% of 1000/hz ms, scaled by
//! `active-expire-effort`), so the shard never stalls its clients.

use std::time::{Duration, Instant};

use super::ShardState;
use crate::server::globals::unix_ms;
use crate::types::key::Key;

const KEYS_PER_LOOP: usize = 20;

/// Runs one active-expiry cycle on `st`. Returns the number of keys deleted.
pub fn cycle(st: &mut ShardState) -> usize {
    if !st.active_expire {
        return 0;
    }
    let effort = st.config.active_expire_effort.clamp(1, 10) as usize;
    let per_loop = KEYS_PER_LOOP + KEYS_PER_LOOP / 4 * (effort - 1);
    let hz = st.config.hz.clamp(1, 500) as u64;
    let budget = Duration::from_micros(1_000_000 / hz * (25 + 2 * (effort as u64 - 1)) / 100);
    let acceptable_stale = 10usize.saturating_sub(effort - 1).max(1); // percent
    let started = Instant::now();
    let mut deleted = 0;
    let (mut total_sampled, mut total_expired) = (0usize, 0usize);
    let mut sample: Vec<Key> = Vec::with_capacity(per_loop);
    let ShardState { dbs, rng, .. } = st;
    for db in dbs.iter_mut() {
        loop {
            if db.volatile_len() == 0 {
                db.avg_ttl = 0;
                break;
            }
            // The index holds the deadlines: only the keys found past theirs are looked up
            // (and deleted) in the table.
            sample.clear();
            let now = unix_ms();
            let (mut ttl_sum, mut ttl_samples) = (0u64, 0u64);
            let sampled = db.expires.sample_with(rng, per_loop, |k, &at| {
                if at <= now {
                    sample.push(k.clone());
                } else {
                    ttl_sum += at - now;
                    ttl_samples += 1;
                }
            });
            if sampled == 0 {
                break;
            }
            if let Some(mean) = ttl_sum.checked_div(ttl_samples) {
                db.avg_ttl = running_avg_ttl(db.avg_ttl, mean);
            }
            let mut expired = 0;
            for k in &sample {
                if !db.exists(k, now) {
                    expired += 1;
                }
            }
            deleted += expired;
            total_sampled += sampled;
            total_expired += expired;
            if expired * 100 <= sampled * acceptable_stale || started.elapsed() > budget {
                break;
            }
        }
        // Keep incremental rehashing moving on idle shards too.
        db.keys.rehash_step(1);
        db.expires.rehash_step(1);
        if started.elapsed() > budget {
            break;
        }
    }
    let elapsed = started.elapsed();
    st.latency_event("expire-cycle", elapsed.as_millis() as u64);
    let stats = &mut st.stats;
    stats.expire_cycle_us += elapsed.as_micros() as u64;
    if elapsed > budget {
        stats.expire_time_cap_reached += 1;
    }
    let current = if total_sampled > 0 {
        total_expired as f64 / total_sampled as f64
    } else {
        0.0
    };
    stats.expired_stale_perc = current * 0.05 + stats.expired_stale_perc * 0.95;
    deleted
}

/// Redis's estimate of the average TTL: the new sample's mean weighs 2%, the estimate 98% (the
/// first sample seeds it).
fn running_avg_ttl(prev: u64, sample_mean: u64) -> u64 {
    let prev = if prev == 0 { sample_mean } else { prev };
    prev / 50 * 49 + sample_mean / 50
}

#[cfg(test)]
mod tests {
    use super::running_avg_ttl;

    #[test]
    fn average_ttl_moves_two_percent_towards_each_sample() {
        assert_eq!(running_avg_ttl(0, 1_000_000), 1_000_000);
        assert_eq!(running_avg_ttl(1_000_000, 0), 980_000);
        assert_eq!(running_avg_ttl(1_000_000, 2_000_000), 1_020_000);
    }
}

//! DEBUG DIGEST: an order-independent fingerprint of the dataset, equal for equal data whatever
//! the shard count or insertion order (per-key SHA-1 digests combined with XOR). An empty
//! dataset digests to forty zeros, as in Redis.
//!
//! Like Redis, a key's digest says whether it has a deadline but not which one: two servers
//! (or shards) holding the same data with TTLs set a few milliseconds apart digest equally,
//! while the same value with and without a TTL does not.

use crate::shard::db::deadline_of;
use crate::shard::ShardState;
use crate::types::Value;

fn value_bytes(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Str(s) => {
            out.extend_from_slice(b"string:");
            s.with_bytes(|b| out.extend_from_slice(b));
        }
        Value::Hash(h) => {
            // Order-independent: XOR of one SHA-1 per (field, value) pair.
            out.extend_from_slice(b"hash:");
            out.extend_from_slice(&(h.len() as u64).to_le_bytes());
            let mut acc = [0u8; 20];
            let mut pair = Vec::new();
            for (f, v) in h.iter() {
                pair.clear();
                pair.extend_from_slice(&(f.len() as u64).to_le_bytes());
                pair.extend_from_slice(f);
                pair.extend_from_slice(v);
                let d = sha1_smol::Sha1::from(&pair).digest().bytes();
                for (a, b) in acc.iter_mut().zip(d) {
                    *a ^= b;
                }
            }
            out.extend_from_slice(&acc);
        }
        Value::List(l) => {
            // Order-dependent: the elements in sequence, each prefixed by its length.
            out.extend_from_slice(b"list:");
            out.extend_from_slice(&(l.len() as u64).to_le_bytes());
            for item in l.iter() {
                item.with_bytes(|b| {
                    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                    out.extend_from_slice(b);
                });
            }
        }
        Value::Set(s) => {
            // Order- and encoding-independent: XOR of one SHA-1 per member, as text.
            out.extend_from_slice(b"set:");
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            let mut acc = [0u8; 20];
            for m in s.iter() {
                let d = m.with_bytes(|b| sha1_smol::Sha1::from(b).digest().bytes());
                for (a, b) in acc.iter_mut().zip(d) {
                    *a ^= b;
                }
            }
            out.extend_from_slice(&acc);
        }
        Value::ZSet(z) => {
            // Order-dependent: the entries in (score, member) order, whatever the encoding.
            out.extend_from_slice(b"zset:");
            out.extend_from_slice(&(z.len() as u64).to_le_bytes());
            for (m, s) in z.iter() {
                out.extend_from_slice(&(m.len() as u64).to_le_bytes());
                out.extend_from_slice(m);
                out.extend_from_slice(crate::protocol::reply::format_double(s).as_bytes());
                out.push(0);
            }
        }
        Value::Stream(x) => {
            // Order-dependent: the counters, then the live entries in ID order.
            out.extend_from_slice(b"stream:");
            for id in [x.last_id, x.first_id, x.max_deleted_id] {
                out.extend_from_slice(&id.to_be_bytes());
            }
            out.extend_from_slice(&x.entries_added.to_le_bytes());
            out.extend_from_slice(&x.len().to_le_bytes());
            x.range(
                crate::types::stream_id::StreamId::MIN,
                crate::types::stream_id::StreamId::MAX,
                false,
                0,
                |id, pairs| {
                    out.extend_from_slice(&id.to_be_bytes());
                    out.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
                    for p in pairs {
                        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
                        out.extend_from_slice(p);
                    }
                    true
                },
            );
        }
    }
}

/// Mixed into the digest of a key with a deadline (Redis mixes in "!!expire!!").
const EXPIRE_MARK: &[u8] = b"!!expire!!";

/// The digest of one key's value, with its deadline's presence mixed in (DEBUG DIGEST-VALUE).
pub fn value_digest(v: &Value, expire_at: u64) -> String {
    let mut buf = Vec::new();
    value_bytes(v, &mut buf);
    if expire_at != 0 {
        buf.extend_from_slice(EXPIRE_MARK);
    }
    sha1_smol::Sha1::from(&buf).digest().to_string()
}

/// XOR of the digests of every live key of every database on this shard.
pub fn shard_digest(st: &ShardState) -> [u8; 20] {
    let now = crate::server::globals::unix_ms();
    let mut acc = [0u8; 20];
    let mut buf = Vec::new();
    for (dbid, db) in st.dbs.iter().enumerate() {
        for (k, e) in db.keys.iter() {
            let expire_at = deadline_of(&db.expires, k, e);
            if expire_at != 0 && expire_at <= now {
                continue;
            }
            buf.clear();
            buf.extend_from_slice(&(dbid as u32).to_le_bytes());
            buf.extend_from_slice(&(k.len() as u64).to_le_bytes());
            buf.extend_from_slice(k);
            value_bytes(&e.value, &mut buf);
            if expire_at != 0 {
                buf.extend_from_slice(EXPIRE_MARK);
            }
            let d = sha1_smol::Sha1::from(&buf).digest().bytes();
            for (a, b) in acc.iter_mut().zip(d) {
                *a ^= b;
            }
        }
    }
    acc
}

/// Combines per-shard digests into the 40-hex-digit reply.
pub fn combine(parts: &[[u8; 20]]) -> String {
    let mut acc = [0u8; 20];
    for p in parts {
        for (a, b) in acc.iter_mut().zip(p) {
            *a ^= b;
        }
    }
    acc.iter().map(|b| format!("{:02x}", b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StrValue;

    #[test]
    fn a_deadline_changes_the_digest_but_its_value_does_not() {
        let v = Value::Str(StrValue::from_bytes(b"v"));
        let plain = value_digest(&v, 0);
        assert_ne!(plain, value_digest(&v, 1_000));
        assert_eq!(value_digest(&v, 1_000), value_digest(&v, 2_000));
    }

    #[test]
    fn equal_data_digests_equally_on_any_number_of_shards() {
        let put = |st: &mut ShardState, key: &[u8], ttl: u64| {
            let v = Value::Str(StrValue::from_bytes(b"v"));
            st.dbs[0].insert(key, v, ttl, 0);
        };
        let far = u64::MAX / 2;
        let mut one = ShardState::new(0, crate::config::Config::default());
        put(&mut one, b"a", far);
        put(&mut one, b"b", 0);
        let mut s0 = ShardState::new(0, crate::config::Config::default());
        let mut s1 = ShardState::new(1, crate::config::Config::default());
        put(&mut s0, b"a", far + 5);
        put(&mut s1, b"b", 0);
        assert_eq!(
            combine(&[shard_digest(&one)]),
            combine(&[shard_digest(&s0), shard_digest(&s1)])
        );
        put(&mut s1, b"b", far);
        assert_ne!(
            combine(&[shard_digest(&one)]),
            combine(&[shard_digest(&s0), shard_digest(&s1)])
        );
    }
}

//! Keyspace micro-benchmarks (criterion): the per-shard table and the database layer with
//! expiry bookkeeping, at 100k keys, and a sorted set of 100k members (what redis-benchmark's
//! ZADD test does to one key).
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tessera::shard::db::Db;
use tessera::types::dict::Dict;
use tessera::types::zset::{ZSetValue, ZsetLimits};
use tessera::types::{StrValue, Value};

/// The server's allocator (per-thread live-byte counters) unless built with
/// `--no-default-features`: comparing the two runs gives the cost of counting.
#[cfg(feature = "counting-alloc")]
#[global_allocator]
static GLOBAL: tessera::alloc::CountingAlloc = tessera::alloc::CountingAlloc;

const N: usize = 100_000;

fn keys() -> Vec<Bytes> {
    (0..N)
        .map(|i| Bytes::from(format!("key:{:012}", i)))
        .collect()
}

fn bench_dict(c: &mut Criterion) {
    let ks = keys();
    let mut g = c.benchmark_group("dict");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("insert 100k", |b| {
        b.iter(|| {
            let mut d: Dict<u64> = Dict::new();
            for (i, k) in ks.iter().enumerate() {
                d.insert(k.clone(), i as u64);
            }
            black_box(d.len());
        })
    });
    let mut d: Dict<u64> = Dict::new();
    for (i, k) in ks.iter().enumerate() {
        d.insert(k.clone(), i as u64);
    }
    g.bench_function("get 100k hits", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for k in &ks {
                sum += *d.get(k).unwrap();
            }
            black_box(sum);
        })
    });
    g.finish();
}

fn bench_db(c: &mut Criterion) {
    let ks = keys();
    let mut g = c.benchmark_group("db");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("SET-like insert 100k (half with TTL)", |b| {
        b.iter(|| {
            let mut db = Db::new();
            for (i, k) in ks.iter().enumerate() {
                let ttl = if i % 2 == 0 { 4_000_000_000_000 } else { 0 };
                db.insert(k, Value::Str(StrValue::from_bytes(b"xxx")), ttl, 1);
            }
            black_box(db.len());
        })
    });
    let mut db = Db::new();
    for (i, k) in ks.iter().enumerate() {
        let ttl = if i % 2 == 0 { 4_000_000_000_000 } else { 0 };
        db.insert(k, Value::Str(StrValue::from_bytes(b"xxx")), ttl, 1);
    }
    g.bench_function("GET-like lookup 100k", |b| {
        b.iter(|| {
            let mut n = 0;
            for k in &ks {
                n += db.lookup_mut(k, 2).is_some() as usize;
            }
            black_box(n);
        })
    });
    // A pipeline's lookups: 16 at a time, in an order that is not the insertion order (so the
    // nodes are not read in the order the slab laid them out), without and with the hints the
    // server gives a batch before running it (`Db::prefetch_batch`).
    let order = shuffled(ks.len());
    let get = tessera::commands::lookup(b"get").expect("GET is in the table");
    let gets: Vec<Vec<Bytes>> = order
        .iter()
        .map(|&i| vec![Bytes::from_static(b"GET"), ks[i].clone()])
        .collect();
    for hinted in [false, true] {
        let name = if hinted {
            "GET-like lookup 100k shuffled, batches of 16, prefetched"
        } else {
            "GET-like lookup 100k shuffled, batches of 16"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for batch in gets.chunks(16) {
                    if hinted {
                        db.prefetch_batch(batch.iter().map(|a| (get, &a[..])));
                    }
                    for a in batch {
                        n += db.lookup_mut(&a[1], 2).is_some() as usize;
                    }
                }
                black_box(n);
            })
        });
    }
    g.finish();
}

/// 0..n in a fixed scrambled order: an odd multiplier permutes the power-of-two room above
/// n, and what falls past n is left out. Deterministic, and far from sequential.
fn shuffled(n: usize) -> Vec<usize> {
    let room = n.next_power_of_two();
    (0..room)
        .map(|i| i.wrapping_mul(0x9E37_79B1) & (room - 1))
        .filter(|&i| i < n)
        .collect()
}

/// One allocation and its free, the unit the counting allocator adds its bookkeeping to.
fn bench_alloc(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("malloc+free 1000 x 48 bytes", |b| {
        b.iter(|| {
            for i in 0..1000u32 {
                black_box(vec![i as u8; 48]);
            }
        })
    });
    g.finish();
}

/// ZADD's work on a big sorted set: redis-benchmark's `ZADD myzset <rand> element:<rand>`
/// gives mostly existing members a random new score, which moves the member's node.
fn bench_zset(c: &mut Criterion) {
    let members: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("element:{i}").into_bytes())
        .collect();
    let mut z = ZSetValue::new();
    let lim = ZsetLimits::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for m in &members {
        z.insert(m, (next() % N as u64) as f64, lim);
    }
    let mut g = c.benchmark_group("zset");
    const OPS: usize = 10_000;
    g.throughput(Throughput::Elements(OPS as u64));
    g.bench_function("score change, 100k members, random new score", |b| {
        b.iter(|| {
            for _ in 0..OPS {
                let m = &members[(next() % N as u64) as usize];
                let new = (next() % N as u64) as f64;
                let (old, at) = z.locate(m).unwrap();
                if old != new {
                    z.update_at(at, m, old, new);
                }
            }
            black_box(z.len());
        })
    });
    g.bench_function("score change, 100k members, small step", |b| {
        b.iter(|| {
            for _ in 0..OPS {
                let m = &members[(next() % N as u64) as usize];
                let (old, at) = z.locate(m).unwrap();
                z.update_at(at, m, old, old + 0.001);
            }
            black_box(z.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench_dict, bench_db, bench_alloc, bench_zset);
criterion_main!(benches);

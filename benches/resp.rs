//! RESP parser and reply writer micro-benchmarks (criterion).
use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tessera::protocol::parse::{parse_requests, ParseLimits};
use tessera::protocol::Reply;

fn pipeline(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("key:{:012}", i);
        out.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n$3\r\nxxx\r\n",
                key.len(),
                key
            )
            .as_bytes(),
        );
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let wire = pipeline(1000);
    let limits = ParseLimits::default();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 pipelined SETs", |b| {
        let mut out = Vec::with_capacity(1000);
        b.iter(|| {
            let mut buf = BytesMut::from(&wire[..]);
            out.clear();
            parse_requests(&mut buf, &limits, &mut out).unwrap();
            black_box(out.len());
        })
    });
    g.bench_function("inline PING", |b| {
        let mut out = Vec::with_capacity(1);
        b.iter(|| {
            let mut buf = BytesMut::from(&b"PING\r\n"[..]);
            out.clear();
            parse_requests(&mut buf, &limits, &mut out).unwrap();
            black_box(out.len());
        })
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 bulk replies", |b| {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            buf.clear();
            let mut r = Reply::new(&mut buf, false);
            for _ in 0..1000 {
                r.bulk(b"some-value-of-moderate-size");
            }
            black_box(buf.len());
        })
    });
    g.bench_function("1000 integer replies", |b| {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            buf.clear();
            let mut r = Reply::new(&mut buf, true);
            for i in 0..1000 {
                r.int(i * 7919);
            }
            black_box(buf.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench_parse, bench_write);
criterion_main!(benches);

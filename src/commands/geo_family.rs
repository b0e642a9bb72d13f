//! Geo commands (Redis's geo.c): GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH,
//! GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and their `_RO` variants.
//!
//! A geo set is an ordinary sorted set whose scores are 52-bit geohashes
//! (`types::geohash`), so this module owns no value type: it reads sorted sets through the
//! zset API and writes them only through ZADD's own handler (GEOADD, as Redis rewrites it into
//! a ZADD) or by storing a whole new sorted set (the STORE forms), so that memory accounting,
//! notifications, dirty counts, AOF and invalidation follow the paths every write takes. It
//! must never change a sorted set's encoding rules or interpret scores other than as Redis
//! does (any score decodes to some position, as in Redis).
//!
//! Searches scan the nine geohash boxes Redis scans, in Redis's order, and sort the candidates
//! with the algorithms Redis's reply order depends on: a stable full sort (glibc's merge sort)
//! and, when COUNT cuts the result, Redis's partial quicksort (`pqsort`), so that ties come out
//! in the same order.

use std::sync::OnceLock;

use bytes::{BufMut, Bytes};

use super::args::{self, c_str, ERR_NOT_INT, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, CommandSpec, Ctx, Exec, KeySpec, ShardFn, KEY1};
use crate::protocol::Reply;
use crate::types::geohash::{self, Shape, ShapeKind};
use crate::types::zset::{ScoreRange, ZRange};
use crate::types::{Value, ZSetValue, ZsetLimits};

const COMPLEXITY_SEARCH: &str = "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape";
const COMPLEXITY_RADIUS: &str = "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.";

pub fn specs() -> Vec<CommandSpec> {
    let g = "geo";
    vec![
        cmd(
            "geoadd",
            -5,
            WRITE | DENYOOM,
            KEY1,
            g,
            "3.2.0",
            "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
            "Adds positions (longitude, latitude, name) to a geo set (NX XX CH).",
            Exec::Shard(geoadd),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "geodist",
            -4,
            READONLY,
            KEY1,
            g,
            "3.2.0",
            "O(log(N))",
            "Returns the distance between two members of a geo set.",
            Exec::Shard(geodist),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "geohash",
            -2,
            READONLY,
            KEY1,
            g,
            "3.2.0",
            "O(log(N)) for each member requested, where N is the number of elements in the sorted set.",
            "Returns the standard geohash strings of geo set members.",
            Exec::Shard(geohash_cmd),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "geopos",
            -2,
            READONLY,
            KEY1,
            g,
            "3.2.0",
            "O(N) where N is the number of members requested.",
            "Returns the longitude and latitude of geo set members.",
            Exec::Shard(geopos),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "georadius",
            -6,
            WRITE | DENYOOM,
            KEY1,
            g,
            "3.2.0",
            COMPLEXITY_RADIUS,
            "Finds geo set members within a radius of a position, optionally storing them.",
            Exec::Shard(georadius),
        )
        .movable_keys(radius_keys)
        .key_specs(const { &[
            KeySpec::range(&["RO", "access"], 1, 0, 1),
            KeySpec::new(&["OW", "update"], super::BeginSearch::Keyword("STORE", 6), super::FindKeys::Range(0, 1, 0)),
            KeySpec::new(&["OW", "update"], super::BeginSearch::Keyword("STOREDIST", 6), super::FindKeys::Range(0, 1, 0)),
        ] })
        .deprecated("6.2.0", "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` argument"),
        cmd(
            "georadiusbymember",
            -5,
            WRITE | DENYOOM,
            KEY1,
            g,
            "3.2.0",
            COMPLEXITY_RADIUS,
            "Finds geo set members within a radius of a member, optionally storing them.",
            Exec::Shard(georadiusbymember),
        )
        .movable_keys(radius_keys)
        .key_specs(const { &[
            KeySpec::range(&["RO", "access"], 1, 0, 1),
            KeySpec::new(&["OW", "update"], super::BeginSearch::Keyword("STORE", 5), super::FindKeys::Range(0, 1, 0)),
            KeySpec::new(&["OW", "update"], super::BeginSearch::Keyword("STOREDIST", 5), super::FindKeys::Range(0, 1, 0)),
        ] })
        .deprecated(
            "6.2.0",
            "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` and `FROMMEMBER` arguments",
        ),
        cmd(
            "georadius_ro",
            -6,
            READONLY,
            KEY1,
            g,
            "3.2.10",
            COMPLEXITY_RADIUS,
            "Finds geo set members within a radius of a position (read-only GEORADIUS).",
            Exec::Shard(georadius_ro),
        )
        .key_flags(&["RO", "access"])
        .deprecated("6.2.0", "`GEOSEARCH` with the `BYRADIUS` argument"),
        cmd(
            "georadiusbymember_ro",
            -5,
            READONLY,
            KEY1,
            g,
            "3.2.10",
            COMPLEXITY_RADIUS,
            "Finds geo set members within a radius of a member (read-only GEORADIUSBYMEMBER).",
            Exec::Shard(georadiusbymember_ro),
        )
        .key_flags(&["RO", "access"])
        .deprecated("6.2.0", "`GEOSEARCH` with the `BYRADIUS` and `FROMMEMBER` arguments"),
        cmd(
            "geosearch",
            -7,
            READONLY,
            KEY1,
            g,
            "6.2.0",
            COMPLEXITY_SEARCH,
            "Finds geo set members within a circle or a box around a member or a position.",
            Exec::Shard(geosearch),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "geosearchstore",
            -8,
            WRITE | DENYOOM,
            (1, 2, 1),
            g,
            "6.2.0",
            COMPLEXITY_SEARCH,
            "Stores the geo set members within a circle or a box in another key.",
            Exec::Shard(geosearchstore),
        )
        .key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::range(&["RO", "access"], 2, 0, 1)] }),
    ]
}

/// GEORADIUS and GEORADIUSBYMEMBER: the source, and every argument that follows a STORE or
/// STOREDIST from the fifth on (Redis's `georadiusGetKeys` looks there). The handler stores
/// into the last one its option scan accepts, which is always among these, so routing and
/// locking cover every key it may write.
fn radius_keys(a: &[Bytes]) -> Option<Vec<usize>> {
    let mut keys = vec![1];
    let mut i = 5;
    while i + 1 < a.len() {
        if opt_is(&a[i], "store") || opt_is(&a[i], "storedist") {
            keys.push(i + 1);
        }
        i += 1;
    }
    Some(keys)
}

/// Redis compares option names with `strcasecmp` on the argument's C string.
fn opt_is(arg: &[u8], name: &str) -> bool {
    args::eq_ic(c_str(arg), name)
}

fn limits(ctx: &Ctx) -> ZsetLimits {
    let c = &ctx.st.config;
    ZsetLimits {
        max_entries: usize::try_from(c.zset_max_listpack_entries).unwrap_or(usize::MAX),
        max_value: usize::try_from(c.zset_max_listpack_value).unwrap_or(usize::MAX),
    }
}

/// Looks the key up for a read (hits, misses, `keymiss`): Ok(false) when missing, Err for
/// another type.
fn check_read(ctx: &mut Ctx, key: &[u8]) -> Result<bool, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(false),
        Some(e) => match e.value {
            Value::ZSet(_) => Ok(true),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// The sorted set at `key`, already looked up (and counted) by [`check_read`].
fn zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a ZSetValue> {
    match ctx.lookup_write(key) {
        Some(e) => match &e.value {
            Value::ZSet(z) => Some(z),
            _ => None,
        },
        None => None,
    }
}

/// getDoubleFromObjectOrReply: the whole argument must be a number (not NaN).
fn double_arg(a: &[u8], err: &'static str) -> Result<f64, String> {
    args::parse_double(a).ok_or_else(|| err.to_string())
}

/// A longitude/latitude pair within Web Mercator's limits (Redis's `extractLongLatOrReply`).
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), String> {
    let x = double_arg(lon, args::ERR_NOT_FLOAT)?;
    let y = double_arg(lat, args::ERR_NOT_FLOAT)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(format!(
            "ERR invalid longitude,latitude pair {},{}",
            geohash::fixed(x, 6),
            geohash::fixed(y, 6)
        ));
    }
    Ok((x, y))
}

/// Meters per unit.
fn unit(a: &[u8]) -> Result<f64, String> {
    let u = c_str(a);
    for (name, f) in [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)] {
        if args::eq_ic(u, name) {
            return Ok(f);
        }
    }
    Err("ERR unsupported unit provided. please use M, KM, FT, MI".to_string())
}

/// `radius unit`: (radius, meters per unit).
fn radius_arg(r: &[u8], u: &[u8]) -> Result<(f64, f64), String> {
    let d = double_arg(r, "ERR need numeric radius")?;
    if d < 0.0 {
        return Err("ERR radius cannot be negative".to_string());
    }
    Ok((d, unit(u)?))
}

/// `width height unit`: (width, height, meters per unit).
fn box_arg(w: &[u8], h: &[u8], u: &[u8]) -> Result<(f64, f64, f64), String> {
    let w = double_arg(w, "ERR need numeric width")?;
    let h = double_arg(h, "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err("ERR height or width cannot be negative".to_string());
    }
    Ok((w, h, unit(u)?))
}

/// A coordinate as Redis's `addReplyHumanLongDouble` writes it: a bulk string in RESP2, a
/// double in RESP3, both with `%.17Lf` trimmed.
fn reply_coord(r: &mut Reply, v: f64) {
    let s = geohash::format_coord(v);
    if r.resp3 {
        r.buf.reserve(s.len() + 3);
        r.buf.put_u8(b',');
        r.buf.put_slice(s.as_bytes());
        r.buf.put_slice(b"\r\n");
    } else {
        r.bulk(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// GEOADD
// ---------------------------------------------------------------------------------------------

/// ZADD's handler, which GEOADD hands its rewritten arguments to, as Redis does.
fn zadd_handler() -> ShardFn {
    static ZADD: OnceLock<ShardFn> = OnceLock::new();
    *ZADD.get_or_init(|| match super::lookup(b"zadd").map(|s| s.exec) {
        Some(Exec::Shard(f)) => f,
        _ => unreachable!("ZADD is a shard command"),
    })
}

fn geoadd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (mut nx, mut xx) = (false, false);
    let mut first = 2;
    while first < a.len() {
        let o = &a[first];
        if opt_is(o, "nx") {
            nx = true;
        } else if opt_is(o, "xx") {
            xx = true;
        } else if !opt_is(o, "ch") {
            break;
        }
        first += 1;
    }
    if !(a.len() - first).is_multiple_of(3) || (xx && nx) {
        return r.error(ERR_SYNTAX);
    }
    let n = (a.len() - first) / 3;
    // ZADD key [options] score member ...: the options are passed as given (ZADD reads them).
    let mut zargs: Vec<Bytes> = Vec::with_capacity(first + 2 * n);
    zargs.push(Bytes::from_static(b"zadd"));
    zargs.extend(a[1..first].iter().cloned());
    for t in a[first..].chunks_exact(3) {
        let (lon, lat) = match lon_lat(&t[0], &t[1]) {
            Ok(p) => p,
            Err(e) => return r.error(&e),
        };
        let mut b = itoa::Buffer::new();
        let score = b.format(geohash::encode_score(lon, lat));
        zargs.push(Bytes::copy_from_slice(score.as_bytes()));
        zargs.push(t[2].clone());
    }
    zadd_handler()(ctx, &zargs, r);
}

// ---------------------------------------------------------------------------------------------
// GEODIST, GEOHASH, GEOPOS
// ---------------------------------------------------------------------------------------------

fn geodist(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let to_meters = match a.len() {
        5 => match unit(&a[4]) {
            Ok(u) => u,
            Err(e) => return r.error(&e),
        },
        n if n > 5 => return r.error(ERR_SYNTAX),
        _ => 1.0,
    };
    match check_read(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(false) => return r.null(),
        Ok(true) => {}
    }
    let Some(z) = zset(ctx, &a[1]) else {
        return r.null();
    };
    match (z.score(&a[2]), z.score(&a[3])) {
        (Some(s1), Some(s2)) => {
            let (x1, y1) = geohash::decode_score(s1);
            let (x2, y2) = geohash::decode_score(s2);
            let d = geohash::distance(x1, y1, x2, y2) / to_meters;
            r.bulk(geohash::format_distance(d).as_bytes());
        }
        _ => r.null(),
    }
}

fn geohash_cmd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let exists = match check_read(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(x) => x,
    };
    let z = if exists { zset(ctx, &a[1]) } else { None };
    r.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => r.bulk(&geohash::geohash_string(s)),
            None => r.null(),
        }
    }
}

fn geopos(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let exists = match check_read(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(x) => x,
    };
    let z = if exists { zset(ctx, &a[1]) } else { None };
    r.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => {
                let (lon, lat) = geohash::decode_score(s);
                r.array(2);
                reply_coord(r, lon);
                reply_coord(r, lat);
            }
            None => r.null_array(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Searches
// ---------------------------------------------------------------------------------------------

/// Which command a search serves (Redis's `georadiusGeneric` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS / GEORADIUS_RO: centre and radius are positional.
    Coords { store: bool },
    /// GEORADIUSBYMEMBER / _RO: centre member and radius are positional.
    Member { store: bool },
    /// GEOSEARCH / GEOSEARCHSTORE: everything is an option.
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// One candidate within the shape.
#[derive(Clone)]
struct Point<'a> {
    member: &'a [u8],
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// The members of `z` inside `shape`, box by box in Redis's order; with `limit` (ANY) the
/// scan stops once that many were found.
fn search<'a>(z: &'a ZSetValue, shape: &Shape, limit: usize) -> Vec<Point<'a>> {
    let boxes = shape.boxes();
    let mut out: Vec<Point<'a>> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, &b) in boxes.iter().enumerate() {
        if geohash::is_zero_box(b) {
            continue;
        }
        // Huge radii make neighbours coincide: skip a box equal to the one scanned last (Redis
        // never counts the centre box as "last").
        if let Some(l) = last {
            if geohash::same_box(b, boxes[l]) {
                continue;
            }
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::box_scores(b);
        let range = ScoreRange {
            min,
            min_ex: false,
            max,
            max_ex: true,
        };
        if let Some(first) = z.first_in(&range) {
            for (m, s) in z.range(first, usize::MAX, false) {
                if !range.lte_max(s, m) {
                    break;
                }
                let (lon, lat) = geohash::decode_score(s);
                if let Some(dist) = shape.contains(lon, lat) {
                    out.push(Point {
                        member: m,
                        score: s,
                        lon,
                        lat,
                        dist,
                    });
                }
                if limit != 0 && out.len() >= limit {
                    break;
                }
            }
        }
        if i != 0 {
            last = Some(i);
        }
    }
    out
}

type Cmp<T> = dyn Fn(&T, &T) -> std::cmp::Ordering;

/// Redis's `pqsort`: Bentley-McIlroy quicksort that only recurses into partitions that
/// overlap the ranks [lo, hi], so that those ranks hold what a full sort would put there.
/// Reproduced step for step because the order of equal distances depends on it.
fn pqsort<T>(v: &mut [T], lo: usize, hi: usize, cmp: &Cmp<T>) {
    let n = v.len();
    pqsort_at(v, 0, n, lo, hi, cmp);
}

/// [`pqsort`] of the segment [base, base + n) of `v` (ranks count in all of `v`).
fn pqsort_at<T>(v: &mut [T], mut base: usize, mut n: usize, lo: usize, hi: usize, cmp: &Cmp<T>) {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let c = |v: &[T], i: usize, j: usize| cmp(&v[i], &v[j]);
    let med3 = |v: &[T], a: usize, b: usize, cc: usize| -> usize {
        if c(v, a, b) == Less {
            if c(v, b, cc) == Less {
                b
            } else if c(v, a, cc) == Less {
                cc
            } else {
                a
            }
        } else if c(v, b, cc) == Greater {
            b
        } else if c(v, a, cc) == Less {
            a
        } else {
            cc
        }
    };
    // Whether the segment [s, s + len) holds any of the wanted ranks.
    let overlaps = |s: usize, len: usize| hi >= s && lo < s + len;
    loop {
        if n < 7 {
            for pm in base + 1..base + n {
                let mut pl = pm;
                while pl > base && c(v, pl - 1, pl) == Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = base + n / 2;
        if n > 7 {
            let mut pl = base;
            let mut pn = base + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d);
                pm = med3(v, pm - d, pm, pm + d);
                pn = med3(v, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, pl, pm, pn);
        }
        v.swap(base, pm);
        // pa..pb: equal to the pivot, then less; pc..pd: greater, then equal (pc >= base).
        let (mut pa, mut pb) = (base + 1, base + 1);
        let (mut pc, mut pd) = (base + n - 1, base + n - 1);
        loop {
            while pb <= pc {
                let r = c(v, pb, base);
                if r == Greater {
                    break;
                }
                if r == Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = c(v, pc, base);
                if r == Less {
                    break;
                }
                if r == Equal {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = base + n;
        let r = (pa - base).min(pb - pa);
        for k in 0..r {
            v.swap(base + k, pb - r + k);
        }
        let r = (pd - pc).min(pn - pd - 1);
        for k in 0..r {
            v.swap(pb + k, pn - r + k);
        }
        let left = pb - pa;
        if left > 1 && overlaps(base, left) {
            pqsort_at(v, base, left, lo, hi, cmp);
        }
        let right = pd - pc;
        if right > 1 && overlaps(pn - right, right) {
            base = pn - right;
            n = right;
            continue;
        }
        return;
    }
}

/// glibc's `qsort` (2.36, what Redis 7.0 on Debian runs): a top-down merge sort that takes from
/// the left run while the comparison is not greater. Stable, and never panics whatever the
/// comparison says (a NaN distance compares as less than everything, as in Redis).
fn msort<T: Clone>(v: &mut [T], cmp: &Cmp<T>) {
    if v.len() <= 1 {
        return;
    }
    let n1 = v.len() / 2;
    msort(&mut v[..n1], cmp);
    msort(&mut v[n1..], cmp);
    let mut merged: Vec<T> = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < v.len() {
        if cmp(&v[i], &v[j]) != std::cmp::Ordering::Greater {
            merged.push(v[i].clone());
            i += 1;
        } else {
            merged.push(v[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..]);
    v.clone_from_slice(&merged);
}

/// Redis's distance comparison (`sort_gp_asc`).
fn by_dist(x: &Point, y: &Point) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    if x.dist > y.dist {
        Greater
    } else if x.dist == y.dist {
        Equal
    } else {
        Less
    }
}

fn georadius(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    search_generic(ctx, a, 1, Variant::Coords { store: true }, r)
}

fn georadiusbymember(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    search_generic(ctx, a, 1, Variant::Member { store: true }, r)
}

fn georadius_ro(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    search_generic(ctx, a, 1, Variant::Coords { store: false }, r)
}

fn georadiusbymember_ro(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    search_generic(ctx, a, 1, Variant::Member { store: false }, r)
}

fn geosearch(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    search_generic(ctx, a, 1, Variant::Search { store: false }, r)
}

fn geosearchstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    search_generic(ctx, a, 2, Variant::Search { store: true }, r)
}

/// The position of `member` in the set at `key` (known to exist).
fn member_pos(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> Option<(f64, f64)> {
    zset(ctx, key)?.score(member).map(geohash::decode_score)
}

/// Redis's `georadiusGeneric`: every search command, with its checks in Redis's order.
fn search_generic(ctx: &mut Ctx, a: &[Bytes], src: usize, v: Variant, r: &mut Reply) {
    // Only the writing variants count changes, and only when they store.
    if matches!(
        v,
        Variant::Coords { store: true }
            | Variant::Member { store: true }
            | Variant::Search { store: true }
    ) {
        ctx.dirty(0);
    }
    let exists = match check_read(ctx, &a[src]) {
        Ok(x) => x,
        Err(e) => return r.error(e),
    };
    let mut center = (0.0, 0.0);
    let mut kind = ShapeKind::Radius(0.0);
    let mut conversion = 1.0;
    let mut storekey: Option<&Bytes> = None;
    let base = match v {
        Variant::Coords { .. } => {
            match lon_lat(&a[2], &a[3]) {
                Ok(p) => center = p,
                Err(e) => return r.error(&e),
            }
            match radius_arg(&a[4], &a[5]) {
                Ok((d, u)) => (kind, conversion) = (ShapeKind::Radius(d), u),
                Err(e) => return r.error(&e),
            }
            6
        }
        // Without the key the arguments are still scanned, to know which empty reply to give.
        Variant::Member { .. } if !exists => 5,
        Variant::Member { .. } => {
            match member_pos(ctx, &a[src], &a[2]) {
                Some(p) => center = p,
                None => return r.error("ERR could not decode requested zset member"),
            }
            match radius_arg(&a[3], &a[4]) {
                Ok((d, u)) => (kind, conversion) = (ShapeKind::Radius(d), u),
                Err(e) => return r.error(&e),
            }
            5
        }
        Variant::Search { store } => {
            if store {
                storekey = Some(&a[1]);
                3
            } else {
                2
            }
        }
    };
    let is_search = matches!(v, Variant::Search { .. });
    let accepts_store = matches!(
        v,
        Variant::Coords { store: true } | Variant::Member { store: true }
    );
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let mut storedist = false;
    let mut i = base;
    while i < a.len() {
        let o = &a[i];
        let left = a.len() - i - 1;
        if opt_is(o, "withdist") {
            withdist = true;
        } else if opt_is(o, "withhash") {
            withhash = true;
        } else if opt_is(o, "withcoord") {
            withcoord = true;
        } else if opt_is(o, "any") {
            any = true;
        } else if opt_is(o, "asc") {
            sort = Sort::Asc;
        } else if opt_is(o, "desc") {
            sort = Sort::Desc;
        } else if opt_is(o, "count") && left >= 1 {
            match args::parse_i64(&a[i + 1]) {
                Some(c) => count = c,
                None => return r.error(ERR_NOT_INT),
            }
            if count <= 0 {
                return r.error("ERR COUNT must be > 0");
            }
            i += 1;
        } else if opt_is(o, "store") && left >= 1 && accepts_store {
            storekey = Some(&a[i + 1]);
            storedist = false;
            i += 1;
        } else if opt_is(o, "storedist") && left >= 1 && accepts_store {
            storekey = Some(&a[i + 1]);
            storedist = true;
            i += 1;
        } else if opt_is(o, "storedist") && v == (Variant::Search { store: true }) {
            storedist = true;
        } else if opt_is(o, "frommember") && left >= 1 && is_search && !fromloc {
            if exists {
                match member_pos(ctx, &a[src], &a[i + 1]) {
                    Some(p) => center = p,
                    None => return r.error("ERR could not decode requested zset member"),
                }
            }
            frommember = true;
            i += 1;
        } else if opt_is(o, "fromlonlat") && left >= 2 && is_search && !frommember {
            match lon_lat(&a[i + 1], &a[i + 2]) {
                Ok(p) => center = p,
                Err(e) => return r.error(&e),
            }
            fromloc = true;
            i += 2;
        } else if opt_is(o, "byradius") && left >= 2 && is_search && !bybox {
            match radius_arg(&a[i + 1], &a[i + 2]) {
                Ok((d, u)) => (kind, conversion) = (ShapeKind::Radius(d), u),
                Err(e) => return r.error(&e),
            }
            byradius = true;
            i += 2;
        } else if opt_is(o, "bybox") && left >= 3 && is_search && !byradius {
            match box_arg(&a[i + 1], &a[i + 2], &a[i + 3]) {
                Ok((w, h, u)) => {
                    (kind, conversion) = (
                        ShapeKind::Box {
                            width: w,
                            height: h,
                        },
                        u,
                    )
                }
                Err(e) => return r.error(&e),
            }
            bybox = true;
            i += 3;
        } else {
            return r.error(ERR_SYNTAX);
        }
        i += 1;
    }
    if storekey.is_some() && (withdist || withhash || withcoord) {
        let what = if v == (Variant::Search { store: true }) {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return r.error(&format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        ));
    }
    if is_search && !(frommember || fromloc) {
        return r.error(&format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            String::from_utf8_lossy(c_str(&a[0]))
        ));
    }
    if is_search && !(byradius || bybox) {
        return r.error(&format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            String::from_utf8_lossy(c_str(&a[0]))
        ));
    }
    if any && count == 0 {
        return r.error("ERR the ANY argument requires COUNT argument");
    }
    if !exists {
        return match storekey {
            Some(dst) => {
                if ctx.db().delete(dst) {
                    ctx.notify(class::GENERIC, "del", dst);
                    ctx.dirty(1);
                }
                r.int(0)
            }
            None => r.array(0),
        };
    }
    // COUNT means the nearest ones unless ANY is given.
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape = Shape {
        lon: center.0,
        lat: center.1,
        conversion,
        kind,
    };
    let limit = if any {
        usize::try_from(count).unwrap_or(usize::MAX)
    } else {
        0
    };
    let Some(z) = zset(ctx, &a[src]) else {
        return r.array(0);
    };
    let mut found = search(z, &shape, limit);
    if found.is_empty() && storekey.is_none() {
        return r.array(0);
    }
    let total = found.len();
    let returned = if count == 0 || (total as u64) < count as u64 {
        total
    } else {
        count as usize
    };
    if sort != Sort::None {
        let desc = |x: &Point, y: &Point| by_dist(x, y).reverse();
        let cmp: &Cmp<Point> = if sort == Sort::Asc { &by_dist } else { &desc };
        if returned == total {
            msort(&mut found, cmp);
        } else {
            pqsort(&mut found, 0, returned - 1, cmp);
        }
    }
    let Some(dst) = storekey else {
        let opts = withdist as usize + withhash as usize + withcoord as usize;
        r.array(returned);
        for p in &found[..returned] {
            if opts > 0 {
                r.array(opts + 1);
            }
            r.bulk(p.member);
            if withdist {
                r.bulk(geohash::format_distance(p.dist / conversion).as_bytes());
            }
            if withhash {
                r.int(p.score as i64);
            }
            if withcoord {
                r.array(2);
                reply_coord(r, p.lon);
                reply_coord(r, p.lat);
            }
        }
        return;
    };
    let mut entries: Vec<(Bytes, f64)> = found[..returned]
        .iter()
        .map(|p| {
            let s = if storedist {
                p.dist / conversion
            } else {
                p.score
            };
            (Bytes::copy_from_slice(p.member), s)
        })
        .collect();
    drop(found);
    // A member found twice (coinciding boxes) is stored once.
    entries.sort_by(|x, y| x.0.cmp(&y.0));
    entries.dedup_by(|x, y| x.0 == y.0);
    entries.sort_by(|x, y| crate::types::zset::cmp_entries(x.1, &x.0, y.1, &y.0));
    if returned > 0 {
        let lim = limits(ctx);
        let now = ctx.now_ms;
        ctx.db().insert(
            dst,
            Value::ZSet(ZSetValue::from_sorted(entries, lim)),
            0,
            now,
        );
        let event = if is_search {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        ctx.notify(class::ZSET, event, dst);
        ctx.dirty(returned as u64);
    } else if ctx.db().delete(dst) {
        ctx.notify(class::GENERIC, "del", dst);
        ctx.dirty(1);
    }
    r.int(returned as i64);
}

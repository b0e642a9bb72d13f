//! Differential tests of the geo commands against redis-server 7.0 (Tessera with 1 and 4
//! shards), replies compared byte for byte in RESP2 and RESP3.
//!
//! Hand-written cases use real city coordinates and the edges (poles' limits, the
//! antimeridian, radius 0, huge radii, missing members and keys, odd scores put there by
//! ZADD); errors are compared exactly. Store forms are checked with their keyspace
//! notifications and INFO's `rdb_changes_since_last_save`, with keys on different shards.
//! A seeded randomized run (`DIFF_SEEDS`, `DIFF_STEPS`) throws random points, searches and
//! option combinations at all servers.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CITIES: &[(&str, &str, &str)] = &[
    ("13.361389", "38.115556", "Palermo"),
    ("15.087269", "37.502669", "Catania"),
    ("2.3522219", "48.856614", "Paris"),
    ("-0.1277583", "51.5073509", "London"),
    ("-74.0059413", "40.7127837", "NewYork"),
    ("139.6917064", "35.6894875", "Tokyo"),
    ("151.2092955", "-33.8688197", "Sydney"),
    ("-43.1728965", "-22.9068467", "Rio"),
    ("37.6173", "55.755826", "Moscow"),
    ("-149.9002778", "61.2180556", "Anchorage"),
    ("-21.9426354", "64.146582", "Reykjavik"),
    ("179.9", "-16.5", "EastFiji"),
    ("-179.9", "-16.6", "WestFiji"),
    ("0", "0", "NullIsland"),
    ("180", "85.05112878", "NorthEdge"),
    ("-180", "-85.05112878", "SouthEdge"),
    ("-68.3", "-54.8", "Ushuaia"),
    ("15.6", "78.2", "Longyearbyen"),
];

fn add_cities(d: &mut Diff, key: &str) {
    let mut line = format!("GEOADD {key}");
    for (lon, lat, name) in CITIES {
        line.push_str(&format!(" {lon} {lat} {name}"));
    }
    d.s(&line);
}

/// INFO's `rdb_changes_since_last_save` on every target (the changes counted so far).
fn dirty(d: &mut Diff, what: &str) {
    d.each(&format!("{what}: rdb_changes_since_last_save"), |t, c| {
        let info = t.conns[c].cmd_str("INFO persistence");
        let text = String::from_utf8_lossy(&info).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
            .unwrap_or("?")
            .trim()
            .as_bytes()
            .to_vec()
    });
}

fn both_protocols(d: &mut Diff, lines: &[&str]) {
    for proto in ["2", "3"] {
        d.s_norm(&format!("HELLO {proto}"), Norm::Hello);
        for l in lines {
            d.s(l);
        }
    }
    d.s_norm("HELLO 2", Norm::Hello);
}

#[test]
fn geo_cities_and_edges() {
    let mut d = diff_or_skip!("geo_cities_and_edges");
    d.section("add and read");
    add_cities(&mut d, "cities");
    add_cities(&mut d, "cities");
    d.s("ZRANGE cities 0 -1 WITHSCORES");
    d.s("OBJECT ENCODING cities");
    d.s("GEOADD cities CH 13.361389 38.115556 Palermo 13.4 38.2 Catania 1 2 New");
    d.s("GEOADD cities NX 1 1 New 5 5 Newer");
    d.s("GEOADD cities XX 3 3 New 6 6 NotThere");
    d.s("GEOADD cities XX CH NX 3 3 New");
    d.s("GEOADD cities CH CH 1 2 New");
    d.s("ZREM cities New Newer");
    d.s("ZSCORE cities Palermo");
    both_protocols(
        &mut d,
        &[
            "GEOPOS cities Palermo Catania nosuch NullIsland NorthEdge SouthEdge EastFiji",
            "GEOPOS nokey a b",
            "GEOHASH cities Palermo Catania nosuch NullIsland NorthEdge SouthEdge Sydney",
            "GEOHASH nokey a",
            "GEODIST cities Palermo Catania",
            "GEODIST cities Palermo Catania km",
            "GEODIST cities Palermo Catania MI",
            "GEODIST cities Palermo Catania ft",
            "GEODIST cities NorthEdge SouthEdge",
            "GEODIST cities EastFiji WestFiji",
            "GEODIST cities Palermo nosuch",
            "GEODIST nokey a b",
            "GEODIST cities Palermo Palermo",
            "GEORADIUS cities 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC",
            "GEORADIUS cities 15 37 200 km",
            "GEORADIUSBYMEMBER cities Palermo 1000 km WITHDIST DESC",
            "GEOSEARCH cities FROMLONLAT 0 0 BYRADIUS 20000 km ASC WITHDIST",
            "GEOSEARCH cities FROMLONLAT 0 0 BYBOX 40000 40000 km DESC WITHCOORD",
            "GEOSEARCH cities FROMMEMBER Paris BYBOX 2000 1000 km ASC WITHDIST WITHHASH",
            "GEOSEARCH cities FROMMEMBER EastFiji BYRADIUS 100 km WITHDIST",
            "GEOSEARCH cities FROMMEMBER WestFiji BYBOX 500 500 km WITHDIST",
            "GEOSEARCH cities FROMLONLAT 180 -16.5 BYRADIUS 50 km WITHCOORD",
            "GEOSEARCH cities FROMLONLAT -180 -16.5 BYRADIUS 50 km WITHCOORD",
            "GEOSEARCH cities FROMLONLAT 15.6 85 BYRADIUS 1000 km WITHDIST",
            "GEOSEARCH cities FROMLONLAT 0 -85.05112878 BYBOX 1000 1000 km WITHDIST",
            "GEOSEARCH cities FROMMEMBER Longyearbyen BYRADIUS 3000 km ASC",
            "GEOSEARCH cities FROMMEMBER Ushuaia BYRADIUS 3000 km ASC COUNT 2",
            "GEOSEARCH cities FROMMEMBER Palermo BYRADIUS 0 m WITHDIST",
            "GEOSEARCH cities FROMMEMBER Palermo BYBOX 0 0 m WITHDIST",
            "GEOSEARCH cities FROMLONLAT 13.361389 38.115556 BYRADIUS 0 km",
            "GEOSEARCH cities FROMLONLAT 0 0 BYRADIUS 1e10 km ASC COUNT 5",
            "GEOSEARCH cities FROMLONLAT 0 0 BYRADIUS inf m",
            "GEOSEARCH cities FROMLONLAT 0 0 BYBOX inf 10 m",
            "GEOSEARCH cities FROMLONLAT 0 0 BYRADIUS 1e300 mi WITHDIST",
            "GEOSEARCH cities FROMLONLAT 10 45 BYRADIUS 3000 km COUNT 3 ANY",
            "GEOSEARCH cities FROMLONLAT 10 45 BYRADIUS 3000 km COUNT 3 ANY DESC",
            "GEOSEARCH cities FROMLONLAT 10 45 BYRADIUS 3000 km COUNT 3",
            "GEOSEARCH cities FROMLONLAT 10 45 BYRADIUS 3000 km COUNT 300 DESC",
            "GEOSEARCH nokey FROMLONLAT 10 45 BYRADIUS 3000 km",
            "GEOSEARCH nokey FROMMEMBER x BYRADIUS 3000 km",
            "GEORADIUSBYMEMBER nokey x abc xyz",
            "GEORADIUS_RO cities 13 38 500 km WITHDIST COUNT 1",
            "GEORADIUSBYMEMBER_RO cities Catania 500 km WITHCOORD",
        ],
    );
    d.section("duplicates and ties");
    d.s("GEOADD dup 10 10 a 10 10 b 10 10 c 10 10 d 10 10 e 10 10 f 10 10 g 10 10 h 10.001 10 i");
    for i in 0..60 {
        d.s(&format!("GEOADD dup 10 10.0001 m{i}"));
    }
    for c in [1, 2, 3, 5, 7, 8, 9, 30, 41, 69, 70] {
        d.s(&format!(
            "GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 100 km COUNT {c} WITHDIST"
        ));
        d.s(&format!(
            "GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 100 km COUNT {c} DESC"
        ));
        d.s(&format!(
            "GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 100 km COUNT {c} ANY"
        ));
    }
    d.s("GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 100 km ASC");
    d.s("GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 100 km DESC");
    d.s("GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 100 km");
    d.section("odd scores");
    d.s("ZADD odd -1 neg 0 zero 4503599627370496 big 1e300 huge inf pinf -inf ninf 1.5 frac");
    both_protocols(
        &mut d,
        &[
            "GEOPOS odd neg zero big huge pinf ninf frac",
            "GEOHASH odd neg zero big huge pinf ninf frac",
            "GEODIST odd neg huge",
            "GEOSEARCH odd FROMMEMBER zero BYRADIUS 100 km WITHHASH WITHCOORD",
            "GEOSEARCH odd FROMMEMBER ninf BYBOX 100 100 km WITHHASH",
        ],
    );
}

#[test]
fn geo_errors() {
    let mut d = diff_or_skip!("geo_errors");
    add_cities(&mut d, "g");
    d.s("SET str x");
    for l in [
        "GEOADD g 1 2",
        "GEOADD g 1 2 a 3",
        "GEOADD g NX XX 1 2 a",
        "GEOADD g NX CH",
        "GEOADD g NX CH CH",
        "GEOADD g GT 1 2 a",
        "GEOADD g 181 2 a",
        "GEOADD g 1 86 a",
        "GEOADD g -180.0000001 0 a",
        "GEOADD g 1 -85.06 a",
        "GEOADD g inf 0 a",
        "GEOADD g 0 -inf a",
        "GEOADD g 1e300 0 a",
        "GEOADD g -0 -0 negzero",
        "GEOADD g abc 0 a",
        "GEOADD g 0 abc a",
        "GEOADD g nan 0 a",
        "GEOADD g 1 2 ok 200 0 bad",
        "GEOADD g ' 1' 2 a",
        "GEOADD str 1 2 a",
        "GEODIST g a b c",
        "GEODIST g a b c d",
        "GEODIST g Palermo Catania parsec",
        "GEODIST str a b",
        "GEODIST str a b km",
        "GEODIST nokey a b xx",
        "GEOPOS str a",
        "GEOHASH str a",
        "GEORADIUS g 1 2 3",
        "GEORADIUS g 1 2 3 km",
        "GEORADIUS g 1 2 -3 km",
        "GEORADIUS g 1 2 x km",
        "GEORADIUS g 1 2 3 parsec",
        "GEORADIUS g 200 2 3 km",
        "GEORADIUS g x 2 3 km",
        "GEORADIUS g 1 2 3 km COUNT 0",
        "GEORADIUS g 1 2 3 km COUNT -1",
        "GEORADIUS g 1 2 3 km COUNT x",
        "GEORADIUS g 1 2 3 km COUNT",
        "GEORADIUS g 1 2 3 km ANY",
        "GEORADIUS g 1 2 3 km ANY COUNT 2",
        "GEORADIUS g 1 2 3 km STORE",
        "GEORADIUS g 1 2 3 km STORE d WITHDIST",
        "GEORADIUS g 1 2 3 km WITHCOORD STOREDIST d",
        "GEORADIUS g 1 2 3 km FROMLONLAT 1 2",
        "GEORADIUS g 1 2 3 km BYRADIUS 1 km",
        "GEORADIUS g 1 2 3 km bogus",
        "GEORADIUS str 1 2 3 km",
        "GEORADIUS nokey 1 2 3 km STORE d",
        "GEORADIUS_RO g 1 2 3 km STORE d",
        "GEORADIUS_RO g 1 2 3 km STOREDIST d",
        "GEORADIUSBYMEMBER g nosuch 3 km",
        "GEORADIUSBYMEMBER g nosuch x parsec",
        "GEORADIUSBYMEMBER g Palermo x km",
        "GEORADIUSBYMEMBER g Palermo 3 parsec",
        "GEORADIUSBYMEMBER str Palermo 3 km",
        "GEORADIUSBYMEMBER nokey Palermo 3 km WITHDIST STORE x",
        "GEORADIUSBYMEMBER_RO g Palermo 3 km STORE x",
        "GEOSEARCH g FROMLONLAT 1 2",
        "GEOSEARCH g BYRADIUS 1 km",
        "GEOSEARCH g FROMLONLAT 1 2 BYRADIUS 1 km FROMMEMBER Palermo",
        "GEOSEARCH g FROMMEMBER Palermo FROMLONLAT 1 2 BYRADIUS 1 km",
        "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 km BYBOX 1 1 km",
        "GEOSEARCH g FROMMEMBER Palermo BYBOX 1 1 km BYRADIUS 1 km",
        "GEOSEARCH g FROMMEMBER nosuch BYRADIUS 1 km",
        "GEOSEARCH g FROMMEMBER Palermo BYBOX -1 1 km",
        "GEOSEARCH g FROMMEMBER Palermo BYBOX x 1 km",
        "GEOSEARCH g FROMMEMBER Palermo BYBOX 1 x km",
        "GEOSEARCH g FROMMEMBER Palermo BYBOX 1 1 parsec",
        "GEOSEARCH g FROMMEMBER Palermo BYBOX 1 1",
        "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 km STORE x",
        "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 km STOREDIST",
        "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 km ANY",
        "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 km COUNT 0 ANY",
        "GEOSEARCH g FROMLONLAT 1 2 BYRADIUS 1 km COUNT 99999999999999999999",
        "geosearch g frommember Palermo byradius 1 KM withdist",
        "GeoSearch g FROMLONLAT 1 2 BYRADIUS 1 km FROMMEMBER x",
        "GeoSearch g bybox 1 1 km",
        "GeoSearch g frommember Palermo",
        "GEOSEARCH str FROMMEMBER Palermo BYRADIUS 1 km",
        "GEOSEARCH nokey FROMMEMBER x",
        "GEOSEARCH nokey FROMLONLAT 500 0 BYRADIUS 1 km",
        "GEOSEARCHSTORE d g FROMMEMBER Palermo BYRADIUS 1 km WITHDIST",
        "GEOSEARCHSTORE d g FROMMEMBER Palermo BYRADIUS 1 km STORE x",
        "GEOSEARCHSTORE d g FROMMEMBER Palermo BYRADIUS 1 km WITHHASH",
        "GEOSEARCHSTORE d str FROMMEMBER Palermo BYRADIUS 1 km",
        "GEOSEARCHSTORE d g FROMMEMBER Palermo",
        "GEOSEARCHSTORE d g BYRADIUS 1 km COUNT 1",
        "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 km WITHDIST\0x",
    ] {
        d.cmd(
            &split_cmd(l)
                .iter()
                .map(|v| v.as_slice())
                .collect::<Vec<_>>(),
        );
    }
    // Units and options are matched as C strings: text after a NUL is ignored.
    d.cmd(&[b"GEODIST", b"g", b"Palermo", b"Catania", b"km\0junk"]);
    d.cmd(&[
        b"GEOSEARCH",
        b"g",
        b"FROMMEMBER",
        b"Palermo",
        b"BYRADIUS",
        b"300",
        b"km",
        b"withdist\0x",
    ]);
}

#[test]
fn geo_store_notifications_and_dirty() {
    let mut d = diff_or_skip!("geo_store_notifications_and_dirty");
    d.s("CONFIG SET notify-keyspace-events KEA");
    let sub = d.subscribe_keyspace();
    let check = |d: &mut Diff, what: &str| {
        d.compare_notifications(sub, what);
        dirty(d, what);
    };
    dirty(&mut d, "start");
    // Keys chosen to land on different shards with 4 shards (different hash slots).
    for l in [
        "GEOADD src 13.361389 38.115556 Palermo 15.087269 37.502669 Catania 2.35 48.85 Paris",
        "GEOADD src 13.361389 38.115556 Palermo",
        "GEOADD src CH 13.4 38.115556 Palermo",
        "GEOADD src XX 1 1 nosuch",
        "GEOADD nokey XX 1 1 nosuch",
        "GEOADD src NX 1 1 Palermo 2 2 Rome",
        "GEORADIUS src 15 37 200 km",
        "GEORADIUS src 15 37 200 km STORE dst1",
        "ZRANGE dst1 0 -1 WITHSCORES",
        "GEORADIUS src 15 37 200 km STOREDIST dst2",
        "ZRANGE dst2 0 -1 WITHSCORES",
        "GEORADIUS src 15 37 200 km STORE dst9 STOREDIST dst3 COUNT 1",
        "EXISTS dst9",
        "ZRANGE dst3 0 -1 WITHSCORES",
        "GEORADIUSBYMEMBER src Palermo 300 km STORE other DESC COUNT 1",
        "ZRANGE other 0 -1 WITHSCORES",
        "GEOSEARCHSTORE dst4 src FROMMEMBER Paris BYBOX 3000 3000 km",
        "ZRANGE dst4 0 -1 WITHSCORES",
        "GEOSEARCHSTORE dst5 src FROMLONLAT 15 37 BYRADIUS 200 mi STOREDIST ASC",
        "ZRANGE dst5 0 -1 WITHSCORES",
        "SET dst6 x",
        "EXPIRE dst6 100",
        "GEOSEARCHSTORE dst6 src FROMLONLAT 15 37 BYRADIUS 200 km",
        "TTL dst6",
        "TYPE dst6",
        "GEOSEARCHSTORE dst6 src FROMLONLAT -100 0 BYRADIUS 1 km",
        "EXISTS dst6",
        "GEOSEARCHSTORE dst6 src FROMLONLAT -100 0 BYRADIUS 1 km",
        "GEOSEARCHSTORE dst1 nokey FROMLONLAT -100 0 BYRADIUS 1 km",
        "EXISTS dst1",
        "GEOSEARCHSTORE dst1 nokey FROMLONLAT -100 0 BYRADIUS 1 km",
        "GEORADIUS src -100 0 1 km STORE dst2",
        "EXISTS dst2",
        "GEORADIUSBYMEMBER nokey x 1 km STORE dst3",
        "EXISTS dst3",
        "GEOSEARCHSTORE src src FROMMEMBER Palermo BYRADIUS 300 km STOREDIST",
        "ZRANGE src 0 -1 WITHSCORES",
        "GEOSEARCHSTORE {t}d {t}s FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOADD {t}s 0 0 a",
        "GEOSEARCHSTORE {t}d {t}s FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOSEARCH src FROMMEMBER Palermo BYRADIUS 300 km",
        "GEORADIUS_RO src 15 37 200 km",
    ] {
        d.s(l);
        check(&mut d, l);
    }
    // Inside MULTI, and with WATCH on the destination.
    d.s("WATCH dst4");
    d.s("GEOSEARCHSTORE dst4 src FROMLONLAT 15 37 BYRADIUS 1 km");
    d.s("MULTI");
    d.s("PING");
    d.s("EXEC");
    d.s("MULTI");
    d.s("GEOADD m1 1 1 a 2 2 b");
    d.s("GEORADIUS m1 1 1 500 km STORE m2");
    d.s("GEOSEARCHSTORE m3 m1 FROMMEMBER a BYRADIUS 500 km STOREDIST");
    d.s("EXEC");
    check(&mut d, "multi");
    d.s("ZRANGE m2 0 -1 WITHSCORES");
    d.s("ZRANGE m3 0 -1 WITHSCORES");
    d.s("DUMP m2");
    d.s("OBJECT ENCODING m2");
}

#[test]
fn geo_big_sets_and_encodings() {
    let mut d = diff_or_skip!("geo_big_sets_and_encodings");
    let mut rng = SmallRng::seed_from_u64(7);
    // A set past the listpack limit (skiplist), another within it.
    for key in ["big", "small"] {
        let n = if key == "big" { 400 } else { 60 };
        let mut line = format!("GEOADD {key}");
        for i in 0..n {
            let lon: f64 = rng.gen_range(-20.0..20.0);
            let lat: f64 = rng.gen_range(30.0..60.0);
            line.push_str(&format!(" {lon:.6} {lat:.6} m{i}"));
        }
        d.s(&line);
        d.s(&format!("OBJECT ENCODING {key}"));
        d.s(&format!(
            "GEOSEARCH {key} FROMLONLAT 0 45 BYRADIUS 800 km WITHDIST WITHHASH WITHCOORD"
        ));
        d.s(&format!(
            "GEOSEARCH {key} FROMLONLAT 0 45 BYBOX 1500 900 km ASC COUNT 17"
        ));
        d.s(&format!(
            "GEOSEARCH {key} FROMLONLAT 0 45 BYBOX 1500 900 km DESC COUNT 50 WITHDIST"
        ));
        d.s(&format!(
            "GEOSEARCH {key} FROMLONLAT 0 45 BYRADIUS 800 km COUNT 50 ANY"
        ));
        d.s(&format!(
            "GEOSEARCHSTORE {key}:out {key} FROMLONLAT 0 45 BYRADIUS 800 km"
        ));
        d.s(&format!("OBJECT ENCODING {key}:out"));
        d.s(&format!("ZRANGE {key}:out 0 -1 WITHSCORES"));
        d.s(&format!(
            "GEOSEARCHSTORE {key}:out {key} FROMLONLAT 0 45 BYRADIUS 8000 km STOREDIST"
        ));
        d.s(&format!("OBJECT ENCODING {key}:out"));
        d.s(&format!("ZRANGE {key}:out 0 -1 WITHSCORES"));
    }
}

/// One random search command (any variant, any options) around a random or existing point.
fn random_search(rng: &mut SmallRng, members: usize) -> String {
    let units = ["m", "km", "mi", "ft", "KM", "M"];
    let unit = units[rng.gen_range(0..units.len())];
    let lon: f64 = if rng.gen_bool(0.1) {
        [180.0, -180.0, 179.99, -179.99][rng.gen_range(0..4)]
    } else {
        rng.gen_range(-180.0..180.0)
    };
    let lat: f64 = if rng.gen_bool(0.1) {
        [85.05112878, -85.05112878, 84.9, -84.9, 0.0][rng.gen_range(0..5)]
    } else {
        rng.gen_range(-85.0..85.0)
    };
    let radius = match rng.gen_range(0..10) {
        0 => "0".to_string(),
        1 => format!("{}", rng.gen_range(1..20000)),
        2 => "25000".to_string(),
        _ => format!("{:.3}", rng.gen_range(0.0..3000.0)),
    };
    let radius = match unit {
        "m" | "M" | "ft" => format!("{radius}000"),
        _ => radius,
    };
    let member = format!("p{}", rng.gen_range(0..members + 2));
    let mut opts: Vec<String> = Vec::new();
    let mut withs = Vec::new();
    for w in ["WITHDIST", "WITHHASH", "WITHCOORD"] {
        if rng.gen_bool(0.4) {
            withs.push(w.to_string());
        }
    }
    match rng.gen_range(0..4) {
        0 => opts.push("ASC".into()),
        1 => opts.push("DESC".into()),
        _ => {}
    }
    if rng.gen_bool(0.5) {
        opts.push(format!("COUNT {}", rng.gen_range(1..12)));
        if rng.gen_bool(0.4) {
            opts.push("ANY".into());
        }
    }
    let from = if rng.gen_bool(0.5) {
        format!("FROMMEMBER {member}")
    } else {
        format!("FROMLONLAT {lon} {lat}")
    };
    let by = if rng.gen_bool(0.5) {
        format!("BYRADIUS {radius} {unit}")
    } else {
        let w = format!("{:.2}", rng.gen_range(0.0..4000.0));
        format!("BYBOX {w} {radius} {unit}")
    };
    let mut line = match rng.gen_range(0..7) {
        0 => format!("GEORADIUS geo {lon} {lat} {radius} {unit}"),
        1 => format!("GEORADIUS_RO geo {lon} {lat} {radius} {unit}"),
        2 => format!("GEORADIUSBYMEMBER geo {member} {radius} {unit}"),
        3 => format!("GEORADIUSBYMEMBER_RO geo {member} {radius} {unit}"),
        4 => {
            let store = if rng.gen_bool(0.5) { " STOREDIST" } else { "" };
            let mut l = format!("GEOSEARCHSTORE out geo {from} {by}{store}");
            for o in &opts {
                l.push(' ');
                l.push_str(o);
            }
            return l;
        }
        _ => format!("GEOSEARCH geo {from} {by}"),
    };
    opts.extend(withs);
    use rand::seq::SliceRandom;
    opts.shuffle(rng);
    for o in &opts {
        line.push(' ');
        line.push_str(o);
    }
    if (line.starts_with("GEORADIUS ") || line.starts_with("GEORADIUSBYMEMBER "))
        && rng.gen_bool(0.2)
    {
        line.push_str(if rng.gen_bool(0.5) {
            " STORE out"
        } else {
            " STOREDIST out"
        });
    }
    line
}

#[test]
fn geo_randomized() {
    let seeds = env_list("DIFF_SEEDS", &[1u64, 2, 3]);
    let steps: usize = env_or("DIFF_STEPS", 400);
    for seed in seeds {
        let mut d = diff_or_skip!("geo_randomized");
        d.seed = Some(seed);
        let mut rng = SmallRng::seed_from_u64(seed);
        let members = rng.gen_range(5..300);
        // Clustered points (so that searches find something, with ties) plus scattered ones.
        let centers: Vec<(f64, f64)> = (0..4)
            .map(|_| (rng.gen_range(-179.0..179.0), rng.gen_range(-84.0..84.0)))
            .collect();
        let mut i = 0;
        while i < members {
            let mut line = "GEOADD geo".to_string();
            for _ in 0..20.min(members - i) {
                let (lon, lat) = if rng.gen_bool(0.7) {
                    let (cx, cy) = centers[rng.gen_range(0..centers.len())];
                    let spread = [0.0, 0.001, 0.5, 5.0][rng.gen_range(0..4)];
                    (
                        (cx + rng.gen_range(-1.0..=1.0) * spread).clamp(-180.0, 180.0),
                        (cy + rng.gen_range(-1.0..=1.0) * spread).clamp(-85.05, 85.05),
                    )
                } else {
                    (rng.gen_range(-180.0..180.0), rng.gen_range(-85.05..85.05))
                };
                line.push_str(&format!(" {lon} {lat} p{i}"));
                i += 1;
            }
            d.s(&line);
        }
        for step in 0..steps {
            d.gen_step = Some(step);
            let line = random_search(&mut rng, members);
            d.s(&line);
            if line.contains("STORE") {
                d.s("ZRANGE out 0 -1 WITHSCORES");
            }
            if step % 50 == 0 {
                let a = rng.gen_range(0..members);
                let b = rng.gen_range(0..members);
                d.s(&format!("GEODIST geo p{a} p{b} km"));
                d.s(&format!("GEOPOS geo p{a} p{b}"));
                d.s(&format!("GEOHASH geo p{a} p{b}"));
            }
        }
        dirty(&mut d, "after the random run");
    }
}

//! Differential tests of SORT and SORT_RO: every command goes to the reference redis-server
//! (7.0.15) and to Tessera with 1 and 4 shards; replies must be byte-identical unless a case asks
//! for a normalisation. Keys are untagged on purpose: with 4 shards the source, the destination
//! and the keys BY/GET patterns name live on different shards, which exercises both the keyed
//! (transaction) path and the global (all shards locked) path.
//!
//! Cases avoid what Redis itself leaves unspecified: the order of a hashtable set (compared
//! sorted), and the order of ALPHA BY ties under LIMIT (Redis's partial quicksort). Redis 7.0
//! does not clear `errno` before its strtod, so a SORT that hit ERANGE can make later SORTs fail
//! there; `INCRBYFLOAT errno:reset 0` (which clears it) follows such cases.
//!
//! Env knobs: `SORT_SEEDS=1,2` (`SORT_RESP3_SEEDS` for RESP3) and `DIFF_STEPS=2000` for the
//! randomized sequences.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ERRNO_RESET: &str = "INCRBYFLOAT errno:reset 0";

#[test]
fn sort_lists_sets_and_sorted_sets() {
    let mut d = diff_or_skip!("sort_lists_sets_and_sorted_sets");
    d.section("numeric");
    d.script(&[
        "RPUSH l 3 1 2 10 -5 1.5 0x10 -inf inf +7",
        "SORT l",
        "SORT l DESC",
        "SORT l ASC",
        "SORT l DESC ASC",
        "SORT_RO l",
        "SORT_RO l DESC",
        "RPUSH ties 1 1.0 01 +1 1e0 2 0002",
        "SORT ties",
        "SORT ties DESC",
        "SORT ties LIMIT 1 3",
        "SORT nosuchkey",
        "SORT nosuchkey DESC LIMIT 0 1 ALPHA",
        "SORT_RO nosuchkey",
    ]);
    d.section("alpha");
    d.script(&[
        "RPUSH words banana Apple apple cherry 10 9 '' b a",
        "SORT words",
        "SORT words ALPHA",
        "SORT words ALPHA DESC",
        "SORT words alpha desc limit 1 3",
        "SORT_RO words ALPHA LIMIT 0 2",
    ]);
    d.section("limit");
    for lim in [
        "0 3",
        "2 2",
        "0 0",
        "5 1",
        "9 1",
        "10 1",
        "100 5",
        "-1 2",
        "-5 -1",
        "3 -1",
        "0 -7",
        "2 9223372036854775807",
        "9223372036854775807 9223372036854775807",
        "-9223372036854775808 2",
        "0 -9223372036854775808",
        "1 1",
    ] {
        d.s(&format!("SORT l LIMIT {lim}"));
        d.s(&format!("SORT l DESC LIMIT {lim}"));
        d.s(&format!("SORT l BY nosort LIMIT {lim}"));
        d.s(&format!("SORT l BY nosort DESC LIMIT {lim}"));
    }
    d.section("nosort keeps a list's order");
    d.script(&[
        "SORT l BY nosort",
        "SORT l BY nosort DESC",
        "SORT l BY nokey",
        "SORT l BY nosort ALPHA",
        "SORT l BY w_* BY nosort",
        "SORT l BY nosort BY w_*",
        "SORT_RO l BY nosort DESC LIMIT 1 2",
    ]);
    d.section("sets");
    d.script(&[
        "SADD si 5 3 -2 100 7 0",
        "SORT si",
        "SORT si DESC",
        "SORT si LIMIT 1 2",
        "SORT si ALPHA",
        "SORT si ALPHA DESC LIMIT 0 3",
        // An intset has an order: ascending.
        "SORT si BY nosort",
        "SORT si BY nosort DESC",
        "SORT si BY nosort LIMIT 2 2",
        "SADD ss pear fig apple kiwi banana",
        "SORT ss ALPHA",
        "SORT ss ALPHA DESC LIMIT 1 2",
        "SORT ss",
        "SADD sn 1.5 2.5 -1 10 x1",
        "SORT sn",
        "SREM sn x1",
        "SORT sn",
        "SORT sn DESC LIMIT 0 2",
    ]);
    // A hashtable set has no order of its own: Redis returns its hash order.
    d.s_norm("SORT ss BY nosort", Norm::Sorted);
    d.s_norm("SORT ss BY nosort DESC", Norm::Sorted);
    d.s_norm("SORT_RO sn BY nosort", Norm::Sorted);
    d.section("sorted sets");
    d.script(&[
        "ZADD z 3 c 1 a 2 b 5 e 4 d",
        "OBJECT ENCODING z",
        "SORT z ALPHA",
        "OBJECT ENCODING z",
        "ZADD zn 1 30 2 10 3 20 4 -5",
        "SORT zn",
        "SORT zn DESC",
        "SORT zn BY nosort",
        "SORT zn BY nosort DESC",
        "SORT zn BY nosort LIMIT 1 2",
        "SORT zn BY nosort DESC LIMIT 1 2",
        "SORT zn BY nosort LIMIT 3 9",
        "SORT zn BY nosort DESC LIMIT 3 9",
        "SORT zn BY nosort LIMIT 4 1",
        "SORT zn BY nosort LIMIT -3 0",
        "OBJECT ENCODING zn",
        "ZADD zr 1 x",
        "SORT_RO zr BY nosort",
        "OBJECT ENCODING zr",
        "SORT z",
    ]);
    d.s(ERRNO_RESET);
    d.section("conversion errors");
    d.script(&[
        "RPUSH bad 1 x 2",
        "SORT bad",
        "SORT bad ALPHA",
        "SORT bad BY nosort",
        "SORT bad LIMIT 0 1",
        "RPUSH nan 1 nan",
        "SORT nan",
        "RPUSH empty '' 1 -1",
        "SORT empty",
        "RPUSH hexes 0x1p3 0x10 0x.8 7",
        "SORT hexes",
        "RPUSH exact 0x1p-1074 0x0.0000000000001p-1022 1",
        "SORT exact",
    ]);
    // Out of range for a double: ERANGE. Each case is followed by an errno reset for Redis.
    for v in [
        "1e400",
        "-1e400",
        "1e-400",
        "4.9e-324",
        "1e-310",
        "0x1.8p-1074",
        "0x1.fffffffffffffp-1023",
        "2.2250738585072012e-308",
    ] {
        d.s("DEL range");
        d.s(&format!("RPUSH range 1 {v}"));
        d.s("SORT range");
        d.s(ERRNO_RESET);
    }
    d.script(&[
        "DEL range",
        "RPUSH range 2.2250738585072014e-308 0x1.fffffffffffff8p-1023 0 1e308",
        "SORT range",
    ]);
    d.s(ERRNO_RESET);
    d.section("strings with NUL and leading space");
    d.cmd(&[b"RPUSH", b"trailing", b"1", b"2 "]);
    d.cmd(&[b"SORT", b"trailing"]);
    d.s(ERRNO_RESET);
    d.cmd(&[b"DEL", b"nul"]);
    d.cmd(&[
        b"RPUSH", b"nul", b"a\0z", b"a\0b", b"a", b"2\0x", b" 1", b"\t3",
    ]);
    d.cmd(&[b"SORT", b"nul"]);
    d.cmd(&[b"SORT", b"nul", b"ALPHA", b"LIMIT", b"3", b"3"]);
    d.cmd(&[b"SORT", b"nul", b"ALPHA", b"STORE", b"nulsorted"]);
    d.cmd(&[b"LRANGE", b"nulsorted", b"0", b"-1"]);
    d.cmd(&[b"DEL", b"nul2"]);
    d.cmd(&[b"RPUSH", b"nul2", b"b\0", b"a\0x", b"c"]);
    d.cmd(&[b"SORT", b"nul2", b"ALPHA"]);
    d.cmd(&[b"SORT", b"nul2", b"ALPHA", b"DESC"]);
}

#[test]
fn sort_errors_and_wrong_types() {
    let mut d = diff_or_skip!("sort_errors_and_wrong_types");
    d.script(&[
        "RPUSH l 2 1",
        "SET str x",
        "HSET h f v",
        "SORT",
        "SORT_RO",
        "SORT str",
        "SORT h",
        "SORT_RO str",
        "SORT str LIMIT x 1",
        "SORT l LIMIT",
        "SORT l LIMIT 1",
        "SORT l LIMIT 1 x",
        "SORT l LIMIT x 1",
        "SORT l LIMIT 1.5 2",
        "SORT l LIMIT 9223372036854775808 1",
        "SORT l STORE",
        "SORT l BY",
        "SORT l GET",
        "SORT l NOSUCHOPTION",
        "SORT l ASC DESC ALPHA x",
        "SORT_RO l STORE dst",
        "SORT_RO l LIMIT 0 1 STORE dst",
        "EXISTS dst",
        "SORT l LIMIT 0 x STORE dst",
        "EXISTS dst",
        // The syntax is checked before the key's type.
        "SORT str BADOPT",
        "SORT str STORE dst",
        "EXISTS dst",
        "SORT h GET #",
        "SORT str BY nosort",
    ]);
}

#[test]
fn sort_by_and_get_patterns_across_shards() {
    let mut d = diff_or_skip!("sort_by_and_get_patterns_across_shards");
    d.section("string weights");
    d.script(&[
        "RPUSH ids 1 2 3 4 5 6",
        "MSET w_1 50 w_2 20 w_3 40 w_4 10 w_5 30",
        "MSET name_1 one name_2 two name_3 three name_4 four name_6 six",
        "SORT ids BY w_*",
        "SORT ids BY w_* DESC",
        "SORT ids BY w_* LIMIT 1 3",
        "SORT ids BY w_* DESC LIMIT 0 2",
        "SORT ids BY w_* GET name_*",
        "SORT ids BY w_* GET # GET name_* GET w_*",
        "SORT ids BY w_* GET name_* GET nokey_* LIMIT 2 3",
        "SORT ids GET name_*",
        "SORT ids GET #",
        "SORT ids GET # GET #",
        "SORT ids GET fixedkey",
        "SORT ids BY nosort GET name_*",
        "SORT ids BY nosort DESC GET name_* LIMIT 1 2",
        "SORT_RO ids BY w_* GET name_*",
        "SORT_RO ids BY w_* DESC GET # GET name_* LIMIT 0 3",
    ]);
    d.section("alpha weights (distinct values)");
    d.script(&[
        "MSET a_1 pear a_2 apple a_3 fig a_4 kiwi a_5 banana a_6 cherry",
        "SORT ids BY a_* ALPHA",
        "SORT ids BY a_* ALPHA DESC",
        "SORT ids BY a_* ALPHA LIMIT 1 3",
        "SORT ids BY a_* ALPHA DESC LIMIT 2 2 GET name_*",
        // Missing weights come first, and ties keep the list's order without LIMIT.
        "DEL a_2 a_5",
        "SORT ids BY a_* ALPHA",
        "SORT ids BY a_* ALPHA DESC",
        "SORT ids BY nokey_* ALPHA",
        "SORT ids BY nokey_* ALPHA DESC",
        "SORT ids BY nokey_*",
        "SORT ids BY nokey_* DESC LIMIT 1 3",
    ]);
    d.section("hash fields");
    d.script(&[
        "HSET obj_1 age 30 name ann",
        "HSET obj_2 age 25 name bob",
        "HSET obj_3 age 35",
        "HSET obj_4 name dan",
        "HSET obj_5 age 20 name eve x->y z",
        "SORT ids BY obj_*->age",
        "SORT ids BY obj_*->age DESC GET obj_*->name",
        "SORT ids BY obj_*->age GET # GET obj_*->name GET obj_*->age GET obj_*->nofield",
        "SORT ids BY obj_*->name ALPHA GET obj_*->name",
        "SORT ids BY obj_*->age LIMIT 1 2 GET obj_*->name",
        "SORT ids GET obj_*->x->y",
        "SORT ids GET obj_*->",
        "SORT ids GET obj_->*",
        "SORT ids BY obj_*-> GET #",
        // A hash field pattern on a string key, a string pattern on a hash: no value.
        "SORT ids BY w_*->age GET w_*->f GET obj_*",
        "SORT ids BY obj_*",
    ]);
    d.section("patterns on other types and expired keys");
    d.script(&[
        "RPUSH w_6 1",
        "SORT ids BY w_*",
        "SORT ids GET w_*",
        "SET w_6 x",
        "SORT ids BY w_*",
        "SET w_6 60",
        "SET w_1 50 PX 1",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.script(&[
        "SORT ids BY w_* GET w_*",
        "EXISTS w_1",
        "SET w_1 50",
        "SET w_2 1e400",
        "SORT ids BY w_*",
    ]);
    d.s(ERRNO_RESET);
    d.script(&[
        "SET w_2 20",
        "SORT ids BY w_*",
        "SET w_3 abc",
        "SORT ids BY w_*",
        "SORT ids BY w_* ALPHA GET w_*",
        "SET w_3 40",
    ]);
    d.section("patterns with stars and odd bytes");
    d.script(&[
        "SADD members x y z",
        "MSET k_x_x 3 k_y_y 1 k_z_z 2",
        "MSET k_x_* 30 k_y_* 10 k_z_* 20",
        "SORT members BY k_*_*",
        "SORT members BY k_*_* GET k_*_*",
        "HSET hx f 1",
        "SORT members GET h*->f ALPHA",
    ]);
    // Every weight is missing: ALPHA ties keep the set's own (hash) order in Redis.
    d.s_norm("SORT members BY k_* ALPHA", Norm::Sorted);
    d.cmd(&[b"SET", b"nul\0_x", b"9"]);
    d.cmd(&[b"SORT", b"members", b"GET", b"nul\0_*", b"ALPHA"]);
    d.cmd(&[b"SORT", b"members", b"GET", b"nul*\0", b"ALPHA"]);
    d.cmd(&[b"SORT", b"members", b"GET", b"#\0junk", b"ALPHA"]);
    // "w\0*" is "w" to C: no '*', so no sorting.
    d.cmd(&[b"SORT", b"ids", b"BY", b"w\0*", b"GET", b"#"]);
    d.section("sets and sorted sets by pattern");
    d.script(&[
        "SADD sid 1 2 3 4 5",
        "SORT sid BY w_*",
        "SORT sid BY w_* DESC GET name_* LIMIT 0 3",
        "ZADD zid 1 5 2 4 3 3 4 2 5 1",
        "SORT zid BY w_*",
        "SORT zid BY nosort GET name_*",
        "SORT zid BY nosort DESC GET # GET w_* LIMIT 1 3",
        "SORT zid BY obj_*->age GET obj_*->name",
        "OBJECT ENCODING zid",
    ]);
}

#[test]
fn sort_store() {
    let mut d = diff_or_skip!("sort_store");
    d.script(&[
        "RPUSH src 3 1 2",
        "MSET w_1 3 w_2 2 w_3 1",
        "SORT src STORE dst",
        "LRANGE dst 0 -1",
        "TYPE dst",
        "OBJECT ENCODING dst",
        "SORT src DESC STORE dst",
        "LRANGE dst 0 -1",
        "SORT src BY w_* STORE dst",
        "LRANGE dst 0 -1",
        "SORT src BY w_* GET # GET nokey_* STORE dst",
        "LRANGE dst 0 -1",
        "LLEN dst",
        "SORT src LIMIT 1 1 STORE dst",
        "LRANGE dst 0 -1",
        // The last STORE wins; STORE may come anywhere.
        "SORT src STORE ignored STORE dst2 DESC",
        "EXISTS ignored",
        "LRANGE dst2 0 -1",
        // Overwrites any type and drops the TTL.
        "SET dst3 x",
        "EXPIRE dst3 1000",
        "SORT src STORE dst3",
        "TYPE dst3",
        "TTL dst3",
        "HSET dst4 f v",
        "SORT src BY nosort STORE dst4",
        "LRANGE dst4 0 -1",
        // An empty result deletes the destination.
        "SORT nosuchkey STORE dst4",
        "EXISTS dst4",
        "SORT src LIMIT 5 1 STORE dst",
        "EXISTS dst",
        "SORT nosuchkey STORE neverexisted",
        "EXISTS neverexisted",
        // The source as its own destination.
        "SORT src DESC STORE src",
        "LRANGE src 0 -1",
        "TYPE src",
        // Errors leave the destination alone.
        "SET dst5 keep",
        "RPUSH badsrc 1 x",
        "SORT badsrc STORE dst5",
        "GET dst5",
        "SET notalist v",
        "SORT notalist STORE dst5",
        "GET dst5",
    ]);
    d.section("a stored set is sorted even with nosort");
    d.script(&[
        "SADD set banana apple cherry 10 2",
        "SORT set BY nosort STORE fromset",
        "LRANGE fromset 0 -1",
        "SORT set BY nosort DESC STORE fromset",
        "LRANGE fromset 0 -1",
        "SORT set BY nosort LIMIT 1 2 STORE fromset",
        "LRANGE fromset 0 -1",
        "SORT set BY w_* STORE fromset",
        "SORT set BY nosort GET w_* STORE fromset",
        "LRANGE fromset 0 -1",
        "ZADD zs 1 b 2 a",
        "SORT zs BY nosort STORE fromzset",
        "LRANGE fromzset 0 -1",
        "SORT zs BY nosort DESC STORE fromzset",
        "LRANGE fromzset 0 -1",
    ]);
    d.cmd(&[b"DEL", b"nulset"]);
    d.cmd(&[b"SADD", b"nulset", b"a\0z", b"a\0b", b"a"]);
    d.cmd(&[b"SORT", b"nulset", b"BY", b"nosort", b"STORE", b"nuls"]);
    d.cmd(&[b"LRANGE", b"nuls", b"0", b"-1"]);
    d.section("encoding and digest of the result");
    d.script(&[
        "CONFIG SET list-max-listpack-size 2",
        "RPUSH many 5 4 3 2 1",
        "SORT many STORE sorted",
        "LRANGE sorted 0 -1",
        "OBJECT ENCODING sorted",
        "RPUSH manual 1 2 3 4 5",
    ]);
    d.each("DEBUG DIGEST-VALUE sorted == manual", |t, c| {
        let v = resp_parse(&t.conns[c].cmd_str("DEBUG DIGEST-VALUE sorted manual"));
        let items = v.items().cloned().unwrap_or_default();
        format!("equal: {}", items.len() == 2 && items[0] == items[1]).into_bytes()
    });
}

#[test]
fn sort_in_transactions_and_watch() {
    let mut d = diff_or_skip!("sort_in_transactions_and_watch");
    d.script(&[
        "RPUSH src 3 1 2",
        "MSET w_1 3 w_2 2 w_3 1 n_1 one n_2 two n_3 three",
        "MULTI",
        "SORT src",
        "SORT src BY w_* GET n_*",
        "SORT src STORE out1",
        "SORT src BY w_* GET n_* STORE out2",
        "SET w_1 0",
        "SORT src BY w_* GET n_*",
        "SORT_RO src BY w_* DESC",
        "LRANGE out2 0 -1",
        "EXEC",
        "LRANGE out1 0 -1",
        "MULTI",
        "SORT src STORE",
        "EXEC",
        "MULTI",
        "SORT src LIMIT 0 x",
        "SORT str_missing",
        "EXEC",
    ]);
    d.section("WATCH sees the destination change");
    let other = d.open_conn();
    d.script(&["WATCH out1", "MULTI", "GET w_1"]);
    d.use_conn(other);
    d.s("SORT src DESC STORE out1");
    d.use_conn(0);
    d.s("EXEC");
    d.script(&["WATCH out2", "MULTI", "GET w_1"]);
    d.use_conn(other);
    d.s("SORT src BY w_* GET n_* STORE out2");
    d.use_conn(0);
    d.s("EXEC");
    // Reading through patterns is not a change.
    d.script(&["WATCH w_2 src", "MULTI", "GET w_1"]);
    d.use_conn(other);
    d.s("SORT src BY w_* GET n_*");
    d.s("SORT_RO src BY w_*");
    d.use_conn(0);
    d.s("EXEC");
}

#[test]
fn sort_resp3() {
    let mut d = diff_or_skip!("sort_resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "RPUSH ids 2 1 3",
        "MSET w_1 1 w_2 2",
        "HSET o_1 f a",
        "SORT ids",
        "SORT ids BY w_* GET # GET w_* GET o_*->f",
        "SORT ids GET nokey_*",
        "SORT ids BY w_* STORE out",
        "SORT nosuchkey",
        "SORT_RO ids ALPHA DESC",
        "RPUSH bad x",
        "SORT bad",
        "COMMAND INFO sort sort_ro",
    ]);
}

#[test]
fn sort_command_info_and_getkeys() {
    let mut d = diff_or_skip!("sort_command_info_and_getkeys");
    d.script(&[
        "COMMAND INFO sort",
        "COMMAND INFO sort_ro",
        "COMMAND GETKEYS SORT k",
        "COMMAND GETKEYS SORT k STORE d",
        "COMMAND GETKEYS SORT k STORE d STORE e",
        "COMMAND GETKEYS SORT k store by",
        "COMMAND GETKEYS SORT k LIMIT 0 1 STORE d",
        "COMMAND GETKEYS SORT k LIMIT 1 STORE x",
        "COMMAND GETKEYS SORT k GET STORE d",
        "COMMAND GETKEYS SORT k BY w_* GET h_*->f STORE d ALPHA",
        "COMMAND GETKEYS SORT k STORE",
        "COMMAND GETKEYS SORT_RO k",
        "COMMAND GETKEYS SORT_RO k STORE d",
        "COMMAND GETKEYS SORT",
    ]);
}

// ---------------------------------------------------------------------------------------------
// Tessera only: atomicity of the global path under concurrent writers
// ---------------------------------------------------------------------------------------------

/// With 4 shards, a writer keeps changing every key that BY/GET patterns name, always setting
/// them all to one value in one MSET (itself atomic across shards). A SORT that reads through
/// the patterns must see one generation: all GET values equal, never a mix.
#[test]
fn sort_patterns_are_read_atomically_across_shards() {
    let srv = start_tessera(4, &[]);
    let mut setup = srv.conn();
    let ids: Vec<String> = (0..24).map(|i| i.to_string()).collect();
    let mut push = vec!["RPUSH".to_string(), "ids".to_string()];
    push.extend(ids.iter().cloned());
    let ids = std::sync::Arc::new(ids);
    let refs: Vec<&[u8]> = push.iter().map(|s| s.as_bytes()).collect();
    setup.cmd(&refs);
    let mset = move |g: u64| {
        let mut a = vec!["MSET".to_string()];
        for id in ids.iter() {
            a.push(format!("w_{id}"));
            a.push(g.to_string());
            a.push(format!("h_{id}"));
            a.push(g.to_string());
        }
        a
    };
    let first = mset(0);
    let refs: Vec<&[u8]> = first.iter().map(|s| s.as_bytes()).collect();
    assert_eq!(setup.cmd(&refs), b"+OK\r\n");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut c = srv.conn();
        std::thread::spawn(move || {
            let mut g = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let a = mset(g);
                let refs: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
                assert_eq!(c.cmd(&refs), b"+OK\r\n");
                g += 1;
            }
        })
    };
    let mut reader = srv.conn();
    for round in 0..300 {
        let v = resp_parse(&reader.cmd_str("SORT ids BY w_* GET w_* GET h_*"));
        let items = v.items().cloned().unwrap_or_default();
        assert_eq!(items.len(), 48, "round {round}: {}", render(&v));
        let first = &items[0];
        assert!(
            items.iter().all(|x| x == first),
            "round {round}: SORT saw a mix of generations: {}",
            render(&v)
        );
        // STORE through patterns is atomic too.
        reader.cmd_str("SORT ids BY nosort GET h_* STORE out");
        let v = resp_parse(&reader.cmd_str("LRANGE out 0 -1"));
        let items = v.items().cloned().unwrap_or_default();
        assert!(items.iter().all(|x| x == &items[0]), "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Randomized sequences
// ---------------------------------------------------------------------------------------------

const LISTS: &[&str] = &["l1", "l2"];
const SETS: &[&str] = &["s1", "s2"];
const ZSETS: &[&str] = &["z1", "z2"];
const DESTS: &[&str] = &["d1", "d2", "l1"];

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.gen_range(0..xs.len())]
    }

    /// Elements: a few numbers (some spelled oddly) and words, so that numeric sorts meet both
    /// equal scores and conversion errors; nothing that overflows a double (see the module
    /// comment on errno).
    fn member(&mut self) -> String {
        const POOL: &[&str] = &[
            "1", "2", "3", "10", "-4", "1.5", "01", "7", "0x10", "inf", "-inf", "apple", "pear",
            "fig", "nan", "",
        ];
        if self.rng.gen_bool(0.6) {
            self.rng.gen_range(0..12).to_string()
        } else {
            POOL[self.rng.gen_range(0..POOL.len())].to_string()
        }
    }

    fn weight(&mut self) -> String {
        match self.rng.gen_range(0..10) {
            0 => "x".to_string(),
            1 => format!("{}.5", self.rng.gen_range(-3..3)),
            _ => self.rng.gen_range(-20..20).to_string(),
        }
    }

    /// A SORT command and how to compare its reply.
    fn sort(&mut self) -> (String, Norm) {
        let kind = self.rng.gen_range(0..3);
        let key = match kind {
            0 => self.pick(LISTS),
            1 => self.pick(SETS),
            _ => self.pick(ZSETS),
        };
        let ro = self.rng.gen_bool(0.2);
        let mut line = format!("{} {key}", if ro { "SORT_RO" } else { "SORT" });
        let by = match self.rng.gen_range(0..5) {
            0 => Some("nosort"),
            1 => Some("w_*"),
            2 => Some("h_*->f"),
            _ => None,
        };
        let alpha = self.rng.gen_bool(0.4);
        let store = !ro && self.rng.gen_bool(0.3);
        let mut limit = self.rng.gen_bool(0.4);
        let mut norm = Norm::Exact;
        // What Redis leaves unspecified: the order of a set's members without sorting (unless
        // stored, which sorts them), and the order of ALPHA ties on BY values, which are
        // stable only for a list sorted whole.
        let set_unordered = kind == 1 && by == Some("nosort") && !store;
        let alpha_by_ties = alpha && matches!(by, Some("w_*") | Some("h_*->f"));
        if alpha_by_ties && (kind != 0 || limit) {
            if store || limit {
                return (format!("TYPE {key}"), Norm::Exact);
            }
            norm = Norm::Sorted;
        }
        if set_unordered {
            if limit {
                limit = false;
            }
            norm = Norm::Sorted;
        }
        if let Some(b) = by {
            line.push_str(&format!(" BY {b}"));
        }
        if limit {
            let off = self.rng.gen_range(-2..8);
            let cnt = self.rng.gen_range(-2..6);
            line.push_str(&format!(" LIMIT {off} {cnt}"));
        }
        if self.rng.gen_bool(0.4) {
            line.push_str(" DESC");
        }
        if alpha {
            line.push_str(" ALPHA");
        }
        for _ in 0..self.rng.gen_range(0..3) {
            let g = self.pick(&["#", "w_*", "h_*->f", "h_*->g", "nokey_*"]);
            line.push_str(&format!(" GET {g}"));
        }
        if store {
            let d = self.pick(DESTS);
            line.push_str(&format!(" STORE {d}"));
        }
        (line, norm)
    }

    fn command(&mut self) -> (String, Norm) {
        match self.rng.gen_range(0..20) {
            0..=6 => self.sort(),
            7 | 8 => {
                let k = self.pick(LISTS);
                let m = self.member();
                let m2 = self.member();
                (format!("RPUSH {k} {} {}", q(&m), q(&m2)), Norm::Exact)
            }
            9 => {
                let k = self.pick(SETS);
                let (m, m2) = (self.member(), self.member());
                (format!("SADD {k} {} {}", q(&m), q(&m2)), Norm::Exact)
            }
            10 => {
                let k = self.pick(ZSETS);
                let (s, s2) = (self.rng.gen_range(-5..5), self.rng.gen_range(-5..5));
                let (m, m2) = (self.member(), self.member());
                (
                    format!("ZADD {k} {s} {} {s2} {}", q(&m), q(&m2)),
                    Norm::Exact,
                )
            }
            11 | 12 => {
                let m = self.member();
                let w = self.weight();
                (format!("SET w_{m} {w}"), Norm::Exact)
            }
            13 => {
                let m = self.member();
                let w = self.weight();
                let f = self.pick(&["f", "g"]);
                (format!("HSET h_{m} {f} {w}"), Norm::Exact)
            }
            14 => {
                let k = self.pick(&["l1", "l2", "s1", "s2", "z1", "z2", "d1", "d2"]);
                (format!("DEL {k}"), Norm::Exact)
            }
            15 => {
                let m = self.member();
                (format!("DEL w_{m} h_{m}"), Norm::Exact)
            }
            16 => {
                let k = self.pick(&["l1", "s1", "z1", "d1", "w_1", "h_2"]);
                let secs = self.pick(&["0", "100"]);
                (format!("EXPIRE {k} {secs}"), Norm::Exact)
            }
            17 => {
                let k = self.pick(&["l1", "s2", "z2", "d1", "d2"]);
                (format!("TYPE {k}"), Norm::Exact)
            }
            18 => {
                let k = self.pick(&["d1", "d2"]);
                (format!("LRANGE {k} 0 -1"), Norm::Exact)
            }
            _ => {
                let k = self.pick(&["d1", "d2", "l1"]);
                (format!("SET {k} str"), Norm::Exact)
            }
        }
    }
}

/// The empty member travels as the harness's `''` token.
fn q(m: &str) -> String {
    if m.is_empty() {
        "''".to_string()
    } else {
        m.to_string()
    }
}

fn run_random(seed: u64, steps: usize, resp3: bool) {
    let name = format!("sort_randomized{}", if resp3 { "_resp3" } else { "" });
    let Some(mut d) = Diff::new(&name) else {
        return;
    };
    d.seed = Some(seed);
    d.seed_env = if resp3 {
        "SORT_RESP3_SEEDS"
    } else {
        "SORT_SEEDS"
    };
    d.section(&format!("seed {seed}"));
    if resp3 {
        d.s_norm("HELLO 3", Norm::Hello);
    }
    d.s("CONFIG SET zset-max-listpack-entries 4");
    let mut g = Gen {
        rng: SmallRng::seed_from_u64(seed),
    };
    for i in 0..steps {
        d.gen_step = Some(i);
        let (line, norm) = g.command();
        d.s_norm(&line, norm);
        if (i + 1) % 100 == 0 {
            for k in ["l1", "l2", "d1", "d2"] {
                d.s(&format!("TYPE {k}"));
            }
            for k in ZSETS {
                d.s(&format!("ZRANGE {k} 0 -1 WITHSCORES"));
                d.s(&format!("OBJECT ENCODING {k}"));
            }
        }
    }
}

#[test]
fn sort_randomized() {
    for seed in env_list("SORT_SEEDS", &[31, 32]) {
        run_random(seed, env_or("DIFF_STEPS", 2000), false);
    }
}

#[test]
fn sort_randomized_resp3() {
    for seed in env_list("SORT_RESP3_SEEDS", &[33]) {
        run_random(seed, env_or("DIFF_STEPS", 2000), true);
    }
}

//! DEBUG's subcommands: byte-for-byte against redis-server 7.0 where the reply is
//! deterministic (help, errors, arity, ERROR, RESTORE under SET-SKIP-CHECKSUM-VALIDATION,
//! scripts under SET-DISABLE-DENY-SCRIPTS, LISTPACK/QUICKLIST replies), structurally where the
//! figures are Tessera's own (SDSLEN, HTSTATS, HTSTATS-KEY, STRUCTSIZE), and behaviorally for
//! the rest (CHANGE-REPL-ID, LEAK, PAUSE-CRON, LOADAOF, AOF-FLUSH-SLEEP, the crashes,
//! CONFIG-REWRITE-FORCE-ALL), with 1 and 4 shards where shards matter.

use crate::common::*;

use std::path::Path;
use std::time::{Duration, Instant};

/// The subcommands Tessera's DEBUG HELP lists, in Redis 7.0's order.
const SUPPORTED: &[&str] = &[
    "AOF-FLUSH-SLEEP",
    "ASSERT",
    "CHANGE-REPL-ID",
    "CONFIG-REWRITE-FORCE-ALL",
    "DIGEST",
    "DIGEST-VALUE",
    "ERROR",
    "LEAK",
    "LOG",
    "HTSTATS",
    "HTSTATS-KEY",
    "LOADAOF",
    "OBJECT",
    "OOM",
    "PANIC",
    "POPULATE",
    "PROTOCOL",
    "RELOAD",
    "SDSLEN",
    "SEGFAULT",
    "SET-ACTIVE-EXPIRE",
    "SET-SKIP-CHECKSUM-VALIDATION",
    "SLEEP",
    "STRINGMATCH-TEST",
    "STRUCTSIZE",
    "LISTPACK",
    "QUICKLIST",
    "PAUSE-CRON",
    "HELP",
];

/// The lines of a HELP reply.
fn help_lines(raw: &[u8]) -> Vec<String> {
    match resp_parse(raw) {
        Value::Array(items) => items
            .iter()
            .map(|i| String::from_utf8_lossy(i.as_bytes().expect("a status line")).into_owned())
            .collect(),
        other => panic!("DEBUG HELP is not an array: {}", render(&other)),
    }
}

/// HELP's entries: a subcommand line and its indented description lines.
fn help_blocks(lines: &[String]) -> Vec<Vec<String>> {
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for l in &lines[1..] {
        if l.starts_with(' ') {
            blocks
                .last_mut()
                .expect("a description after a name")
                .push(l.clone());
        } else {
            blocks.push(vec![l.clone()]);
        }
    }
    blocks
}

fn block_name(b: &[String]) -> &str {
    b[0].split(' ').next().unwrap_or("")
}

#[test]
fn help_has_redis_lines_for_what_tessera_supports_in_redis_order() {
    let mut d = diff_or_skip!("help_has_redis_lines_for_what_tessera_supports_in_redis_order");
    let redis = help_lines(&d.targets[0].conns[0].cmd_str("DEBUG HELP"));
    let redis_blocks = help_blocks(&redis);
    for t in 1..d.targets.len() {
        let name = d.targets[t].name.clone();
        let ours = help_lines(&d.targets[t].conns[0].cmd_str("DEBUG HELP"));
        assert_eq!(ours[0], redis[0], "{name}: first line");
        let blocks = help_blocks(&ours);
        let names: Vec<&str> = blocks.iter().map(|b| block_name(b)).collect();
        assert_eq!(names, SUPPORTED, "{name}: subcommands listed");
        // Every entry is Redis's, word for word, and they come in Redis's order.
        let mut at = 0;
        for b in &blocks {
            let found = redis_blocks[at..].iter().position(|r| r == b);
            let Some(i) = found else {
                panic!("{name}: entry not in Redis's help (or out of order): {b:?}");
            };
            at += i + 1;
        }
    }
}

#[test]
fn arity_and_argument_errors_match_redis() {
    let mut d = diff_or_skip!("arity_and_argument_errors_match_redis");
    d.section("wrong arity");
    d.script(&[
        "DEBUG HELP x",
        "DEBUG ERROR",
        "DEBUG ERROR a b",
        "DEBUG LEAK",
        "DEBUG LEAK a b",
        "DEBUG CHANGE-REPL-ID x",
        "DEBUG STRINGMATCH-TEST x",
        "DEBUG SET-SKIP-CHECKSUM-VALIDATION",
        "DEBUG SET-SKIP-CHECKSUM-VALIDATION 1 2",
        "DEBUG PAUSE-CRON",
        "DEBUG PAUSE-CRON 1 2",
        "DEBUG SET-DISABLE-DENY-SCRIPTS",
        "DEBUG SET-DISABLE-DENY-SCRIPTS 0 1",
        "DEBUG AOF-FLUSH-SLEEP",
        "DEBUG AOF-FLUSH-SLEEP 1 2",
        "DEBUG SDSLEN",
        "DEBUG SDSLEN a b",
        "DEBUG HTSTATS",
        "DEBUG HTSTATS 0 full",
        "DEBUG HTSTATS 0 x y",
        "DEBUG HTSTATS-KEY",
        "DEBUG HTSTATS-KEY k full",
        "DEBUG LISTPACK",
        "DEBUG LISTPACK a b",
        "DEBUG QUICKLIST",
        "DEBUG QUICKLIST a 1 2",
        "DEBUG STRUCTSIZE x",
        "DEBUG CONFIG-REWRITE-FORCE-ALL x",
    ]);
    d.section("bad arguments");
    d.script(&[
        "DEBUG HTSTATS abc",
        "DEBUG HTSTATS -1",
        "DEBUG HTSTATS 16",
        "DEBUG HTSTATS 99999999999999999999",
        "DEBUG HTSTATS 1",
        "DEBUG HTSTATS-KEY nokey",
        "DEBUG SDSLEN nokey",
        "DEBUG LISTPACK nokey",
        "DEBUG QUICKLIST nokey",
        "DEBUG QUICKLIST nokey 1",
        // No config file: Redis fails to open none (EFAULT).
        "DEBUG CONFIG-REWRITE-FORCE-ALL",
        "DEBUG SET-SKIP-CHECKSUM-VALIDATION 0",
        "DEBUG PAUSE-CRON 0",
        "DEBUG SET-DISABLE-DENY-SCRIPTS 0",
        "DEBUG AOF-FLUSH-SLEEP 0",
        "DEBUG SET-ACTIVE-EXPIRE abc",
        "DEBUG SET-ACTIVE-EXPIRE 1",
    ]);
    d.section("wrong types and encodings");
    d.script(&[
        "SET s hello",
        "SET n 12345",
        "RPUSH l a 1 b",
        "HSET h f v f2 12345",
        "SADD ints 1 2 3",
        "ZADD z 1 a 2.5 b",
        "DEBUG SDSLEN n",
        "DEBUG SDSLEN l",
        "DEBUG SDSLEN h",
        "DEBUG HTSTATS-KEY s",
        "DEBUG HTSTATS-KEY l",
        "DEBUG HTSTATS-KEY h",
        "DEBUG HTSTATS-KEY ints",
        "DEBUG HTSTATS-KEY z",
        "DEBUG LISTPACK h",
        "DEBUG LISTPACK z",
        "DEBUG LISTPACK l",
        "DEBUG LISTPACK s",
        "DEBUG LISTPACK ints",
        "DEBUG QUICKLIST l",
        "DEBUG QUICKLIST l 1",
        "DEBUG QUICKLIST l x",
        "DEBUG QUICKLIST h",
        "DEBUG QUICKLIST s 1",
    ]);
    d.section("RESP3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "DEBUG HTSTATS-KEY h",
        "DEBUG HTSTATS 16",
        "DEBUG HTSTATS 1",
        "DEBUG LISTPACK z",
        "DEBUG QUICKLIST l 0",
        "DEBUG ERROR resp3",
        "DEBUG SDSLEN n",
    ]);
    d.section("the errors count as Redis counts them");
    let counts = |d: &mut Diff| {
        d.each("errorstats and DEBUG's commandstats", |t, c| {
            let conn = &mut t.conns[c];
            let mut out = conn.cmd_str("INFO errorstats");
            let stats = conn.cmd_str("INFO commandstats");
            let debug: Vec<String> = commandstats_counts(&stats)
                .into_iter()
                .filter(|l| l.starts_with("cmdstat_debug:"))
                .collect();
            out.extend_from_slice(debug.join("\n").as_bytes());
            let info = String::from_utf8_lossy(&conn.cmd_str("INFO stats")).into_owned();
            let total = info
                .lines()
                .find(|l| l.starts_with("total_error_replies:"))
                .unwrap_or("")
                .to_string();
            out.extend_from_slice(total.as_bytes());
            out
        });
    };
    counts(&mut d);
    // Not implemented (Tessera only: Redis has these): Redis's unknown-subcommand error.
    for line in [
        "DEBUG MALLCTL x",
        "DEBUG NOSUCH",
        "DEBUG QUICKLIST-PACKED-THRESHOLD-X 1",
    ] {
        let name = line.split(' ').nth(1).unwrap();
        for t in 1..d.targets.len() {
            let r = d.targets[t].conns[0].cmd_str(line);
            assert_eq!(
                r,
                format!("-ERR unknown subcommand or wrong number of arguments for '{name}'. Try DEBUG HELP.\r\n")
                    .into_bytes()
            );
        }
    }
}

#[test]
fn debug_error_replies_the_string_and_counts_nowhere() {
    let mut d = diff_or_skip!("debug_error_replies_the_string_and_counts_nowhere");
    d.s("CONFIG RESETSTAT");
    d.script(&["DEBUG ERROR foo", "DEBUG ERROR -dash", "DEBUG ERROR ''"]);
    for text in ["ERR custom message", "WRONGTYPE x", "two words"] {
        d.cmd(&[b"DEBUG", b"ERROR", text.as_bytes()]);
    }
    d.cmd(&[b"debug", b"error", b"lower case"]);
    d.cmd(&[b"DEBUG", b"ERROR", b"line\r\nbreaks\nand\rreturns"]);
    d.cmd(&[b"DEBUG", b"ERROR", b"\xff\x00binary"]);
    d.section("inside MULTI");
    d.script(&["MULTI", "DEBUG ERROR inblock", "SET a 1", "EXEC"]);
    d.section("RESP3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.cmd(&[b"DEBUG", b"ERROR", b"ERR in resp3"]);
    d.each("counted nowhere", |t, c| {
        let conn = &mut t.conns[c];
        let mut out = conn.cmd_str("INFO errorstats");
        let stats = conn.cmd_str("INFO commandstats");
        for l in commandstats_counts(&stats) {
            if l.starts_with("cmdstat_debug:") || l.starts_with("cmdstat_exec:") {
                out.extend_from_slice(l.as_bytes());
            }
        }
        let info = String::from_utf8_lossy(&conn.cmd_str("INFO stats")).into_owned();
        for l in info
            .lines()
            .filter(|l| l.starts_with("total_error_replies:"))
        {
            out.extend_from_slice(l.as_bytes());
        }
        out
    });
}

/// A DUMP payload's last byte (a CRC64 byte) flipped.
fn corrupt_crc(p: &[u8]) -> Vec<u8> {
    let mut bad = p.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    bad
}

fn dump_of(d: &mut Diff, key: &str) -> Vec<u8> {
    let raw = d.cmd(&[b"DUMP", key.as_bytes()]);
    resp_parse(&raw).as_bytes().expect("a payload").to_vec()
}

#[test]
fn skip_checksum_validation_for_restore_matches_redis() {
    let mut d = diff_or_skip!("skip_checksum_validation_for_restore_matches_redis");
    d.cmd(&[b"SET", b"s", b"hello world"]);
    d.script(&["RPUSH l a b c", "HSET h f v"]);
    let s = dump_of(&mut d, "s");
    let l = dump_of(&mut d, "l");
    let footer = s[s.len() - 10..].to_vec();
    let restore = |d: &mut Diff, key: &str, payload: &[u8]| {
        d.cmd(&[b"RESTORE", key.as_bytes(), b"0", payload]);
    };
    d.section("checked");
    restore(&mut d, "k1", &corrupt_crc(&s));
    restore(&mut d, "k2", &corrupt_crc(&l));
    restore(&mut d, "k3", &s);
    d.section("skipped");
    d.s("DEBUG SET-SKIP-CHECKSUM-VALIDATION 1");
    restore(&mut d, "k1", &corrupt_crc(&s));
    restore(&mut d, "k2", &corrupt_crc(&l));
    d.script(&["GET k1", "LRANGE k2 0 -1"]);
    // A bad body is still refused, and so are a bad version and a short payload.
    let mut bad_body = corrupt_crc(&s);
    bad_body[1] = 0xff;
    bad_body[2] = 0xff;
    restore(&mut d, "k4", &bad_body);
    restore(&mut d, "k5", &[&[0x0e][..], &footer].concat());
    let mut newer = corrupt_crc(&s);
    let v = newer.len() - 10;
    newer[v] = 11;
    restore(&mut d, "k6", &newer);
    restore(&mut d, "k7", b"");
    restore(&mut d, "k8", b"\x00\x02hi\x0a\x00");
    // Any 8 bytes pass for the checksum; the object is read from the whole payload, so a
    // length running into the footer reads the footer's bytes, as in Redis.
    restore(&mut d, "k9", b"\x00\x02hi\x0a\x0012345678");
    restore(&mut d, "k10", &[&b"\x00\x05hi"[..], &footer].concat());
    d.script(&["GET k9", "GET k10"]);
    d.cmd(&[b"FUNCTION", b"RESTORE", b"\xf5\x02hi\x0a\x0012345678"]);
    d.section("switched as atoi reads it");
    for v in ["0", "abc", "2", "-1", " 1", "1x", "0"] {
        d.cmd(&[b"DEBUG", b"SET-SKIP-CHECKSUM-VALIDATION", v.as_bytes()]);
        restore(&mut d, "k11", &corrupt_crc(&s));
        d.s("DEL k11");
    }
}

/// Flips a bit of every snapshot file's CRC64 trailer.
fn corrupt_snapshot_trailers(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rdb") {
            let mut b = std::fs::read(&p).unwrap();
            let last = b.len() - 1;
            b[last] ^= 0x01;
            std::fs::write(&p, b).unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn skip_checksum_validation_for_rdb_loading() {
    for shards in [1, 4] {
        let s = start_tessera(shards, &["--snapshot-compression", "none"]);
        let mut c = s.conn();
        c.cmd_str("DEBUG POPULATE 200");
        c.cmd_str("HSET h f v");
        let digest = c.cmd_str("DEBUG DIGEST");
        assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
        assert!(corrupt_snapshot_trailers(s.dir()) >= 1);
        // Checked: the load fails (the data was emptied first, as DEBUG RELOAD does).
        assert_eq!(
            c.cmd_str("DEBUG RELOAD NOSAVE"),
            b"-ERR Error trying to load the RDB dump\r\n"
        );
        assert!(s.log_tail(50).contains("checksum"), "{}", s.log_tail(20));
        // Skipped: the same files load.
        assert_eq!(
            c.cmd_str("DEBUG SET-SKIP-CHECKSUM-VALIDATION 1"),
            b"+OK\r\n"
        );
        assert_eq!(c.cmd_str("DEBUG RELOAD NOSAVE"), b"+OK\r\n");
        assert_eq!(c.cmd_str("DEBUG DIGEST"), digest, "{shards} shards");
        assert_eq!(
            c.cmd_str("DEBUG SET-SKIP-CHECKSUM-VALIDATION 0"),
            b"+OK\r\n"
        );
        assert_eq!(
            c.cmd_str("DEBUG RELOAD NOSAVE"),
            b"-ERR Error trying to load the RDB dump\r\n"
        );
    }
}

fn info_field(raw: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(raw).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn change_repl_id_gives_every_connection_a_fresh_id() {
    for shards in [1, 4] {
        let s = start_tessera(shards, &[]);
        // Connections spread over the shards.
        let mut conns: Vec<RawConn> = (0..6).map(|_| s.conn()).collect();
        let replid = |c: &mut RawConn| info_field(&c.cmd_str("INFO replication"), "master_replid");
        let run_id = info_field(&conns[0].cmd_str("INFO server"), "run_id");
        let before = replid(&mut conns[0]);
        let is_id = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(is_id(&before), "{before}");
        assert_ne!(before, run_id, "the replication id is not the run id");
        assert_eq!(conns[3].cmd_str("DEBUG CHANGE-REPL-ID"), b"+OK\r\n");
        let after = replid(&mut conns[0]);
        assert!(is_id(&after) && after != before, "{before} -> {after}");
        for c in conns.iter_mut() {
            let info = c.cmd_str("INFO replication");
            assert_eq!(info_field(&info, "master_replid"), after);
            assert_eq!(
                info_field(&info, "master_replid2"),
                "0000000000000000000000000000000000000000"
            );
            assert_eq!(info_field(&info, "second_repl_offset"), "-1");
        }
        assert_eq!(
            info_field(&conns[1].cmd_str("INFO server"), "run_id"),
            run_id
        );
        assert!(s.log_tail(20).contains("Changing replication IDs"));
    }
}

#[test]
fn leak_keeps_the_string_allocated() {
    let s = start_tessera(1, &[]);
    let mut c = s.conn();
    let used = |c: &mut RawConn| -> u64 {
        info_field(&c.cmd_str("INFO memory"), "used_memory")
            .parse()
            .unwrap()
    };
    let before = used(&mut c);
    let big = vec![b'x'; 4 << 20];
    assert_eq!(c.cmd(&[b"DEBUG", b"LEAK", &big]), b"+OK\r\n");
    // The query buffer that carried the argument is gone by the next command; the copy stays.
    c.cmd_str("PING");
    let after = used(&mut c);
    assert!(after >= before + (4 << 20), "{before} -> {after}");
}

#[test]
fn pause_cron_keeps_expired_keys_until_resumed() {
    for shards in [1, 4] {
        let s = start_tessera(shards, &["--hz", "100"]);
        let mut c = s.conn();
        assert_eq!(c.cmd_str("DEBUG PAUSE-CRON 1"), b"+OK\r\n");
        for i in 0..20 {
            c.cmd_str(&format!("SET k{i} v PX 50"));
        }
        c.cmd_str("SET keep v");
        std::thread::sleep(Duration::from_millis(600));
        // Nobody touched them: still counted, though past their deadline.
        assert_eq!(c.cmd_str("DBSIZE"), b":21\r\n", "{shards} shards");
        let ks = String::from_utf8_lossy(&c.cmd_str("INFO keyspace")).into_owned();
        assert!(ks.contains("db0:keys=21,expires=20,"), "{ks}");
        // Reads never see them.
        assert_eq!(c.cmd_str("GET k0"), b"$-1\r\n");
        assert_eq!(c.cmd_str("EXISTS k1 k2"), b":0\r\n");
        assert_eq!(c.cmd_str("DBSIZE"), b":18\r\n");
        // The server keeps answering meanwhile.
        assert_eq!(c.cmd_str("PING"), b"+PONG\r\n");
        assert_eq!(c.cmd_str("DEBUG PAUSE-CRON 0"), b"+OK\r\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.cmd_str("DBSIZE") != b":1\r\n" {
            assert!(Instant::now() < deadline, "expired keys not reclaimed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = c.cmd_str("INFO stats");
        assert_eq!(info_field(&stats, "expired_keys"), "20");
    }
}

#[test]
fn disable_deny_scripts_matches_redis() {
    let mut d = diff_or_skip!("disable_deny_scripts_matches_redis");
    let eval = |d: &mut Diff, body: &str, keys: &[&str]| {
        let n = keys.len().to_string();
        let mut args: Vec<&[u8]> = vec![b"EVAL", body.as_bytes(), n.as_bytes()];
        args.extend(keys.iter().map(|k| k.as_bytes()));
        d.cmd(&args);
    };
    d.section("denied");
    eval(&mut d, "return redis.pcall('blpop','l',0)", &["l"]);
    eval(&mut d, "return redis.pcall('debug','sleep','0')", &[]);
    d.section("allowed");
    d.s("DEBUG SET-DISABLE-DENY-SCRIPTS 1");
    eval(&mut d, "return redis.pcall('blpop','l',0)", &["l"]);
    d.s("RPUSH l a b c");
    eval(&mut d, "return redis.pcall('blpop','l',0)", &["l"]);
    eval(&mut d, "return redis.pcall('brpop','l',0)", &["l"]);
    eval(
        &mut d,
        "return redis.pcall('brpoplpush','l','m',0)",
        &["l", "m"],
    );
    eval(
        &mut d,
        "return redis.pcall('blmove','m','l','left','right',0)",
        &["m", "l"],
    );
    eval(&mut d, "return redis.pcall('bzpopmin','z',0)", &["z"]);
    d.s("ZADD z 1 a 2 b");
    eval(&mut d, "return redis.pcall('bzpopmax','z',0)", &["z"]);
    eval(&mut d, "return redis.pcall('bzpopmin','z',0)", &["z"]);
    d.script(&["LRANGE l 0 -1", "LRANGE m 0 -1", "ZRANGE z 0 -1"]);
    eval(&mut d, "return redis.pcall('debug','sleep','0')", &[]);
    eval(&mut d, "return redis.pcall('debug','sleep','0.01')", &[]);
    eval(
        &mut d,
        "return redis.pcall('debug','protocol','integer')",
        &[],
    );
    eval(
        &mut d,
        "return redis.pcall('debug','log','from a script')",
        &[],
    );
    eval(&mut d, "return redis.pcall('debug','sleep')", &[]);
    d.section("denied again");
    d.s("DEBUG SET-DISABLE-DENY-SCRIPTS 0");
    eval(&mut d, "return redis.pcall('blpop','l',0)", &["l"]);
    d.s("DEBUG SET-DISABLE-DENY-SCRIPTS abc");
    eval(&mut d, "return redis.pcall('debug','sleep','0')", &[]);
}

#[test]
fn stringmatch_test_is_bounded_and_the_matcher_survives_pathological_patterns() {
    let mut d =
        diff_or_skip!("stringmatch_test_is_bounded_and_the_matcher_survives_pathological_patterns");
    for t in 1..d.targets.len() {
        let c = &mut d.targets[t].conns[0];
        let started = Instant::now();
        assert_eq!(
            c.cmd_str("DEBUG STRINGMATCH-TEST"),
            b"+Apparently Redis did not crash: test passed\r\n"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(c.cmd_str("PING"), b"+PONG\r\n");
    }
    // Redis's nesting limit: a pattern with more stars than it allows matches nothing, fast.
    let long = "a".repeat(3000);
    d.cmd(&[b"SET", long.as_bytes(), b"v"]);
    d.s("SET ab v");
    let stars = format!("{}b", "a*".repeat(1500));
    let few = format!("{}b", "a*".repeat(10));
    let started = Instant::now();
    d.cmd_norm(&[b"KEYS", stars.as_bytes()], Norm::Sorted);
    d.cmd_norm(&[b"KEYS", few.as_bytes()], Norm::Sorted);
    d.cmd_norm(&[b"KEYS", b"a*"], Norm::Sorted);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The text of an HTSTATS reply and its RESP type ("bulk", or the verbatim format).
fn htstats_text(raw: &[u8]) -> (String, String) {
    match resp_parse(raw) {
        Value::Bulk(b) => ("bulk".into(), String::from_utf8_lossy(&b).into_owned()),
        Value::Verbatim(b) => (
            String::from_utf8_lossy(&b[..4]).into_owned(),
            String::from_utf8_lossy(&b[4..]).into_owned(),
        ),
        other => panic!("not a string: {}", render(&other)),
    }
}

/// What HTSTATS output must share with Redis's whatever the table figures: the reply type and
/// the lines with their numbers replaced by `#`, without the chain-length histogram and
/// without a rehashing target's block (an incremental rehash may be under way on one server
/// and not on another).
fn htstats_shape(raw: &[u8]) -> String {
    let (kind, text) = htstats_text(raw);
    let mut out = vec![kind];
    let mut in_target = false;
    for l in text.lines() {
        if l.starts_with("Hash table 1 ") {
            in_target = true;
        } else if l.starts_with('[') || l.starts_with("Hash table 0 ") {
            in_target = false;
        }
        if in_target || l.starts_with("   ") {
            continue;
        }
        let mut shape = String::new();
        for c in l.chars() {
            let c = if c.is_ascii_digit() || c == '.' {
                '#'
            } else {
                c
            };
            if !(c == '#' && shape.ends_with('#')) {
                shape.push(c);
            }
        }
        out.push(shape);
    }
    out.join("\n")
}

/// The elements of an HTSTATS text's tables (main table and rehashing target together), per
/// `[...]` section (one section for HTSTATS-KEY).
fn ht_elements(raw: &[u8]) -> Vec<u64> {
    let (_, text) = htstats_text(raw);
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with('[') || (out.is_empty() && l.starts_with("Hash table")) {
            out.push(0);
        }
        if let Some(n) = l.trim().strip_prefix("number of elements: ") {
            *out.last_mut().expect("a section") += n.parse::<u64>().unwrap();
        }
    }
    out
}

#[test]
fn htstats_layout_and_counts_match_redis() {
    let mut d = diff_or_skip!("htstats_layout_and_counts_match_redis");
    let compare = |d: &mut Diff, line: &str| {
        let what = line.to_string();
        let replies: Vec<Vec<u8>> = d
            .targets
            .iter_mut()
            .map(|t| t.conns[0].cmd_str(&what))
            .collect();
        for (i, r) in replies.iter().enumerate().skip(1) {
            assert_eq!(
                htstats_shape(r),
                htstats_shape(&replies[0]),
                "{what} on {}:\n{}\nredis:\n{}",
                d.targets[i].name,
                String::from_utf8_lossy(r),
                String::from_utf8_lossy(&replies[0])
            );
        }
        replies
    };
    // Empty tables.
    compare(&mut d, "DEBUG HTSTATS 0");
    d.s("DEBUG POPULATE 1000");
    for i in 0..40 {
        d.s(&format!("EXPIRE key:{i} 1000"));
    }
    let mut big_hash: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"bighash".to_vec()];
    let mut big_set: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"bigset".to_vec()];
    let mut big_zset: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"bigzset".to_vec()];
    for i in 0..600 {
        big_hash.push(format!("field{i}").into_bytes());
        big_hash.push(b"v".to_vec());
        big_set.push(format!("member{i}").into_bytes());
        big_zset.push(i.to_string().into_bytes());
        big_zset.push(format!("m{i}").into_bytes());
    }
    for cmd in [&big_hash, &big_set, &big_zset] {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
        d.cmd(&args);
    }
    for resp3 in [false, true] {
        if resp3 {
            d.s_norm("HELLO 3", Norm::Hello);
        }
        let r = compare(&mut d, "DEBUG HTSTATS 0");
        for (t, reply) in r.iter().enumerate() {
            // The keyspace table: the same keys; the expires table: the same deadlines.
            assert_eq!(ht_elements(reply), [1003, 40], "target {t}");
        }
        compare(&mut d, "DEBUG HTSTATS 1");
        for key in ["bighash", "bigset", "bigzset"] {
            let r = compare(&mut d, &format!("DEBUG HTSTATS-KEY {key}"));
            for reply in &r {
                assert_eq!(ht_elements(reply), [600], "{key}");
            }
        }
    }
}

/// `name:value` fields of a DEBUG SDSLEN reply.
fn sdslen_fields(raw: &[u8]) -> Vec<(String, i64)> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let body = text
        .strip_prefix('+')
        .and_then(|t| t.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("not a status: {text}"));
    body.split(", ")
        .map(|f| {
            let (n, v) = f.split_once(':').unwrap();
            (n.to_string(), v.trim().parse().unwrap())
        })
        .collect()
}

#[test]
fn sdslen_has_redis_fields_with_tessera_figures() {
    let mut d = diff_or_skip!("sdslen_has_redis_fields_with_tessera_figures");
    let long_key = "k".repeat(40);
    let long_val = "v".repeat(100);
    d.s("SET s hello");
    d.cmd(&[b"SET", long_key.as_bytes(), long_val.as_bytes()]);
    d.s("SET grown abc");
    d.s("APPEND grown defghijklmnopqrstuvwxyz0123456789");
    d.s("APPEND grown +");
    for key in ["s", long_key.as_str(), "grown"] {
        let replies: Vec<Vec<u8>> = d
            .targets
            .iter_mut()
            .map(|t| t.conns[0].cmd(&[b"DEBUG", b"SDSLEN", key.as_bytes()]))
            .collect();
        let redis = sdslen_fields(&replies[0]);
        for r in &replies[1..] {
            let ours = sdslen_fields(r);
            let names = |f: &[(String, i64)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            assert_eq!(names(&ours), names(&redis));
            let get = |f: &[(String, i64)], n: &str| f.iter().find(|(x, _)| x == n).unwrap().1;
            // Lengths are the key's and the value's; the rest is Tessera's memory.
            for f in ["key_sds_len", "val_sds_len"] {
                assert_eq!(get(&ours, f), get(&redis, f), "{key}: {f}");
            }
            assert!(get(&ours, "key_zmalloc") >= get(&ours, "key_sds_len"));
            assert!(
                get(&ours, "val_zmalloc")
                    >= get(&ours, "val_sds_len") + get(&ours, "val_sds_avail")
            );
            if key == "grown" {
                // Grown in place: room kept for more, as an sds keeps it.
                assert!(
                    get(&ours, "val_sds_avail") > 0,
                    "{}",
                    String::from_utf8_lossy(r)
                );
            } else {
                assert_eq!(get(&ours, "val_sds_avail"), 0);
            }
        }
    }
}

#[test]
fn structsize_uses_redis_format() {
    let s = start_tessera(1, &[]);
    let raw = s.conn().cmd_str("DEBUG STRUCTSIZE");
    let text = String::from_utf8(resp_parse(&raw).as_bytes().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("bits:64 "), "{text}");
    assert!(text.ends_with(' '));
    let fields: Vec<&str> = text.trim_end().split(' ').collect();
    assert!(fields.len() > 5);
    for f in fields {
        let (name, size) = f.split_once(':').unwrap();
        assert!(
            !name.is_empty() && size.parse::<usize>().unwrap() > 0,
            "{f}"
        );
    }
}

#[test]
fn listpack_and_quicklist_print_the_structure() {
    let s = start_tessera(1, &[]);
    let mut c = s.conn();
    c.cmd_str("HSET h field value");
    c.cmd_str("RPUSH l elem 42");
    assert_eq!(
        c.cmd_str("DEBUG LISTPACK h"),
        b"+Listpack structure printed on stdout\r\n"
    );
    assert_eq!(
        c.cmd_str("DEBUG QUICKLIST l 1"),
        b"+Quicklist structure printed on stdout\r\n"
    );
    // The harness sends the server's stdout to its log.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = s.log_tail(100);
        if log.contains("{num entries 1}")
            && log.contains("\"field\"")
            && log.contains("{quicklist} {count 2}")
            && log.contains("int 42")
        {
            break;
        }
        assert!(Instant::now() < deadline, "structure not printed:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn crash_subcommands_end_the_process_after_a_report() {
    let cases: &[(&str, usize, &str)] = &[
        ("SEGFAULT", 1, "crashed by signal: 11"),
        (
            "PANIC",
            4,
            "Guru Meditation: DEBUG PANIC called at Unix time",
        ),
        ("ASSERT", 1, "'1 == 2' is not true"),
        ("OOM", 4, "Out Of Memory allocating"),
        // Like Redis 7.0, whatever follows the subcommand.
        ("segfault now", 4, "crashed by signal: 11"),
    ];
    for &(sub, shards, line) in cases {
        let mut s = start_tessera(shards, &[]);
        let mut c = s.conn();
        c.cmd_str("CLIENT SETNAME crasher");
        c.send(&encode(
            &std::iter::once(&b"DEBUG"[..])
                .chain(sub.split(' ').map(str::as_bytes))
                .collect::<Vec<_>>(),
        ));
        assert!(
            c.wait_closed(Duration::from_secs(10)).is_ok(),
            "DEBUG {sub}: connection still open"
        );
        assert!(
            s.wait_exit(Duration::from_secs(10)),
            "DEBUG {sub}: process still running"
        );
        // (With RUST_BACKTRACE set, the allocation failure's backtrace follows the report.)
        let log = s.log_tail(2000);
        assert!(
            log.contains("TESSERA BUG REPORT START"),
            "DEBUG {sub}:\n{log}"
        );
        assert!(log.contains(line), "DEBUG {sub}:\n{log}");
        assert!(
            log.contains("Crash requested by client id=") && log.contains("name=crasher"),
            "DEBUG {sub}:\n{log}"
        );
    }
}

#[test]
fn config_rewrite_force_all_writes_every_option() {
    let dir = std::env::temp_dir().join(format!("tessera-debug-conf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("tessera.conf");
    std::fs::write(
        &conf,
        "# my settings\nmaxmemory 1mb\nenable-debug-command yes\nsave \"\"\nshards 2\n",
    )
    .unwrap();
    let s = start_tessera_with_config(&conf, &[]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("CONFIG REWRITE"), b"+OK\r\n");
    let plain = std::fs::read_to_string(&conf).unwrap();
    assert!(!plain.lines().any(|l| l == "hz 10"), "{plain}");
    assert_eq!(c.cmd_str("DEBUG CONFIG-REWRITE-FORCE-ALL"), b"+OK\r\n");
    let all = std::fs::read_to_string(&conf).unwrap();
    assert!(all.starts_with("# my settings\nmaxmemory 1mb\n"), "{all}");
    for line in [
        "hz 10",
        "timeout 0",
        "appendfsync everysec",
        "databases 16",
        "maxmemory-policy noeviction",
    ] {
        assert!(all.lines().any(|l| l == line), "{line} missing:\n{all}");
    }
    assert_eq!(
        all.lines().filter(|l| l.starts_with("maxmemory ")).count(),
        1
    );
    drop(c);
    drop(s);
    // The file starts a server with the same settings.
    let s = start_tessera_with_config(&conf, &[]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd_str("CONFIG GET maxmemory"),
        b"*2\r\n$9\r\nmaxmemory\r\n$7\r\n1048576\r\n"
    );
    drop(c);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bytes in the AOF directory's incremental files.
fn incr_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incr.aof"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn fill(c: &mut RawConn) {
    for line in [
        "SET s hello",
        "SET t v EX 1000",
        "INCRBY n 41",
        "RPUSH l a b 3",
        "HSET h f v",
        "SADD st x 1",
        "ZADD z 1 a 2.5 b",
        "MSET m1 x m2 y m3 z",
        "SELECT 2",
        "SET other db",
        "SELECT 0",
    ] {
        let r = c.cmd_str(line);
        assert!(!r.starts_with(b"-"), "{line}: {}", render_raw(&r));
    }
    c.cmd(&[
        b"FUNCTION",
        b"LOAD",
        b"#!lua name=lib\nredis.register_function('f', function() return 7 end)",
    ]);
}

#[test]
fn loadaof_reloads_the_data_set_from_the_aof() {
    for shards in [1, 4] {
        let s = start_tessera(shards, &["--appendonly", "yes"]);
        let dir = s.dir().to_path_buf();
        let mut c = s.conn();
        fill(&mut c);
        let digest = c.cmd_str("DEBUG DIGEST");
        let ttl = c.cmd_str("PTTL t");
        // Writes still land (and are replayed) while the writer sleeps before each flush.
        assert_eq!(c.cmd_str("DEBUG AOF-FLUSH-SLEEP 2000"), b"+OK\r\n");
        c.cmd_str("SET late 1");
        let digest = {
            assert_ne!(c.cmd_str("DEBUG DIGEST"), digest);
            c.cmd_str("DEBUG DIGEST")
        };
        let logged = incr_bytes(&dir);
        assert_eq!(c.cmd_str("DEBUG LOADAOF"), b"+OK\r\n", "{shards} shards");
        assert_eq!(c.cmd_str("DEBUG DIGEST"), digest);
        assert!(
            resp_parse(&c.cmd_str("PTTL t")).as_int().unwrap()
                <= resp_parse(&ttl).as_int().unwrap()
        );
        assert_eq!(c.cmd_str("FCALL f 0"), b":7\r\n");
        assert_eq!(c.cmd_str("GET late"), b"$1\r\n1\r\n");
        // The replay is not logged again.
        assert_eq!(incr_bytes(&dir), logged);
        assert!(s
            .log_tail(20)
            .contains("Append Only File loaded by DEBUG LOADAOF"));
        // Inside MULTI (every shard is then held by the block).
        c.cmd_str("MULTI");
        c.cmd_str("DEBUG LOADAOF");
        c.cmd_str("GET late");
        assert_eq!(c.cmd_str("EXEC"), b"*2\r\n+OK\r\n$1\r\n1\r\n");
        assert_eq!(c.cmd_str("DEBUG AOF-FLUSH-SLEEP 0"), b"+OK\r\n");
        c.cmd_str("SET after 2");
        drop(c);
        drop(s);
        let _ = dir;
    }
}

#[test]
fn loadaof_writes_persist_across_a_restart_with_flush_sleep() {
    let dir = std::env::temp_dir().join(format!("tessera-debug-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let args = ["--appendonly", "yes", "--dir", d.as_str()];
    let digest = {
        let s = start_tessera(4, &args);
        let mut c = s.conn();
        assert_eq!(c.cmd_str("DEBUG AOF-FLUSH-SLEEP 5000"), b"+OK\r\n");
        fill(&mut c);
        assert_eq!(c.cmd_str("DEBUG AOF-FLUSH-SLEEP -3"), b"+OK\r\n");
        c.cmd_str("SET x y");
        c.cmd_str("DEBUG DIGEST")
    };
    let s = start_tessera(4, &args);
    assert_eq!(s.conn().cmd_str("DEBUG DIGEST"), digest);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loadaof_never_loses_the_data_silently() {
    // AOF off: Redis 7.0 empties the data set and exits; Tessera keeps it and says why.
    let s = start_tessera(4, &[]);
    let mut c = s.conn();
    fill(&mut c);
    let digest = c.cmd_str("DEBUG DIGEST");
    assert_eq!(
        c.cmd_str("DEBUG LOADAOF"),
        b"-ERR Error trying to load the AOF files, check server logs.\r\n"
    );
    assert_eq!(c.cmd_str("DEBUG DIGEST"), digest);
    assert!(s.log_tail(10).contains("appendonly is off"));
    drop(c);
    drop(s);
    // A damaged AOF is found before anything is emptied.
    let s = start_tessera(1, &["--appendonly", "yes", "--aof-load-truncated", "no"]);
    let mut c = s.conn();
    fill(&mut c);
    let digest = c.cmd_str("DEBUG DIGEST");
    let incr = std::fs::read_dir(s.dir().join("appendonlydir"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .unwrap();
    let mut bytes = std::fs::read(&incr).unwrap();
    assert_eq!(bytes[0], b'*');
    bytes[0] = b'?';
    std::fs::write(&incr, bytes).unwrap();
    assert_eq!(
        c.cmd_str("DEBUG LOADAOF"),
        b"-ERR Error trying to load the AOF files, check server logs.\r\n"
    );
    assert_eq!(c.cmd_str("DEBUG DIGEST"), digest);
}

//! Differential tests of the stream consumer groups (XGROUP, XREADGROUP, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM, XINFO GROUPS / CONSUMERS / STREAM FULL) against redis-server 7.0, Tessera
//! with 1 and 4 shards.
//!
//! Idle times, seen-times and delivery times depend on the clock of each server, so those
//! fields alone are normalised (see [`timeless`]): the `idle` and `seen-time` values of XINFO,
//! the idle column of XPENDING's extended form and the delivery times of XINFO STREAM FULL.
//! Everything else (IDs, consumers, delivery counts, lags, errors) is compared byte for byte.
//! Commands that filter on idle times use 0 or an hour, which no test run reaches, so that
//! what they select does not depend on timing. Where bytes must match exactly (DUMP payloads)
//! the delivery times are fixed with XCLAIM TIME, and seen-times are carried over by RESTORE.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Which time fields of a reply to blank.
#[derive(Clone, Copy)]
enum Times {
    /// `idle` and `seen-time` values of field/value replies; integers that are absolute
    /// millisecond times (past 2001) anywhere.
    Info,
    /// XPENDING's extended form: the third column (idle) of each row.
    Pending,
    /// Only the `seen-time` values: what an AOF replay sets anew (delivery times replay
    /// exactly, from the TIME of the logged XCLAIMs).
    Seen,
}

fn blank(v: Value, t: Times) -> Value {
    match v {
        Value::Int(n) if matches!(t, Times::Info) && n > 1_000_000_000_000 => {
            Value::Simple(b"<time>".to_vec())
        }
        Value::Array(items) => {
            if matches!(t, Times::Pending)
                && items.len() == 4
                && matches!(items[0], Value::Bulk(_))
                && matches!(items[1], Value::Bulk(_))
                && matches!(items[2], Value::Int(_))
            {
                let mut items = items;
                items[2] = Value::Simple(b"<idle>".to_vec());
                return Value::Array(items);
            }
            let mut out = Vec::with_capacity(items.len());
            let mut after_time_name = false;
            for x in items {
                if after_time_name {
                    out.push(Value::Simple(b"<time>".to_vec()));
                    after_time_name = false;
                    continue;
                }
                after_time_name = timed_field(&x, t);
                out.push(blank(x, t));
            }
            Value::Array(out)
        }
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    if timed_field(&k, t) {
                        (k, Value::Simple(b"<time>".to_vec()))
                    } else {
                        (k, blank(v, t))
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

/// Whether `name` names a field whose value `t` blanks.
fn timed_field(name: &Value, t: Times) -> bool {
    match name {
        Value::Bulk(b) => b == b"seen-time" || (b == b"idle" && !matches!(t, Times::Seen)),
        _ => false,
    }
}

/// Runs `line` on every target and compares the replies with their time fields blanked.
fn timeless(d: &mut Diff, line: &str, t: Times) {
    let parts = split_cmd(line);
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    d.each(&format!("{line} (times blanked)"), |tg, active| {
        let raw = tg.conns[active].cmd(&refs);
        let out = render(&blank(resp_parse(&raw), t)).into_bytes();
        if std::env::var_os("GROUPS_DEBUG").is_some() {
            eprintln!("{}: {}", tg.name, String::from_utf8_lossy(&out));
        }
        out
    });
}

fn info(d: &mut Diff, line: &str) {
    timeless(d, line, Times::Info)
}

fn pending(d: &mut Diff, line: &str) {
    timeless(d, line, Times::Pending)
}

/// Runs a command and compares its reply with how much it changed the dirty counter.
fn counted(d: &mut Diff, line: &str) {
    let parts = split_cmd(line);
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    d.each(&format!("{line} (reply, dirty)"), |t, active| {
        let c = &mut t.conns[active];
        let d0 = info_num(c, "persistence", "rdb_changes_since_last_save");
        let mut out = c.cmd(&refs);
        let d1 = info_num(c, "persistence", "rdb_changes_since_last_save");
        out.extend(format!(" dirty+{}", d1 - d0).into_bytes());
        out
    });
}

fn state(d: &mut Diff, key: &str) {
    info(d, &format!("XINFO GROUPS {key}"));
    info(d, &format!("XINFO STREAM {key} FULL"));
    d.s(&format!("XPENDING {key} g"));
}

#[test]
fn xgroup_subcommands_and_errors() {
    let mut d = diff_or_skip!("xgroup_subcommands_and_errors");
    d.section("create");
    d.s("XGROUP CREATE s g $");
    d.s("XGROUP CREATE s g $ MKSTREAM");
    d.s("EXISTS s");
    d.s("TYPE s");
    d.s("XLEN s");
    d.s("XGROUP CREATE s g $ MKSTREAM");
    d.s("XGROUP CREATE s g2 0");
    d.s("XGROUP CREATE s g3 0-1 ENTRIESREAD 5");
    d.s("XGROUP CREATE s g4 0 ENTRIESREAD -1");
    d.s("XGROUP CREATE s g5 0 ENTRIESREAD -2");
    d.s("XGROUP CREATE s g5 0 ENTRIESREAD x");
    d.s("XGROUP CREATE s g5 0 ENTRIESREAD");
    d.s("XGROUP CREATE s g5 0 MKSTREAM ENTRIESREAD 3 MKSTREAM");
    d.s("XGROUP CREATE s g6 0 BOGUS");
    d.s("XGROUP CREATE s g6 -");
    d.s("XGROUP CREATE s g6 +");
    d.s("XGROUP CREATE s g6 abc");
    d.s("XGROUP CREATE s g6 1-2-3");
    d.s("XGROUP CREATE s g6 >");
    d.s("XGROUP CREATE s g6 18446744073709551615-18446744073709551615");
    d.s("XGROUP CREATE s g7 5");
    d.s("XGROUP CREATE s g8 0 MKSTREAM MKSTREAM");
    d.s("XGROUP CREATE s g9 0 mkstream entriesread 0");
    d.s("XGROUP CREATE nokey g 0");
    d.s("XGROUP CREATE nokey g 0 ENTRIESREAD 3");
    d.s("XGROUP CREATE nokey g x MKSTREAM");
    d.s("EXISTS nokey");
    d.s("XGROUP CREATE s");
    d.s("XGROUP CREATE s g");
    d.s("XGROUP CREATE s g 0 MKSTREAM ENTRIESREAD 1 MKSTREAM extra");
    info(&mut d, "XINFO GROUPS s");
    d.s("SET str x");
    d.s("XGROUP CREATE str g 0");
    d.s("XGROUP CREATE str g 0 MKSTREAM");
    d.s("XGROUP SETID str g 0");
    d.s("XGROUP DESTROY str g");
    d.s("XGROUP CREATECONSUMER str g c");
    d.s("XGROUP DELCONSUMER str g c");

    d.section("entries");
    d.s("XADD s 1-1 f v");
    d.s("XADD s 2-1 f v");
    d.s("XADD s 3-1 f v");
    d.s("XGROUP CREATE s last $");
    d.s("XGROUP CREATE s mid 2-1");
    d.s("XGROUP CREATE s first 0");
    info(&mut d, "XINFO GROUPS s");

    d.section("setid");
    d.s("XGROUP SETID s g 0");
    d.s("XGROUP SETID s g $");
    d.s("XGROUP SETID s g 2");
    d.s("XGROUP SETID s g 2 ENTRIESREAD 2");
    d.s("XGROUP SETID s g 2 ENTRIESREAD -1");
    d.s("XGROUP SETID s g 2 ENTRIESREAD -3");
    // Not compared: Redis 7.0 sends two error replies to `XGROUP SETID s g 2 ENTRIESREAD x`.
    d.s("XGROUP SETID s g 2 NOPE 1");
    d.s("XGROUP SETID s g 2 ENTRIESREAD");
    d.s("XGROUP SETID s g -");
    d.s("XGROUP SETID s g +");
    d.s("XGROUP SETID s g bad");
    d.s("XGROUP SETID s nogroup 0");
    d.s("XGROUP SETID nokey g 0");
    d.s("XGROUP SETID s g 99-99");
    info(&mut d, "XINFO GROUPS s");

    d.section("consumers");
    counted(&mut d, "XGROUP CREATECONSUMER s g alice");
    counted(&mut d, "XGROUP CREATECONSUMER s g alice");
    counted(&mut d, "XGROUP CREATECONSUMER s g bob");
    d.s("XGROUP CREATECONSUMER s nogroup bob");
    d.s("XGROUP CREATECONSUMER nokey g bob");
    d.s("XGROUP CREATECONSUMER s g");
    info(&mut d, "XINFO CONSUMERS s g");
    counted(&mut d, "XGROUP DELCONSUMER s g bob");
    counted(&mut d, "XGROUP DELCONSUMER s g bob");
    d.s("XGROUP DELCONSUMER s nogroup bob");
    d.s("XGROUP DELCONSUMER nokey g bob");
    info(&mut d, "XINFO CONSUMERS s g");

    d.section("destroy");
    counted(&mut d, "XGROUP DESTROY s g2");
    counted(&mut d, "XGROUP DESTROY s g2");
    d.s("XGROUP DESTROY nokey g2");
    d.s("XGROUP DESTROY s");
    d.s("XGROUP DESTROY s g x");
    info(&mut d, "XINFO GROUPS s");

    d.section("help and unknown");
    d.s("XGROUP HELP");
    d.s("XGROUP help");
    d.s("XGROUP HELP extra");
    d.s("XGROUP");
    d.s("XGROUP NOPE");
    d.s("XGROUP NOPE s g");
    d.s("XGROUP SETID s");
    d.s("XGROUP DELCONSUMER s g");
    counted(&mut d, "XGROUP CREATE s cnt 0");
    counted(&mut d, "XGROUP CREATE s cnt 0");
    counted(&mut d, "XGROUP SETID s cnt 0");
}

#[test]
fn xreadgroup_xack_and_xpending() {
    let mut d = diff_or_skip!("xreadgroup_xack_and_xpending");
    d.section("setup");
    for i in 1..=6 {
        d.s(&format!("XADD s {i}-0 f v{i} g w{i}"));
    }
    d.s("XGROUP CREATE s g 0");
    d.section("errors");
    d.s("XREADGROUP GROUP g alice STREAMS s");
    d.s("XREADGROUP GROUP g alice STREAMS s $");
    d.s("XREADGROUP GROUP g alice STREAMS s 1 2");
    d.s("XREADGROUP GROUP g STREAMS s >");
    d.s("XREADGROUP STREAMS s >");
    d.s("XREADGROUP GROUP g alice s >");
    d.s("XREADGROUP GROUP g alice COUNT x STREAMS s >");
    d.s("XREADGROUP GROUP g alice BLOCK x STREAMS s >");
    d.s("XREADGROUP GROUP g alice BLOCK -1 STREAMS s >");
    d.s("XREADGROUP GROUP g alice BOGUS STREAMS s >");
    d.s("XREADGROUP GROUP nog alice STREAMS s >");
    d.s("XREADGROUP GROUP g alice STREAMS nokey >");
    d.s("XREADGROUP GROUP g alice STREAMS s bad");
    d.s("XREADGROUP GROUP g alice STREAMS s -");
    d.s("XREADGROUP GROUP g alice STREAMS s +");
    d.s("XREADGROUP GROUP g alice STREAMS s nokey > >");
    d.s("SET str x");
    d.s("XREADGROUP GROUP g alice STREAMS str >");
    d.s("XREADGROUP GROUP g alice STREAMS s str > >");
    d.s("XREADGROUP GROUP g");
    d.s("XREADGROUP");
    d.s("XREAD GROUP g alice STREAMS s >");
    d.s("XREAD NOACK STREAMS s 0");
    d.s("XREAD STREAMS s >");
    d.s("XINFO CONSUMERS s g");

    d.section("read");
    counted(&mut d, "XREADGROUP GROUP g alice COUNT 2 STREAMS s >");
    counted(&mut d, "XREADGROUP GROUP g bob COUNT 1 STREAMS s >");
    counted(&mut d, "XREADGROUP GROUP g alice COUNT -5 STREAMS s 0");
    counted(&mut d, "XREADGROUP GROUP g alice STREAMS s 1-0");
    counted(&mut d, "XREADGROUP GROUP g carol STREAMS s 0");
    counted(&mut d, "XREADGROUP GROUP g carol NOACK COUNT 1 STREAMS s >");
    counted(&mut d, "XREADGROUP GROUP g dave STREAMS s 0");
    state(&mut d, "s");
    pending(&mut d, "XPENDING s g - + 10");
    d.section("xpending");
    d.s("XPENDING s");
    d.s("XPENDING s g - +");
    d.s("XPENDING s g - + x");
    d.s("XPENDING s g x + 10");
    d.s("XPENDING s g - x 10");
    d.s("XPENDING s g IDLE x - + 10");
    d.s("XPENDING s g IDLE 10 - +");
    d.s("XPENDING s g (18446744073709551615-18446744073709551615 + 10");
    d.s("XPENDING s g - (0-0 10");
    d.s("XPENDING nokey g - + 10");
    d.s("XPENDING nokey g");
    d.s("XPENDING s nog");
    d.s("XPENDING str g");
    pending(&mut d, "XPENDING s g - + 10 alice extra");
    pending(&mut d, "XPENDING s g - + 10 alice extra more");
    pending(&mut d, "XPENDING s g - + 10 alice");
    pending(&mut d, "XPENDING s g - + 10 nobody");
    pending(&mut d, "XPENDING s g (1-0 (4-0 10");
    pending(&mut d, "XPENDING s g 2 3 -1");
    pending(&mut d, "XPENDING s g 2 + 1");
    pending(&mut d, "XPENDING s g IDLE 0 - + 10");
    pending(&mut d, "XPENDING s g IDLE 3600000 - + 10");
    pending(&mut d, "XPENDING s g idle 0 - + 10 bob");
    pending(&mut d, "XPENDING s g IDLE -5 - + 10");

    d.section("xack");
    d.s("XACK s g");
    d.s("XACK s g bad");
    d.s("XACK s g 1-0 bad");
    d.s("XACK nokey g bad");
    d.s("XACK s nog bad");
    d.s("XACK str g 1");
    counted(&mut d, "XACK s g 1-0 1-0 2 9-9");
    counted(&mut d, "XACK s g 1-0");
    counted(&mut d, "XACK s nog 1-0");
    state(&mut d, "s");

    d.section("setid back and redeliver");
    d.s("XGROUP SETID s g 0");
    counted(&mut d, "XREADGROUP GROUP g erin COUNT 3 STREAMS s >");
    state(&mut d, "s");
    d.s("XDEL s 4-0");
    counted(&mut d, "XREADGROUP GROUP g erin STREAMS s 0");
    counted(&mut d, "XREADGROUP GROUP g erin STREAMS s >");
    state(&mut d, "s");
    d.s("XDEL s 3-0");
    counted(&mut d, "XREADGROUP GROUP g bob STREAMS s 0");
    counted(&mut d, "XREADGROUP GROUP g erin STREAMS s 0");
    counted(&mut d, "XREADGROUP GROUP g erin STREAMS s >");
    state(&mut d, "s");

    d.section("several keys");
    for k in ["a", "b", "c", "d", "e"] {
        d.s(&format!("XADD {k} 1-0 k {k}"));
        d.s(&format!("XADD {k} 2-0 k {k}"));
        d.s(&format!("XGROUP CREATE {k} g 0"));
    }
    counted(
        &mut d,
        "XREADGROUP GROUP g x COUNT 1 STREAMS a b c d e > > > > >",
    );
    counted(&mut d, "XREADGROUP GROUP g x STREAMS a b c d e 0 0 0 0 0");
    counted(&mut d, "XREADGROUP GROUP g x STREAMS a b c d e > > 0 > 0");
    counted(&mut d, "XREADGROUP GROUP g x STREAMS a b c d e > > > > >");
    d.s("XREADGROUP GROUP g x STREAMS a nokey > >");
    for k in ["a", "b", "c", "d", "e"] {
        state(&mut d, k);
    }

    d.section("resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.s("XADD s 7-0 f v");
    d.s("XREADGROUP GROUP g erin STREAMS s >");
    d.s("XREADGROUP GROUP g erin STREAMS s 0");
    d.s("XREADGROUP GROUP g erin STREAMS s >");
    d.s("XREADGROUP GROUP g x STREAMS a b c 0 0 >");
    state(&mut d, "s");
    pending(&mut d, "XPENDING s g - + 10");
    info(&mut d, "XINFO CONSUMERS s g");
    d.s("XPENDING s g");
    d.s("XPENDING s nog");
    d.s("XAUTOCLAIM s g erin 0 0 JUSTID");
    d.s("XCLAIM s g erin 0 2-0 JUSTID");
}

#[test]
fn xclaim_and_xautoclaim() {
    let mut d = diff_or_skip!("xclaim_and_xautoclaim");
    for i in 1..=8 {
        d.s(&format!("XADD s {i}-0 f v{i}"));
    }
    d.s("XGROUP CREATE s g 0");
    d.s("XREADGROUP GROUP g alice STREAMS s >");
    d.section("xclaim errors");
    d.s("XCLAIM s g bob");
    d.s("XCLAIM s g bob 0");
    d.s("XCLAIM nokey g bob 0 1");
    d.s("XCLAIM s nog bob 0 1");
    d.s("SET str x");
    d.s("XCLAIM str g bob 0 1");
    d.s("XCLAIM s g bob x 1");
    d.s("XCLAIM s g bob 0 1 IDLE x");
    d.s("XCLAIM s g bob 0 1 TIME x");
    d.s("XCLAIM s g bob 0 1 RETRYCOUNT x");
    d.s("XCLAIM s g bob 0 1 LASTID x");
    d.s("XCLAIM s g bob 0 1 BOGUS");
    d.s("XCLAIM s g bob 0 1 IDLE");
    d.s("XCLAIM s g bob 0 bad");
    d.s("XCLAIM s g bob 0 1 bad 2");
    d.s("XCLAIM s g bob 0 -");
    pending(&mut d, "XPENDING s g - + 20");

    d.section("xclaim");
    counted(&mut d, "XCLAIM s g bob 3600000 1-0");
    counted(&mut d, "XCLAIM s g bob 0 1-0");
    counted(&mut d, "XCLAIM s g bob -7 2-0 JUSTID");
    counted(&mut d, "XCLAIM s g bob 0 3-0 RETRYCOUNT 9 TIME 12345");
    counted(&mut d, "XCLAIM s g bob 0 4-0 IDLE 500 JUSTID RETRYCOUNT -3");
    counted(&mut d, "XCLAIM s g bob 0 5-0 TIME -1");
    counted(&mut d, "XCLAIM s g bob 0 5-0 TIME 999999999999999");
    counted(&mut d, "XCLAIM s g bob 0 99-0 1-0");
    counted(&mut d, "XCLAIM s g carol 0 99-0 FORCE");
    counted(&mut d, "XCLAIM s g carol 0 8-0 FORCE");
    counted(&mut d, "XCLAIM s g carol 0 7-0 FORCE JUSTID LASTID 50-0");
    counted(&mut d, "XCLAIM s g carol 0 7-0 LASTID 1-0");
    counted(&mut d, "XCLAIM s g nobody 3600000 1-0 2-0");
    counted(&mut d, "XCLAIM s g nobody2 0 77-0");
    info(&mut d, "XINFO CONSUMERS s g");
    state(&mut d, "s");
    pending(&mut d, "XPENDING s g - + 20");
    d.s("XDEL s 2-0 3-0");
    counted(&mut d, "XCLAIM s g carol 0 2-0 3-0 4-0");
    pending(&mut d, "XPENDING s g - + 20");
    counted(&mut d, "XCLAIM s g carol 0 2-0 FORCE");

    d.section("xautoclaim errors");
    d.s("XAUTOCLAIM s g c 0");
    d.s("XAUTOCLAIM s g c x 0");
    d.s("XAUTOCLAIM s g c 0 bad");
    d.s("XAUTOCLAIM s g c 0 (18446744073709551615-18446744073709551615");
    d.s("XAUTOCLAIM s g c 0 0 COUNT 0");
    d.s("XAUTOCLAIM s g c 0 0 COUNT x");
    d.s("XAUTOCLAIM s g c 0 0 COUNT 922337203685477581");
    d.s("XAUTOCLAIM s g c 0 0 COUNT");
    d.s("XAUTOCLAIM s g c 0 0 BOGUS");
    d.s("XAUTOCLAIM nokey g c 0 0");
    d.s("XAUTOCLAIM s nog c 0 0");
    d.s("XAUTOCLAIM str g c 0 0");
    d.s("XAUTOCLAIM nokey g c 0 0 COUNT 0");

    d.section("xautoclaim");
    d.s("XADD s 9-0 f v9");
    d.s("XADD s 10-0 f v10");
    d.s("XREADGROUP GROUP g alice STREAMS s >");
    counted(&mut d, "XAUTOCLAIM s g dave 3600000 0");
    counted(&mut d, "XAUTOCLAIM s g dave 0 0 COUNT 2");
    counted(&mut d, "XAUTOCLAIM s g dave 0 (4-0 COUNT 2 JUSTID");
    d.s("XDEL s 6-0 7-0");
    counted(&mut d, "XAUTOCLAIM s g erin 0 - COUNT 3");
    counted(&mut d, "XAUTOCLAIM s g erin 0 - COUNT 100");
    counted(&mut d, "XAUTOCLAIM s g erin 0 9-0 JUSTID");
    counted(&mut d, "XAUTOCLAIM s g erin 0 + JUSTID");
    info(&mut d, "XINFO CONSUMERS s g");
    state(&mut d, "s");
    pending(&mut d, "XPENDING s g - + 20");
    // 100 pending entries: the attempts limit (COUNT * 10) and the cursor.
    for i in 100..200 {
        d.s(&format!("XADD s {i}-0 f v"));
    }
    d.s("XREADGROUP GROUP g frank STREAMS s >");
    counted(&mut d, "XAUTOCLAIM s g gina 3600000 0 COUNT 3 JUSTID");
    counted(&mut d, "XAUTOCLAIM s g gina 0 0 COUNT 3 JUSTID");
    d.s("COMMAND INFO xclaim xautoclaim xack xpending xreadgroup");
}

#[test]
fn xinfo_groups_consumers_and_full() {
    let mut d = diff_or_skip!("xinfo_groups_consumers_and_full");
    d.s("XGROUP CREATE s g $ MKSTREAM");
    info(&mut d, "XINFO GROUPS s");
    info(&mut d, "XINFO STREAM s FULL");
    info(&mut d, "XINFO STREAM s");
    for i in 1..=5 {
        d.s(&format!("XADD s {i}-0 f v{i}"));
    }
    d.s("XGROUP CREATE s g2 0");
    d.s("XGROUP CREATE s g3 3-0");
    d.s("XGROUP CREATE s g4 3-0 ENTRIESREAD 3");
    d.s("XGROUP CREATE s g5 $");
    info(&mut d, "XINFO GROUPS s");
    d.s("XREADGROUP GROUP g2 a COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP g3 b COUNT 1 STREAMS s >");
    d.s("XREADGROUP GROUP g4 b COUNT 1 STREAMS s >");
    info(&mut d, "XINFO GROUPS s");
    d.s("XDEL s 5-0");
    info(&mut d, "XINFO GROUPS s");
    d.s("XDEL s 1-0");
    info(&mut d, "XINFO GROUPS s");
    d.s("XADD s 6-0 f v");
    d.s("XREADGROUP GROUP g2 a STREAMS s >");
    d.s("XREADGROUP GROUP g3 b COUNT 1 STREAMS s >");
    info(&mut d, "XINFO GROUPS s");
    d.s("XTRIM s MAXLEN 0");
    info(&mut d, "XINFO GROUPS s");
    d.s("XGROUP SETID s g 2-0");
    d.s("XGROUP SETID s g3 0 ENTRIESREAD 0");
    info(&mut d, "XINFO GROUPS s");
    info(&mut d, "XINFO STREAM s FULL");
    info(&mut d, "XINFO STREAM s FULL COUNT 1");
    info(&mut d, "XINFO STREAM s FULL COUNT 0");
    info(&mut d, "XINFO CONSUMERS s g2");
    info(&mut d, "XINFO CONSUMERS s g5");
    d.s("XINFO CONSUMERS s nog");
    d.s("XINFO CONSUMERS nokey g");
    d.s("XINFO CONSUMERS s");
    d.s("XINFO CONSUMERS s g x");
    d.s("XINFO GROUPS nokey");
    d.s("XINFO GROUPS s x");
    d.s("SET str x");
    d.s("XINFO GROUPS str");
    d.s("XINFO CONSUMERS str g");
    d.section("copy, rename, scripts");
    d.s("COPY s s2");
    info(&mut d, "XINFO STREAM s2 FULL");
    d.s("RENAME s2 s3");
    info(&mut d, "XINFO GROUPS s3");
    d.s("XADD s3 9-0 f v");
    d.s("XREADGROUP GROUP g2 a STREAMS s3 >");
    info(&mut d, "XINFO GROUPS s");
    d.cmd(&[
        b"EVAL",
        b"return redis.call('XREADGROUP','GROUP','g2','a','STREAMS',KEYS[1],'0')",
        b"1",
        b"s",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.call('XREADGROUP','GROUP','g2','a','BLOCK','0','STREAMS',KEYS[1],'>')",
        b"1",
        b"s",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.call('xreadgroup','GROUP','g2','a','BLOCK','0','STREAMS',KEYS[1],'>')",
        b"1",
        b"s",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.call('XGROUP','CREATE',KEYS[1],'fromlua','0')",
        b"1",
        b"s",
    ]);
    d.cmd(&[b"EVAL_RO", b"return #redis.call('XGROUP','HELP')", b"0"]);
    d.cmd(&[
        b"EVAL_RO",
        b"return redis.call('XGROUP','DESTROY',KEYS[1],'g2')",
        b"1",
        b"s",
    ]);
    d.s("XREADGROUP GROUP g2 a STREAMS s 18446744073709551615-18446744073709551615");
    d.cmd(&[
        b"EVAL_RO",
        b"return redis.call('XPENDING',KEYS[1],'g2')",
        b"1",
        b"s",
    ]);
    d.cmd(&[
        b"EVAL_RO",
        b"return redis.call('XACK',KEYS[1],'g2','1-0')",
        b"1",
        b"s",
    ]);
    d.s_norm("HELLO 3", Norm::Hello);
    info(&mut d, "XINFO GROUPS s");
    info(&mut d, "XINFO CONSUMERS s g2");
    info(&mut d, "XINFO STREAM s FULL");
}

/// The delivery times of every pending entry fixed by XCLAIM TIME, so that payloads match.
fn fix_times(d: &mut Diff, key: &str, group: &str, owners: &[(&str, &str)]) {
    for (consumer, id) in owners {
        d.s(&format!(
            "XCLAIM {key} {group} {consumer} 0 {id} TIME 1700000000000 RETRYCOUNT 3 JUSTID"
        ));
    }
}

#[test]
fn dump_restore_and_reload_keep_groups() {
    let mut d = diff_or_skip!("dump_restore_and_reload_keep_groups");
    for i in 1..=5 {
        d.s(&format!("XADD s {i}-0 f v{i}"));
    }
    d.s("XGROUP CREATE s g 0");
    d.s("XGROUP CREATE s h 2-0 ENTRIESREAD 2");
    d.s("XGROUP CREATE s empty $");
    d.s("XREADGROUP GROUP g alice COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP g bob COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP h carol STREAMS s >");
    d.s("XGROUP CREATECONSUMER s g idle");
    d.s("XDEL s 2-0");
    fix_times(
        &mut d,
        "s",
        "g",
        &[
            ("alice", "1-0"),
            ("alice", "2-0"),
            ("bob", "3-0"),
            ("bob", "4-0"),
        ],
    );
    fix_times(
        &mut d,
        "s",
        "h",
        &[("carol", "3-0"), ("carol", "4-0"), ("carol", "5-0")],
    );
    state(&mut d, "s");

    d.section("redis payload restored and dumped again");
    let raw = d.targets[0].conns[0].cmd(&[b"DUMP", b"s"]);
    let payload = resp_parse(&raw)
        .as_bytes()
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    assert!(!payload.is_empty(), "redis gave no DUMP payload");
    d.cmd(&[b"RESTORE", b"copy", b"0", &payload]);
    state(&mut d, "copy");
    // Seen-times travel in the payload: the copy dumps to the same bytes everywhere.
    d.s("DUMP copy");
    d.cmd(&[b"RESTORE", b"copy", b"0", &payload]);
    d.cmd(&[b"RESTORE", b"copy", b"0", &payload, b"REPLACE"]);
    // Each Tessera's own payload, restored into Redis, dumps to the same bytes.
    for i in 1..d.targets.len() {
        let raw = d.targets[i].conns[0].cmd(&[b"DUMP", b"copy"]);
        let tp = resp_parse(&raw)
            .as_bytes()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        assert_eq!(
            tp, payload,
            "{}: DUMP after RESTORE differs",
            d.targets[i].name
        );
        let r = &mut d.targets[0].conns[0];
        r.cmd(&[b"DEL", b"back"]);
        let ok = r.cmd(&[b"RESTORE", b"back", b"0", &tp]);
        assert_eq!(ok, b"+OK\r\n".to_vec());
    }

    d.section("debug reload");
    d.s("DEBUG RELOAD");
    state(&mut d, "s");
    state(&mut d, "copy");
    d.s("DUMP copy");
    pending(&mut d, "XPENDING s g - + 10");
    info(&mut d, "XINFO CONSUMERS s g");
    d.s("XREADGROUP GROUP g alice STREAMS s 0");
    d.s("XREADGROUP GROUP g alice STREAMS s >");
}

#[test]
fn keyspace_events_and_watch() {
    let mut d = diff_or_skip!("keyspace_events_and_watch");
    d.s("CONFIG SET notify-keyspace-events KEA");
    let sub = d.subscribe_keyspace();
    d.s("XGROUP CREATE s g $ MKSTREAM");
    d.s("XGROUP CREATE s g $ MKSTREAM");
    d.s("XADD s 1-0 f v");
    d.s("XADD s 2-0 f v");
    d.s("XGROUP CREATECONSUMER s g c");
    d.s("XGROUP CREATECONSUMER s g c");
    d.s("XGROUP SETID s g 0");
    d.s("XREADGROUP GROUP g c2 STREAMS s >");
    d.s("XREADGROUP GROUP g c2 STREAMS s >");
    d.s("XREADGROUP GROUP g c3 STREAMS s 0");
    d.s("XCLAIM s g c4 0 1-0");
    d.s("XAUTOCLAIM s g c5 0 0");
    d.s("XACK s g 1-0");
    d.s("XGROUP DELCONSUMER s g c");
    d.s("XGROUP DELCONSUMER s g nobody");
    d.s("XGROUP DESTROY s g");
    d.s("XGROUP DESTROY s g");
    d.compare_notifications(sub, "stream group events");

    d.section("watch");
    d.s("XGROUP CREATE s g 0");
    let other = d.open_conn();
    for line in [
        "XGROUP CREATECONSUMER s g zed",
        "XREADGROUP GROUP g zed STREAMS s >",
        "XACK s g 1-0",
        "XGROUP SETID s g 0",
        "XACK s g 9-0",
        "XREADGROUP GROUP g zed STREAMS s 0",
        "XPENDING s g",
    ] {
        d.use_conn(0);
        d.s("WATCH s");
        d.s("MULTI");
        d.s("PING");
        d.use_conn(other);
        d.s(line);
        d.use_conn(0);
        d.s("EXEC");
    }
    d.section("multi");
    d.s("MULTI");
    d.s("XREADGROUP GROUP g zed BLOCK 0 STREAMS s >");
    d.s("XREADGROUP GROUP g zed BLOCK 0 STREAMS s 0");
    d.s("EXEC");
}

fn random_id(rng: &mut SmallRng) -> String {
    match rng.gen_range(0..10) {
        0 => "-".into(),
        1 => "+".into(),
        2 => "0".into(),
        _ => format!("{}-{}", rng.gen_range(1..30), rng.gen_range(0..2)),
    }
}

/// A seeded random run over explicit IDs (`DIFF_SEEDS`, `DIFF_STEPS` override).
#[test]
fn random_group_operations() {
    let seeds = env_list("DIFF_SEEDS", &[1u64, 2]);
    let steps: usize = env_or("DIFF_STEPS", 400);
    for seed in seeds {
        let mut d = diff_or_skip!("random_group_operations");
        d.seed = Some(seed);
        let mut rng = SmallRng::seed_from_u64(seed);
        let keys = ["s1", "s2", "s3"];
        let groups = ["g1", "g2"];
        let consumers = ["c1", "c2", "c3"];
        for step in 0..steps {
            d.gen_step = Some(step);
            let k = keys[rng.gen_range(0..keys.len())];
            let g = groups[rng.gen_range(0..groups.len())];
            let c = consumers[rng.gen_range(0..consumers.len())];
            let id = format!("{}-{}", rng.gen_range(1..30), rng.gen_range(0..2));
            match rng.gen_range(0..20) {
                0..=3 => {
                    d.s(&format!("XADD {k} {id} f {step}"));
                }
                4 => {
                    d.s(&format!("XDEL {k} {id} {}", random_id(&mut rng)));
                }
                5 => {
                    let at = random_id(&mut rng);
                    let mk = if rng.gen_bool(0.5) { " MKSTREAM" } else { "" };
                    d.s(&format!("XGROUP CREATE {k} {g} {at}{mk}"));
                }
                6 => {
                    let at = if rng.gen_bool(0.3) {
                        "$".to_string()
                    } else {
                        random_id(&mut rng)
                    };
                    d.s(&format!("XGROUP SETID {k} {g} {at}"));
                }
                7 => {
                    let sub = ["CREATECONSUMER", "DELCONSUMER", "DESTROY"][rng.gen_range(0..3)];
                    if sub == "DESTROY" {
                        if rng.gen_bool(0.2) {
                            d.s(&format!("XGROUP DESTROY {k} {g}"));
                        }
                    } else {
                        d.s(&format!("XGROUP {sub} {k} {g} {c}"));
                    }
                }
                8..=10 => {
                    let from = if rng.gen_bool(0.6) {
                        ">".to_string()
                    } else {
                        random_id(&mut rng)
                    };
                    let noack = if rng.gen_bool(0.1) { " NOACK" } else { "" };
                    let count = rng.gen_range(0..4);
                    if rng.gen_bool(0.3) {
                        let k2 = keys[rng.gen_range(0..keys.len())];
                        d.s(&format!(
                            "XREADGROUP GROUP {g} {c} COUNT {count}{noack} STREAMS {k} {k2} {from} >"
                        ));
                    } else {
                        d.s(&format!(
                            "XREADGROUP GROUP {g} {c} COUNT {count}{noack} STREAMS {k} {from}"
                        ));
                    }
                }
                11 => {
                    d.s(&format!("XACK {k} {g} {id} {}", random_id(&mut rng)));
                }
                12 => {
                    let idle = if rng.gen_bool(0.5) { 0 } else { 3600000 };
                    let opts = [
                        "",
                        " JUSTID",
                        " FORCE",
                        " RETRYCOUNT 5",
                        " TIME 1700000000000",
                        " LASTID 20-0",
                        " IDLE 100 JUSTID",
                    ][rng.gen_range(0..7)];
                    d.s(&format!("XCLAIM {k} {g} {c} {idle} {id}{opts}"));
                }
                13 => {
                    let idle = if rng.gen_bool(0.7) { 0 } else { 3600000 };
                    let count = rng.gen_range(1..5);
                    let justid = if rng.gen_bool(0.5) { " JUSTID" } else { "" };
                    let start = random_id(&mut rng);
                    d.s(&format!(
                        "XAUTOCLAIM {k} {g} {c} {idle} {start} COUNT {count}{justid}"
                    ));
                }
                14 => {
                    let a = random_id(&mut rng);
                    let b = random_id(&mut rng);
                    let who = if rng.gen_bool(0.5) {
                        format!(" {c}")
                    } else {
                        String::new()
                    };
                    pending(&mut d, &format!("XPENDING {k} {g} {a} {b} 5{who}"));
                }
                15 => {
                    d.s(&format!("XPENDING {k} {g}"));
                }
                16 => {
                    info(&mut d, &format!("XINFO GROUPS {k}"));
                }
                17 => {
                    info(&mut d, &format!("XINFO CONSUMERS {k} {g}"));
                }
                18 => {
                    info(&mut d, &format!("XINFO STREAM {k} FULL"));
                }
                _ => {
                    if rng.gen_bool(0.2) {
                        d.s(&format!("XTRIM {k} MAXLEN {}", rng.gen_range(0..4)));
                    } else {
                        d.s(&format!("XLEN {k}"));
                    }
                }
            }
        }
        for k in keys {
            info(&mut d, &format!("XINFO STREAM {k} FULL"));
        }
    }
}

/// Reads a reply on connection `conn` of every target, compared exactly.
fn read_each(d: &mut Diff, conn: usize, what: &str) {
    d.each(what, |t, _| {
        t.conns[conn]
            .try_read_reply_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|e| describe_read_error(&e).into_bytes())
    });
}

/// Sends a command on connection `conn` of every target without reading its reply.
fn send_each(d: &mut Diff, conn: usize, line: &str) {
    let parts = split_cmd(line);
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let frame = encode(&refs);
    for t in &mut d.targets {
        t.conns[conn].send(&frame);
    }
}

/// Waits until every target reports `n` blocked clients.
fn wait_blocked(d: &mut Diff, n: i64) {
    for t in &mut d.targets {
        for _ in 0..500 {
            if info_num(&mut t.conns[0], "clients", "blocked_clients") == n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[test]
fn xreadgroup_block() {
    let mut d = diff_or_skip!("xreadgroup_block");
    d.s("XGROUP CREATE s g $ MKSTREAM");
    d.s("XGROUP CREATE t g $ MKSTREAM");
    let w1 = d.open_conn();
    let w2 = d.open_conn();
    d.section("served by XADD");
    send_each(&mut d, w1, "XREADGROUP GROUP g alice BLOCK 0 STREAMS s >");
    wait_blocked(&mut d, 1);
    d.use_conn(0);
    d.s("XADD s 1-0 f v");
    read_each(&mut d, w1, "served reply");
    pending(&mut d, "XPENDING s g - + 10");
    info(&mut d, "XINFO CONSUMERS s g");

    d.section("two consumers, one entry each");
    send_each(
        &mut d,
        w1,
        "XREADGROUP GROUP g alice COUNT 1 BLOCK 0 STREAMS s >",
    );
    wait_blocked(&mut d, 1);
    send_each(
        &mut d,
        w2,
        "XREADGROUP GROUP g bob COUNT 1 BLOCK 0 STREAMS s >",
    );
    wait_blocked(&mut d, 2);
    d.s("MULTI");
    d.s("XADD s 2-0 f v");
    d.s("XADD s 3-0 f v");
    d.s("EXEC");
    read_each(&mut d, w1, "alice");
    read_each(&mut d, w2, "bob");
    pending(&mut d, "XPENDING s g - + 10");

    d.section("keys on different shards");
    send_each(
        &mut d,
        w1,
        "XREADGROUP GROUP g carol BLOCK 0 STREAMS s t > >",
    );
    wait_blocked(&mut d, 1);
    d.s("XADD t 1-0 f v");
    read_each(&mut d, w1, "carol");
    pending(&mut d, "XPENDING t g - + 10");

    d.section("timeout and NOACK");
    d.use_conn(w1);
    d.s("XREADGROUP GROUP g alice BLOCK 50 STREAMS s >");
    d.s("XREADGROUP GROUP g alice BLOCK 50 NOACK STREAMS s t > >");
    d.use_conn(0);
    send_each(
        &mut d,
        w1,
        "XREADGROUP GROUP g dave NOACK BLOCK 0 STREAMS s >",
    );
    wait_blocked(&mut d, 1);
    d.s("XADD s 4-0 f v");
    read_each(&mut d, w1, "dave noack");
    d.s("XPENDING s g");

    d.section("history does not block");
    d.use_conn(w1);
    d.s("XREADGROUP GROUP g alice BLOCK 0 STREAMS s 0");
    d.s("XREADGROUP GROUP g nobody BLOCK 0 STREAMS s 0");
    d.use_conn(0);

    d.section("unblocked by CLIENT UNBLOCK");
    let id_of = |t: &mut Target, c: usize| -> Vec<u8> {
        let raw = t.conns[c].cmd(&[b"CLIENT", b"ID"]);
        resp_parse(&raw)
            .as_int()
            .unwrap_or(0)
            .to_string()
            .into_bytes()
    };
    // Each server's own id for the connection, by server name (whatever `DIFF_SHARDS` chose).
    let mut ids = std::collections::HashMap::new();
    for t in &mut d.targets {
        let id = id_of(t, w1);
        ids.insert(t.name.clone(), id);
    }
    send_each(&mut d, w1, "XREADGROUP GROUP g erin BLOCK 0 STREAMS s >");
    wait_blocked(&mut d, 1);
    d.each("CLIENT UNBLOCK <w1>", |t, _| {
        let id = ids[&t.name].clone();
        t.conns[0].cmd(&[b"CLIENT", b"UNBLOCK", &id])
    });
    read_each(&mut d, w1, "unblocked (timeout)");

    d.section("group or key deleted while blocked");
    send_each(&mut d, w1, "XREADGROUP GROUP g frank BLOCK 0 STREAMS s >");
    wait_blocked(&mut d, 1);
    d.s("XGROUP DESTROY s g");
    d.s("XADD s 9-0 f v");
    read_each(&mut d, w1, "group destroyed");
    d.s("XGROUP CREATE t g2 $");
    send_each(&mut d, w1, "XREADGROUP GROUP g2 frank BLOCK 0 STREAMS t >");
    wait_blocked(&mut d, 1);
    d.s("DEL t");
    d.s("XADD t 5-0 f v");
    read_each(&mut d, w1, "key deleted");
}

/// Waits until every target has its AOF on and no rewrite running or scheduled.
fn wait_no_rewrite(d: &mut Diff) {
    for t in &mut d.targets {
        for _ in 0..1000 {
            let c = &mut t.conns[0];
            if info_num(c, "persistence", "aof_enabled") == 1
                && info_num(c, "persistence", "aof_rewrite_in_progress") == 0
                && info_num(c, "persistence", "aof_rewrite_scheduled") == 0
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// What the AOF logs for the group commands replays to the same groups and PELs (delivery
/// times and counts included; seen-times are the replay's and are blanked).
#[test]
fn aof_replay_keeps_groups() {
    let mut d = diff_or_skip!("aof_replay_keeps_groups");
    d.s("CONFIG SET appendonly yes");
    wait_no_rewrite(&mut d);
    for i in 1..=6 {
        d.s(&format!("XADD s {i}-0 f v{i}"));
    }
    d.s("XGROUP CREATE s g 0");
    d.s("XGROUP CREATE s h $ ENTRIESREAD 6");
    d.s("XGROUP CREATE other g 0 MKSTREAM");
    d.s("XREADGROUP GROUP g alice COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP g bob COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP g carol NOACK COUNT 1 STREAMS s >");
    d.s("XREADGROUP GROUP g alice STREAMS s 0");
    d.s("XGROUP CREATECONSUMER s g dave");
    d.s("XCLAIM s g dave 0 1-0 TIME 1700000000000 RETRYCOUNT 7");
    d.s("XCLAIM s g erin 0 3-0 IDLE 5000 JUSTID");
    d.s("XCLAIM s g erin 3600000 4-0");
    d.s("XAUTOCLAIM s g frank 0 0 COUNT 1 JUSTID");
    d.s("XACK s g 2-0");
    d.s("XDEL s 4-0");
    d.s("XAUTOCLAIM s g frank 0 0");
    d.s("XGROUP DELCONSUMER s g bob");
    d.s("XGROUP SETID s h 3-0 ENTRIESREAD 3");
    d.s("XGROUP CREATE s gone 0");
    d.s("XGROUP DESTROY s gone");
    // Fixed delivery times for what the reads above delivered, so that they compare exactly.
    fix_times(&mut d, "s", "g", &[("alice", "1-0"), ("erin", "3-0")]);
    state(&mut d, "s");
    pending(&mut d, "XPENDING s g - + 10");
    d.s("DEBUG LOADAOF");
    state(&mut d, "s");
    info(&mut d, "XINFO STREAM other FULL");
    pending(&mut d, "XPENDING s g - + 10");
    d.s("XREADGROUP GROUP g zed STREAMS s >");
    d.s("XADD s 7-0 f v");
    d.s("XREADGROUP GROUP g zed STREAMS s >");
    d.s("XREADGROUP GROUP h zed STREAMS s >");
    info(&mut d, "XINFO GROUPS s");
}

/// A restart keeps groups, consumers (seen-times included) and PELs, from a snapshot and from
/// the AOF, also when the shard count changes. Tessera alone: compared with itself before the
/// restart (XINFO STREAM FULL holds absolute times, so everything compares exactly for the
/// snapshot; the AOF's replay sets seen-times anew).
#[test]
fn restart_keeps_groups() {
    if start_redis().is_none() {
        return;
    }
    for (aof, shards_after) in [(false, 4), (true, 1)] {
        let dir = std::env::temp_dir().join(format!(
            "tessera-groups-restart-{}-{}",
            std::process::id(),
            aof
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display().to_string();
        let mut args = vec!["--dir", d.as_str(), "--save", ""];
        if aof {
            args.extend_from_slice(&["--appendonly", "yes"]);
        }
        let mut s = start_tessera(1, &args);
        let mut c = s.conn();
        for line in [
            "XADD s 1-0 f v",
            "XADD s 2-0 f v",
            "XADD s 3-0 f v",
            "XADD t 1-0 f v",
            "XGROUP CREATE s g 0",
            "XGROUP CREATE s h $",
            "XGROUP CREATE t g 0",
            "XREADGROUP GROUP g alice COUNT 2 STREAMS s >",
            "XREADGROUP GROUP g bob STREAMS s t > >",
            "XGROUP CREATECONSUMER s h idle",
            "XCLAIM s g carol 0 1-0 TIME 1700000000000 RETRYCOUNT 4",
            "XCLAIM s g bob 0 2-0 3-0 TIME 1700000000001 RETRYCOUNT 2",
            "XCLAIM t g bob 0 1-0 TIME 1700000000002 RETRYCOUNT 1",
        ] {
            let r = c.cmd_str(line);
            assert!(
                !r.starts_with(b"-"),
                "{line}: {}",
                String::from_utf8_lossy(&r)
            );
        }
        let before: Vec<Vec<u8>> = ["XINFO STREAM s FULL", "XINFO STREAM t FULL"]
            .iter()
            .map(|l| {
                let v = resp_parse(&c.cmd_str(l));
                render(&if aof { blank(v, Times::Info) } else { v }).into_bytes()
            })
            .collect();
        c.send(if aof {
            b"SHUTDOWN NOSAVE\r\n"
        } else {
            b"SHUTDOWN SAVE\r\n"
        });
        assert!(s.wait_exit(std::time::Duration::from_secs(10)));
        drop(s);
        let s = start_tessera(shards_after, &args);
        let mut c = s.conn();
        let after: Vec<Vec<u8>> = ["XINFO STREAM s FULL", "XINFO STREAM t FULL"]
            .iter()
            .map(|l| {
                let v = resp_parse(&c.cmd_str(l));
                render(&if aof { blank(v, Times::Info) } else { v }).into_bytes()
            })
            .collect();
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(
                String::from_utf8_lossy(b),
                String::from_utf8_lossy(a),
                "aof={aof}"
            );
        }
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A blocked XREADGROUP ends as Redis ends it: over keys of several shards (t and q with 4
/// shards), with UNBLOCKED when a key is deleted or holds another type and NOGROUP when its
/// group is destroyed, and once blocked it reads with the default COUNT of a blocked read; on
/// one key, also when it waits behind a blocked XREAD (waiters of a key are served each by
/// their own type: a BLPOP behind the XREAD is served by an LPUSH).
#[test]
fn xreadgroup_block_ends_like_redis() {
    let mut d = diff_or_skip!("xreadgroup_block_ends_like_redis");
    let w1 = d.open_conn();
    d.use_conn(0);
    // Fresh streams t and q with group g, and a client blocked reading both.
    let block_on_t_and_q = |d: &mut Diff| {
        d.s("DEL t q");
        d.s("XGROUP CREATE t g $ MKSTREAM");
        d.s("XGROUP CREATE q g $ MKSTREAM");
        send_each(d, w1, "XREADGROUP GROUP g alice BLOCK 0 STREAMS t q > >");
        wait_blocked(d, 1);
        d.use_conn(0);
    };
    for (what, end) in [
        ("key deleted", "DEL q"),
        ("group destroyed", "XGROUP DESTROY t g"),
        ("another type", "SET q x"),
    ] {
        d.section(what);
        block_on_t_and_q(&mut d);
        d.s(end);
        read_each(&mut d, w1, what);
        d.s("INFO errorstats");
    }
    d.section("behind a blocked XREAD, then a BLPOP behind it");
    let w2 = d.open_conn();
    let w3 = d.open_conn();
    d.use_conn(0);
    d.s("DEL t q");
    d.s("XGROUP CREATE t g $ MKSTREAM");
    send_each(&mut d, w1, "XREAD BLOCK 0 STREAMS t $");
    wait_blocked(&mut d, 1);
    send_each(&mut d, w2, "XREADGROUP GROUP g alice BLOCK 0 STREAMS t >");
    wait_blocked(&mut d, 2);
    d.use_conn(0);
    d.s("DEL t");
    read_each(&mut d, w2, "group reader ended");
    send_each(&mut d, w3, "BLPOP t 0");
    wait_blocked(&mut d, 2);
    d.use_conn(0);
    d.s("LPUSH t a");
    read_each(&mut d, w3, "list reader served");
    d.s("DEL t");
    d.s("XADD t 1-0 f v");
    read_each(&mut d, w1, "stream reader served");
    d.section("served after blocking");
    block_on_t_and_q(&mut d);
    d.s("MULTI");
    for i in 1..=3 {
        d.s(&format!("XADD q {i}-0 f v"));
    }
    d.s("EXEC");
    read_each(&mut d, w1, "served");
    d.s("XPENDING q g");
}

/// A blocked XREADGROUP over keys of several shards stays blocked: its retries note the
/// consumer's seen-time, a write to its keys, which once woke the waiter again at once, so it
/// spun through retries and was hardly ever seen blocked (INFO `blocked_clients` 0 most of the
/// time, no `b` in CLIENT LIST). Reads by others change nothing it waits for either; an XADD
/// to either key serves it.
#[test]
fn cross_shard_blocked_xreadgroup_stays_blocked() {
    let s = start_tessera(4, &[]);
    let mut c = s.conn();
    let mut w = s.conn();
    // With 4 shards, t and q live on different shards (see `group_workload`).
    for key in ["t", "q"] {
        ok(&mut c, &format!("XGROUP CREATE {key} g $ MKSTREAM"));
    }
    let still_blocked = |c: &mut RawConn, what: &str| {
        for i in 0..40 {
            assert_eq!(
                info_num(c, "clients", "blocked_clients"),
                1,
                "{what}: sample {i}"
            );
            let list = String::from_utf8_lossy(&c.cmd_str("CLIENT LIST")).to_string();
            assert!(
                list.lines().any(|l| l.contains("flags=b ")),
                "{what}: sample {i}: {list}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    block_on(
        &mut c,
        &mut w,
        "XREADGROUP GROUP g w1 BLOCK 0 STREAMS t q > >",
    );
    still_blocked(&mut c, "waiting");
    // Reads that deliver nothing (a consumer created, seen-times noted) and acks.
    ok(&mut c, "XREADGROUP GROUP g other STREAMS t >");
    ok(&mut c, "XREADGROUP GROUP g other STREAMS q >");
    ok(&mut c, "XACK q g 1-0");
    still_blocked(&mut c, "after reads by others");
    assert!(w.read_for(std::time::Duration::from_millis(50)).is_empty());
    ok(&mut c, "XADD t 1-0 f v");
    assert_eq!(
        render(&resp_parse(&w.read_reply())),
        render(&resp_parse(
            b"*1\r\n*2\r\n$1\r\nt\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        ))
    );
    block_on(
        &mut c,
        &mut w,
        "XREADGROUP GROUP g w1 BLOCK 0 STREAMS t q > >",
    );
    still_blocked(&mut c, "second wait");
    ok(&mut c, "XADD q 1-0 f v");
    assert!(w.read_reply().starts_with(b"*1\r\n*2\r\n$1\r\nq"));
}

// ----- What the AOF logs for the group commands -----

/// Runs `line` on `c`, failing the test on an error reply.
fn ok(c: &mut RawConn, line: &str) -> Vec<u8> {
    let r = c.cmd_str(line);
    assert!(
        !r.starts_with(b"-"),
        "{line}: {}",
        String::from_utf8_lossy(&r)
    );
    r
}

/// Sends `line` on `w`, where it blocks; waits until it does.
fn block_on(c: &mut RawConn, w: &mut RawConn, line: &str) {
    let parts = split_cmd(line);
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    w.send(&encode(&refs));
    for _ in 0..1000 {
        if info_num(c, "clients", "blocked_clients") == 1 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let got = w.read_for(std::time::Duration::from_millis(200));
    panic!(
        "{line} never blocked; it answered {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// The consumers of [`group_workload`], whose seen-times a replay sets anew.
const WORKLOAD_CONSUMERS: &[&str] = &[
    "xander", "alice", "bob", "carol", "newbie", "dave", "erin", "frank", "gina", "hank", "ivy",
    "zed", "blocker", "quiet", "both",
];

/// A consumer-group workload over `s` (one shard) and `t`, `q` (other shards than `s` and
/// each other with 4 shards): reads of new entries by several consumers (NOACK too), history
/// reads, XCLAIM (JUSTID, FORCE, IDLE, TIME/RETRYCOUNT, LASTID, deleted IDs), XAUTOCLAIM
/// (deleted IDs too), XACK, consumers created and deleted, blocked reads served by XADD and
/// reads over keys of several shards. `t` and `q` lose no entries: what runs over keys of
/// several shards logs their whole state, which rebuilds a stream from its live entries.
fn group_workload(c: &mut RawConn, w: &mut RawConn) {
    for key in ["s", "t", "q"] {
        ok(c, &format!("XGROUP CREATE {key} g $ MKSTREAM"));
    }
    for i in 1..=30 {
        ok(c, &format!("XADD s {i}-0 f v{i}"));
    }
    for i in 1..=5 {
        ok(c, &format!("XADD t {i}-0 f v{i}"));
        ok(c, &format!("XADD q {i}-0 f v{i}"));
    }
    for line in [
        "XREADGROUP GROUP g xander COUNT 2 STREAMS t q > >",
        "XREADGROUP GROUP g alice COUNT 5 STREAMS s >",
        "XREADGROUP GROUP g bob COUNT 5 STREAMS s >",
        "XREADGROUP GROUP g carol NOACK COUNT 3 STREAMS s >",
        "XREADGROUP GROUP g alice STREAMS s 0",
        "XREADGROUP GROUP g newbie STREAMS s 0",
        "XREADGROUP GROUP g alice COUNT 2 STREAMS s 3-0",
        "XREADGROUP GROUP g xander STREAMS t q > >",
        "XREADGROUP GROUP g xander STREAMS t q 0 0",
        "XCLAIM s g dave 0 3-0 4 JUSTID",
        "XCLAIM s g dave 0 8-0 TIME 1700000000000 RETRYCOUNT 9",
        "XCLAIM s g erin 0 20-0 FORCE",
        "XCLAIM s g erin 0 25-0 FORCE JUSTID IDLE 1000",
        "XDEL s 5-0 9-0",
        "XCLAIM s g frank 0 5-0 6-0",
        "XCLAIM s g gina 3600000 7-0 LASTID 40-0",
        "XADD s 41-0 f v41",
        "XADD s 42-0 f v42",
        "XREADGROUP GROUP g alice COUNT 1 STREAMS s >",
        "XAUTOCLAIM s g hank 0 0 COUNT 4",
        "XDEL s 10-0 41-0",
        "XAUTOCLAIM s g ivy 0 0 COUNT 100 JUSTID",
        "XACK s g 1-0 2-0",
        "XGROUP CREATECONSUMER s g zed",
        "XGROUP DELCONSUMER s g newbie",
        "MULTI",
        "XREADGROUP GROUP g alice STREAMS s >",
        "XADD s 43-0 f v43",
        "XREADGROUP GROUP g bob NOACK STREAMS s >",
        "EXEC",
    ] {
        ok(c, line);
    }
    block_on(c, w, "XREADGROUP GROUP g blocker BLOCK 0 STREAMS s >");
    ok(c, "XADD s 50-0 f v50");
    assert!(w.read_reply().starts_with(b"*1"));
    block_on(
        c,
        w,
        "XREADGROUP GROUP g quiet NOACK COUNT 10 BLOCK 0 STREAMS s >",
    );
    ok(c, "XADD s 51-0 f v51");
    assert!(w.read_reply().starts_with(b"*1"));
    block_on(c, w, "XREADGROUP GROUP g both BLOCK 0 STREAMS t q > >");
    ok(c, "XADD q 6-0 f v6");
    assert!(w.read_reply().starts_with(b"*1"));
}

/// A DUMP payload with the consumers' seen-times (the 8 bytes after each consumer's name)
/// and the checksum zeroed.
fn mask_seen_times(mut payload: Vec<u8>, consumers: &[&str]) -> Vec<u8> {
    for name in consumers {
        let mut pat = vec![name.len() as u8];
        pat.extend_from_slice(name.as_bytes());
        let mut from = 0;
        while let Some(at) = payload[from..]
            .windows(pat.len())
            .position(|w| w == pat.as_slice())
        {
            let seen = from + at + pat.len();
            let end = (seen + 8).min(payload.len());
            payload[seen..end].fill(0);
            from = end;
        }
    }
    let n = payload.len().saturating_sub(8);
    payload[n..].fill(0);
    payload
}

/// What a restart from the AOF must keep of stream `key`: its DUMP payload and XINFO STREAM
/// FULL, both without the consumers' seen-times.
fn group_state(c: &mut RawConn, key: &str) -> String {
    let dump = resp_parse(&c.cmd(&[b"DUMP", key.as_bytes()]));
    let payload = dump.as_bytes().expect("a DUMP payload").to_vec();
    let full = resp_parse(&c.cmd_str(&format!("XINFO STREAM {key} FULL COUNT 0")));
    format!(
        "DUMP {key}: {}\nXINFO STREAM {key} FULL COUNT 0: {}",
        escape(&mask_seen_times(payload, WORKLOAD_CONSUMERS)),
        render(&blank(full, Times::Seen))
    )
}

/// The group commands log what they changed (XCLAIM with TIME and RETRYCOUNT, XGROUP SETID,
/// CREATECONSUMER), and a restart from those records, with the same or another shard count,
/// rebuilds the groups exactly: DUMP payloads and XINFO STREAM FULL (delivery times and counts
/// included) are equal but for the consumers' seen-times, which the replay sets. Tessera alone:
/// Redis 7.0's own AOF loses some of this state (see `stream_group_family`).
#[test]
fn aof_restart_rebuilds_groups_exactly() {
    for before in [1, 4] {
        let dir = std::env::temp_dir().join(format!(
            "tessera-groups-aof-{}-{before}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display().to_string();
        let aof = [
            "--save",
            "",
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            "no",
        ];
        let mut args = vec!["--dir", d.as_str()];
        args.extend_from_slice(&aof);
        let mut s = start_tessera(before, &args);
        let mut c = s.conn();
        let mut w = s.conn();
        group_workload(&mut c, &mut w);
        let expected: Vec<String> = ["s", "t", "q"]
            .iter()
            .map(|k| group_state(&mut c, k))
            .collect();
        c.send(b"SHUTDOWN NOSAVE\r\n");
        assert!(s.wait_exit(std::time::Duration::from_secs(10)));
        drop(s);
        for after in [1, 4] {
            let copy = dir.with_extension(format!("after{after}"));
            let _ = std::fs::remove_dir_all(&copy);
            copy_tree(&dir, &copy);
            let d = copy.display().to_string();
            let mut args = vec!["--dir", d.as_str()];
            args.extend_from_slice(&aof);
            let s = start_tessera(after, &args);
            let mut c = s.conn();
            for (key, want) in ["s", "t", "q"].iter().zip(&expected) {
                let got = group_state(&mut c, key);
                assert_eq!(want, &got, "{key}: {before} shard(s), restarted on {after}");
            }
            drop(s);
            let _ = std::fs::remove_dir_all(&copy);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The commands of the current incremental AOF files in `dir` (as the manifest lists them,
/// each shard's in order) that name `key`, without SELECT, MULTI/EXEC and Tessera's unit
/// markers, and with the delivery times of XCLAIM records blanked (each server has its own
/// clock). A Tessera-only record is left out: the XGROUP SETID that follows the claims of an
/// acknowledging read to restore the group's entries-read counter, which replaying Redis
/// 7.0's records loses (an XGROUP SETID right after an XCLAIM with the same LASTID; Redis
/// writes its SETID only for a position no claim carried).
fn aof_records(dir: &std::path::Path, key: &str) -> Vec<u8> {
    let aof_dir = dir.join("appendonlydir");
    let manifest = std::fs::read_to_string(aof_dir.join("appendonly.aof.manifest")).unwrap();
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    for line in manifest.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"file") || !line.contains(" type i") {
            continue;
        }
        let buf = std::fs::read(aof_dir.join(words[1])).unwrap();
        let mut at = 0;
        while at < buf.len() && buf[at] != 0 {
            let (v, next) = parse_frame(&buf, at).unwrap().expect("whole records");
            at = next;
            let args: Vec<Vec<u8>> = v
                .items()
                .unwrap()
                .iter()
                .map(|a| a.as_bytes().unwrap().to_vec())
                .collect();
            let name = args[0].to_ascii_uppercase();
            let k = if name == b"XGROUP" { 2 } else { 1 };
            if args.get(k).map(|a| &a[..]) == Some(key.as_bytes()) {
                cmds.push(args);
            }
        }
    }
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    for mut args in cmds {
        if args[0] == b"XGROUP" && args[1] == b"SETID" {
            if let Some(prev) = out.last() {
                if prev[0] == b"XCLAIM"
                    && prev[3..].ends_with(&[b"LASTID".to_vec(), args[4].clone()])
                {
                    continue;
                }
            }
        }
        if args[0] == b"XCLAIM" {
            if let Some(i) = args.iter().position(|a| a == b"TIME") {
                if args[i + 1] != b"1700000000000" {
                    args[i + 1] = b"<time>".to_vec();
                }
            }
        }
        out.push(args);
    }
    let mut text = Vec::new();
    for args in out {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        text.extend_from_slice(render_cmd(&refs).as_bytes());
        text.push(b'\n');
    }
    text
}

/// For the same commands, Tessera's AOF holds the records Redis 7.0 writes for reads of new
/// entries (NOACK too, blocked ones served by XADD), XCLAIM (its options, deleted IDs, LASTID)
/// and XAUTOCLAIM (deleted IDs), with what it adds for exact replay left out (see
/// `aof_records`). History reads are not in it: Redis 7.0 logs nothing for them, Tessera logs
/// the delivery counts they bump (`aof_restart_rebuilds_groups_exactly` replays those).
#[test]
fn aof_records_match_redis() {
    let mut d = diff_or_skip!("aof_records_match_redis");
    d.s("CONFIG SET appendonly yes");
    wait_no_rewrite(&mut d);
    for i in 1..=8 {
        d.s(&format!("XADD s {i}-0 f v{i}"));
    }
    d.s("XGROUP CREATE s g 0");
    d.s("XREADGROUP GROUP g alice COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP g bob COUNT 2 STREAMS s >");
    d.s("XREADGROUP GROUP g carol NOACK COUNT 1 STREAMS s >");
    d.s("XREADGROUP GROUP g carol NOACK COUNT 1 STREAMS s >");
    d.s("XGROUP CREATECONSUMER s g dave");
    d.s("XCLAIM s g dave 0 1-0 TIME 1700000000000 RETRYCOUNT 7");
    d.s("XCLAIM s g erin 0 3 IDLE 5000 JUSTID");
    d.s("XCLAIM s g erin 3600000 4-0");
    d.s("XCLAIM s g frank 0 7-0 FORCE");
    d.s("XDEL s 2-0");
    d.s("XCLAIM s g gina 0 2-0");
    d.s("XCLAIM s g hal 3600000 1-0 LASTID 50-0");
    d.s("XCLAIM s g hal 0 1-0 LASTID 60-0");
    d.s("XADD s 70-0 f v");
    d.s("XREADGROUP GROUP g ivy STREAMS s >");
    d.s("XREADGROUP GROUP g ivy STREAMS s >");
    d.s("XDEL s 3-0");
    d.s("XAUTOCLAIM s g jack 0 0 COUNT 3");
    d.s("XAUTOCLAIM s g kate 0 0 JUSTID");
    d.s("XAUTOCLAIM s g lee 3600000 0");
    d.s("XACK s g 1-0");
    let w = d.open_conn();
    send_each(&mut d, w, "XREADGROUP GROUP g mo BLOCK 0 STREAMS s >");
    wait_blocked(&mut d, 1);
    d.s("XADD s 80-0 f v");
    read_each(&mut d, w, "mo served");
    send_each(
        &mut d,
        w,
        "XREADGROUP GROUP g ned NOACK BLOCK 0 STREAMS s >",
    );
    wait_blocked(&mut d, 1);
    d.s("XADD s 90-0 f v");
    read_each(&mut d, w, "ned served");
    send_each(
        &mut d,
        w,
        "XREADGROUP GROUP g oz COUNT 5 BLOCK 0 STREAMS s >",
    );
    wait_blocked(&mut d, 1);
    d.s("MULTI");
    d.s("XADD s 100-0 f v");
    d.s("XADD s 101-0 f v");
    d.s("EXEC");
    read_each(&mut d, w, "oz served");
    d.each("the AOF's records of s", |t, _| {
        aof_records(t.server.dir(), "s")
    });
}

/// Reading a large stream through a group writes per read what the read did (one XCLAIM per
/// entry delivered, the group's position), never the stream.
#[test]
fn aof_grows_by_the_reads_not_the_stream() {
    let dir = std::env::temp_dir().join(format!("tessera-groups-aof-size-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let s = start_tessera(
        1,
        &["--dir", d.as_str(), "--save", "", "--appendonly", "yes"],
    );
    let mut c = s.conn();
    let value = "x".repeat(100);
    for chunk in 0..10 {
        let mut frames = Vec::new();
        for i in 1..=1000 {
            let id = format!("{}-1", chunk * 1000 + i);
            frames.extend(encode(&[
                b"XADD",
                b"s",
                id.as_bytes(),
                b"f",
                value.as_bytes(),
            ]));
        }
        c.send(&frames);
        for _ in 0..1000 {
            assert!(!c.read_reply().starts_with(b"-"));
        }
    }
    ok(&mut c, "XGROUP CREATE s g 0");
    let aof_size = || -> u64 {
        std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".incr.aof"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let stream_size = aof_size();
    assert!(
        stream_size > 1_000_000,
        "the XADDs logged {stream_size} bytes"
    );
    for read in 0..100u64 {
        let before = aof_size();
        let r = ok(&mut c, "XREADGROUP GROUP g c COUNT 100 STREAMS s >");
        assert!(r.starts_with(b"*1"));
        let grew = aof_size() - before;
        // What the read logs: an XCLAIM per entry (its TIME has 13 digits) and the group's
        // position, plus the markers making them one unit.
        let mut records = 0u64;
        for i in read * 100 + 1..=read * 100 + 100 {
            let id = format!("{i}-1");
            records += encode(&[
                b"XCLAIM",
                b"s",
                b"g",
                b"c",
                b"0",
                id.as_bytes(),
                b"TIME",
                b"1234567890123",
                b"RETRYCOUNT",
                b"1",
                b"FORCE",
                b"JUSTID",
                b"LASTID",
                id.as_bytes(),
            ])
            .len() as u64;
        }
        let last = format!("{}-1", read * 100 + 100);
        let read_count = (read * 100 + 100).to_string();
        records += encode(&[
            b"XGROUP",
            b"SETID",
            b"s",
            b"g",
            last.as_bytes(),
            b"ENTRIESREAD",
            read_count.as_bytes(),
        ])
        .len() as u64;
        assert!(
            (records..records + 256).contains(&grew),
            "read {read}: the AOF grew by {grew} bytes for {records} bytes of records \
             (the stream is {stream_size} bytes)"
        );
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

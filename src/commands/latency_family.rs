//! LATENCY: the latency monitor's events (LATEST, HISTORY, GRAPH, DOCTOR, RESET) and the
//! per-command latency histograms (HISTOGRAM).
//!
//! Each shard keeps its own events (`ShardState::latency_events`) and histograms; this module
//! gathers them from every shard by message and merges them (`crate::shard::latency`). It runs
//! at connection level and never touches a shard's state except through `run_on_all`.

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::text;
use super::{cmd, flags::*, sub, CommandSpec, Exec, SubCommand, NO_KEYS};
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::server::globals::unix_ms;
use crate::shard::latency::{merge_events, merge_exports, EventRecord, Sample};

pub fn specs() -> Vec<CommandSpec> {
    vec![cmd(
        "latency",
        -2,
        ADMIN | LOADING | STALE,
        NO_KEYS,
        "server",
        "2.8.13",
        "Depends on subcommand.",
        "Reads the latency monitor and the per-command latency histograms.",
        Exec::Conn(latency),
    )
    .subcommands(LATENCY_SUBCOMMANDS)]
}

/// Tips of the subcommands that read every shard's latency data.
const READ_TIPS: &[&str] = &[
    "nondeterministic_output",
    "request_policy:all_nodes",
    "response_policy:special",
];

const LATENCY_SUBCOMMANDS: &[SubCommand] = &[
    sub("latency|help", 2).flags(LOADING | STALE).docs(
        "2.8.13",
        "O(1)",
        "Lists the LATENCY subcommands.",
    ),
    sub("latency|latest", 2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(READ_TIPS)
        .docs(
            "2.8.13",
            "O(1)",
            "Each event's latest and worst latency spike.",
        ),
    sub("latency|doctor", 2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(READ_TIPS)
        .docs(
            "2.8.13",
            "O(1)",
            "A readable report on the latency spikes seen.",
        ),
    sub("latency|histogram", -2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(READ_TIPS)
        .docs(
            "7.0.0",
            "O(N) where N is the number of commands with latency information being retrieved.",
            "Each command's latencies as a cumulative distribution.",
        ),
    sub("latency|reset", -2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .docs(
            "2.8.13",
            "O(1)",
            "Forgets the spikes of some or all events.",
        ),
    sub("latency|graph", 3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(READ_TIPS)
        .docs(
            "2.8.13",
            "O(1)",
            "An ASCII graph of an event's latency spikes.",
        ),
    sub("latency|history", 3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(READ_TIPS)
        .docs(
            "2.8.13",
            "O(1)",
            "An event's latency spikes, one per second.",
        ),
];

const LATENCY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

/// LATENCY HELP's reply (also from scripts).
pub fn reply_help(r: &mut crate::protocol::Reply) {
    super::reply_help(r, "latency", LATENCY_HELP)
}

/// Columns of LATENCY GRAPH's sparkline (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLS: usize = 80;

fn latency(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        // The arity of each subcommand was checked before it ran.
        let sub = text(&a[1]).to_ascii_lowercase();
        match sub.as_str() {
            "help" => reply_help(&mut c.reply()),
            "histogram" => histogram(c, &a[2..]).await,
            "reset" => {
                let names: Vec<Bytes> = a[2..].to_vec();
                let done = c
                    .shard
                    .run_on_all(move |sh| {
                        let mut st = sh.state.borrow_mut();
                        if names.is_empty() {
                            st.latency_events.reset(None)
                        } else {
                            names
                                .iter()
                                .flat_map(|n| st.latency_events.reset(Some(n)))
                                .collect()
                        }
                    })
                    .await;
                match done {
                    Ok(parts) => {
                        // An event counts once, however many shards had it.
                        let mut names: Vec<&str> = parts.into_iter().flatten().collect();
                        names.sort_unstable();
                        names.dedup();
                        c.reply().int(names.len() as i64)
                    }
                    Err(_) => c.reply().error(ERR_SHARD_GONE),
                }
            }
            _ => {
                let events = match c
                    .shard
                    .run_on_all(|sh| sh.state.borrow().latency_events.export())
                    .await
                {
                    Ok(parts) => merge_events(parts),
                    Err(_) => return c.reply().error(ERR_SHARD_GONE),
                };
                let now = unix_ms() / 1000;
                let find = |name: &[u8]| events.iter().find(|e| e.name.as_bytes() == name);
                match sub.as_str() {
                    "latest" => {
                        let mut r = c.reply();
                        r.array(events.len());
                        for e in &events {
                            let last = e.samples.last().copied().unwrap_or_default();
                            r.array(4);
                            r.bulk(e.name.as_bytes());
                            r.int(last.time as i64);
                            r.int(last.latency as i64);
                            r.int(e.max as i64);
                        }
                    }
                    "history" => {
                        let samples = find(&a[2]).map(|e| e.samples.as_slice()).unwrap_or(&[]);
                        let mut r = c.reply();
                        r.array(samples.len());
                        for s in samples {
                            r.array(2);
                            r.int(s.time as i64);
                            r.int(s.latency as i64);
                        }
                    }
                    "graph" => match find(&a[2]) {
                        Some(e) => {
                            let graph = graph(e, now);
                            c.reply().verbatim("txt", graph.as_bytes());
                        }
                        None => c.reply().error(&format!(
                            "ERR No samples available for event '{}'",
                            text(&a[2])
                        )),
                    },
                    "doctor" => {
                        let (threshold, slower_than, slowlog_len) = {
                            let cfg = &c.shard.state.borrow().config;
                            (
                                cfg.latency_monitor_threshold,
                                cfg.slowlog_log_slower_than,
                                cfg.slowlog_max_len,
                            )
                        };
                        let report = doctor(&events, now, threshold, slower_than, slowlog_len);
                        c.reply().verbatim("txt", report.as_bytes());
                    }
                    // Unknown subcommands were refused before the command ran.
                    _ => c
                        .reply()
                        .error(&super::subcommand_syntax_error(&a[1], "latency")),
                }
            }
        }
    })
}

/// LATENCY HISTOGRAM [command ...]: each named command (or, with none, every command) that has
/// a histogram, with its calls and cumulative distribution; a container named alone stands for
/// its subcommands, and an unknown name is skipped, as in Redis.
async fn histogram(c: &mut Conn, names: &[Bytes]) {
    let reports = match c
        .shard
        .run_on_all(|sh| sh.state.borrow().latency.export())
        .await
    {
        Ok(r) => r,
        Err(_) => return c.reply().error(ERR_SHARD_GONE),
    };
    let stat_names = super::stat_names();
    let by_slot = merge_exports(stat_names.len(), &reports);
    let slot_of = |name: &str| stat_names.iter().position(|n| *n == name);
    // The statistics slots to show, in order (a slot may repeat, as in Redis).
    let mut shown: Vec<usize> = Vec::new();
    let with_subcommands = |spec: &CommandSpec, shown: &mut Vec<usize>| {
        shown.extend(slot_of(spec.name));
        for x in spec.subcommands.unwrap_or(&[]) {
            shown.extend(slot_of(x.full_name));
        }
    };
    if names.is_empty() {
        for spec in super::table() {
            with_subcommands(spec, &mut shown);
        }
    } else {
        for name in names {
            let name = text(name).to_ascii_lowercase();
            match name.split_once('|') {
                Some((container, subname)) => {
                    let sub = super::lookup(container.as_bytes())
                        .and_then(|s| s.subcommand_named(subname.as_bytes()));
                    if let Some(x) = sub {
                        shown.extend(slot_of(x.full_name));
                    }
                }
                None => {
                    if let Some(spec) = super::lookup(name.as_bytes()) {
                        with_subcommands(spec, &mut shown);
                    }
                }
            }
        }
    }
    shown.retain(|&slot| by_slot[slot].is_some());
    let mut r = c.reply();
    r.map(shown.len());
    for slot in shown {
        let Some(m) = &by_slot[slot] else { continue };
        r.bulk(stat_names[slot].as_bytes());
        r.map(2);
        r.bulk(b"calls");
        r.int(m.total() as i64);
        r.bulk(b"histogram_usec");
        let cdf = m.cumulative_distribution();
        r.map(cdf.len());
        for (usec, count) in cdf {
            r.int(usec as i64);
            r.int(count as i64);
        }
    }
}

/// How long ago `time` was, as LATENCY GRAPH labels it: seconds, minutes, hours or days.
fn ago(now: u64, time: u64) -> String {
    let elapsed = now.saturating_sub(time);
    match elapsed {
        e if e < 60 => format!("{e}s"),
        e if e < 3600 => format!("{}m", e / 60),
        e if e < 86400 => format!("{}h", e / 3600),
        e => format!("{}d", e / 86400),
    }
}

/// LATENCY GRAPH: a title line, a rule, and the samples as a filled sparkline of 4 rows with
/// each sample's age written vertically under it, 80 samples to a block, as Redis draws it.
fn graph(e: &EventRecord, now: u64) -> String {
    let values: Vec<u64> = e.samples.iter().map(|s| s.latency).collect();
    let (low, high) = (
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
    );
    let mut out = format!(
        "{} - high {} ms, low {} ms (all time high {} ms)\n",
        e.name, high, low, e.max
    );
    out.push_str(&"-".repeat(GRAPH_COLS));
    out.push('\n');
    let labels: Vec<String> = e.samples.iter().map(|s| ago(now, s.time)).collect();
    for (block, start) in (0..values.len()).step_by(GRAPH_COLS).enumerate() {
        if block > 0 {
            out.push('\n');
        }
        let end = (start + GRAPH_COLS).min(values.len());
        sparkline_rows(&mut out, &values, &labels, start..end, low, high);
    }
    out
}

/// One block of LATENCY GRAPH's sparkline. The scale spans the whole series (`low` to `high`),
/// 4 rows of 3 steps each (`_`, `o`, `#`, with `|` below a full step); then, after one blank
/// row, each label written downwards, one character per row.
fn sparkline_rows(
    out: &mut String,
    values: &[u64],
    labels: &[String],
    cols: std::ops::Range<usize>,
    low: u64,
    high: u64,
) {
    const ROWS: usize = 4;
    const FILL: &[u8] = b"_o#";
    let steps = FILL.len() * ROWS;
    let relmax = if high == low {
        1.0
    } else {
        (high - low) as f64
    };
    let len = cols.len();
    let mut row = 0;
    loop {
        let mut line = vec![b' '; len];
        let mut more = false;
        for (j, i) in cols.clone().enumerate() {
            let relval = (values[i] - low) as f64;
            // Redis truncates the product to an integer before dividing.
            let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps as i64 - 1) as usize;
            if row < ROWS {
                more = true;
                let below = (ROWS - row - 1) * FILL.len();
                if step >= below {
                    let k = step - below;
                    line[j] = if k < FILL.len() { FILL[k] } else { b'|' };
                }
            } else {
                if row - ROWS < 1 {
                    // The blank row between the graph and the labels.
                    more = true;
                    break;
                }
                let at = row - ROWS - 1;
                if let Some(&ch) = labels[i].as_bytes().get(at) {
                    more = true;
                    line[j] = ch;
                }
            }
        }
        if !more {
            break;
        }
        out.push_str(std::str::from_utf8(&line).unwrap_or_default());
        out.push('\n');
        row += 1;
    }
}

/// One event's figures for LATENCY DOCTOR, as Redis computes them: samples, their average and
/// mean absolute deviation (whole milliseconds), and the seconds since the oldest (at least 1).
fn event_stats(samples: &[Sample], now: u64) -> (u64, u64, u64, u64) {
    let n = samples.len() as u64;
    if n == 0 {
        return (0, 0, 0, 0);
    }
    let avg = samples.iter().map(|s| s.latency).sum::<u64>() / n;
    let oldest = samples.iter().map(|s| s.time).min().unwrap_or(now);
    let period = now.saturating_sub(oldest).max(1);
    let mad = samples
        .iter()
        .map(|s| (avg as i64 - s.latency as i64).unsigned_abs())
        .sum::<u64>()
        / n;
    (n, avg, mad, period)
}

/// LATENCY DOCTOR's report. The opening lines and each event's line are Redis's; the advice
/// that follows is Tessera's own, for the events Tessera records.
fn doctor(
    events: &[EventRecord],
    now: u64,
    threshold: u64,
    slower_than: i64,
    slowlog_len: u64,
) -> String {
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".to_string();
    }
    let mut out = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    let mut advice: Vec<String> = Vec::new();
    let mut advise = |text: String| {
        if !advice.contains(&text) {
            advice.push(text);
        }
    };
    for (k, e) in events.iter().enumerate() {
        let (n, avg, mad, period) = event_stats(&e.samples, now);
        out.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.\n",
            k + 1,
            e.name,
            n,
            avg,
            mad,
            period as f64 / n.max(1) as f64,
            e.max
        ));
        match e.name.as_str() {
            "command" => {
                if slower_than < 0 || slowlog_len == 0 {
                    advise(format!(
                        "- The slow log is off, so the slow commands behind these spikes were not recorded: 'CONFIG SET slowlog-log-slower-than {}' records every command that reaches the latency threshold.",
                        threshold * 1000
                    ));
                } else if (slower_than / 1000) as u64 > threshold {
                    advise(format!(
                        "- The slow log only records commands slower than {} us, more than the latency threshold: 'CONFIG SET slowlog-log-slower-than {}' records every command that reaches it.",
                        slower_than,
                        threshold * 1000
                    ));
                }
                advise("- SLOWLOG GET shows which commands were slow. Commands over many elements (KEYS, SMEMBERS, HGETALL, LRANGE or ZRANGE of large ranges) and deleting large values take time in proportion to their size: prefer SCAN and its family, smaller values, UNLINK or lazyfree.".to_string());
            }
            "fast-command" => advise("- Commands that should take microseconds took milliseconds: the shard's thread did not get its CPU. Check the host's load and other software on the same cores, and see tuning/README.md for pinning shards to cores.".to_string()),
            "expire-cycle" => advise("- Active expiry spent milliseconds at once: many keys expire together. Spreading their TTLs (add some randomness) keeps each cycle short.".to_string()),
            "eviction-del" | "eviction-cycle" => advise("- Evicting keys under maxmemory took milliseconds: large values are being evicted, or many keys at once. 'CONFIG SET lazyfree-lazy-eviction yes' frees them in the background.".to_string()),
            _ => {}
        }
    }
    if advice.is_empty() {
        out.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        out.push_str("\nI have a few advices for you:\n\n");
        for a in advice {
            out.push_str(&a);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, samples: &[(u64, u64)], max: u64) -> EventRecord {
        EventRecord {
            name: name.to_string(),
            samples: samples
                .iter()
                .map(|&(time, latency)| Sample { time, latency })
                .collect(),
            max,
        }
    }

    #[test]
    fn graph_draws_a_filled_sparkline_with_vertical_ages() {
        let e = event("command", &[(100, 10), (130, 20), (160, 40)], 40);
        let g = graph(&e, 170);
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(
            lines[0],
            "command - high 40 ms, low 10 ms (all time high 40 ms)"
        );
        assert_eq!(lines[1], "-".repeat(80));
        // 4 graph rows, a blank row, then the ages (1m, 40s, 10s) one character per row.
        assert_eq!(
            &lines[2..],
            ["  #", "  |", " o|", "_||", "   ", "141", "m00", " ss"]
        );
    }

    #[test]
    fn doctor_reports_each_event_like_redis() {
        let e = event("command", &[(100, 10), (101, 30)], 30);
        let report = doctor(&[e], 110, 5, 10000, 128);
        assert!(report.starts_with("Dave, I have observed latency spikes"));
        assert!(report.contains(
            "1. command: 2 latency spikes (average 20ms, mean deviation 10ms, period 5.00 sec). Worst all time event 30ms.\n"
        ));
        assert!(report.contains("slowlog-log-slower-than 5000"));
        assert_eq!(
            doctor(&[], 0, 0, 10000, 128),
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
        );
    }
}

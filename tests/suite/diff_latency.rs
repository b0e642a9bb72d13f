//! Differential tests of LATENCY: the reference redis-server and Tessera with 1 and 4 shards.
//! Replies are byte-identical where Redis's are deterministic (help, errors, empty monitor,
//! the disabled and quiet DOCTOR texts, scripts); where they carry measured times, both sides
//! are reduced to what must agree (event names, which histogram steps exist, counts, bounds on
//! the latencies) and those summaries are compared.

use crate::common::*;

/// Sends `line` on the target's active connection and returns the raw reply.
fn ask(t: &mut Target, active: usize, line: &str) -> Vec<u8> {
    t.conns[active].cmd_str(line)
}

fn text(v: &Value) -> String {
    String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned()
}

/// The step labels LATENCY HISTOGRAM may use: HDR's log iteration from 1024 ns in powers of 2,
/// each labelled with the highest value of the counter it stops at, in whole microseconds.
fn histogram_labels() -> Vec<i64> {
    let mut v = Vec::new();
    for k in 0..20 {
        let level: i64 = 1024 << k;
        let width: i64 = 1 << (3 + k);
        v.push((level + width - 1) / 1000);
    }
    // The last counter's highest value (a call of a second or more).
    v.push(1_073_741);
    v
}

/// LATENCY HISTOGRAM's reply reduced to what two servers agree on: the reply's kind, and per
/// command its name, calls, and whether its steps use Redis's labels in increasing order with
/// growing counts that end at the calls. `sorted` sorts the commands (Redis lists all of them
/// in its command table's hash order).
fn histogram_summary(raw: &[u8], sorted: bool) -> Vec<u8> {
    let v = resp_parse(raw);
    let kind = match &v {
        Value::Map(_) => "map",
        Value::Array(_) => "array",
        _ => return raw.to_vec(),
    };
    let labels = histogram_labels();
    let mut lines: Vec<String> = Vec::new();
    for (name, body) in map_pairs(&v) {
        let fields = map_pairs(&body);
        let calls = fields
            .iter()
            .find(|(k, _)| text(k) == "calls")
            .and_then(|(_, v)| v.as_int())
            .unwrap_or(-1);
        let steps: Vec<(i64, i64)> = fields
            .iter()
            .find(|(k, _)| text(k) == "histogram_usec")
            .map(|(_, h)| {
                map_pairs(h)
                    .iter()
                    .map(|(k, v)| (k.as_int().unwrap_or(-1), v.as_int().unwrap_or(-1)))
                    .collect()
            })
            .unwrap_or_default();
        let names: Vec<String> = fields.iter().map(|(k, _)| text(k)).collect();
        let labels_ok = steps.iter().all(|(l, _)| labels.contains(l))
            && steps.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && steps.last().map(|s| s.1) == Some(calls);
        lines.push(format!(
            "{} fields={names:?} calls={calls} steps_ok={labels_ok}",
            text(&name)
        ));
    }
    if sorted {
        lines.sort();
    }
    format!("{kind} {}", lines.join("; ")).into_bytes()
}

/// Replies without measured times: byte for byte.
#[test]
fn latency_subcommands_errors_and_empty_monitor_like_redis() {
    let mut d = diff_or_skip!("latency_subcommands_errors_and_empty_monitor_like_redis");
    d.script(&[
        "LATENCY HELP",
        "latency help",
        "LATENCY",
        "LATENCY FOO",
        "LATENCY HELP x",
        "LATENCY LATEST x",
        "LATENCY DOCTOR x",
        "LATENCY HISTORY",
        "LATENCY GRAPH",
        "LATENCY GRAPH a b",
        "LATENCY HISTORY a b",
        "LATENCY LATEST",
        "LATENCY HISTORY command",
        "LATENCY RESET",
        "LATENCY RESET command fast-command nosuch",
        "LATENCY GRAPH command",
        "LATENCY DOCTOR",
        "LATENCY HISTOGRAM nosuch",
        "LATENCY HISTOGRAM nosuch|x config|nosuch client|nosuch",
        "CONFIG GET latency-monitor-threshold",
        "CONFIG SET latency-monitor-threshold -1",
        "CONFIG SET latency-monitor-threshold abc",
        "CONFIG SET latency-monitor-threshold 1000",
        "CONFIG GET latency-monitor-threshold",
        // Enabled, nothing seen yet.
        "LATENCY DOCTOR",
        "LATENCY LATEST",
        "CONFIG SET latency-monitor-threshold 0",
    ]);
    // From scripts: HELP answers, the other subcommands are `noscript`.
    for sub in ["help", "latest", "reset", "histogram"] {
        let script = format!("return redis.call('latency','{sub}')");
        d.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
    }
    d.section("RESP3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "LATENCY HISTOGRAM nosuch",
        "LATENCY DOCTOR",
        "LATENCY LATEST",
        "LATENCY HELP",
        "LATENCY GRAPH command",
    ]);
}

/// LATENCY HISTOGRAM after known calls: the commands, their calls and the shape of each
/// distribution agree; which step a call lands in depends on how long it took.
#[test]
fn latency_histogram_like_redis() {
    let mut d = diff_or_skip!("latency_histogram_like_redis");
    d.s("CONFIG RESETSTAT");
    for i in 0..60 {
        d.s(&format!("SET k{i} v"));
    }
    for i in 0..7 {
        d.s(&format!("GET k{i}"));
    }
    d.s("CONFIG GET maxmemory");
    d.s("CONFIG GET hz");
    d.s("DEBUG SLEEP 0.002");
    // A container named alone lists its subcommands in Redis's hash order: sorted.
    for (line, sorted) in [
        ("LATENCY HISTOGRAM set", false),
        ("LATENCY HISTOGRAM SET get nosuch set", false),
        ("LATENCY HISTOGRAM config|get", false),
        ("LATENCY HISTOGRAM config", true),
        ("LATENCY HISTOGRAM debug", false),
    ] {
        d.each(line, |t, active| {
            histogram_summary(&ask(t, active, line), sorted)
        });
    }
    // Every command with calls, in whatever order each server keeps its table.
    d.each("LATENCY HISTOGRAM", |t, active| {
        histogram_summary(&ask(t, active, "LATENCY HISTOGRAM"), true)
    });
    d.s_norm("HELLO 3", Norm::Hello);
    d.each("LATENCY HISTOGRAM set config|get (RESP3)", |t, active| {
        histogram_summary(&ask(t, active, "LATENCY HISTOGRAM set config|get"), false)
    });
    // Statistics reset: no histograms left (but for the CONFIG RESETSTAT... and what follows).
    d.s("CONFIG RESETSTAT");
    d.s("LATENCY HISTOGRAM set get debug");
}

/// The `command` event of LATEST reduced to its bounds: at least `min_ms` (latest and worst),
/// stamped within two seconds of the server's clock.
fn latest_summary(raw: &[u8], now: i64, min_ms: i64) -> Vec<u8> {
    let v = resp_parse(raw);
    let Some(events) = v.items() else {
        return raw.to_vec();
    };
    let mut out = String::from("events:");
    for e in events {
        let f = e.items().cloned().unwrap_or_default();
        if f.len() != 4 || text(&f[0]) != "command" {
            continue;
        }
        let (time, latest, max) = (
            f[1].as_int().unwrap_or(-1),
            f[2].as_int().unwrap_or(-1),
            f[3].as_int().unwrap_or(-1),
        );
        out.push_str(&format!(
            " command recent={} latest_ok={} max_ok={}",
            (time - now).abs() <= 2,
            latest >= min_ms,
            max >= latest
        ));
    }
    out.into_bytes()
}

/// LATENCY LATEST on every target, compared through `latest_summary` against each server's
/// own clock.
fn check_latest(d: &mut Diff, what: &str, min_ms: i64) {
    d.each(&format!("LATENCY LATEST ({what})"), |t, active| {
        let now = server_time(t, active);
        latest_summary(&ask(t, active, "LATENCY LATEST"), now, min_ms)
    });
}

/// Digits blanked: the parts of a report that state measured times or ages.
fn without_digits(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .map(|&b| if b.is_ascii_digit() { b'9' } else { b })
        .collect()
}

fn server_time(t: &mut Target, active: usize) -> i64 {
    let v = resp_parse(&ask(t, active, "TIME"));
    v.items()
        .and_then(|i| i.first().map(text))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The latency monitor records slow commands (a connection-level one, then a keyed one that
/// runs on whichever shard owns its key) and reports them in LATEST, HISTORY, GRAPH and DOCTOR.
#[test]
fn latency_monitor_records_slow_commands() {
    let mut d = diff_or_skip!("latency_monitor_records_slow_commands");
    d.s("CONFIG SET latency-monitor-threshold 40");
    d.s("DEBUG SLEEP 0");
    d.s("LATENCY LATEST");
    d.s("DEBUG SLEEP 0.06");
    check_latest(&mut d, "after a 60 ms command", 60);
    d.each("LATENCY HISTORY command", |t, active| {
        let v = resp_parse(&ask(t, active, "LATENCY HISTORY command"));
        let samples = v.items().cloned().unwrap_or_default();
        let ok = samples.iter().all(|s| {
            s.items()
                .is_some_and(|p| p.len() == 2 && p[1].as_int().unwrap_or(0) >= 60)
        });
        format!("samples={} ok={ok}", samples.len()).into_bytes()
    });
    // The title states the times, the rows and labels the shape: one sample, drawn at the
    // bottom row, its age written under it.
    d.each("LATENCY GRAPH command", |t, active| {
        without_digits(&ask(t, active, "LATENCY GRAPH command"))
    });
    d.each("LATENCY DOCTOR (first lines)", |t, active| {
        let raw = ask(t, active, "LATENCY DOCTOR");
        let report = String::from_utf8_lossy(&raw).into_owned();
        let head: Vec<&str> = report.lines().take(4).collect();
        without_digits(head.join("\n").as_bytes())
    });
    d.s("LATENCY RESET command");
    d.s("LATENCY HISTORY command");
    d.s("LATENCY GRAPH command");

    // A keyed command slow enough to pass a 1 ms threshold, on the shard that owns its key.
    d.cmd(&[
        b"EVAL",
        b"for i = 1, 200000 do redis.call('rpush', KEYS[1], i) end",
        b"1",
        b"biglist",
    ]);
    d.s("LATENCY RESET");
    d.s("CONFIG SET latency-monitor-threshold 1");
    d.s("SORT biglist LIMIT 0 3");
    check_latest(&mut d, "after SORT of 200,000", 1);
    d.s("CONFIG SET latency-monitor-threshold 0");
    d.each("LATENCY RESET (after SORT)", |t, active| {
        let v = resp_parse(&ask(t, active, "LATENCY RESET"));
        format!("reset_some={}", v.as_int().unwrap_or(0) >= 1).into_bytes()
    });
    d.s("LATENCY LATEST");
    d.s("LATENCY DOCTOR");
}

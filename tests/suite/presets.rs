//! The role presets in `tuning/` (pure-cache, warm-cache, semi-durable): each one starts a
//! server with nothing but the file plus `--port` and `--dir`, warns about no directive (every
//! directive a preset sets must be implemented), and CONFIG GET reports every value the file sets.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::*;

const PRESETS: [&str; 3] = ["pure-cache.conf", "warm-cache.conf", "semi-durable.conf"];

fn preset_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tuning")
        .join(name)
}

/// Splits a config line into words; `""` is an empty word (as in `save ""`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').expect("unterminated quote in preset");
            out.push(r[..end].to_string());
            rest = r[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// `1gb` -> `1073741824` (CONFIG GET reports memory values in bytes); other words unchanged.
fn bytes_if_memory(v: &str) -> String {
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &v[digits.len()..];
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return v.to_string(),
    };
    match digits.parse::<u64>() {
        Ok(n) if !digits.is_empty() => (n * mult).to_string(),
        _ => v.to_string(),
    }
}

/// What CONFIG GET should answer for each directive the preset sets. Repeated `save` lines
/// add up to one list of rules, as in redis.conf.
fn expected_values(text: &str) -> BTreeMap<String, String> {
    let mut want = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w = words(line);
        let name = w[0].to_ascii_lowercase();
        let value = w[1..]
            .iter()
            .map(|v| bytes_if_memory(v))
            .collect::<Vec<_>>()
            .join(" ");
        if name == "save" && !value.is_empty() {
            let rules: &mut String = want.entry(name).or_default();
            if !rules.is_empty() {
                rules.push(' ');
            }
            rules.push_str(&value);
        } else {
            want.insert(name, value);
        }
    }
    want
}

/// Names of the directives the server's log says are accepted but not implemented.
fn unimplemented_warnings(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("not implemented"))
        .map(|l| {
            l.split('\'')
                .nth(1)
                .unwrap_or_else(|| panic!("unexpected warning format: {l}"))
                .to_string()
        })
        .collect()
}

/// Each directive line comes right after a comment saying why (a repeated directive, such as a
/// second `save` rule, shares the comment of the first).
#[test]
fn every_preset_documents_each_directive() {
    for name in PRESETS {
        let text = std::fs::read_to_string(preset_path(name)).unwrap();
        let mut previous = "";
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                let directive = line.split_whitespace().next().unwrap();
                let same_as_previous = previous.split_whitespace().next() == Some(directive);
                assert!(
                    previous.starts_with('#') || same_as_previous,
                    "{name}: `{line}` has no comment saying why"
                );
            }
            previous = line;
        }
    }
}

#[test]
fn presets_start_and_apply_their_values() {
    for name in PRESETS {
        let path = preset_path(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let want = expected_values(&text);
        assert!(
            want.len() >= 4,
            "{name}: parsed too few directives: {want:?}"
        );
        let srv = start_tessera_with_config(&path, &[]);
        let mut c = srv.conn();
        assert_eq!(c.cmd(&[b"PING"]), b"+PONG\r\n", "{name}");

        // Tessera logs "directive '<name>' is accepted but not implemented yet; ignored" for
        // a directive it does not act on: a preset must not rely on one.
        let log = srv.log_tail(10_000);
        let ignored = unimplemented_warnings(&log);
        assert!(
            ignored.is_empty(),
            "{name}: directives {ignored:?} are not implemented; the presets may only set \
             directives Tessera implements\n{log}"
        );

        for (directive, value) in &want {
            let got = c.cmd(&[b"CONFIG", b"GET", directive.as_bytes()]);
            let expect = encode(&[directive.as_bytes(), value.as_bytes()]);
            assert_eq!(
                render_raw(&got),
                render_raw(&expect),
                "{name}: CONFIG GET {directive}"
            );
        }
    }
}

#[test]
fn preset_parsing_helpers() {
    assert_eq!(words(r#"save """#), ["save", ""]);
    assert_eq!(words("save 300  100"), ["save", "300", "100"]);
    assert_eq!(bytes_if_memory("1gb"), "1073741824");
    assert_eq!(bytes_if_memory("64mb"), "67108864");
    assert_eq!(bytes_if_memory("allkeys-lru"), "allkeys-lru");
    assert_eq!(bytes_if_memory("everysec"), "everysec");
    let want = expected_values("# c\nsave 300 100\nsave 60 10000\nmaxmemory 2mb\n");
    assert_eq!(want["save"], "300 100 60 10000");
    assert_eq!(want["maxmemory"], "2097152");
    assert_eq!(expected_values("save \"\"\n")["save"], "");
}

/// The warning check above would pass vacuously if the warnings never reached the log: start a
/// preset plus one directive that is still unimplemented and make sure it is reported.
#[test]
fn unimplemented_directive_warnings_are_detected() {
    let directive = "activedefrag";
    assert_eq!(
        tessera::config::is_implemented(directive),
        Some(false),
        "{directive} is implemented now: use another unimplemented directive here"
    );
    let flag = format!("--{directive}");
    let srv = start_tessera_with_config(&preset_path("pure-cache.conf"), &[&flag, "yes"]);
    let log = srv.log_tail(10_000);
    assert!(
        unimplemented_warnings(&log).iter().any(|w| w == directive),
        "no warning for {directive}:\n{log}"
    );
}

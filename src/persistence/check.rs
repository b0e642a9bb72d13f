//! `tessera check [--fix] PATH...`: the offline checker for every file Tessera persists (the
//! counterpart of redis-check-rdb and redis-check-aof in one tool).
//!
//! * An RDB stream (plain or zstd, a snapshot shard file or a Redis `dump.rdb`): every item is
//!   decoded and the CRC64 trailer verified; errors name the offset in the uncompressed stream.
//! * A snapshot manifest: the manifest and every shard file it names.
//! * An AOF manifest or append-only directory: every file of every shard in replay order, the
//!   RESP records (or an RDB preamble in a base file), the multi-shard unit brackets.
//!
//! Owns: the classification of a path, the reports, and the one repair (`--fix` truncates the
//! torn tail of a shard's last incremental AOF file). Runs as a plain process before and without
//! any server: blocking std::fs is fine here. Must never change a file without `--fix`, and
//! never "repair" damage in the middle of a log.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::aof::manifest::{FileKind, Manifest};
use super::aof::records::{self, Read};
use super::aof::{TX_BEGIN, TX_END};
use super::rdb::{LoadLimits, RdbError, RdbItem, RdbReader};
use super::snapshot::manifest::{open_rdb, SnapshotManifest, ZSTD_MAGIC};

const USAGE: &str = "Usage: tessera check [--fix] PATH...

PATH is an RDB file (plain or zstd-compressed), a snapshot manifest (<dbfilename>.manifest),
an AOF manifest, an append-only directory, or a single AOF file.
--fix truncates a torn tail of a shard's last incremental AOF file to its last complete
record (and before an unterminated multi-shard unit). Damage elsewhere is only reported.
Exit status: 0 when every PATH is valid (or was fixed), 1 otherwise.";

/// What a path holds, told from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKindGuess {
    Rdb,
    SnapshotManifest,
    AofManifest,
    AofFile,
}

/// Whether `head` (a file's first bytes) starts an RDB stream, plain or zstd-compressed.
pub fn is_rdb_stream(head: &[u8]) -> bool {
    head.starts_with(b"REDIS") || head.starts_with(&ZSTD_MAGIC)
}

/// Classifies a file by its content (its name does not matter).
pub fn classify(path: &Path) -> Result<FileKindGuess, String> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|e| format!("Can't open {}: {}", path.display(), e))?;
    if is_rdb_stream(&head) {
        return Ok(FileKindGuess::Rdb);
    }
    if head.first() == Some(&b'*') {
        return Ok(FileKindGuess::AofFile);
    }
    let text = String::from_utf8_lossy(&head);
    let first_word = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next());
    match first_word {
        Some("tessera-snapshot") => Ok(FileKindGuess::SnapshotManifest),
        Some("tessera-aof") => Ok(FileKindGuess::AofManifest),
        _ => Err(format!(
            "{}: not an RDB, snapshot manifest or AOF",
            path.display()
        )),
    }
}

/// The name a function library's code declares (`#!lua name=<name>`).
pub fn library_name(code: &[u8]) -> String {
    let first = code.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(first)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("name="))
        .unwrap_or("?")
        .to_string()
}

/// Key counts of one database.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    pub keys: u64,
    pub expires: u64,
    pub already_expired: u64,
    pub per_type: BTreeMap<&'static str, u64>,
}

impl DbStats {
    fn add(&mut self, other: &DbStats) {
        self.keys += other.keys;
        self.expires += other.expires;
        self.already_expired += other.already_expired;
        for (t, n) in &other.per_type {
            *self.per_type.entry(t).or_insert(0) += n;
        }
    }
}

/// What a valid RDB stream holds.
#[derive(Clone, Debug, Default)]
pub struct RdbSummary {
    pub version: u32,
    pub aux: Vec<(String, String)>,
    pub functions: Vec<String>,
    pub dbs: BTreeMap<u64, DbStats>,
}

impl RdbSummary {
    fn merge(&mut self, other: &RdbSummary) {
        self.functions.extend(other.functions.iter().cloned());
        for (db, s) in &other.dbs {
            self.dbs.entry(*db).or_default().add(s);
        }
    }

    fn print_totals(&self, indent: &str) {
        for (db, s) in &self.dbs {
            let types: Vec<String> = s.per_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
            println!(
                "{indent}db {db}: {} keys ({}), {} with expiry ({} already expired)",
                s.keys,
                types.join(", "),
                s.expires,
                s.already_expired
            );
        }
        let keys: u64 = self.dbs.values().map(|s| s.keys).sum();
        let expires: u64 = self.dbs.values().map(|s| s.expires).sum();
        println!(
            "{indent}total: {keys} keys in {} databases, {expires} with expiry, {} function libraries",
            self.dbs.len(),
            self.functions.len()
        );
    }
}

/// Why an RDB stream was refused, and where.
#[derive(Debug)]
pub struct RdbFault {
    /// Offset in the uncompressed stream where reading stopped.
    pub offset: u64,
    /// Offset of the item being read.
    pub item_start: u64,
    pub reason: String,
}

impl std::fmt::Display for RdbFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[offset {}] {} (in the item starting at offset {})",
            self.offset, self.reason, self.item_start
        )
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads a whole RDB stream (plain or zstd), printing its items when `verbose`.
pub fn check_rdb_stream(path: &Path, verbose: bool) -> Result<RdbSummary, RdbFault> {
    let fault = |offset, item_start, reason: String| RdbFault {
        offset,
        item_start,
        reason,
    };
    let input = open_rdb(path).map_err(|e| fault(0, 0, format!("can't open: {e}")))?;
    let mut reader =
        RdbReader::new(input, LoadLimits::default()).map_err(|e| fault(0, 0, e.to_string()))?;
    let mut sum = RdbSummary {
        version: reader.version(),
        ..RdbSummary::default()
    };
    if verbose {
        println!("[offset 9] RDB format version {}", sum.version);
    }
    let now = now_ms();
    let mut db = 0u64;
    loop {
        let start = reader.offset();
        let item = match reader.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => {
                let reason = match e {
                    RdbError::Io(io) => format!("read error: {io}"),
                    e => e.to_string(),
                };
                return Err(fault(reader.offset(), start, reason));
            }
        };
        match item {
            RdbItem::Aux { key, value } => {
                let (k, v) = (
                    String::from_utf8_lossy(&key).into_owned(),
                    String::from_utf8_lossy(&value).into_owned(),
                );
                if verbose {
                    println!("[offset {start}] AUX {k} = '{v}'");
                }
                sum.aux.push((k, v));
            }
            RdbItem::SelectDb(d) => {
                db = d;
                if verbose {
                    println!("[offset {start}] selecting db {d}");
                }
            }
            RdbItem::ResizeDb { .. } => {}
            RdbItem::Function(code) => {
                let name = library_name(&code);
                if verbose {
                    println!(
                        "[offset {start}] function library '{name}' ({} bytes)",
                        code.len()
                    );
                }
                sum.functions.push(name);
            }
            RdbItem::Entry(e) => {
                let s = sum.dbs.entry(db).or_default();
                s.keys += 1;
                if e.expire_ms != 0 {
                    s.expires += 1;
                    if e.expire_ms <= now {
                        s.already_expired += 1;
                    }
                }
                *s.per_type.entry(e.value.type_name()).or_insert(0) += 1;
            }
        }
    }
    if verbose {
        println!("[offset {}] checksum OK", reader.offset());
    }
    Ok(sum)
}

fn check_rdb_file(path: &Path) -> bool {
    let compressed = std::fs::File::open(path)
        .and_then(|f| {
            let mut head = Vec::new();
            f.take(4).read_to_end(&mut head)?;
            Ok(head.starts_with(&ZSTD_MAGIC))
        })
        .unwrap_or(false);
    println!(
        "[offset 0] Checking RDB file {}{}",
        path.display(),
        if compressed {
            " (zstd-compressed; offsets are in the uncompressed stream)"
        } else {
            ""
        }
    );
    match check_rdb_stream(path, true) {
        Ok(sum) => {
            sum.print_totals("");
            println!("RDB looks OK");
            true
        }
        Err(f) => {
            println!("--- RDB ERROR DETECTED ---");
            println!("{f}");
            false
        }
    }
}

fn check_snapshot_manifest(path: &Path) -> bool {
    println!("Checking snapshot manifest {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            println!("Can't read {}: {}", path.display(), e);
            return false;
        }
    };
    let m = match SnapshotManifest::parse(&text) {
        Ok(m) => m,
        Err(e) => {
            println!("--- MANIFEST ERROR --- {e}");
            return false;
        }
    };
    println!(
        "{} shards, compression {}, ctime {}",
        m.shards,
        m.compression.name(),
        m.ctime
    );
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut ok = true;
    let mut total = RdbSummary::default();
    for f in &m.files {
        let p = dir.join(&f.name);
        if !p.is_file() {
            println!("shard {}: file {} is missing", f.shard, p.display());
            ok = false;
            continue;
        }
        match check_rdb_stream(&p, false) {
            Ok(sum) => {
                let keys: u64 = sum.dbs.values().map(|s| s.keys).sum();
                println!(
                    "shard {}: {} OK (RDB version {}, {} keys, {} function libraries)",
                    f.shard,
                    f.name,
                    sum.version,
                    keys,
                    sum.functions.len()
                );
                if f.shard != 0 && !sum.functions.is_empty() {
                    println!(
                        "shard {}: warning: function libraries outside shard 0's file",
                        f.shard
                    );
                }
                total.merge(&sum);
            }
            Err(fault) => {
                println!("shard {}: {} --- RDB ERROR DETECTED ---", f.shard, f.name);
                println!("{fault}");
                ok = false;
            }
        }
    }
    total.print_totals("");
    if ok {
        println!("Snapshot looks OK");
    }
    ok
}

// ----- AOF -----

/// The part of a multi-shard unit that is open at the end of what was read so far.
#[derive(Clone, Debug)]
struct OpenUnit {
    id: u64,
    /// Index of the file (in the shard's replay order) and offset of its TXBEGIN record.
    file: usize,
    offset: usize,
}

/// A problem found in one AOF file.
#[derive(Debug, PartialEq)]
enum AofProblem {
    /// Damage in the middle (or a torn record somewhere a tail can't be): never fixed.
    Corrupt { offset: usize, reason: String },
    /// The file ends inside a record at `offset` (the last complete record ends there).
    TornTail { offset: usize },
}

/// The outcome of scanning one RESP AOF file.
struct RespScan {
    records: u64,
    len: usize,
    problem: Option<AofProblem>,
}

fn marker_number(args: &[bytes::Bytes], i: usize) -> Option<u64> {
    std::str::from_utf8(args.get(i)?).ok()?.parse().ok()
}

/// Scans the RESP records of one file, following the unit brackets (`open` carries over from
/// the shard's previous files, as the loader reads them as one log); `done` collects the
/// complete parts (id, participants).
fn scan_resp(
    buf: &[u8],
    file: usize,
    open: &mut Option<OpenUnit>,
    open_parts: &mut Option<u64>,
    done: &mut Vec<(u64, u64)>,
) -> RespScan {
    // Zero padding preallocated under `appendfsync always` is not part of the log.
    let buf = &buf[..records::log_len(buf)];
    let mut next_at = 0;
    let mut records = 0;
    let corrupt = |offset: usize, reason: String| Some(AofProblem::Corrupt { offset, reason });
    while let Some((at, read)) = records::read_log_record(buf, next_at) {
        let (args, next) = match read {
            Read::Record(args, next) => (args, next),
            Read::Incomplete => {
                return RespScan {
                    records,
                    len: buf.len(),
                    problem: Some(AofProblem::TornTail { offset: at }),
                }
            }
            Read::Bad(why) => {
                return RespScan {
                    records,
                    len: buf.len(),
                    problem: corrupt(at, format!("bad record: {why}")),
                }
            }
        };
        let name = &args[0][..];
        let problem = if name == TX_BEGIN {
            match (marker_number(&args, 1), marker_number(&args, 2), &open) {
                (Some(id), Some(n), None) if args.len() == 3 => {
                    *open = Some(OpenUnit {
                        id,
                        file,
                        offset: at,
                    });
                    *open_parts = Some(n);
                    None
                }
                (_, _, Some(o)) => corrupt(
                    at,
                    format!("TESSERA.TXBEGIN inside the unterminated unit {}", o.id),
                ),
                _ => corrupt(at, "malformed TESSERA.TXBEGIN".into()),
            }
        } else if name == TX_END {
            match (marker_number(&args, 1), open.take()) {
                (Some(id), Some(o)) if o.id == id && args.len() == 2 => {
                    done.push((id, open_parts.take().unwrap_or(0)));
                    None
                }
                (_, Some(o)) => corrupt(
                    at,
                    format!("TESSERA.TXEND does not close the open unit {}", o.id),
                ),
                (_, None) => corrupt(at, "TESSERA.TXEND without TESSERA.TXBEGIN".into()),
            }
        } else if crate::commands::lookup(name).is_none() {
            corrupt(
                at,
                format!("unknown command '{}'", String::from_utf8_lossy(name)),
            )
        } else {
            None
        };
        if problem.is_some() {
            return RespScan {
                records,
                len: buf.len(),
                problem,
            };
        }
        records += 1;
        next_at = next;
    }
    RespScan {
        records,
        len: buf.len(),
        problem: None,
    }
}

/// Truncates `path` to `new_len` bytes durably, printing what was cut.
fn truncate(path: &Path, old_len: usize, new_len: usize) -> bool {
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(new_len as u64)?;
            f.sync_all()
        });
    match res {
        Ok(()) => {
            println!(
                "Fixed: truncated {} from {} to {} bytes",
                path.display(),
                old_len,
                new_len
            );
            true
        }
        Err(e) => {
            println!("Can't truncate {}: {}", path.display(), e);
            false
        }
    }
}

/// One shard's log: its files in replay order (whether each is a base file).
struct ShardLog {
    shard: usize,
    files: Vec<(PathBuf, FileKind)>,
}

/// Checks shard logs; returns whether everything is valid (after `fix` where allowed).
fn check_logs(logs: &[ShardLog], fix: bool) -> bool {
    let mut ok = true;
    // Complete parts of every unit, over all shards: id -> (parts seen, participants).
    let mut units: HashMap<u64, (u64, u64)> = HashMap::new();
    for log in logs {
        let mut open: Option<OpenUnit> = None;
        let mut open_parts = None;
        let mut done = Vec::new();
        let mut records = 0u64;
        let last = log.files.len().saturating_sub(1);
        for (i, (path, kind)) in log.files.iter().enumerate() {
            let name = path.display();
            let buf = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    println!("shard {}: can't read {}: {}", log.shard, name, e);
                    ok = false;
                    break;
                }
            };
            if *kind == FileKind::Base && is_rdb_stream(&buf) {
                match check_rdb_stream(path, false) {
                    Ok(sum) => {
                        let keys: u64 = sum.dbs.values().map(|s| s.keys).sum();
                        println!(
                            "shard {}: {} OK (RDB preamble, {} keys)",
                            log.shard, name, keys
                        );
                    }
                    Err(f) => {
                        println!("shard {}: {} --- RDB ERROR DETECTED ---", log.shard, name);
                        println!("{f}");
                        ok = false;
                        break;
                    }
                }
                continue;
            }
            let scan = scan_resp(&buf, i, &mut open, &mut open_parts, &mut done);
            records += scan.records;
            let fixable_tail = i == last && *kind == FileKind::Incr;
            // Where `--fix` would cut this file.
            let mut cut = None;
            match scan.problem {
                None => println!(
                    "shard {}: {} OK ({} records, {} bytes)",
                    log.shard, name, scan.records, scan.len
                ),
                Some(AofProblem::Corrupt { offset, reason }) => {
                    println!(
                        "shard {}: {} is damaged at offset {}: {}",
                        log.shard, name, offset, reason
                    );
                    ok = false;
                    break;
                }
                Some(AofProblem::TornTail { offset }) => {
                    println!(
                        "shard {}: {} has a torn tail at offset {} ({} bytes of an incomplete record)",
                        log.shard,
                        name,
                        offset,
                        scan.len - offset
                    );
                    if !fixable_tail {
                        println!(
                            "shard {}: not the shard's last incremental file: not fixable",
                            log.shard
                        );
                        ok = false;
                        break;
                    }
                    cut = Some(offset);
                }
            }
            if let (true, Some(o)) = (i == last, &open) {
                println!(
                    "shard {}: unit {} opened at offset {} of {} is unterminated (a torn multi-shard unit: the loader drops it)",
                    log.shard,
                    o.id,
                    o.offset,
                    log.files[o.file].0.display()
                );
                // Only a bracket opened in the last file can be cut off; one opened earlier
                // is left to the loader, which drops it.
                if o.file == i && fixable_tail {
                    cut = Some(o.offset);
                }
            }
            if let Some(cut) = cut {
                if fix {
                    ok &= truncate(path, scan.len, cut);
                    if open.as_ref().is_some_and(|o| o.file == i) {
                        open = None;
                    }
                } else {
                    println!(
                        "  run with --fix to truncate {} from {} to {} bytes",
                        name, scan.len, cut
                    );
                    ok = false;
                }
            }
        }
        println!("shard {}: {} records", log.shard, records);
        for (id, n) in done {
            let e = units.entry(id).or_insert((0, n));
            e.0 += 1;
        }
    }
    let mut partial: Vec<(u64, u64, u64)> = units
        .into_iter()
        .filter(|(_, (have, need))| have != need)
        .map(|(id, (have, need))| (id, have, need))
        .collect();
    partial.sort_unstable();
    for (id, have, need) in partial {
        println!(
            "note: multi-shard unit {id} is complete in {have} of {need} shard logs: the loader drops its parts"
        );
    }
    ok
}

fn check_aof_manifest(path: &Path, fix: bool) -> bool {
    println!("Checking AOF manifest {}", path.display());
    let m = match std::fs::read_to_string(path)
        .map_err(|e| format!("Can't read {}: {}", path.display(), e))
        .and_then(|t| Manifest::parse(&t))
    {
        Ok(m) => m,
        Err(e) => {
            println!("--- MANIFEST ERROR --- {e}");
            return false;
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let logs: Vec<ShardLog> = (0..m.shards)
        .map(|k| ShardLog {
            shard: k,
            files: m
                .files_of(k)
                .into_iter()
                .map(|f| (dir.join(&f.name), f.kind))
                .collect(),
        })
        .collect();
    for log in &logs {
        if log.files.iter().filter(|f| f.1 == FileKind::Base).count() > 1 {
            println!("shard {}: the manifest names several base files", log.shard);
            return false;
        }
    }
    let ok = check_logs(&logs, fix);
    if ok {
        println!("AOF looks OK ({} shards)", m.shards);
    }
    ok
}

fn check_aof_dir(dir: &Path, fix: bool) -> bool {
    let mut manifests: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "manifest")
                    && classify(p) == Ok(FileKindGuess::AofManifest)
            })
            .collect(),
        Err(e) => {
            println!("Can't read the directory {}: {}", dir.display(), e);
            return false;
        }
    };
    manifests.sort();
    if manifests.is_empty() {
        println!("{}: no AOF manifest in this directory", dir.display());
        return false;
    }
    let mut ok = true;
    for m in manifests {
        ok &= check_aof_manifest(&m, fix);
    }
    ok
}

fn check_path(path: &Path, fix: bool) -> bool {
    if path.is_dir() {
        return check_aof_dir(path, fix);
    }
    match classify(path) {
        Ok(FileKindGuess::Rdb) => check_rdb_file(path),
        Ok(FileKindGuess::SnapshotManifest) => check_snapshot_manifest(path),
        Ok(FileKindGuess::AofManifest) => check_aof_manifest(path, fix),
        Ok(FileKindGuess::AofFile) => {
            println!("Checking AOF file {}", path.display());
            let log = ShardLog {
                shard: 0,
                files: vec![(path.to_path_buf(), FileKind::Incr)],
            };
            let ok = check_logs(&[log], fix);
            if ok {
                println!("AOF looks OK");
            }
            ok
        }
        Err(e) => {
            println!("{e}");
            false
        }
    }
}

/// Entry point of `tessera check ARGS`; returns the process exit status.
pub fn main(args: &[String]) -> i32 {
    let mut fix = false;
    let mut paths = Vec::new();
    for a in args {
        match a.as_str() {
            "--fix" => fix = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        eprintln!("{USAGE}");
        return 1;
    }
    let mut ok = true;
    for p in &paths {
        ok &= check_path(p, fix);
    }
    if ok {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::aof::records::push_cmd;

    fn scan(buf: &[u8]) -> (RespScan, Option<OpenUnit>, Vec<(u64, u64)>) {
        let (mut open, mut parts, mut done) = (None, None, Vec::new());
        let s = scan_resp(buf, 0, &mut open, &mut parts, &mut done);
        (s, open, done)
    }

    #[test]
    fn brackets_torn_tails_and_damage_are_told_apart() {
        let mut buf = Vec::new();
        push_cmd(&mut buf, &["SET", "a", "1"]);
        push_cmd(&mut buf, &["TESSERA.TXBEGIN", "7", "2"]);
        push_cmd(&mut buf, &["SET", "b", "1"]);
        push_cmd(&mut buf, &["TESSERA.TXEND", "7"]);
        let (s, open, done) = scan(&buf);
        assert_eq!((s.records, s.problem, open.is_none()), (4, None, true));
        assert_eq!(done, vec![(7, 2)]);

        let good = buf.len();
        push_cmd(&mut buf, &["TESSERA.TXBEGIN", "8", "2"]);
        push_cmd(&mut buf, &["SET", "c", "1"]);
        let (s, open, _) = scan(&buf);
        assert_eq!(s.problem, None);
        assert_eq!(open.unwrap().offset, good);
        buf.extend_from_slice(b"*3\r\n$3\r\nSET");
        let full = buf.len() - 11;
        let (s, _, _) = scan(&buf);
        assert_eq!(s.problem, Some(AofProblem::TornTail { offset: full }));

        let mut nested = Vec::new();
        push_cmd(&mut nested, &["TESSERA.TXBEGIN", "1", "2"]);
        push_cmd(&mut nested, &["TESSERA.TXBEGIN", "2", "2"]);
        assert!(matches!(
            scan(&nested).0.problem,
            Some(AofProblem::Corrupt { .. })
        ));
        let mut stray = Vec::new();
        push_cmd(&mut stray, &["TESSERA.TXEND", "1"]);
        assert!(matches!(
            scan(&stray).0.problem,
            Some(AofProblem::Corrupt { offset: 0, .. })
        ));
        let mut unknown = Vec::new();
        push_cmd(&mut unknown, &["SET", "a", "1"]);
        let at = unknown.len();
        push_cmd(&mut unknown, &["NOSUCHCMD"]);
        assert_eq!(
            scan(&unknown).0.problem,
            Some(AofProblem::Corrupt {
                offset: at,
                reason: "unknown command 'NOSUCHCMD'".into()
            })
        );
    }

    #[test]
    fn library_names_come_from_the_shebang() {
        assert_eq!(
            library_name(b"#!lua name=mylib\nredis.register_function('f', function() end)"),
            "mylib"
        );
        assert_eq!(library_name(b"return 1"), "?");
    }
}

//! `tessera export-rdb`: merges a sharded snapshot (every shard file the manifest names) into
//! one plain RDB file that stock Redis 7.0 loads: the function libraries once, each database in
//! one SELECTDB section with its size hint, expiries and IDLE/FREQ metadata kept.
//!
//! Owns: the command line of the subcommand and the merge. Runs as a plain process without any
//! server (blocking std::fs is fine). Must never write the output in place: it goes to
//! `OUT.tmp`, is fsynced and renamed, so OUT is either the old file or the whole new one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::check::{classify, FileKindGuess};
use super::rdb::{AccessMeta, LoadLimits, RdbItem, RdbReader, RdbWriter, WriteOptions};
use super::snapshot::manifest::{manifest_name, open_rdb, SnapshotManifest};

const USAGE: &str = "Usage: tessera export-rdb [--dir DIR] [--dbfilename NAME] [SOURCE] OUT

Writes ONE uncompressed RDB file OUT (loadable by redis-server 7.0) from a Tessera snapshot.
SOURCE is a snapshot manifest or a single shard file (plain or zstd). Without SOURCE the
snapshot is DIR/NAME.manifest (defaults: DIR '.', NAME 'dump.rdb'), or DIR/NAME itself when
that file is an RDB stream. OUT is written as OUT.tmp, fsynced, then renamed.";

/// Per-database totals, for the RESIZEDB hints.
#[derive(Default)]
struct DbCount {
    keys: u64,
    expires: u64,
}

/// The RDB streams a source names, and the snapshot's ctime when a manifest gives one.
fn resolve(source: &Path) -> Result<(Vec<PathBuf>, Option<u64>), String> {
    match classify(source)? {
        FileKindGuess::Rdb => Ok((vec![source.to_path_buf()], None)),
        FileKindGuess::SnapshotManifest => {
            let m = SnapshotManifest::read(source)?
                .ok_or_else(|| format!("{}: no such file", source.display()))?;
            let dir = source.parent().unwrap_or(Path::new("."));
            let files: Vec<PathBuf> = m.files.iter().map(|f| dir.join(&f.name)).collect();
            if let Some(missing) = files.iter().find(|f| !f.is_file()) {
                return Err(format!(
                    "{}: the shard file {} is missing",
                    source.display(),
                    missing.display()
                ));
            }
            Ok((files, Some(m.ctime)))
        }
        _ => Err(format!(
            "{}: not an RDB file or a snapshot manifest",
            source.display()
        )),
    }
}

/// Streams the items of one file to `f` with the database each belongs to.
fn for_each_item(
    path: &Path,
    mut f: impl FnMut(u64, RdbItem) -> Result<(), String>,
) -> Result<(), String> {
    let input = open_rdb(path).map_err(|e| format!("Can't open {}: {}", path.display(), e))?;
    let mut r = RdbReader::new(input, LoadLimits::default())
        .map_err(|e| format!("{}: {}", path.display(), e))?;
    let mut db = 0;
    loop {
        let at = r.offset();
        match r.next_item() {
            Ok(Some(RdbItem::SelectDb(d))) => db = d,
            Ok(Some(item)) => f(db, item)?,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "{}: {} (item at offset {}); run 'tessera check' on it",
                    path.display(),
                    e,
                    at
                ))
            }
        }
    }
}

/// What was written.
pub struct ExportSummary {
    pub keys: u64,
    pub dbs: usize,
    pub functions: usize,
}

/// Merges `files` into the RDB file `out`.
pub fn export(files: &[PathBuf], ctime: Option<u64>, out: &Path) -> Result<ExportSummary, String> {
    // First pass: the size hints and the function libraries (each distinct library once).
    let mut counts: BTreeMap<u64, DbCount> = BTreeMap::new();
    let mut functions: Vec<bytes::Bytes> = Vec::new();
    for path in files {
        for_each_item(path, |db, item| {
            match item {
                RdbItem::Entry(e) => {
                    let c = counts.entry(db).or_default();
                    c.keys += 1;
                    c.expires += (e.expire_ms != 0) as u64;
                }
                RdbItem::Function(code) => functions.push(code),
                _ => {}
            }
            Ok(())
        })?;
    }
    let mut seen_code = BTreeSet::new();
    functions.retain(|code| seen_code.insert(code.clone()));
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    let file = std::fs::File::create(&tmp)
        .map_err(|e| format!("Can't create {}: {}", tmp.display(), e))?;
    let werr = |e: std::io::Error| format!("Can't write {}: {}", tmp.display(), e);
    let mut opts = WriteOptions::default();
    if let Some(c) = ctime {
        opts.ctime = c;
    }
    let result = (|| {
        let mut w =
            RdbWriter::new(std::io::BufWriter::with_capacity(1 << 16, file), opts).map_err(werr)?;
        for code in &functions {
            w.write_function(code).map_err(werr)?;
        }
        // Second pass, once per database: a database's entries may lie in every file, in
        // several sections each, and Redis wants them under one SELECTDB with its hint.
        for (&db, c) in &counts {
            w.select_db(db, c.keys, c.expires).map_err(werr)?;
            for path in files {
                for_each_item(path, |in_db, item| {
                    if let (true, RdbItem::Entry(e)) = (in_db == db, item) {
                        let meta = match (e.idle_secs, e.freq) {
                            (Some(idle), _) => AccessMeta::Idle(idle),
                            (None, Some(f)) => AccessMeta::Freq(f),
                            (None, None) => AccessMeta::None,
                        };
                        w.write_entry(&e.key, &e.value, e.expire_ms, meta)
                            .map_err(werr)?;
                    }
                    Ok(())
                })?;
            }
        }
        let buffered = w.finish().map_err(werr)?;
        let mut file = buffered.into_inner().map_err(|e| werr(e.into_error()))?;
        file.flush().map_err(werr)?;
        file.sync_all().map_err(werr)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("Can't rename {} to {}: {}", tmp.display(), out.display(), e)
    })?;
    // The rename is durable only once the directory is.
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(ExportSummary {
        keys: counts.values().map(|c| c.keys).sum(),
        dbs: counts.len(),
        functions: functions.len(),
    })
}

/// Entry point of `tessera export-rdb ARGS`; returns the process exit status.
pub fn main(args: &[String]) -> i32 {
    let mut dir = PathBuf::from(".");
    let mut dbfilename = "dump.rdb".to_string();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            "--dir" | "--dbfilename" => {
                let Some(v) = it.next() else {
                    eprintln!("{a} needs a value\n\n{USAGE}");
                    return 1;
                };
                if a == "--dir" {
                    dir = PathBuf::from(v);
                } else {
                    dbfilename = v.clone();
                }
            }
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let (source, out) = match positional.as_slice() {
        [out] => {
            let manifest = dir.join(manifest_name(&dbfilename));
            let plain = dir.join(&dbfilename);
            let source = if !manifest.exists() && plain.is_file() {
                plain
            } else {
                manifest
            };
            (source, out.clone())
        }
        [source, out] => (source.clone(), out.clone()),
        _ => {
            eprintln!("{USAGE}");
            return 1;
        }
    };
    let result = resolve(&source)
        .and_then(|(files, ctime)| export(&files, ctime, &out).map(|s| (s, files.len())));
    match result {
        Ok((s, nfiles)) => {
            println!(
                "Exported {} keys in {} databases and {} function libraries from {} files to {}",
                s.keys,
                s.dbs,
                s.functions,
                nfiles,
                out.display()
            );
            0
        }
        Err(e) => {
            eprintln!("export-rdb: {e}");
            1
        }
    }
}

//! The snapshot manifest and how shard files are opened.
//!
//! A snapshot is one RDB stream per shard plus a small text manifest in `dir`, named
//! `<dbfilename>.manifest` (e.g. `dump.rdb.manifest`):
//!
//! ```text
//! # tessera snapshot manifest
//! tessera-snapshot version 1 shards 4 compression zstd ctime 1764140000
//! file dump.rdb.s0.12.rdb.zst shard 0
//! file dump.rdb.s1.12.rdb.zst shard 1
//! ...
//! ```
//!
//! Each shard file is a complete Redis RDB stream (header, AUX fields, SELECTDB sections, EOF,
//! CRC64 trailer); with `compression zstd` the whole stream is one zstd frame (file name ending
//! in `.zst`), otherwise it is the plain RDB that `redis-check-rdb` reads. A shard's file may
//! name the same database in several SELECTDB sections (entries saved early by copy-on-write are
//! written where they happen). Function libraries are only in shard 0's file. The number in the
//! file names is the snapshot's sequence, so a new snapshot never overwrites the files the
//! current manifest names.
//!
//! Parsing, formatting and opening only; never writes.

use std::io::Read;
use std::path::Path;

/// Version of the manifest format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// How shard files are compressed (`snapshot-compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    None,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    pub fn from_name(s: &str) -> Option<Compression> {
        match s {
            "zstd" => Some(Compression::Zstd),
            "none" => Some(Compression::None),
            _ => None,
        }
    }

    /// The file name suffix after `.rdb`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Zstd => ".rdb.zst",
            Compression::None => ".rdb",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardFile {
    /// File name, relative to `dir`.
    pub name: String,
    pub shard: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotManifest {
    pub shards: usize,
    pub compression: Compression,
    /// Unix seconds of the snapshot's cut.
    pub ctime: u64,
    pub files: Vec<ShardFile>,
}

/// The manifest's file name for a `dbfilename`.
pub fn manifest_name(dbfilename: &str) -> String {
    format!("{dbfilename}.manifest")
}

/// The name of shard `shard`'s file in snapshot `seq`.
pub fn shard_file_name(dbfilename: &str, shard: usize, seq: u64, c: Compression) -> String {
    format!("{dbfilename}.s{shard}.{seq}{}", c.suffix())
}

/// The sequence number in a shard file name written by `shard_file_name` (0 if none).
pub fn seq_of(name: &str) -> u64 {
    let stem = name
        .strip_suffix(".rdb.zst")
        .or_else(|| name.strip_suffix(".rdb"))
        .unwrap_or(name);
    stem.rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

impl SnapshotManifest {
    pub fn format(&self) -> String {
        let mut s = format!(
            "# tessera snapshot manifest\ntessera-snapshot version {} shards {} compression {} ctime {}\n",
            FORMAT_VERSION,
            self.shards,
            self.compression.name(),
            self.ctime
        );
        for f in &self.files {
            s.push_str(&format!("file {} shard {}\n", f.name, f.shard));
        }
        s
    }

    /// Parses a manifest; every shard from 0 to `shards - 1` must have exactly one file.
    pub fn parse(text: &str) -> Result<SnapshotManifest, String> {
        let mut header = None;
        let mut files: Vec<ShardFile> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let w: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("Invalid snapshot manifest line {}: '{}'", n + 1, line);
            match w.first() {
                Some(&"tessera-snapshot") => {
                    if w.len() != 9
                        || w[1] != "version"
                        || w[3] != "shards"
                        || w[5] != "compression"
                        || w[7] != "ctime"
                    {
                        return Err(bad());
                    }
                    let v: u32 = w[2].parse().map_err(|_| bad())?;
                    if v != FORMAT_VERSION {
                        return Err(format!("Unsupported snapshot manifest version {v}"));
                    }
                    let shards: usize = w[4].parse().map_err(|_| bad())?;
                    let c = Compression::from_name(w[6]).ok_or_else(bad)?;
                    let ctime: u64 = w[8].parse().map_err(|_| bad())?;
                    if shards == 0 {
                        return Err(bad());
                    }
                    header = Some((shards, c, ctime));
                }
                Some(&"file") => {
                    if w.len() != 4 || w[2] != "shard" || w[1].contains('/') {
                        return Err(bad());
                    }
                    files.push(ShardFile {
                        name: w[1].to_string(),
                        shard: w[3].parse().map_err(|_| bad())?,
                    });
                }
                _ => return Err(bad()),
            }
        }
        let (shards, compression, ctime) =
            header.ok_or("The snapshot manifest has no 'tessera-snapshot' header line")?;
        for s in 0..shards {
            let n = files.iter().filter(|f| f.shard == s).count();
            if n != 1 {
                return Err(format!(
                    "The snapshot manifest names {n} files for shard {s} (expected one)"
                ));
            }
        }
        if let Some(f) = files.iter().find(|f| f.shard >= shards) {
            return Err(format!(
                "The snapshot manifest names file {} of shard {} but only {} shards",
                f.name, f.shard, shards
            ));
        }
        files.sort_by_key(|f| f.shard);
        Ok(SnapshotManifest {
            shards,
            compression,
            ctime,
            files,
        })
    }

    /// Reads and parses the manifest at `path`; `Ok(None)` if there is none.
    pub fn read(path: &Path) -> Result<Option<SnapshotManifest>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => SnapshotManifest::parse(&text)
                .map(Some)
                .map_err(|e| format!("{}: {}", path.display(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("Can't read {}: {}", path.display(), e)),
        }
    }
}

/// The four bytes every zstd frame starts with.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Opens an RDB stream for reading, plain or zstd-compressed (told apart by the first bytes,
/// whatever the file is called).
pub fn open_rdb(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = f.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let prefix = std::io::Cursor::new(head[..got].to_vec());
    let whole = prefix.chain(std::io::BufReader::with_capacity(1 << 16, f));
    if got == 4 && head == ZSTD_MAGIC {
        Ok(Box::new(zstd::stream::read::Decoder::new(whole)?))
    } else {
        Ok(Box::new(whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_bad_ones_are_refused() {
        let m = SnapshotManifest {
            shards: 2,
            compression: Compression::Zstd,
            ctime: 1_764_140_000,
            files: vec![
                ShardFile {
                    name: shard_file_name("dump.rdb", 0, 7, Compression::Zstd),
                    shard: 0,
                },
                ShardFile {
                    name: shard_file_name("dump.rdb", 1, 7, Compression::Zstd),
                    shard: 1,
                },
            ],
        };
        assert_eq!(m.files[1].name, "dump.rdb.s1.7.rdb.zst");
        assert_eq!(seq_of(&m.files[1].name), 7);
        assert_eq!(seq_of("dump.rdb.s3.12.rdb"), 12);
        assert_eq!(SnapshotManifest::parse(&m.format()).unwrap(), m);
        let head = "tessera-snapshot version 1 shards 2 compression none ctime 5\n";
        // A shard without its file, a shard twice, a shard out of range, a bad word.
        assert!(SnapshotManifest::parse(&format!("{head}file a shard 0\n")).is_err());
        assert!(SnapshotManifest::parse(&format!(
            "{head}file a shard 0\nfile b shard 1\nfile c shard 1\n"
        ))
        .is_err());
        assert!(SnapshotManifest::parse(&format!(
            "{head}file a shard 0\nfile b shard 1\nfile c shard 2\n"
        ))
        .is_err());
        assert!(
            SnapshotManifest::parse(&format!("{head}file a shard 0\nfile ../b shard 1\n")).is_err()
        );
        assert!(SnapshotManifest::parse("file a shard 0\n").is_err());
        assert!(SnapshotManifest::parse(
            "tessera-snapshot version 2 shards 1 compression none ctime 5\nfile a shard 0\n"
        )
        .is_err());
    }
}

//! The top-level AOF manifest: which files make up each shard's log, in Redis 7's multi-part
//! line format extended with the shard (`file <name> seq <n> type b|i shard <k>`) and a header
//! naming the shard count and the format version.
//!
//! Parsing and formatting only; never touches the disk itself.

/// Version of the manifest and record format written by this build.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Base,
    Incr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
    pub shard: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub shards: usize,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// A shard's files in replay order: its base first, then its incremental files by sequence.
    pub fn files_of(&self, shard: usize) -> Vec<&FileEntry> {
        let mut v: Vec<&FileEntry> = self.files.iter().filter(|f| f.shard == shard).collect();
        v.sort_by_key(|f| (f.kind == FileKind::Incr, f.seq));
        v
    }

    /// The highest sequence number in use (new files take the next one).
    pub fn max_seq(&self) -> u64 {
        self.files.iter().map(|f| f.seq).max().unwrap_or(0)
    }

    pub fn format(&self) -> String {
        let mut s = format!(
            "# tessera multi-part AOF manifest\ntessera-aof version {} shards {}\n",
            FORMAT_VERSION, self.shards
        );
        for f in &self.files {
            s.push_str(&format!(
                "file {} seq {} type {} shard {}\n",
                f.name,
                f.seq,
                if f.kind == FileKind::Base { "b" } else { "i" },
                f.shard
            ));
        }
        s
    }

    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut shards = None;
        let mut files = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("Invalid AOF manifest line {}: '{}'", n + 1, line);
            match words.first() {
                Some(&"tessera-aof") => {
                    if words.len() != 5 || words[1] != "version" || words[3] != "shards" {
                        return Err(bad());
                    }
                    let v: u32 = words[2].parse().map_err(|_| bad())?;
                    if v != FORMAT_VERSION {
                        return Err(format!("Unsupported AOF manifest version {}", v));
                    }
                    let s: usize = words[4].parse().map_err(|_| bad())?;
                    if s == 0 {
                        return Err(bad());
                    }
                    shards = Some(s);
                }
                Some(&"file") => {
                    if words.len() != 8
                        || words[2] != "seq"
                        || words[4] != "type"
                        || words[6] != "shard"
                    {
                        return Err(bad());
                    }
                    let name = words[1].to_string();
                    if name.contains('/') {
                        return Err(bad());
                    }
                    let kind = match words[5] {
                        "b" => FileKind::Base,
                        "i" => FileKind::Incr,
                        _ => return Err(bad()),
                    };
                    files.push(FileEntry {
                        name,
                        seq: words[3].parse().map_err(|_| bad())?,
                        kind,
                        shard: words[7].parse().map_err(|_| bad())?,
                    });
                }
                _ => return Err(bad()),
            }
        }
        let shards = shards.ok_or("The AOF manifest has no 'tessera-aof' header line")?;
        if let Some(f) = files.iter().find(|f| f.shard >= shards) {
            return Err(format!(
                "The AOF manifest names file {} of shard {} but only {} shards",
                f.name, f.shard, shards
            ));
        }
        Ok(Manifest { shards, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_survives_formatting_and_rejects_bad_lines() {
        let m = Manifest {
            shards: 2,
            files: vec![
                FileEntry {
                    name: "a.s1.3.incr.aof".into(),
                    seq: 3,
                    kind: FileKind::Incr,
                    shard: 1,
                },
                FileEntry {
                    name: "a.s1.2.base.aof".into(),
                    seq: 2,
                    kind: FileKind::Base,
                    shard: 1,
                },
            ],
        };
        let back = Manifest::parse(&m.format()).unwrap();
        assert_eq!(back, m);
        let order: Vec<u64> = back.files_of(1).iter().map(|f| f.seq).collect();
        assert_eq!(order, vec![2, 3]);
        assert!(Manifest::parse("file x seq 1 type i shard 0\n").is_err());
        assert!(
            Manifest::parse("tessera-aof version 1 shards 1\nfile x seq 1 type q shard 0\n")
                .is_err()
        );
        assert!(
            Manifest::parse("tessera-aof version 1 shards 1\nfile x seq 1 type i shard 1\n")
                .is_err()
        );
    }
}

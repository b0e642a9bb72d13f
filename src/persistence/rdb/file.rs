//! Whole RDB files, written and read as streams: [`RdbWriter`] produces what Redis 7.0's
//! `rdbSaveRio` produces (header, AUX fields, functions, per database SELECTDB + RESIZEDB and
//! the entries with their EXPIRETIME_MS / IDLE / FREQ opcodes, EOF, CRC64 trailer), and
//! [`RdbReader`] yields the items of any file Redis 7.0 writes, verifying the trailer.
//!
//! Both work on one stream at a time and hold only the current entry in memory, so that a shard
//! can write or read its part of a snapshot incrementally. Neither knows about shards, the
//! keyspace or the event loop: the caller hands entries in and takes them out.

use std::io::{Read, Write};

use bytes::Bytes;

use super::io::{
    read_len, read_string, read_string_with, write_len, write_string, Source, StreamSource,
};
use super::value::{read_object, write_object, LoadLimits};
use super::{opcodes, RdbError, RDB_VERSION};
use crate::types::key::Key;
use crate::types::Value;

/// Access metadata saved with an entry (only under an LRU or LFU `maxmemory-policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessMeta {
    #[default]
    None,
    /// Seconds since the last access (LRU policies): the IDLE opcode.
    Idle(u64),
    /// The LFU counter (LFU policies): the FREQ opcode.
    Freq(u8),
}

/// What the header's AUX fields say and how values are written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF for strings over 20 bytes where it helps.
    pub compress: bool,
    /// `rdbchecksum`: false writes a zero trailer, which readers accept unchecked.
    pub checksum: bool,
    /// The `ctime` AUX field (Unix seconds).
    pub ctime: u64,
    /// The `used-mem` AUX field.
    pub used_mem: u64,
    /// The `aof-base` AUX field: whether this file is an AOF base (preamble).
    pub aof_base: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compress: true,
            checksum: true,
            ctime: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            used_mem: 0,
            aof_base: false,
        }
    }
}

/// Serialized entries gathered before they go to the stream (and into the checksum) at once:
/// a span this long is checksummed several times faster than entry by entry.
const FLUSH_AT: usize = 16 << 10;

/// Streams an RDB file out. Call `select_db` before each database's entries and `finish` at
/// the end; dropping the writer without `finish` leaves a file without trailer, which every
/// reader refuses. Entries reach the stream in spans of about `FLUSH_AT` bytes; `get_mut` and
/// `finish` hand over whatever is gathered.
pub struct RdbWriter<W: Write> {
    out: W,
    crc: u64,
    opts: WriteOptions,
    buf: Vec<u8>,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the header and the AUX fields Redis 7.0 writes (redis-ver, redis-bits, ctime,
    /// used-mem, aof-base).
    pub fn new(out: W, opts: WriteOptions) -> std::io::Result<RdbWriter<W>> {
        let mut w = RdbWriter {
            out,
            crc: 0,
            opts,
            buf: Vec::with_capacity(4096),
        };
        w.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let ctime = w.opts.ctime.to_string();
        let used = w.opts.used_mem.to_string();
        let aof = if w.opts.aof_base { "1" } else { "0" };
        w.aux(b"redis-ver", crate::REDIS_VERSION.as_bytes());
        w.aux(b"redis-bits", b"64");
        w.aux(b"ctime", ctime.as_bytes());
        w.aux(b"used-mem", used.as_bytes());
        w.aux(b"aof-base", aof.as_bytes());
        w.flush_buf()?;
        Ok(w)
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.opts.checksum {
            self.crc = super::crc64(self.crc, &self.buf);
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Queues an AUX field (written with the next flush).
    fn aux(&mut self, key: &[u8], value: &[u8]) {
        self.buf.push(opcodes::AUX);
        write_string(&mut self.buf, key, false);
        write_string(&mut self.buf, value, false);
    }

    /// Writes an extra AUX field.
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        self.aux(key, value);
        self.flush_buf()
    }

    /// Writes a function library (FUNCTION2 opcode with its code), before the databases.
    pub fn write_function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.buf.push(opcodes::FUNCTION2);
        write_string(&mut self.buf, code, self.opts.compress);
        self.flush_buf()
    }

    /// Starts database `db`, announcing its key count and keys-with-deadline count.
    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) -> std::io::Result<()> {
        self.buf.push(opcodes::SELECTDB);
        write_len(&mut self.buf, db);
        self.buf.push(opcodes::RESIZEDB);
        write_len(&mut self.buf, keys);
        write_len(&mut self.buf, expires);
        self.flush_buf()
    }

    /// Switches to database `db` without a size hint (a stream may come back to a database:
    /// entries a snapshot saves early are written where they happen).
    pub fn switch_db(&mut self, db: u64) -> std::io::Result<()> {
        self.buf.push(opcodes::SELECTDB);
        write_len(&mut self.buf, db);
        self.flush_buf()
    }

    /// The stream, with every entry written so far handed to it (a `Vec` sink is drained by its
    /// owner between entries).
    pub fn get_mut(&mut self) -> std::io::Result<&mut W> {
        self.flush_buf()?;
        Ok(&mut self.out)
    }

    /// Writes one key: its deadline (Unix ms, 0 for none), access metadata, type, key, value.
    pub fn write_entry(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_ms: u64,
        meta: AccessMeta,
    ) -> std::io::Result<()> {
        if expire_ms != 0 {
            self.buf.push(opcodes::EXPIRETIME_MS);
            self.buf.extend_from_slice(&expire_ms.to_le_bytes());
        }
        match meta {
            AccessMeta::None => {}
            AccessMeta::Idle(secs) => {
                self.buf.push(opcodes::IDLE);
                write_len(&mut self.buf, secs);
            }
            AccessMeta::Freq(f) => {
                self.buf.push(opcodes::FREQ);
                self.buf.push(f);
            }
        }
        let at = self.buf.len();
        self.buf.push(0);
        write_string(&mut self.buf, key, self.opts.compress);
        // The type byte comes first but is only known once the value is encoded.
        let body = self.buf.len();
        write_object(&mut self.buf, value, self.opts.compress);
        self.buf[at] = self.buf[body];
        self.buf.remove(body);
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes EOF and the CRC64 trailer (zero without `rdbchecksum`), flushes, and returns the
    /// stream.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.push(opcodes::EOF);
        self.flush_buf()?;
        let crc = if self.opts.checksum { self.crc } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One key read from a file.
#[derive(Debug, Clone)]
pub struct RdbEntry {
    /// In the form the keyspace stores it (inline when short: read without an allocation).
    pub key: Key,
    pub value: Value,
    /// Absolute deadline in Unix milliseconds; 0 for none.
    pub expire_ms: u64,
    /// Seconds idle (IDLE opcode), when the file has it.
    pub idle_secs: Option<u64>,
    /// LFU counter (FREQ opcode), when the file has it.
    pub freq: Option<u8>,
}

/// What a file holds, in order.
#[derive(Debug, Clone)]
pub enum RdbItem {
    /// An AUX field (redis-ver, ctime, repl-id, lua scripts of old versions, ...).
    Aux {
        key: Bytes,
        value: Bytes,
    },
    /// The following entries belong to this database.
    SelectDb(u64),
    /// The size hint of the current database.
    ResizeDb {
        keys: u64,
        expires: u64,
    },
    /// A function library's code (FUNCTION2).
    Function(Bytes),
    Entry(RdbEntry),
}

/// Reads an RDB file item by item. Entries whose value has no elements are skipped (as
/// Redis does); the trailer is verified when EOF is reached (a zero checksum is accepted, as
/// written with `rdbchecksum no`, and any while DEBUG SET-SKIP-CHECKSUM-VALIDATION is on).
pub struct RdbReader<R: Read> {
    src: StreamSource<R>,
    version: u32,
    limits: LoadLimits,
    done: bool,
}

impl<R: Read> RdbReader<R> {
    /// Reads and checks the header. `limits` are the encoding thresholds values are fitted to.
    pub fn new(inner: R, limits: LoadLimits) -> Result<RdbReader<R>, RdbError> {
        let mut src = StreamSource::new(inner);
        let mut magic = [0u8; 9];
        src.read_exact(&mut magic)?;
        if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
            return Err(RdbError::corrupt("wrong signature (not an RDB file)"));
        }
        let version: u32 = std::str::from_utf8(&magic[5..])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !(1..=super::MAX_READ_VERSION).contains(&version) {
            return Err(RdbError::Unsupported(format!(
                "RDB format version {version}"
            )));
        }
        Ok(RdbReader {
            src,
            version,
            limits,
            done: false,
        })
    }

    /// The file's RDB format version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// The next item, or None after EOF (and a good trailer).
    pub fn next_item(&mut self) -> Result<Option<RdbItem>, RdbError> {
        if self.done {
            return Ok(None);
        }
        let mut expire_ms = 0u64;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            let op = self.src.read_u8()?;
            match op {
                opcodes::EOF => {
                    self.finish()?;
                    return Ok(None);
                }
                opcodes::AUX => {
                    let key = read_string(&mut self.src)?;
                    let value = read_string(&mut self.src)?;
                    return Ok(Some(RdbItem::Aux {
                        key: key.into(),
                        value: value.into(),
                    }));
                }
                opcodes::SELECTDB => {
                    let db = read_len(&mut self.src)?;
                    return Ok(Some(RdbItem::SelectDb(db)));
                }
                opcodes::RESIZEDB => {
                    let keys = read_len(&mut self.src)?;
                    let expires = read_len(&mut self.src)?;
                    return Ok(Some(RdbItem::ResizeDb { keys, expires }));
                }
                opcodes::FUNCTION2 => {
                    let code = read_string(&mut self.src)?;
                    return Ok(Some(RdbItem::Function(code.into())));
                }
                opcodes::FUNCTION_PRE_GA => {
                    return Err(RdbError::Unsupported(
                        "functions in the pre-release 7.0 format".into(),
                    ))
                }
                opcodes::MODULE_AUX => {
                    return Err(RdbError::Unsupported("module data (MODULE_AUX)".into()))
                }
                opcodes::EXPIRETIME_MS => {
                    let mut b = [0u8; 8];
                    self.src.read_exact(&mut b)?;
                    expire_ms = i64::from_le_bytes(b).max(1) as u64;
                }
                opcodes::EXPIRETIME => {
                    let mut b = [0u8; 4];
                    self.src.read_exact(&mut b)?;
                    expire_ms = (i32::from_le_bytes(b) as i64 * 1000).max(1) as u64;
                }
                opcodes::IDLE => idle_secs = Some(read_len(&mut self.src)?),
                opcodes::FREQ => freq = Some(self.src.read_u8()?),
                ty => {
                    let key = read_string_with(&mut self.src, |b| Key::new(&b))?;
                    match read_object(ty, &mut self.src, &self.limits) {
                        Ok(value) => {
                            return Ok(Some(RdbItem::Entry(RdbEntry {
                                key,
                                value,
                                expire_ms,
                                idle_secs,
                                freq,
                            })))
                        }
                        Err(RdbError::EmptyValue) => {
                            expire_ms = 0;
                            idle_secs = None;
                            freq = None;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), RdbError> {
        self.done = true;
        if self.version < 5 {
            return Ok(());
        }
        let computed = self.src.crc();
        let mut b = [0u8; 8];
        self.src.read_exact_raw(&mut b)?;
        let stored = u64::from_le_bytes(b);
        if stored != 0
            && stored != computed
            && !super::SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(RdbError::BadChecksum { stored, computed });
        }
        Ok(())
    }
}

impl<R: Read> Iterator for RdbReader<R> {
    type Item = Result<RdbItem, RdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(Some(i)) => Some(Ok(i)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

//! Redis's RDB format (version 10, as Redis 7.0 writes it), in small parts:
//!
//! * [`crc`]: CRC64 as Redis computes it.
//! * [`lzf`]: LZF compression as Redis's strings use it.
//! * [`packed`]: listpack, ziplist, intset and zipmap blobs.
//! * [`io`]: lengths, strings, doubles; slice and stream sources.
//! * [`value`]: one keyspace value <-> one RDB object.
//! * [`file`]: streaming whole-file writer and reader.
//! * here: opcodes, errors and the DUMP payload (object + version + CRC64).
//!
//! Everything that reads validates its input completely and reports [`RdbError`] for anything
//! malformed: it never panics and never sizes an allocation from an untrusted count beyond what
//! the input can hold. Nothing here touches the keyspace, the config or the event loop.

pub mod crc;
pub mod file;
pub mod io;
pub mod lzf;
pub mod packed;
pub mod stream_groups;
pub mod value;

pub use file::{AccessMeta, RdbEntry, RdbItem, RdbReader, RdbWriter, WriteOptions};
pub use value::{object_type, read_object, write_object, LoadLimits};

use crate::types::Value;

/// The format version written (Redis 7.0's `RDB_VERSION`).
pub const RDB_VERSION: u32 = 10;
/// Newest file version read: 7.2 (11) and 7.4 (12) files load when they only use types we know.
pub const MAX_READ_VERSION: u32 = 12;

/// File opcodes (the byte before each item).
pub mod opcodes {
    /// Function library (Redis 7.0 GA format).
    pub const FUNCTION2: u8 = 245;
    /// Function library in the 7.0 release-candidate format (not read).
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Why RDB input was refused.
#[derive(Debug)]
pub enum RdbError {
    /// Reading the stream failed.
    Io(std::io::Error),
    /// The input ended in the middle of an item.
    Truncated,
    /// The input is malformed (the reason says where).
    Corrupt(String),
    /// A value with no elements: Redis skips such keys when loading, RESTORE refuses them.
    EmptyValue,
    /// Well-formed but not supported here (modules, streams, newer formats).
    Unsupported(String),
    /// The file's CRC64 trailer does not match its contents.
    BadChecksum { stored: u64, computed: u64 },
}

impl RdbError {
    pub fn corrupt(why: &str) -> RdbError {
        RdbError::Corrupt(why.to_string())
    }
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::Io(e) => write!(f, "I/O error: {e}"),
            RdbError::Truncated => write!(f, "unexpected end of input"),
            RdbError::Corrupt(why) => write!(f, "corrupt RDB data: {why}"),
            RdbError::EmptyValue => write!(f, "empty value"),
            RdbError::Unsupported(what) => write!(f, "unsupported: {what}"),
            RdbError::BadChecksum { stored, computed } => write!(
                f,
                "wrong RDB checksum (stored {stored:016x}, computed {computed:016x})"
            ),
        }
    }
}

impl std::error::Error for RdbError {}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        RdbError::Io(e)
    }
}

/// CRC64 (Jones, reflected, init 0) as Redis computes it (see [`crc`]).
pub fn crc64(crc: u64, data: &[u8]) -> u64 {
    crc::crc64(crc, data)
}

/// A DUMP payload: the RDB object, the RDB version (2 bytes LE) and the CRC64 of both (8
/// bytes LE).
pub fn dump_payload(v: &Value, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, v, compress);
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: while set, DUMP payloads (RESTORE, FUNCTION RESTORE)
/// and RDB files (startup, DEBUG RELOAD, RDB-preamble AOF bases) are accepted whatever their
/// CRC64, as in Redis (process-wide, like Redis's `server.skip_checksum_validation`). The
/// payload itself is still parsed and checked in full.
pub static SKIP_CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn skip_checksum() -> bool {
    SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether a DUMP payload has a version we read and a matching checksum
/// (`verifyDumpPayload`; the checksum is not compared while `SKIP_CHECKSUM` is set).
pub fn verify_payload(p: &[u8]) -> bool {
    if p.len() < 10 {
        return false;
    }
    let footer = &p[p.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]) as u32;
    if version > RDB_VERSION {
        return false;
    }
    if skip_checksum() {
        return true;
    }
    let crc = crc64(0, &p[..p.len() - 8]);
    crc.to_le_bytes() == footer[2..]
}

/// FUNCTION DUMP's payload: one FUNCTION2 record per library code, then the footer of a DUMP
/// payload (version and CRC64), as Redis's `functionDumpCommand` builds it.
pub fn function_dump_payload<'a>(
    codes: impl IntoIterator<Item = &'a [u8]>,
    compress: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(opcodes::FUNCTION2);
        io::write_string(&mut out, code, compress);
    }
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a FUNCTION RESTORE payload, checked as Redis's `functionRestoreCommand`
/// checks it; Err is the text of Redis's error reply.
pub fn function_restore_codes(p: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if !verify_payload(p) {
        return Err("ERR DUMP payload version or checksum are wrong");
    }
    let mut src = io::SliceSource::new(&p[..p.len() - 10]);
    let mut codes = Vec::new();
    while src.remaining() > 0 {
        match io::Source::read_u8(&mut src) {
            Err(_) => return Err("ERR can not read data type"),
            Ok(opcodes::FUNCTION_PRE_GA) => return Err("ERR Pre-GA function format not supported"),
            Ok(opcodes::FUNCTION2) => {}
            Ok(_) => return Err("ERR given type is not a function"),
        }
        match io::read_string(&mut src) {
            Ok(code) => codes.push(code),
            Err(_) => return Err("ERR Failed loading library payload"),
        }
    }
    Ok(codes)
}

/// The value of a verified DUMP payload. Like Redis, the object is read from the whole
/// payload (an object whose lengths run into the footer reads the footer's bytes), and bytes
/// after the object are ignored.
pub fn restore_value(p: &[u8], limits: &LoadLimits) -> Result<Value, RdbError> {
    let mut src = io::SliceSource::new(p);
    let ty = io::Source::read_u8(&mut src)?;
    read_object(ty, &mut src, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StrValue;

    #[test]
    fn crc64_is_redis_jones_variant() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn dump_payload_matches_redis() {
        // redis-cli --no-raw DUMP of SET s1 123 on Redis 7.0.15.
        let p = dump_payload(&Value::Str(StrValue::Int(123)), true);
        assert_eq!(p, b"\x00\xc0{\n\x00H\xe2S\xe1\x00zg\xb9".to_vec());
        assert!(verify_payload(&p));
        let mut bad = p.clone();
        bad[1] ^= 1;
        assert!(!verify_payload(&bad));
        let mut newer = p.clone();
        newer[3] = 11;
        assert!(!verify_payload(&newer));
        assert!(!verify_payload(&p[..9]));
        let v = restore_value(&p, &LoadLimits::default()).unwrap();
        assert_eq!(v, Value::Str(StrValue::Int(123)));
    }
}

//! RESP2/RESP3 wire protocol: the request parser and the reply writer.
//!
//! This module owns the bytes on the wire and nothing else. It never touches the keyspace, never
//! blocks, and never allocates per payload: request arguments are `Bytes` slices of the
//! connection's read buffer, and replies are appended to one reusable output buffer.

pub mod parse;
pub mod reply;

pub use parse::{parse_requests, ParseError, ParseLimits};
pub use reply::Reply;

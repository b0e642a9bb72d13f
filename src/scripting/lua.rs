//! The Lua side of scripting: one Lua 5.1 state per shard thread for EVAL scripts (and one for
//! function libraries), the sandbox Redis 7.0 builds around it, the `redis.*` API, and the
//! conversions between RESP replies and Lua values.
//!
//! `mlua` provides the vendored Lua 5.1 and owns each state; the glue below talks to the raw C
//! API (`mlua::ffi`) because Redis's observable behaviour depends on it: errors are Lua tables
//! (`{err=...}`), messages carry `luaL_error` positions, and busy scripts are watched by a count
//! hook.
//!
//! Sandbox (what Redis 7.0.15 exposes): the globals and the library tables are read-only
//! (Redis patches its Lua with read-only tables; here each protected table is an empty proxy
//! whose metatable forwards reads and refuses writes, and `rawset`/`rawget`/`next`/`pairs`/
//! `setmetatable` see through the proxies), reading an unknown global is an error, and only
//! Redis's allow-list of globals exists (no `os`, `io`, `loadfile`, `dofile`, `print`,
//! `require`, `getfenv`...).
//!
//! Errors raised from Rust code never leave live Rust values on the frames `lua_error` jumps
//! over: every C function computes what to raise, drops its owned data, then raises.
//!
//! This module never touches shard data itself: `redis.call` goes through the run context
//! installed by the caller (`RunHooks`), which decides where each command runs.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CStr};

use bytes::BytesMut;
use mlua::ffi::{self, lua_State};

use crate::protocol::Reply;

/// Chunk name of Tessera's own Lua code; error positions never point into it.
pub const INTERNAL_CHUNK: &CStr = c"=[tessera]";

/// What `redis.call` and the count hook ask of whoever runs the script.
pub trait RunHooks {
    /// Executes one command from the script. The reply is in the script's protocol.
    fn call(&mut self, args: Vec<bytes::Bytes>, resp3: bool) -> CallResult;
    /// Called every 100000 Lua instructions; returns an error message to stop the script with
    /// (SCRIPT KILL, or an internal abort).
    fn tick(&mut self) -> Option<String>;
    /// Whether `redis.register_function` is allowed now (FUNCTION LOAD) and where to put it.
    fn register_function(&mut self, _f: RegisteredFunction) -> Result<(), String> {
        Err("redis.register_function can only be called on FUNCTION LOAD command".into())
    }
}

/// A function registered by a library's code during FUNCTION LOAD.
pub struct RegisteredFunction {
    pub name: String,
    pub registry_ref: c_int,
    pub flags: u32,
    pub description: Option<String>,
}

pub enum CallResult {
    /// The command's reply (RESP, in the script's protocol).
    Reply(BytesMut),
    /// Refused before running (the text becomes `ERR <text>` unless it has a code).
    Refused(String),
    /// The run must stop now and will be thrown away (escalation to global mode).
    Abort,
}

/// The run in progress on this thread (set only while a script runs).
struct Current {
    hooks: *mut dyn RunHooks,
    resp: Cell<u8>,
    aborting: Cell<bool>,
}

thread_local! {
    static CURRENT: Cell<*const Current> = const { Cell::new(std::ptr::null()) };
    static RAND: Cell<u64> = const { Cell::new(0x1234_ABCD_330E) };
}

fn current<'a>() -> Option<&'a Current> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: set by `with_run` to a value that outlives the script run, cleared after.
    unsafe { p.as_ref() }
}

/// Kind of state: EVAL scripts, or function libraries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VmKind {
    Eval,
    Functions,
}

/// One Lua state with the Redis sandbox.
pub struct Vm {
    _lua: mlua::Lua,
    pub l: *mut lua_State,
    pub kind: VmKind,
    /// Scripting calls since the last incremental GC step.
    gc_count: Cell<u32>,
    /// Registry references to the real globals table and the error handler, taken once at
    /// build time so a run reaches them by integer index instead of hashing their names.
    globals_ref: Cell<c_int>,
    handler_ref: Cell<c_int>,
}

// ---------------------------------------------------------------------------------------------
// Small helpers over the C API
// ---------------------------------------------------------------------------------------------

pub unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    ffi::lua_pushlstring(l, b.as_ptr() as *const c_char, b.len());
}

pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

unsafe fn set_field_fn(l: *mut lua_State, name: &CStr, f: ffi::lua_CFunction) {
    ffi::lua_pushcfunction(l, f);
    ffi::lua_setfield(l, -2, name.as_ptr());
}

unsafe fn set_field_num(l: *mut lua_State, name: &CStr, n: f64) {
    ffi::lua_pushnumber(l, n);
    ffi::lua_setfield(l, -2, name.as_ptr());
}

/// Pushes Redis's error table: `{err="CODE message"}` (ERR added when the text has no code).
pub unsafe fn push_error_table(l: *mut lua_State, text: &[u8]) {
    let msg = error_with_code(text);
    ffi::lua_createtable(l, 0, 1);
    push_bytes(l, &msg);
    ffi::lua_setfield(l, -2, c"err".as_ptr());
}

/// Normalises an error text the way Redis's `luaPushErrorBuff` does: a leading `-` means the
/// first word is the code; otherwise the code is ERR. Trailing CR/LF are trimmed.
pub fn error_with_code(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = if let Some(rest) = text.strip_prefix(b"-") {
        match rest.iter().position(|&b| b == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        }
    } else {
        (b"ERR", text)
    };
    let mut msg = msg;
    while let Some((&last, rest)) = msg.split_last() {
        if last == b'\r' || last == b'\n' {
            msg = rest;
        } else {
            break;
        }
    }
    while let Some((&first, rest)) = msg.split_first() {
        if first == b'\r' || first == b'\n' {
            msg = rest;
        } else {
            break;
        }
    }
    let mut out = Vec::with_capacity(code.len() + 1 + msg.len());
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(msg);
    out
}

/// Raises `text` as an error table (`{err=...}`) from a C function.
unsafe fn raise_table(l: *mut lua_State, text: &[u8]) -> c_int {
    push_error_table(l, text);
    ffi::lua_error(l)
}

/// Raises an error string with the caller's position (like `luaL_error`).
unsafe fn raise_where(l: *mut lua_State, text: &[u8]) -> c_int {
    ffi::luaL_where(l, 1);
    push_bytes(l, text);
    ffi::lua_concat(l, 2);
    ffi::lua_error(l)
}

/// `%.17g` of a Lua number, as Redis formats numeric arguments of `redis.call`.
pub fn format_number_arg(n: f64) -> String {
    crate::protocol::reply::format_double(n)
}

/// C's `(long long)` cast of a double on x86-64: out of range and NaN give i64::MIN.
pub fn lua_number_to_i64(n: f64) -> i64 {
    // 2^63 as f64: the first value past i64::MAX.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

// ---------------------------------------------------------------------------------------------
// RESP -> Lua
// ---------------------------------------------------------------------------------------------

fn find_crlf(buf: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 1 < buf.len() && !(buf[i] == b'\r' && buf[i + 1] == b'\n') {
        i += 1;
    }
    i
}

fn line_i64(buf: &[u8], start: usize, end: usize) -> i64 {
    crate::commands::args::parse_i64(&buf[start..end]).unwrap_or(0)
}

/// Pushes the Lua value for the reply starting at `pos` (or skips it when `push` is false);
/// returns where the next reply starts. Follows Redis 7.0's `redisProtocolToLuaType`.
pub unsafe fn push_reply(l: *mut lua_State, buf: &[u8], pos: usize, push: bool) -> usize {
    if pos >= buf.len() {
        if push {
            ffi::lua_pushnil(l);
        }
        return pos;
    }
    ffi::lua_checkstack(l, 8);
    let t = buf[pos];
    let eol = find_crlf(buf, pos + 1);
    let next = (eol + 2).min(buf.len());
    let line = &buf[pos + 1..eol];
    match t {
        b':' => {
            if push {
                ffi::lua_pushnumber(l, line_i64(buf, pos + 1, eol) as f64);
            }
            next
        }
        b'+' => {
            if push {
                ffi::lua_createtable(l, 0, 1);
                push_bytes(l, line);
                ffi::lua_setfield(l, -2, c"ok".as_ptr());
            }
            next
        }
        b'-' => {
            if push {
                let mut text = Vec::with_capacity(line.len() + 1);
                text.push(b'-');
                text.extend_from_slice(line);
                push_error_table(l, &text);
                ffi::lua_pushboolean(l, 1);
                ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
            }
            next
        }
        b'$' | b'=' | b'!' => {
            let n = line_i64(buf, pos + 1, eol);
            if n < 0 {
                if push {
                    ffi::lua_pushboolean(l, 0);
                }
                return next;
            }
            let data = &buf[next..(next + n as usize).min(buf.len())];
            if push {
                match t {
                    b'$' => push_bytes(l, data),
                    b'=' => {
                        let (fmt, s) = if data.len() >= 4 {
                            (&data[..3], &data[4..])
                        } else {
                            (data, &b""[..])
                        };
                        ffi::lua_createtable(l, 0, 1);
                        ffi::lua_createtable(l, 0, 2);
                        push_bytes(l, s);
                        ffi::lua_setfield(l, -2, c"string".as_ptr());
                        push_bytes(l, fmt);
                        ffi::lua_setfield(l, -2, c"format".as_ptr());
                        ffi::lua_setfield(l, -2, c"verbatim_string".as_ptr());
                    }
                    _ => {
                        let mut text = Vec::with_capacity(data.len() + 1);
                        text.push(b'-');
                        text.extend_from_slice(data);
                        push_error_table(l, &text);
                    }
                }
            }
            (next + n as usize + 2).min(buf.len())
        }
        b'*' | b'~' | b'>' => {
            let n = line_i64(buf, pos + 1, eol);
            if n < 0 {
                if push {
                    ffi::lua_pushboolean(l, 0);
                }
                return next;
            }
            let mut p = next;
            if push {
                ffi::lua_newtable(l);
                if t == b'~' {
                    ffi::lua_newtable(l);
                }
            }
            for j in 0..n {
                if push && t != b'~' {
                    ffi::lua_pushnumber(l, (j + 1) as f64);
                }
                p = push_reply(l, buf, p, push);
                if push {
                    if t == b'~' {
                        ffi::lua_pushboolean(l, 1);
                    }
                    ffi::lua_settable(l, -3);
                }
            }
            if push && t == b'~' {
                ffi::lua_setfield(l, -2, c"set".as_ptr());
            }
            p
        }
        b'%' => {
            let n = line_i64(buf, pos + 1, eol).max(0);
            let mut p = next;
            if push {
                ffi::lua_newtable(l);
                ffi::lua_newtable(l);
            }
            for _ in 0..n {
                p = push_reply(l, buf, p, push);
                p = push_reply(l, buf, p, push);
                if push {
                    ffi::lua_settable(l, -3);
                }
            }
            if push {
                ffi::lua_setfield(l, -2, c"map".as_ptr());
            }
            p
        }
        b'|' => {
            let n = line_i64(buf, pos + 1, eol).max(0);
            let mut p = next;
            for _ in 0..n * 2 {
                p = push_reply(l, buf, p, false);
            }
            push_reply(l, buf, p, push)
        }
        b'_' => {
            if push {
                ffi::lua_pushnil(l);
            }
            next
        }
        b'#' => {
            if push {
                ffi::lua_pushboolean(l, (line == b"t") as c_int);
            }
            next
        }
        b',' => {
            if push {
                let d = std::str::from_utf8(line)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .unwrap_or(0.0);
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushnumber(l, d);
                ffi::lua_setfield(l, -2, c"double".as_ptr());
            }
            next
        }
        b'(' => {
            if push {
                ffi::lua_createtable(l, 0, 1);
                push_bytes(l, line);
                ffi::lua_setfield(l, -2, c"big_number".as_ptr());
            }
            next
        }
        _ => {
            if push {
                ffi::lua_pushnil(l);
            }
            next
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lua -> RESP
// ---------------------------------------------------------------------------------------------

thread_local! {
    static COUNTED_ERROR: Cell<bool> = const { Cell::new(false) };
}

/// Whether the error reply the last script run on this thread wrote had been counted already
/// (see `Vm::run`); reading it clears it.
pub fn take_counted_error() -> bool {
    COUNTED_ERROR.with(|c| c.replace(false))
}

/// Whether the value on top of the stack is an error table made from a command's error reply.
unsafe fn counted_error_table(l: *mut lua_State) -> bool {
    if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
        return false;
    }
    let is_err = raw_field(l, -1, c"err") == ffi::LUA_TSTRING;
    ffi::lua_pop(l, 1);
    let marked = raw_field(l, -1, c"ignore_error_stats_update") == ffi::LUA_TBOOLEAN
        && ffi::lua_toboolean(l, -1) != 0;
    ffi::lua_pop(l, 1);
    is_err && marked
}

unsafe fn raw_field(l: *mut lua_State, idx: c_int, name: &CStr) -> c_int {
    push_bytes(l, name.to_bytes());
    ffi::lua_rawget(l, if idx < 0 { idx - 1 } else { idx });
    ffi::lua_type(l, -1)
}

fn map_crlf(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

/// Writes the value on top of the stack as a reply and pops it. `script_resp3` is the
/// protocol the script chose with `redis.setresp`; `r` writes in the client's protocol.
/// Follows Redis 7.0's `luaReplyToRedisReply`.
pub unsafe fn write_reply(l: *mut lua_State, r: &mut Reply, script_resp3: bool) {
    if ffi::lua_checkstack(l, 4) == 0 {
        r.error("ERR reached lua stack limit");
        ffi::lua_pop(l, 1);
        return;
    }
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => r.bulk(to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => {
            let v = ffi::lua_toboolean(l, -1) != 0;
            if !script_resp3 {
                if v {
                    r.int(1);
                } else {
                    r.null();
                }
            } else {
                r.boolean(v);
            }
        }
        ffi::LUA_TNUMBER => r.int(lua_number_to_i64(ffi::lua_tonumber(l, -1))),
        ffi::LUA_TTABLE => {
            if raw_field(l, -1, c"err") == ffi::LUA_TSTRING {
                let msg = to_bytes(l, -1).unwrap_or_default().to_vec();
                ffi::lua_pop(l, 2);
                let mut text = Vec::with_capacity(msg.len() + 1);
                text.push(b'-');
                text.extend_from_slice(&msg);
                r.error_bytes(&text[1..]);
                return;
            }
            ffi::lua_pop(l, 1);
            if raw_field(l, -1, c"ok") == ffi::LUA_TSTRING {
                let ok = map_crlf(to_bytes(l, -1).unwrap_or_default());
                r.simple_bytes(&ok);
                ffi::lua_pop(l, 2);
                return;
            }
            ffi::lua_pop(l, 1);
            if raw_field(l, -1, c"double") == ffi::LUA_TNUMBER {
                r.double(ffi::lua_tonumber(l, -1));
                ffi::lua_pop(l, 2);
                return;
            }
            ffi::lua_pop(l, 1);
            if raw_field(l, -1, c"big_number") == ffi::LUA_TSTRING {
                let n = map_crlf(to_bytes(l, -1).unwrap_or_default());
                r.big_number(&String::from_utf8_lossy(&n));
                ffi::lua_pop(l, 2);
                return;
            }
            ffi::lua_pop(l, 1);
            if raw_field(l, -1, c"verbatim_string") == ffi::LUA_TTABLE {
                if raw_field(l, -1, c"format") == ffi::LUA_TSTRING {
                    if raw_field(l, -2, c"string") == ffi::LUA_TSTRING {
                        let fmt = to_bytes(l, -2).unwrap_or_default();
                        let fmt: String =
                            String::from_utf8_lossy(&fmt[..fmt.len().min(3)]).into_owned();
                        let s = to_bytes(l, -1).unwrap_or_default().to_vec();
                        r.verbatim(&fmt, &s);
                        ffi::lua_pop(l, 4);
                        return;
                    }
                    ffi::lua_pop(l, 1);
                }
                ffi::lua_pop(l, 1);
            }
            ffi::lua_pop(l, 1);
            if raw_field(l, -1, c"map") == ffi::LUA_TTABLE {
                let mut n = 0;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    n += 1;
                    ffi::lua_pop(l, 1);
                }
                r.map(n);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pushvalue(l, -2);
                    write_reply(l, r, script_resp3);
                    write_reply(l, r, script_resp3);
                }
                ffi::lua_pop(l, 2);
                return;
            }
            ffi::lua_pop(l, 1);
            if raw_field(l, -1, c"set") == ffi::LUA_TTABLE {
                let mut n = 0;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    n += 1;
                    ffi::lua_pop(l, 1);
                }
                r.set(n);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pop(l, 1);
                    ffi::lua_pushvalue(l, -1);
                    write_reply(l, r, script_resp3);
                }
                ffi::lua_pop(l, 2);
                return;
            }
            ffi::lua_pop(l, 1);
            let mut n = 0;
            loop {
                ffi::lua_rawgeti(l, -1, n + 1);
                let nil = ffi::lua_type(l, -1) == ffi::LUA_TNIL;
                ffi::lua_pop(l, 1);
                if nil {
                    break;
                }
                n += 1;
            }
            r.array(n as usize);
            for j in 1..=n {
                ffi::lua_rawgeti(l, -1, j);
                write_reply(l, r, script_resp3);
            }
        }
        _ => r.null(),
    }
    ffi::lua_pop(l, 1);
}

// ---------------------------------------------------------------------------------------------
// The redis.* API
// ---------------------------------------------------------------------------------------------

/// Collects `redis.call`'s arguments; Err is the text to raise.
unsafe fn collect_args(l: *mut lua_State) -> Result<Vec<bytes::Bytes>, &'static str> {
    let argc = ffi::lua_gettop(l);
    if argc == 0 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    // One buffer for all the arguments, handed out as slices of it: two allocations per
    // redis.call whatever its argument count.
    let mut buf = bytes::BytesMut::with_capacity(128);
    let mut ends = Vec::with_capacity(argc as usize);
    for j in 1..=argc {
        match ffi::lua_type(l, j) {
            ffi::LUA_TNUMBER => {
                buf.extend_from_slice(format_number_arg(ffi::lua_tonumber(l, j)).as_bytes())
            }
            ffi::LUA_TSTRING => buf.extend_from_slice(to_bytes(l, j).unwrap_or_default()),
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        }
        ends.push(buf.len());
    }
    let buf = buf.freeze();
    let mut start = 0;
    let args = ends
        .into_iter()
        .map(|end| {
            let a = buf.slice(start..end);
            start = end;
            a
        })
        .collect();
    Ok(args)
}

/// What a C function decided to raise, computed before raising so nothing owned is live.
enum Raise {
    Table(Vec<u8>),
    Abort,
}

unsafe fn finish(l: *mut lua_State, r: Raise) -> c_int {
    match r {
        Raise::Table(text) => {
            push_error_table(l, &text);
            drop(text);
            ffi::lua_error(l)
        }
        Raise::Abort => {
            drop(r);
            raise_abort(l)
        }
    }
}

/// Stops the script for good: the error cannot be swallowed by `pcall`, because the line hook
/// raises it again at every line until the script is out.
unsafe fn raise_abort(l: *mut lua_State) -> c_int {
    if let Some(c) = current() {
        c.aborting.set(true);
    }
    ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
    raise_table(l, b"Script aborted by the server")
}

unsafe fn generic_call(l: *mut lua_State, raise_errors: bool) -> c_int {
    let outcome = {
        let Some(cur) = current() else {
            return finish(
                l,
                Raise::Table(
                    b"redis.call/pcall can only be called inside a script invocation".to_vec(),
                ),
            );
        };
        if cur.aborting.get() {
            return finish(l, Raise::Abort);
        }
        match collect_args(l) {
            Err(e) => Err(e.as_bytes().to_vec()),
            Ok(args) => {
                ffi::lua_settop(l, 0);
                let resp3 = cur.resp.get() == 3;
                // SAFETY: the hooks outlive the run (see `with_run`).
                let hooks = &mut *cur.hooks;
                match hooks.call(args, resp3) {
                    CallResult::Reply(buf) => Ok(buf),
                    CallResult::Refused(msg) => Err(msg.into_bytes()),
                    CallResult::Abort => return finish(l, Raise::Abort),
                }
            }
        }
    };
    let raise = match outcome {
        Err(text) => {
            push_error_table(l, &text);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
            raise_errors
        }
        Ok(buf) => {
            push_reply(l, &buf, 0, true);
            raise_errors && buf.first() == Some(&b'-')
        }
    };
    if raise {
        ffi::lua_error(l)
    } else {
        1
    }
}

unsafe extern "C-unwind" fn redis_call(l: *mut lua_State) -> c_int {
    generic_call(l, true)
}

unsafe extern "C-unwind" fn redis_pcall(l: *mut lua_State) -> c_int {
    generic_call(l, false)
}

unsafe extern "C-unwind" fn redis_sha1hex(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 {
        return raise_table(l, b"wrong number of arguments");
    }
    let hex = {
        let s = to_bytes(l, 1).unwrap_or_default();
        sha1_hex(s)
    };
    push_bytes(l, hex.as_bytes());
    drop(hex);
    1
}

/// Lower-case hex SHA1 (the script cache key).
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(data);
    h.digest().to_string()
}

unsafe fn single_field_table(l: *mut lua_State, field: &CStr) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error_table(l, b"wrong number or type of arguments");
        return 1;
    }
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushvalue(l, -2);
    ffi::lua_setfield(l, -2, field.as_ptr());
    1
}

unsafe extern "C-unwind" fn redis_error_reply(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error_table(l, b"wrong number or type of arguments");
        return 1;
    }
    let text = {
        let s = to_bytes(l, -1).unwrap_or_default();
        let mut t = Vec::with_capacity(s.len() + 1);
        if s.first() != Some(&b'-') {
            t.push(b'-');
        }
        t.extend_from_slice(s);
        t
    };
    push_error_table(l, &text);
    drop(text);
    1
}

unsafe extern "C-unwind" fn redis_status_reply(l: *mut lua_State) -> c_int {
    single_field_table(l, c"ok")
}

unsafe extern "C-unwind" fn redis_set_repl(l: *mut lua_State) -> c_int {
    if current().is_none() {
        return raise_table(
            l,
            b"redis.set_repl can only be called inside a script invocation",
        );
    }
    if ffi::lua_gettop(l) != 1 {
        return raise_table(l, b"redis.set_repl() requires two arguments.");
    }
    let flags = ffi::lua_tonumber(l, -1) as i64;
    if flags & !3 != 0 {
        return raise_table(
            l,
            b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        );
    }
    0
}

unsafe extern "C-unwind" fn redis_replicate_commands(l: *mut lua_State) -> c_int {
    ffi::lua_pushboolean(l, 1);
    1
}

unsafe extern "C-unwind" fn redis_noop(_l: *mut lua_State) -> c_int {
    0
}

unsafe extern "C-unwind" fn redis_acl_check_cmd(l: *mut lua_State) -> c_int {
    if current().is_none() {
        return raise_table(
            l,
            b"redis.acl_check_cmd can only be called inside a script invocation",
        );
    }
    let known = match collect_args(l) {
        Err(e) => return raise_table(l, e.as_bytes()),
        Ok(args) => crate::commands::lookup(&args[0]).is_some(),
    };
    if !known {
        return raise_table(l, b"Invalid command passed to redis.acl_check_cmd()");
    }
    ffi::lua_pushboolean(l, 1);
    1
}

unsafe extern "C-unwind" fn redis_log(l: *mut lua_State) -> c_int {
    let argc = ffi::lua_gettop(l);
    if argc < 2 {
        return raise_table(l, b"redis.log() requires two arguments or more.");
    }
    if ffi::lua_isnumber(l, 1) == 0 {
        return raise_table(l, b"First argument must be a number (log level).");
    }
    let level = ffi::lua_tonumber(l, 1) as i64;
    if !(0..=3).contains(&level) {
        return raise_table(l, b"Invalid debug level.");
    }
    let mut text = Vec::new();
    for j in 2..=argc {
        if let Some(s) = to_bytes(l, j) {
            if j != 2 {
                text.push(b' ');
            }
            text.extend_from_slice(s);
        }
    }
    let msg = String::from_utf8_lossy(&text).into_owned();
    match level {
        0 => tracing::debug!(target: "lua", "{}", msg),
        1 => tracing::debug!(target: "lua", "{}", msg),
        2 => tracing::info!(target: "lua", "{}", msg),
        _ => tracing::warn!(target: "lua", "{}", msg),
    }
    drop(msg);
    drop(text);
    0
}

unsafe extern "C-unwind" fn redis_setresp(l: *mut lua_State) -> c_int {
    let Some(cur) = current() else {
        return raise_table(
            l,
            b"redis.setresp can only be called inside a script invocation",
        );
    };
    if ffi::lua_gettop(l) != 1 {
        return raise_table(l, b"redis.setresp() requires one argument.");
    }
    let resp = ffi::lua_tonumber(l, 1) as i64;
    if resp != 2 && resp != 3 {
        return raise_table(l, b"RESP version must be 2 or 3.");
    }
    cur.resp.set(resp as u8);
    0
}

/// `pcall` as Redis redefines it: an error table caught is returned as its `err` string.
unsafe extern "C-unwind" fn redis_lua_pcall(l: *mut lua_State) -> c_int {
    let argc = ffi::lua_gettop(l);
    ffi::lua_pushboolean(l, 1);
    ffi::lua_insert(l, 1);
    if ffi::lua_pcall(l, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        ffi::lua_remove(l, 1);
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            ffi::lua_getfield(l, -1, c"err".as_ptr());
            if ffi::lua_isstring(l, -1) != 0 {
                ffi::lua_replace(l, -2);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_insert(l, 1);
    }
    ffi::lua_gettop(l)
}

// Redis's math.random: the Lua 5.1 algorithm over a rand48 generator, so that sequences are the
// same on every platform.
fn rand48_next() -> i32 {
    RAND.with(|r| {
        let x = r.get();
        let n = (x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & 0xFFFF_FFFF_FFFF;
        r.set(n);
        (n >> 17) as i32
    })
}

unsafe extern "C-unwind" fn math_random(l: *mut lua_State) -> c_int {
    const MAX: i64 = i32::MAX as i64;
    let r = ((rand48_next() as i64) % MAX) as f64 / MAX as f64;
    match ffi::lua_gettop(l) {
        0 => ffi::lua_pushnumber(l, r),
        1 => {
            let u = ffi::luaL_checkinteger(l, 1) as c_int;
            if u < 1 {
                return ffi::luaL_argerror(l, 1, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * u as f64).floor() + 1.0);
        }
        2 => {
            let lo = ffi::luaL_checkinteger(l, 1) as c_int;
            let up = ffi::luaL_checkinteger(l, 2) as c_int;
            if lo > up {
                return ffi::luaL_argerror(l, 2, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * (up as f64 - lo as f64 + 1.0)).floor() + lo as f64);
        }
        _ => return raise_where(l, b"wrong number of arguments"),
    }
    1
}

unsafe extern "C-unwind" fn math_randomseed(l: *mut lua_State) -> c_int {
    let seed = ffi::luaL_checkinteger(l, 1) as i32 as u32 as u64;
    RAND.with(|r| r.set((seed << 16) | 0x330E));
    0
}

// ----- read-only tables -----

/// Registry key of the table mapping each protected proxy to the table it guards.
const PROTECTED: &CStr = c"tessera.protected";

/// Replaces the value at `idx` by the table it guards when it is a protected proxy.
unsafe fn unproxy(l: *mut lua_State, idx: c_int) -> bool {
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROTECTED.as_ptr());
    ffi::lua_pushvalue(l, idx);
    ffi::lua_rawget(l, -2);
    if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
        ffi::lua_replace(l, idx);
        ffi::lua_pop(l, 1);
        true
    } else {
        ffi::lua_pop(l, 2);
        false
    }
}

unsafe fn is_protected(l: *mut lua_State, idx: c_int) -> bool {
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROTECTED.as_ptr());
    ffi::lua_pushvalue(l, idx);
    ffi::lua_rawget(l, -2);
    let p = ffi::lua_type(l, -1) != ffi::LUA_TNIL;
    ffi::lua_pop(l, 2);
    p
}

unsafe fn readonly_error(l: *mut lua_State, with_position: bool) -> c_int {
    let msg = c"Attempt to modify a readonly table";
    if with_position {
        ffi::luaL_where(l, 1);
        ffi::lua_pushstring(l, msg.as_ptr());
        ffi::lua_concat(l, 2);
    } else {
        ffi::lua_pushstring(l, msg.as_ptr());
    }
    ffi::lua_error(l)
}

unsafe extern "C-unwind" fn protected_newindex(l: *mut lua_State) -> c_int {
    readonly_error(l, true)
}

unsafe extern "C-unwind" fn nonexistent_global(l: *mut lua_State) -> c_int {
    let name = to_bytes(l, 2)
        .map(|b| b.to_vec())
        .unwrap_or_else(|| b"?".to_vec());
    let mut msg = b"Script attempted to access nonexistent global variable '".to_vec();
    msg.extend_from_slice(&name);
    msg.push(b'\'');
    drop(name);
    ffi::luaL_where(l, 1);
    push_bytes(l, &msg);
    drop(msg);
    ffi::lua_concat(l, 2);
    ffi::lua_error(l)
}

unsafe extern "C-unwind" fn sandbox_rawset(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(l, 2);
    ffi::luaL_checkany(l, 3);
    if is_protected(l, 1) {
        return readonly_error(l, false);
    }
    ffi::lua_settop(l, 3);
    ffi::lua_rawset(l, 1);
    1
}

unsafe extern "C-unwind" fn sandbox_rawget(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(l, 2);
    unproxy(l, 1);
    ffi::lua_settop(l, 2);
    ffi::lua_rawget(l, 1);
    1
}

unsafe extern "C-unwind" fn sandbox_next(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    unproxy(l, 1);
    ffi::lua_settop(l, 2);
    if ffi::lua_next(l, 1) != 0 {
        2
    } else {
        ffi::lua_pushnil(l);
        1
    }
}

unsafe extern "C-unwind" fn sandbox_pairs(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_pushcfunction(l, sandbox_next);
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushnil(l);
    3
}

unsafe extern "C-unwind" fn sandbox_setmetatable(l: *mut lua_State) -> c_int {
    let t = ffi::lua_type(l, 2);
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    if t != ffi::LUA_TNIL && t != ffi::LUA_TTABLE {
        return ffi::luaL_argerror(l, 2, c"nil or table expected".as_ptr());
    }
    if is_protected(l, 1) {
        return readonly_error(l, false);
    }
    if ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr()) != 0 {
        return raise_where(l, b"cannot change a protected metatable");
    }
    ffi::lua_settop(l, 2);
    ffi::lua_setmetatable(l, 1);
    1
}

/// Replaces the table on top of the stack by a read-only proxy of it.
unsafe fn protect_top(l: *mut lua_State) {
    // stack: real
    ffi::lua_newtable(l); // real proxy
    ffi::lua_createtable(l, 0, 3); // real proxy mt
    ffi::lua_pushvalue(l, -3);
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_pushcfunction(l, protected_newindex);
    ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
    ffi::lua_newtable(l);
    ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
    ffi::lua_setmetatable(l, -2); // real proxy
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROTECTED.as_ptr());
    ffi::lua_pushvalue(l, -2);
    ffi::lua_pushvalue(l, -4);
    ffi::lua_rawset(l, -3);
    ffi::lua_pop(l, 1); // real proxy
    ffi::lua_remove(l, -2); // proxy
}

/// Sets `redis.log`, the `LOG_*` levels and the version fields on the table at the top of the
/// stack: what scripts and library loading both see.
unsafe fn set_log_and_version(l: *mut lua_State) {
    set_field_fn(l, c"log", redis_log);
    set_field_num(l, c"LOG_DEBUG", 0.0);
    set_field_num(l, c"LOG_VERBOSE", 1.0);
    set_field_num(l, c"LOG_NOTICE", 2.0);
    set_field_num(l, c"LOG_WARNING", 3.0);
    push_bytes(l, crate::REDIS_VERSION.as_bytes());
    ffi::lua_setfield(l, -2, c"REDIS_VERSION".as_ptr());
    set_field_num(l, c"REDIS_VERSION_NUM", redis_version_num() as f64);
}

// ----- the count hook -----

unsafe extern "C-unwind" fn count_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    let stop = {
        let Some(cur) = current() else {
            return;
        };
        if cur.aborting.get() {
            Some(b"Script aborted by the server".to_vec())
        } else {
            let hooks = &mut *cur.hooks;
            hooks.tick().map(|s| s.into_bytes())
        }
    };
    if let Some(msg) = stop {
        // Keep raising at every line so that pcall cannot keep the script alive.
        ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
        if let Some(cur) = current() {
            cur.aborting.set(true);
        }
        push_error_table(l, &msg);
        drop(msg);
        ffi::lua_error(l);
    }
}

// ---------------------------------------------------------------------------------------------
// State construction
// ---------------------------------------------------------------------------------------------

/// Globals Redis 7.0.15 scripts can see (besides KEYS and ARGV).
/// Registry key of the library-loading environment (`Vm::init_load_env`).
const LOAD_ENV: &CStr = c"tessera.loadenv";

const ALLOWED_GLOBALS: &[&str] = &[
    "_G",
    "_VERSION",
    "__redis__err__handler",
    "assert",
    "bit",
    "cjson",
    "cmsgpack",
    "collectgarbage",
    "coroutine",
    "error",
    "gcinfo",
    "getmetatable",
    "ipairs",
    "load",
    "loadstring",
    "math",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawget",
    "rawset",
    "redis",
    "select",
    "setmetatable",
    "string",
    "struct",
    "table",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
];

/// The error handler: adds where the error happened (the first frame that is neither a C
/// function nor Tessera's own code) and turns plain errors into `{err="ERR ..."}`.
const BOOTSTRAP: &str = r#"
local dbg = debug
local internal = '=[tessera]'
function __redis__err__handler(err)
  local lvl = 2
  local i = dbg.getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.source == internal) do
    lvl = lvl + 1
    i = dbg.getinfo(lvl, 'nSl')
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
"#;

impl Vm {
    /// A fresh state with the libraries, the redis API and the sandbox.
    pub fn new(kind: VmKind) -> Result<Vm, String> {
        use mlua::StdLib;
        // SAFETY: the debug library is loaded only to build the error handler; it is removed
        // from the globals before any user code runs.
        let lua = unsafe {
            mlua::Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                mlua::LuaOptions::new(),
            )
        };
        let l = lua.exec_raw_lua(|raw| raw.state());
        let vm = Vm {
            _lua: lua,
            l,
            kind,
            gc_count: Cell::new(0),
            globals_ref: Cell::new(ffi::LUA_NOREF),
            handler_ref: Cell::new(ffi::LUA_NOREF),
        };
        // SAFETY: `l` is the live main state owned by `_lua`; everything below runs before any
        // user code and keeps the stack balanced.
        unsafe {
            vm.init()?;
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"tessera.globals".as_ptr());
            ffi::lua_getfield(l, -1, c"__redis__err__handler".as_ptr());
            vm.handler_ref.set(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
            vm.globals_ref.set(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
        }
        Ok(vm)
    }

    unsafe fn init(&self) -> Result<(), String> {
        let l = self.l;
        ffi::lua_newtable(l);
        ffi::lua_newtable(l);
        ffi::lua_pushstring(l, c"k".as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, PROTECTED.as_ptr());

        super::libs::open_all(l);

        // redis.*
        ffi::lua_newtable(l);
        set_field_fn(l, c"call", redis_call);
        set_field_fn(l, c"pcall", redis_pcall);
        set_log_and_version(l);
        set_field_fn(l, c"setresp", redis_setresp);
        set_field_fn(l, c"sha1hex", redis_sha1hex);
        set_field_fn(l, c"error_reply", redis_error_reply);
        set_field_fn(l, c"status_reply", redis_status_reply);
        set_field_fn(l, c"set_repl", redis_set_repl);
        set_field_num(l, c"REPL_NONE", 0.0);
        set_field_num(l, c"REPL_AOF", 1.0);
        set_field_num(l, c"REPL_SLAVE", 2.0);
        set_field_num(l, c"REPL_REPLICA", 2.0);
        set_field_num(l, c"REPL_ALL", 3.0);
        set_field_fn(l, c"replicate_commands", redis_replicate_commands);
        set_field_fn(l, c"breakpoint", redis_noop);
        set_field_fn(l, c"debug", redis_noop);
        set_field_fn(l, c"acl_check_cmd", redis_acl_check_cmd);
        ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());

        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"math".as_ptr());
        set_field_fn(l, c"random", math_random);
        set_field_fn(l, c"randomseed", math_randomseed);
        ffi::lua_pop(l, 1);

        for (name, f) in [
            (c"pcall", redis_lua_pcall as ffi::lua_CFunction),
            (c"rawset", sandbox_rawset),
            (c"rawget", sandbox_rawget),
            (c"next", sandbox_next),
            (c"pairs", sandbox_pairs),
            (c"setmetatable", sandbox_setmetatable),
        ] {
            ffi::lua_pushcfunction(l, f);
            ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, name.as_ptr());
        }

        if ffi::luaL_loadbuffer(
            l,
            BOOTSTRAP.as_ptr() as *const c_char,
            BOOTSTRAP.len(),
            INTERNAL_CHUNK.as_ptr(),
        ) != 0
            || ffi::lua_pcall(l, 0, 0, 0) != 0
        {
            let msg = to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned());
            ffi::lua_pop(l, 1);
            return Err(msg.unwrap_or_default());
        }

        // Only the allow-listed globals stay.
        let mut remove: Vec<Vec<u8>> = Vec::new();
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, ffi::LUA_GLOBALSINDEX) != 0 {
            ffi::lua_pop(l, 1);
            if let Some(k) = to_bytes(l, -1) {
                if !ALLOWED_GLOBALS.iter().any(|a| a.as_bytes() == k) {
                    remove.push(k.to_vec());
                }
            }
        }
        for k in &remove {
            push_bytes(l, k);
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
        }
        drop(remove);

        // Library tables become read-only proxies.
        for name in [
            c"string",
            c"table",
            c"math",
            c"coroutine",
            c"redis",
            c"bit",
            c"cjson",
            c"cmsgpack",
            c"struct",
        ] {
            ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, name.as_ptr());
            if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
                ffi::lua_pop(l, 1);
                continue;
            }
            protect_top(l);
            ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, name.as_ptr());
        }
        // Strings' metatable indexes the protected string library.
        push_bytes(l, b"");
        if ffi::lua_getmetatable(l, -1) != 0 {
            ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"string".as_ptr());
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushvalue(l, -1);
            protect_top(l);
            ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);

        // The globals: the real table gets an error on unknown names and hides behind a proxy.
        ffi::lua_pushvalue(l, ffi::LUA_GLOBALSINDEX); // G
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushcfunction(l, nonexistent_global);
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pushvalue(l, -1);
        protect_top(l); // G P
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, -3, c"_G".as_ptr());
        // Keep the real globals reachable for KEYS/ARGV.
        ffi::lua_pushvalue(l, -2);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"tessera.globals".as_ptr());
        ffi::lua_replace(l, ffi::LUA_GLOBALSINDEX); // G
        ffi::lua_pop(l, 1);
        if self.kind == VmKind::Functions {
            self.init_load_env();
        }
        Ok(())
    }

    /// The globals a library's code sees while FUNCTION LOAD runs it, as in Redis 7.0: only
    /// `redis.register_function`, `redis.log` with its `LOG_*` levels and the version fields;
    /// any other name is a nonexistent global. Kept in the registry for `loading_env`.
    unsafe fn init_load_env(&self) {
        let l = self.l;
        let error_metatable = |l: *mut lua_State| {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushcfunction(l, nonexistent_global);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_setmetatable(l, -2);
        };
        ffi::lua_newtable(l); // L
        ffi::lua_newtable(l); // L R
        set_field_fn(
            l,
            c"register_function",
            super::functions::lua_register_function,
        );
        set_log_and_version(l);
        error_metatable(l);
        protect_top(l);
        ffi::lua_setfield(l, -2, c"redis".as_ptr()); // L
        error_metatable(l);
        protect_top(l);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, LOAD_ENV.as_ptr());
    }

    /// Makes global names resolve in the library-loading environment (`init_load_env`) or in
    /// the ordinary globals again: Redis swaps the globals' `__index` the same way, so the
    /// functions a library registers run with the ordinary globals.
    pub fn loading_env(&self, on: bool) {
        let l = self.l;
        let from = if on { LOAD_ENV } else { c"tessera.globals" };
        // SAFETY: balanced stack operations on the live state; the globals proxy always has the
        // metatable `protect_top` gave it.
        unsafe {
            if ffi::lua_getmetatable(l, ffi::LUA_GLOBALSINDEX) == 0 {
                return;
            }
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, from.as_ptr());
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pop(l, 1);
        }
    }

    /// Compiles `body` under `chunk` (`@user_script`...) and stores the function in the
    /// registry under `name`. Err is Lua's message.
    pub fn compile(&self, name: &str, chunk: &CStr, body: &[u8]) -> Result<(), String> {
        let l = self.l;
        // SAFETY: balanced stack operations on the live state.
        unsafe {
            if ffi::luaL_loadbuffer(
                l,
                body.as_ptr() as *const c_char,
                body.len(),
                chunk.as_ptr(),
            ) != 0
            {
                let msg = to_bytes(l, -1)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                ffi::lua_pop(l, 1);
                return Err(msg);
            }
            push_bytes(l, name.as_bytes());
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
        }
        Ok(())
    }

    /// Whether a function is stored under `name`.
    pub fn has(&self, name: &str) -> bool {
        // SAFETY: balanced stack operations on the live state.
        unsafe {
            push_bytes(self.l, name.as_bytes());
            ffi::lua_rawget(self.l, ffi::LUA_REGISTRYINDEX);
            let f = ffi::lua_type(self.l, -1) == ffi::LUA_TFUNCTION;
            ffi::lua_pop(self.l, 1);
            f
        }
    }

    /// Sets a global on the real globals table (KEYS, ARGV), bypassing the protection.
    unsafe fn set_array_global(&self, name: &CStr, items: &[bytes::Bytes]) {
        let l = self.l;
        ffi::lua_rawgeti(
            l,
            ffi::LUA_REGISTRYINDEX,
            self.globals_ref.get() as ffi::lua_Integer,
        );
        push_array(l, items);
        ffi::lua_setfield(l, -2, name.as_ptr());
        ffi::lua_pop(l, 1);
    }

    /// Runs a stored function with the error handler, the count hook and `hooks` as the run
    /// context, and writes its result (or error) to `out` in the client's protocol.
    ///
    /// `eval`: EVAL style (KEYS/ARGV globals, no arguments); otherwise the function receives
    /// the keys and arguments tables. `label` names the script in error texts.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        fn_key: &FnKey<'_>,
        keys: &[bytes::Bytes],
        argv: &[bytes::Bytes],
        eval: bool,
        label: &str,
        hook: bool,
        hooks: &mut dyn RunHooks,
        client_resp3: bool,
        out: &mut BytesMut,
    ) -> RunEnd {
        let l = self.l;
        let cur = Current {
            // SAFETY: only dereferenced while this function runs (CURRENT is reset below).
            hooks: unsafe {
                std::mem::transmute::<*mut (dyn RunHooks + '_), *mut (dyn RunHooks + 'static)>(
                    hooks as *mut dyn RunHooks,
                )
            },
            resp: Cell::new(2),
            aborting: Cell::new(false),
        };
        let prev = CURRENT.with(|c| c.replace(&cur as *const Current));
        // SAFETY: balanced stack operations on the live state; errors inside are caught by
        // lua_pcall.
        let aborted = unsafe {
            let base = ffi::lua_gettop(l);
            ffi::lua_rawgeti(
                l,
                ffi::LUA_REGISTRYINDEX,
                self.handler_ref.get() as ffi::lua_Integer,
            );
            match fn_key {
                FnKey::Name(n) => {
                    push_bytes(l, n.as_bytes());
                    ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
                }
                FnKey::Ref(r) => {
                    ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, *r as ffi::lua_Integer);
                }
            }
            if ffi::lua_type(l, -1) != ffi::LUA_TFUNCTION {
                // Not compiled in this state yet: the caller compiles and runs again.
                ffi::lua_settop(l, base);
                CURRENT.with(|c| c.set(prev));
                return RunEnd::Missing;
            }
            let nargs = if eval {
                self.set_array_global(c"KEYS", keys);
                self.set_array_global(c"ARGV", argv);
                0
            } else {
                push_array(l, keys);
                push_array(l, argv);
                2
            };
            if hook {
                ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKCOUNT, 100_000);
            }
            let err = ffi::lua_pcall(l, nargs, 1, base + 1);
            ffi::lua_sethook(l, None, 0, 0);
            let aborted = cur.aborting.get();
            let mut r = Reply::new(out, client_resp3);
            let script_resp3 = cur.resp.get() == 3;
            // An error a command replied inside the script (raised by redis.call, or returned
            // from redis.pcall) was counted in INFO errorstats then: the script's reply repeats
            // it and is not counted again, as in Redis.
            COUNTED_ERROR.with(|c| c.set(counted_error_table(l)));
            if err != 0 {
                if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                    let msg = if raw_field(l, -1, c"err") == ffi::LUA_TSTRING {
                        to_bytes(l, -1).unwrap_or_default().to_vec()
                    } else {
                        b"ERR unknown error".to_vec()
                    };
                    ffi::lua_pop(l, 1);
                    ffi::lua_getfield(l, -1, c"source".as_ptr());
                    let source = to_bytes(l, -1).map(|b| b.to_vec());
                    ffi::lua_pop(l, 1);
                    ffi::lua_getfield(l, -1, c"line".as_ptr());
                    let line = to_bytes(l, -1).map(|b| b.to_vec());
                    ffi::lua_pop(l, 1);
                    let mut text = msg;
                    if let (Some(source), Some(line)) = (source, line) {
                        text.extend_from_slice(b" script: ");
                        text.extend_from_slice(label.as_bytes());
                        text.extend_from_slice(b", on ");
                        text.extend_from_slice(&source);
                        text.push(b':');
                        text.extend_from_slice(&line);
                        text.push(b'.');
                    }
                    r.error_bytes(&text);
                } else {
                    let msg = to_bytes(l, -1)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|| "execution failure".into());
                    let msg: String = msg.chars().take(100).collect();
                    r.error(&format!("ERR Error running script {}, {}", label, msg));
                }
                ffi::lua_pop(l, 1);
            } else {
                write_reply(l, &mut r, script_resp3);
            }
            ffi::lua_settop(l, base);
            let n = self.gc_count.get() + 1;
            if n >= 50 {
                ffi::lua_gc(l, ffi::LUA_GCSTEP, 50);
                self.gc_count.set(0);
            } else {
                self.gc_count.set(n);
            }
            aborted
        };
        CURRENT.with(|c| c.set(prev));
        if aborted {
            RunEnd::Aborted
        } else {
            RunEnd::Done
        }
    }

    /// Lua's memory use in bytes (INFO used_memory_lua).
    pub fn memory(&self) -> usize {
        // SAFETY: plain query on the live state.
        unsafe { ffi::lua_gc(self.l, ffi::LUA_GCCOUNT, 0) as usize * 1024 }
    }
}

/// How to find the function to run.
pub enum FnKey<'a> {
    /// A registry field (EVAL scripts: `f_<sha>`).
    Name(&'a str),
    /// A registry reference (library functions).
    Ref(c_int),
}

#[derive(Debug, PartialEq, Eq)]
pub enum RunEnd {
    Done,
    /// The function is not stored in this state (an EVAL script compiled on another shard's
    /// state, or before a rebuild): nothing ran.
    Missing,
    /// The run was abandoned (`CallResult::Abort` or a `tick` stop with abort): its reply is
    /// meaningless.
    Aborted,
}

unsafe fn push_array(l: *mut lua_State, items: &[bytes::Bytes]) {
    ffi::lua_createtable(l, items.len() as c_int, 0);
    for (i, it) in items.iter().enumerate() {
        push_bytes(l, it);
        ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
    }
}

/// Redis's REDIS_VERSION_NUM: 0x00MMmmpp.
fn redis_version_num() -> u32 {
    let mut parts = crate::REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (a << 16) | (b << 8) | c
}

thread_local! {
    static VMS: RefCell<[Option<(u64, Vm)>; 2]> = const { RefCell::new([None, None]) };
}

/// Runs `f` with this thread's state of `kind`, (re)building it when `epoch` moved on (SCRIPT
/// FLUSH, FUNCTION changes). `build` prepares a fresh state (loads libraries).
pub fn with_vm<R>(
    kind: VmKind,
    epoch: u64,
    build: impl FnOnce(&Vm) -> Result<(), String>,
    f: impl FnOnce(&Vm) -> R,
) -> Result<R, String> {
    VMS.with(|v| {
        let idx = kind as usize;
        let stale = {
            let v = v.borrow();
            !matches!(&v[idx], Some((e, _)) if *e == epoch)
        };
        if stale {
            v.borrow_mut()[idx] = None;
            let vm = Vm::new(kind)?;
            build(&vm)?;
            v.borrow_mut()[idx] = Some((epoch, vm));
        }
        let v = v.borrow();
        let (_, vm) = v[idx].as_ref().expect("just built");
        Ok(f(vm))
    })
}

/// Lua memory of this thread's states.
pub fn thread_memory() -> usize {
    VMS.with(|v| {
        v.try_borrow()
            .map(|v| v.iter().flatten().map(|(_, vm)| vm.memory()).sum())
            .unwrap_or(0)
    })
}

/// Whether this thread is inside a script run (redis.call from a nested context).
pub fn in_script() -> bool {
    current().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoCalls;
    impl RunHooks for NoCalls {
        fn call(&mut self, args: Vec<bytes::Bytes>, _resp3: bool) -> CallResult {
            let mut b = BytesMut::new();
            Reply::new(&mut b, false).bulk(&args[0]);
            CallResult::Reply(b)
        }
        fn tick(&mut self) -> Option<String> {
            None
        }
    }

    pub fn eval(src: &str) -> String {
        let vm = Vm::new(VmKind::Eval).unwrap();
        let mut out = BytesMut::new();
        if let Err(e) = vm.compile("f_test", c"@user_script", src.as_bytes()) {
            return format!("compile: {e}");
        }
        vm.run(
            &FnKey::Name("f_test"),
            &[bytes::Bytes::from("k1")],
            &[bytes::Bytes::from("a1")],
            true,
            "sha",
            false,
            &mut NoCalls,
            false,
            &mut out,
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn conversions_and_sandbox() {
        assert_eq!(eval("return 1"), ":1\r\n");
        assert_eq!(eval("return {1,2,nil,3}"), "*2\r\n:1\r\n:2\r\n");
        assert_eq!(eval("return KEYS[1]..ARGV[1]"), "$4\r\nk1a1\r\n");
        assert_eq!(eval("return redis.call('ping')"), "$4\r\nping\r\n");
        assert_eq!(
            eval("a = 1"),
            "-ERR user_script:1: Attempt to modify a readonly table script: sha, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval("return os"),
            "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: sha, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval("rawset(_G, 'x', 1)"),
            "-ERR Attempt to modify a readonly table script: sha, on @user_script:1.\r\n"
        );
        assert_eq!(eval("return rawget(string, 'format') ~= nil"), ":1\r\n");
        assert_eq!(
            eval("local n = 0 for k in pairs(redis) do n = n + 1 end return n > 10"),
            ":1\r\n"
        );
        assert_eq!(eval("return ('x'):rep(3)"), "$3\r\nxxx\r\n");
        assert_eq!(
            eval("error({err='MY boom'})"),
            "-MY boom script: sha, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval("return {pcall(error, {err='E x'})}"),
            "*2\r\n$-1\r\n$3\r\nE x\r\n"
        );
        assert_eq!(eval("return 1e20"), ":-9223372036854775808\r\n");
    }

    #[test]
    fn rand48_matches_redis_sequence() {
        RAND.with(|r| r.set(0x1234_ABCD_330E));
        assert_eq!(eval("return math.random(100)"), ":40\r\n");
        assert_eq!(eval("return math.random(100)"), ":85\r\n");
        assert_eq!(
            eval("math.randomseed(5) return math.random(1000)"),
            ":525\r\n"
        );
    }
}

//! FUNCTION libraries and FCALL/FCALL_RO.
//!
//! The library registry is process-wide (`Shared::functions`); a change bumps
//! `Shared::fn_epoch`, and each shard thread rebuilds its functions Lua state on its next
//! FCALL by loading every library again. FUNCTION LOAD validates a library in a throw-away
//! state first, so a failing library never reaches the registry.
//!
//! Functions run through the same protocol as EVAL scripts (`super::run_job`); a function
//! learned to need global mode is remembered per function.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use mlua::ffi::{self, lua_State};

use super::lua::{self, push_error_table, to_bytes, CallResult, FnKey, RunHooks, Vm, VmKind};
use super::{sflags, Job, ScriptRun, Target};
use crate::commands::args::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::server::conn::Conn;

/// One registered function.
pub struct FunctionEntry {
    pub name: String,
    pub library: String,
    pub flags: u32,
    pub description: Option<String>,
    /// Learned: runs of this function need global mode.
    pub global: AtomicBool,
}

pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: BTreeMap<String, Arc<FunctionEntry>>,
}

#[derive(Default)]
pub struct Registry {
    libs: BTreeMap<String, Library>,
    /// By name in lower case: function names are case-insensitive in Redis 7.0 (library names
    /// are not).
    funcs: HashMap<String, Arc<FunctionEntry>>,
}

impl Registry {
    pub fn library_count(&self) -> usize {
        self.libs.len()
    }
    pub fn function_count(&self) -> usize {
        self.funcs.len()
    }
    /// Bytes of the libraries' code (INFO used_memory_functions).
    pub fn code_bytes(&self) -> usize {
        self.libs.values().map(|l| l.code.len()).sum()
    }
}

thread_local! {
    /// Functions registered while a library loads on this thread.
    static LOADING: RefCell<Option<Vec<lua::RegisteredFunction>>> = const { RefCell::new(None) };
    /// Registry references of this thread's loaded functions, by name.
    static REFS: RefCell<HashMap<String, c_int>> = RefCell::new(HashMap::new());
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

const ERR_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// `redis.register_function` (only while FUNCTION LOAD runs a library).
pub unsafe extern "C-unwind" fn lua_register_function(l: *mut lua_State) -> c_int {
    let err = register_inner(l);
    match err {
        Ok(()) => 0,
        Err(msg) => {
            push_error_table(l, msg.as_bytes());
            drop(msg);
            ffi::lua_error(l)
        }
    }
}

unsafe fn register_inner(l: *mut lua_State) -> Result<(), String> {
    let loading = LOADING.with(|x| x.borrow().is_some());
    if !loading {
        return Err("redis.register_function can only be called on FUNCTION LOAD command".into());
    }
    let argc = ffi::lua_gettop(l);
    let (name, flags, description) = match argc {
        1 => {
            if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
                return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            }
            let (mut name, mut flags, mut desc, mut has_cb) = (None, 0u32, None, false);
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, 1) != 0 {
                let key = to_bytes(l, -2).map(|b| b.to_vec()).unwrap_or_default();
                match &key[..] {
                    b"function_name" => match to_bytes(l, -1) {
                        Some(b) if ffi::lua_type(l, -1) == ffi::LUA_TSTRING => {
                            name = Some(b.to_vec())
                        }
                        _ => return Err("function_name argument given to redis.register_function must be a string".into()),
                    },
                    b"description" => match to_bytes(l, -1) {
                        Some(b) if ffi::lua_type(l, -1) == ffi::LUA_TSTRING => {
                            desc = Some(String::from_utf8_lossy(b).into_owned())
                        }
                        _ => return Err("description argument given to redis.register_function must be a string".into()),
                    },
                    b"callback" => {
                        if ffi::lua_type(l, -1) != ffi::LUA_TFUNCTION {
                            return Err("callback argument given to redis.register_function must be a function".into());
                        }
                        has_cb = true;
                        ffi::lua_pushvalue(l, -1);
                        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"tessera.cb".as_ptr());
                    }
                    b"flags" => {
                        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
                            return Err("flags argument to redis.register_function must be a table representing function flags".into());
                        }
                        let mut i = 1;
                        loop {
                            ffi::lua_rawgeti(l, -1, i);
                            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                                ffi::lua_pop(l, 1);
                                break;
                            }
                            let f = to_bytes(l, -1).map(|b| b.to_vec()).unwrap_or_default();
                            ffi::lua_pop(l, 1);
                            match sflags::NAMES.iter().find(|(_, n)| n.as_bytes() == f) {
                                Some((bit, _)) => flags |= bit,
                                None => return Err("unknown flag given".into()),
                            }
                            i += 1;
                        }
                    }
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
                ffi::lua_pop(l, 1);
            }
            let Some(name) = name else {
                return Err("redis.register_function must get a function name argument".into());
            };
            if !has_cb {
                return Err("redis.register_function must get a callback argument".into());
            }
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"tessera.cb".as_ptr());
            (name, flags, desc)
        }
        2 => {
            if ffi::lua_type(l, 1) != ffi::LUA_TSTRING {
                return Err("first argument to redis.register_function must be a string".into());
            }
            if ffi::lua_type(l, 2) != ffi::LUA_TFUNCTION {
                return Err("second argument to redis.register_function must be a function".into());
            }
            let name = to_bytes(l, 1).unwrap_or_default().to_vec();
            ffi::lua_pushvalue(l, 2);
            (name, 0, None)
        }
        _ => return Err("wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        ffi::lua_pop(l, 1);
        return Err(ERR_NAME.into());
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let dup = LOADING.with(|x| {
        x.borrow()
            .as_ref()
            .is_some_and(|v| v.iter().any(|f| f.name == name))
    });
    if dup {
        ffi::lua_pop(l, 1);
        return Err("Function already exists in the library".into());
    }
    let r = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
    LOADING.with(|x| {
        if let Some(v) = x.borrow_mut().as_mut() {
            v.push(lua::RegisteredFunction {
                name,
                registry_ref: r,
                flags,
                description,
            });
        }
    });
    Ok(())
}

/// Run context while a library's code runs: no commands, nothing else.
struct Loader;

impl RunHooks for Loader {
    fn call(&mut self, _args: Vec<Bytes>, _resp3: bool) -> CallResult {
        CallResult::Refused("redis.call can not be used while loading a library".into())
    }
    fn tick(&mut self) -> Option<String> {
        None
    }
}

/// Parses `#!lua name=<lib>` as Redis's `functionExtractLibMetaData` (the line split like
/// `sdssplitargs`), then checks the name and the engine; returns the library name.
fn parse_metadata(code: &[u8]) -> Result<String, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let parts = match crate::config::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("ERR Invalid library metadata".into()),
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let engine = text(&parts[0][2..]);
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(text(&p[5..]));
        } else {
            return Err(format!("ERR Invalid metadata value given: {}", text(p)));
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !valid_name(name.as_bytes()) {
        return Err(format!("ERR {}", ERR_NAME));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{}' not found", engine));
    }
    Ok(name)
}

/// Compiles and runs a library's code in `vm`, returning the functions it registered.
fn load_into(vm: &Vm, code: &[u8]) -> Result<Vec<lua::RegisteredFunction>, String> {
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let src = &code[end..];
    let chunk = "tessera.loading";
    vm.compile(chunk, c"@user_function", src)
        .map_err(|e| format!("ERR Error compiling function: {}", e))?;
    LOADING.with(|x| *x.borrow_mut() = Some(Vec::new()));
    let mut out = BytesMut::new();
    vm.loading_env(true);
    vm.run(
        &FnKey::Name(chunk),
        &[],
        &[],
        true,
        "",
        false,
        &mut Loader,
        false,
        &mut out,
    );
    vm.loading_env(false);
    let registered = LOADING.with(|x| x.borrow_mut().take()).unwrap_or_default();
    if out.first() == Some(&b'-') {
        let text = String::from_utf8_lossy(&out[1..out.len().saturating_sub(2)]).into_owned();
        let text = match text.find(" script: ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        return Err(format!("ERR Error registering functions: {}", text));
    }
    if registered.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok(registered)
}

/// Validates and adds a library (FUNCTION LOAD / RESTORE).
fn add_library(
    reg: &mut Registry,
    code: Bytes,
    replace: bool,
    restoring: bool,
) -> Result<String, String> {
    let name = parse_metadata(&code)?;
    if reg.libs.contains_key(&name) && !replace {
        // Redis words the collision differently for FUNCTION RESTORE.
        return Err(if restoring {
            format!("ERR Library {} already exists", name)
        } else {
            format!("ERR Library '{}' already exists", name)
        });
    }
    let vm = Vm::new(VmKind::Functions)?;
    let registered = load_into(&vm, &code)?;
    for f in &registered {
        if let Some(existing) = reg.funcs.get(&f.name.to_ascii_lowercase()) {
            if existing.library != name {
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
    }
    if let Some(old) = reg.libs.remove(&name) {
        for f in old.functions.keys() {
            reg.funcs.remove(&f.to_ascii_lowercase());
        }
    }
    let mut functions = BTreeMap::new();
    for f in registered {
        let e = Arc::new(FunctionEntry {
            name: f.name.clone(),
            library: name.clone(),
            flags: f.flags,
            description: f.description,
            global: AtomicBool::new(false),
        });
        reg.funcs
            .entry(f.name.to_ascii_lowercase())
            .or_insert_with(|| e.clone());
        functions.insert(f.name, e);
    }
    reg.libs.insert(
        name.clone(),
        Library {
            name: name.clone(),
            code,
            functions,
        },
    );
    Ok(name)
}

/// Loads every library into a fresh functions state (this thread's).
fn build_all(vm: &Vm, codes: &[Bytes]) -> Result<(), String> {
    let mut refs = HashMap::new();
    for code in codes {
        if let Ok(fs) = load_into(vm, code) {
            for f in fs {
                refs.insert(f.name, f.registry_ref);
            }
        }
    }
    REFS.with(|r| *r.borrow_mut() = refs);
    Ok(())
}

/// Runs a function for `run` (see `ScriptRun::execute`).
pub(super) fn run_function(
    run: &mut ScriptRun,
    f: &FunctionEntry,
    job: &Job,
    hook: bool,
    out: &mut BytesMut,
) -> Result<lua::RunEnd, String> {
    let shared = &run.sh.globals.scripting;
    let epoch = shared.fn_epoch.load(Ordering::Acquire);
    let codes: Vec<Bytes> = {
        let r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
        r.libs.values().map(|l| l.code.clone()).collect()
    };
    lua::with_vm(
        VmKind::Functions,
        epoch,
        |vm| build_all(vm, &codes),
        |vm| {
            let Some(r) = REFS.with(|m| m.borrow().get(&f.name).copied()) else {
                Reply::new(out, job.resp3).error("ERR Function not found");
                return lua::RunEnd::Done;
            };
            match vm.run(
                &FnKey::Ref(r),
                &job.keys,
                &job.argv,
                false,
                &f.name,
                hook,
                run,
                job.resp3,
                out,
            ) {
                lua::RunEnd::Missing => {
                    Reply::new(out, job.resp3).error("ERR Function not found");
                    lua::RunEnd::Done
                }
                end => end,
            }
        },
    )
}

pub fn fcall(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(fcall_generic(c, a, false))
}

pub fn fcall_ro(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(fcall_generic(c, a, true))
}

async fn fcall_generic(c: &mut Conn, a: Vec<Bytes>, ro: bool) {
    let entry = {
        let r = c
            .shard
            .globals
            .scripting
            .functions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        r.funcs
            .get(&String::from_utf8_lossy(&a[1]).to_ascii_lowercase())
            .cloned()
    };
    // Redis looks the function up before it reads the number of keys.
    let Some(entry) = entry else {
        return c.reply().error("ERR Function not found");
    };
    let (keys, argv) = match parse_i64(&a[2]) {
        None => return c.reply().error("ERR Bad number of keys provided"),
        Some(n) if n as i128 > (a.len() - 3) as i128 => {
            return c
                .reply()
                .error("ERR Number of keys can't be greater than number of args")
        }
        Some(n) if n < 0 => return c.reply().error("ERR Number of keys can't be negative"),
        Some(n) => (a[3..3 + n as usize].to_vec(), a[3 + n as usize..].to_vec()),
    };
    let no_writes = entry.flags & sflags::NO_WRITES != 0;
    if ro && !no_writes {
        return c
            .reply()
            .error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let job = Job {
        target: Target::Function(entry.clone()),
        keys,
        argv,
        read_only: ro || no_writes,
        db: c.db,
        resp3: c.resp3,
        who: c.label.clone(),
        caller_info: crate::server::acl::caller_info_for_log(c),
        perms: c.perms.clone(),
        command: if ro { "fcall_ro" } else { "fcall" },
    };
    let out = super::run_job(c, job, &entry.global).await;
    c.out.extend_from_slice(&out);
}

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

pub fn function(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
        let argc = a.len();
        let bad_arity = |c: &mut Conn| {
            c.reply()
                .error(&crate::commands::arity_error(&format!("function|{}", sub)))
        };
        let shard = c.shard.clone();
        let shared = &shard.globals.scripting;
        match sub.as_str() {
            "help" if argc == 2 => {
                crate::commands::reply_help(&mut c.reply(), "function", FUNCTION_HELP)
            }
            "load" | "delete" | "flush" => {
                let change = match parse_change(&a) {
                    Ok(ch) => ch,
                    Err(e) => return c.reply().error(&e),
                };
                change_and_log(c, change, a).await
            }
            "kill" => {
                if argc != 2 {
                    return bad_arity(c);
                }
                super::kill(c, false).await
            }
            "stats" => {
                if argc != 2 {
                    return bad_arity(c);
                }
                let running = shared
                    .slots
                    .iter()
                    .find(|s| s.running.load(Ordering::Acquire) && !s.eval.load(Ordering::Acquire))
                    .map(|s| {
                        (
                            s.name.lock().map(|n| n.clone()).unwrap_or_default(),
                            s.command.lock().map(|n| n.clone()).unwrap_or_default(),
                            crate::server::globals::unix_ms()
                                .saturating_sub(s.started_ms.load(Ordering::Acquire)),
                        )
                    });
                let (libs, funcs) = {
                    let r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
                    (r.library_count(), r.function_count())
                };
                let mut r = c.reply();
                r.map(2);
                r.bulk(b"running_script");
                match running {
                    None => r.null(),
                    Some((name, command, ms)) => {
                        r.map(3);
                        r.bulk(b"name");
                        r.bulk(name.as_bytes());
                        r.bulk(b"command");
                        r.array(1);
                        r.bulk(command.as_bytes());
                        r.bulk(b"duration_ms");
                        r.int(ms as i64);
                    }
                }
                r.bulk(b"engines");
                r.map(1);
                r.bulk(b"LUA");
                r.map(2);
                r.bulk(b"libraries_count");
                r.int(libs as i64);
                r.bulk(b"functions_count");
                r.int(funcs as i64);
            }
            "list" => {
                let mut pattern: Option<Bytes> = None;
                let mut withcode = false;
                let mut i = 2;
                while i < argc {
                    if eq_ic(&a[i], "withcode") && !withcode {
                        withcode = true;
                        i += 1;
                    } else if eq_ic(&a[i], "libraryname") && pattern.is_none() {
                        if i + 1 >= argc {
                            return c.reply().error("ERR library name argument was not given");
                        }
                        pattern = Some(a[i + 1].clone());
                        i += 2;
                    } else {
                        return c.reply().error(&format!(
                            "ERR Unknown argument {}",
                            String::from_utf8_lossy(&a[i])
                        ));
                    }
                }
                let reg = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
                let libs: Vec<&Library> = reg
                    .libs
                    .values()
                    .filter(|l| {
                        pattern
                            .as_ref()
                            .is_none_or(|p| crate::config::glob_match(p, l.name.as_bytes(), true))
                    })
                    .collect();
                let mut r = Reply::new(&mut c.out, c.resp3);
                r.array(libs.len());
                for lib in libs {
                    r.map(if withcode { 4 } else { 3 });
                    r.bulk(b"library_name");
                    r.bulk(lib.name.as_bytes());
                    r.bulk(b"engine");
                    r.bulk(b"LUA");
                    r.bulk(b"functions");
                    r.array(lib.functions.len());
                    for f in lib.functions.values() {
                        r.map(3);
                        r.bulk(b"name");
                        r.bulk(f.name.as_bytes());
                        r.bulk(b"description");
                        match &f.description {
                            Some(d) => r.bulk(d.as_bytes()),
                            None => r.null(),
                        }
                        r.bulk(b"flags");
                        let names: Vec<&str> = sflags::NAMES
                            .iter()
                            .filter(|(b, _)| f.flags & b != 0)
                            .map(|(_, n)| *n)
                            .collect();
                        r.set(names.len());
                        for n in names {
                            r.simple(n);
                        }
                    }
                    if withcode {
                        r.bulk(b"library_code");
                        r.bulk(&lib.code);
                    }
                }
            }
            "dump" => {
                if argc != 2 {
                    return bad_arity(c);
                }
                let compress = shard.state.borrow().config.rdbcompression;
                let payload = {
                    let r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
                    crate::persistence::rdb::function_dump_payload(
                        r.libs.values().map(|l| &l.code[..]),
                        compress,
                    )
                };
                c.reply().bulk(&payload)
            }
            "restore" => {
                let change = match parse_change(&a) {
                    Ok(ch) => ch,
                    Err(e) => return c.reply().error(&e),
                };
                change_and_log(c, change, a).await
            }
            "help" => bad_arity(c),
            _ => c.reply().error(&crate::commands::unknown_subcommand_error(
                &a[1], "function",
            )),
        }
    })
}

/// A change to the library registry (FUNCTION LOAD / DELETE / FLUSH / RESTORE).
enum Change {
    Load { replace: bool, code: Bytes },
    Delete(String),
    Flush,
    Restore { policy: String, codes: Vec<Bytes> },
}

/// What a successful change replies.
enum Changed {
    Library(String),
    Ok,
}

/// Parses a registry-changing FUNCTION command (from a client or from the AOF).
fn parse_change(a: &[Bytes]) -> Result<Change, String> {
    let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
    let argc = a.len();
    let bad_arity = || crate::commands::arity_error(&format!("function|{}", sub));
    // Redis's `addReplySubcommandSyntaxError`, for arities the subcommand checks itself.
    let syntax_error = || {
        format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(&a[1])
        )
    };
    match sub.as_str() {
        "load" => {
            if argc < 3 {
                return Err(bad_arity());
            }
            if argc == 4 && eq_ic(&a[2], "replace") {
                Ok(Change::Load {
                    replace: true,
                    code: a[3].clone(),
                })
            } else if argc == 3 {
                Ok(Change::Load {
                    replace: false,
                    code: a[2].clone(),
                })
            } else {
                Err(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(&a[2])
                ))
            }
        }
        "delete" if argc == 3 => Ok(Change::Delete(String::from_utf8_lossy(&a[2]).into_owned())),
        "flush" => {
            if argc > 3 {
                return Err(syntax_error());
            }
            if argc == 3 && !eq_ic(&a[2], "sync") && !eq_ic(&a[2], "async") {
                return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
            }
            Ok(Change::Flush)
        }
        "restore" => {
            if argc < 3 {
                return Err(bad_arity());
            }
            if argc > 4 {
                return Err(syntax_error());
            }
            let policy = if argc == 4 {
                String::from_utf8_lossy(&a[3]).to_ascii_lowercase()
            } else {
                "append".into()
            };
            if !matches!(policy.as_str(), "append" | "replace" | "flush") {
                return Err(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                        .into(),
                );
            }
            let codes = crate::persistence::rdb::function_restore_codes(&a[2])?
                .into_iter()
                .map(Bytes::from)
                .collect();
            Ok(Change::Restore { policy, codes })
        }
        _ => Err(bad_arity()),
    }
}

/// Deletes every function library (DEBUG RELOAD empties them with the data, as Redis does).
pub fn clear_libraries(shared: &super::Shared) {
    let mut r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
    *r = Registry::default();
    shared.fn_epoch.fetch_add(1, Ordering::AcqRel);
}

/// Applies a change to the registry (and tells every shard's functions state it is stale).
fn apply_change(shared: &super::Shared, change: Change) -> Result<Changed, String> {
    let res = {
        let mut r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
        match change {
            Change::Load { replace, code } => {
                add_library(&mut r, code, replace, false).map(Changed::Library)
            }
            Change::Delete(name) => match r.libs.remove(&name) {
                Some(lib) => {
                    for f in lib.functions.keys() {
                        r.funcs.remove(&f.to_ascii_lowercase());
                    }
                    Ok(Changed::Ok)
                }
                None => Err("ERR Library not found".to_string()),
            },
            Change::Flush => {
                *r = Registry::default();
                Ok(Changed::Ok)
            }
            Change::Restore { policy, codes } => {
                let mut next = if policy == "flush" {
                    Registry::default()
                } else {
                    clone_registry(&r)
                };
                let mut err = None;
                for code in codes {
                    if let Err(e) = add_library(&mut next, code, policy == "replace", true) {
                        err = Some(e);
                        break;
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => {
                        *r = next;
                        Ok(Changed::Ok)
                    }
                }
            }
        }
    };
    if res.is_ok() {
        shared.fn_epoch.fetch_add(1, Ordering::AcqRel);
    }
    res
}

/// Applies a change on shard 0's thread and logs it in shard 0's AOF in the same step, so that
/// the log holds the changes in the order they were applied; the reply waits for that log.
async fn change_and_log(c: &mut Conn, change: Change, args: Vec<Bytes>) {
    let res = c
        .shard
        .run_on(0, move |sh0| {
            let res = apply_change(&sh0.globals.scripting, change);
            if res.is_ok() {
                crate::persistence::aof::log_global(&mut sh0.state.borrow_mut(), &args);
            }
            res
        })
        .await;
    if matches!(res, Ok(Ok(_))) && crate::persistence::aof::sync_replies(&c.shard) {
        crate::persistence::aof::wait_durable(&c.shard, crate::persistence::aof::shard_bit(0))
            .await;
    }
    match res {
        Err(_) => c.reply().error(crate::server::conn::ERR_SHARD_GONE),
        Ok(Err(e)) => c.reply().error(&e),
        Ok(Ok(Changed::Library(name))) => c.reply().bulk(name.as_bytes()),
        Ok(Ok(Changed::Ok)) => c.reply().ok(),
    }
}

/// Replays a logged FUNCTION change at startup (the registry is process-wide: once for all
/// shards).
pub fn replay(shared: &super::Shared, args: &[Bytes]) -> Result<(), String> {
    if args.len() < 2 {
        return Err("Bad FUNCTION record in the append only file".into());
    }
    let change = parse_change(args)?;
    apply_change(shared, change).map(|_| ())
}

/// The code of every library, in name order (snapshots' FUNCTION2 items, the AOF rewrite's
/// base).
pub fn library_codes(shared: &super::Shared) -> Vec<Bytes> {
    let r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
    r.libs.values().map(|l| l.code.clone()).collect()
}

/// Adds (or replaces) a library from its code, as loading a snapshot does; every shard picks
/// it up on its next function call.
pub fn restore_library(shared: &super::Shared, code: Bytes, replace: bool) -> Result<(), String> {
    let mut r = shared.functions.lock().unwrap_or_else(|e| e.into_inner());
    add_library(&mut r, code, replace, true)?;
    shared.fn_epoch.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

fn clone_registry(r: &Registry) -> Registry {
    Registry {
        libs: r
            .libs
            .iter()
            .map(|(k, l)| {
                (
                    k.clone(),
                    Library {
                        name: l.name.clone(),
                        code: l.code.clone(),
                        functions: l.functions.clone(),
                    },
                )
            })
            .collect(),
        funcs: r.funcs.clone(),
    }
}

//! The process title (`set-proc-title`, `proc-title-template`): what `ps` and
//! `/proc/<pid>/cmdline` show for the server, rewritten as Redis rewrites it, so that tools
//! that look for `redis-server *:6379`-style titles find Tessera's.
//!
//! Linux shows the bytes of the process's argument area as its command line. As Redis does
//! (its `setproctitle.c`), `init` moves the environment strings that follow the arguments to
//! the heap, which makes the arguments and the environment one area that `set` overwrites with
//! the title and pads with NULs.
//!
//! Owns: the argument area's address and length, and a copy of `argv[0]` (the `{title}`
//! variable). Must never write outside that area, or move the environment once threads run
//! (`init` is called first thing in `main`). After the first `set` the original arguments are
//! gone: `std::env::args()` must be read before it (`main` does).

use std::sync::Mutex;

use crate::config::Config;

/// What `init` found: the argument area and the program's name as started.
struct Area {
    base: usize,
    len: usize,
    arg0: String,
}

static AREA: Mutex<Option<Area>> = Mutex::new(None);

/// The error for a template that does not expand, as Redis words it.
pub const ERR_TEMPLATE: &str = "template format is invalid or contains unknown variables";

/// The values a template's variables take.
struct Vars<'a> {
    title: &'a str,
    cfg: &'a Config,
}

impl Vars<'_> {
    /// A variable's value, or None for an unknown name (Redis's `redisProcTitleGetVariable`).
    fn get(&self, name: &[u8]) -> Option<String> {
        let cfg = self.cfg;
        let tls_port: u16 = cfg.value("tls-port").parse().unwrap_or(0);
        let unixsocket = cfg.value("unixsocket");
        Some(match name {
            b"title" => self.title.to_string(),
            b"listen-addr" => {
                if cfg.port != 0 || tls_port != 0 {
                    let addr = cfg.bind.first().map_or("*", String::as_str);
                    let port = if cfg.port != 0 { cfg.port } else { tls_port };
                    format!("{addr}:{port}")
                } else {
                    format!("unixsocket:{unixsocket}")
                }
            }
            // Neither cluster mode nor sentinel exists here.
            b"server-mode" => String::new(),
            b"config-file" => cfg
                .config_file
                .as_ref()
                .map_or_else(|| "-".to_string(), |p| p.display().to_string()),
            b"port" => cfg.port.to_string(),
            b"tls-port" => tls_port.to_string(),
            b"unixsocket" => unixsocket,
            _ => return None,
        })
    }
}

/// Expands `template` as Redis's `sdstemplate` does (`{name}` is a variable, `{{` a literal
/// brace, a `}` outside a variable is itself) and trims spaces at both ends. None when the
/// template ends inside a variable or names an unknown one.
fn expand(template: &[u8], vars: &Vars) -> Option<String> {
    let mut out = Vec::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.iter().position(|&c| c == b'{') {
        out.extend_from_slice(&rest[..open]);
        let after = &rest[open + 1..];
        match after.first() {
            None => return None,
            Some(b'{') => {
                out.push(b'{');
                rest = &after[1..];
            }
            Some(_) => {
                let close = after.iter().position(|&c| c == b'}')?;
                out.extend_from_slice(vars.get(&after[..close])?.as_bytes());
                rest = &after[close + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
    let start = out.iter().position(|&c| c != b' ').unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|&c| c != b' ')
        .map_or(start, |e| e + 1);
    Some(String::from_utf8_lossy(&out[start..end]).into_owned())
}

/// Whether `cfg`'s `proc-title-template` is one Redis accepts: it expands, and not to nothing
/// with an empty `{title}` (Redis's `validateProcTitleTemplate`).
pub fn validate(cfg: &Config) -> Result<(), &'static str> {
    let template = cfg.value("proc-title-template");
    match expand(template.as_bytes(), &Vars { title: "", cfg }) {
        Some(t) if !t.is_empty() => Ok(()),
        _ => Err(ERR_TEMPLATE),
    }
}

/// Sets the process title from `cfg`'s template where `set-proc-title` is on: at startup, and
/// after a CONFIG SET (a new port or bind changes `{listen-addr}`, as in Redis).
pub fn apply(cfg: &Config) {
    if cfg.value("set-proc-title") == "yes" {
        set_from(cfg);
    }
}

/// Sets the process title from `cfg`'s template, whatever `set-proc-title` says: Redis 7.0
/// retitles on a CONFIG SET that changes the template even with `set-proc-title no` (checked
/// against redis-server 7.0.15). Nothing happens where `init` found no argument area.
pub fn set_from(cfg: &Config) {
    let guard = AREA.lock().unwrap_or_else(|e| e.into_inner());
    let Some(area) = guard.as_ref() else {
        return;
    };
    let template = cfg.value("proc-title-template");
    let Some(title) = expand(
        template.as_bytes(),
        &Vars {
            title: &area.arg0,
            cfg,
        },
    ) else {
        return;
    };
    let n = title.len().min(area.len - 1);
    // SAFETY: `init` found `base..base + len` to be the process's argument and environment
    // strings, which nothing reads any more (the environment was moved, `argv` was read
    // before), and the lock keeps writers apart.
    unsafe {
        let base = area.base as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), base, n);
        std::ptr::write_bytes(base.add(n), 0, area.len - n);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    static mut environ: *mut *mut libc::c_char;
    static mut program_invocation_name: *mut libc::c_char;
    static mut program_invocation_short_name: *mut libc::c_char;
}

/// Finds the argument area and moves the environment out of it. Must run before any other
/// thread starts (it replaces `environ`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn init() {
    use std::ffi::{CStr, CString};
    let argc = std::env::args_os().count();
    // SAFETY: single-threaded (see above). glibc's `program_invocation_name` is `argv[0]`
    // itself, the start of the argument strings, which the kernel lays out one after the other,
    // NUL-terminated, followed by the environment strings. Every pointer read is checked to be
    // the next string of the area before it is counted in.
    unsafe {
        let base = program_invocation_name;
        if base.is_null() || argc == 0 {
            return;
        }
        let arg0 = CStr::from_ptr(base).to_string_lossy().into_owned();
        let mut end = base;
        for _ in 0..argc {
            end = end.add(libc::strlen(end) + 1);
        }
        // The environment strings right after the arguments join the area; they move to the
        // heap (leaked: `environ` keeps them for the life of the process).
        let mut moved: Vec<*mut libc::c_char> = Vec::new();
        let mut i = 0;
        if !environ.is_null() {
            loop {
                let var = *environ.add(i);
                if var.is_null() {
                    break;
                }
                if var == end {
                    end = end.add(libc::strlen(var) + 1);
                }
                moved.push(CString::from(CStr::from_ptr(var)).into_raw());
                i += 1;
            }
            moved.push(std::ptr::null_mut());
            environ = Box::leak(moved.into_boxed_slice()).as_mut_ptr();
        }
        // glibc's own copies of the program name (used in its messages) point into the area.
        let name = CString::new(arg0.clone()).unwrap_or_default().into_raw();
        program_invocation_name = name;
        program_invocation_short_name = match libc::strrchr(name, b'/' as libc::c_int) {
            p if p.is_null() => name,
            p => p.add(1),
        };
        let len = end as usize - base as usize;
        if len < 2 {
            return;
        }
        *AREA.lock().unwrap_or_else(|e| e.into_inner()) = Some(Area {
            base: base as usize,
            len,
            arg0,
        });
    }
}

/// Elsewhere the title stays as the system shows it.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn init() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(template: &str) -> Option<String> {
        let mut cfg = Config::default();
        cfg.port = 7000;
        cfg.bind = vec!["127.0.0.1".into(), "-::1".into()];
        expand(
            template.as_bytes(),
            &Vars {
                title: "tessera",
                cfg: &cfg,
            },
        )
    }

    #[test]
    fn templates_expand_as_redis_expands_them() {
        assert_eq!(
            expanded("{title} {listen-addr} {server-mode}").as_deref(),
            Some("tessera 127.0.0.1:7000")
        );
        assert_eq!(expanded("  {port}  ").as_deref(), Some("7000"));
        assert_eq!(expanded("{{title}}").as_deref(), Some("{title}}"));
        assert_eq!(expanded("a}b {tls-port}").as_deref(), Some("a}b 0"));
        assert_eq!(
            expanded("[{config-file}] [{unixsocket}]").as_deref(),
            Some("[-] []")
        );
        for bad in ["{}", "{nope}", "{title", "{", "x {port"] {
            assert_eq!(expanded(bad), None, "{bad}");
        }
    }
}

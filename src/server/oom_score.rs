//! The process's Linux OOM-killer score (`oom-score-adj`, `oom-score-adj-values`), written to
//! `/proc/self/oom_score_adj` as Redis's `setOOMScoreAdj` writes it: at startup and whenever
//! CONFIG SET changes either directive.
//!
//! It owns the score Tessera found before it first changed it (`relative` adds to that one, and
//! `no` puts it back). It never touches the score while the directive is `no` and Tessera has
//! changed nothing, so a score set by a service manager stays as it was.

use std::sync::Mutex;

use crate::config::{Config, OomScoreAdj};

const PATH: &str = "/proc/self/oom_score_adj";

/// What Redis's error names when the score cannot be written (details go to the log).
pub const ERR_FAILED: &str = "Failed to set current oom_score_adj. Check server logs.";

/// The score found before Tessera first changed it; None while Tessera has not changed it.
static BASE: Mutex<Option<i32>> = Mutex::new(None);

/// Writes the score `cfg` asks for, as the primary's class (Tessera has no replicas or child
/// processes). A failure is logged, as Redis logs it, and its text returned.
pub fn apply(cfg: &Config) -> Result<(), String> {
    let mut base = BASE.lock().unwrap_or_else(|e| e.into_inner());
    let value = match (cfg.oom_score_adj, *base) {
        (OomScoreAdj::No, None) => return Ok(()),
        (OomScoreAdj::No, Some(b)) => b,
        (mode, found) => {
            let b = match found {
                Some(b) => b,
                None => {
                    let b = read().map_err(|e| logged("read", &e))?;
                    *base = Some(b);
                    b
                }
            };
            let v = cfg.oom_score_adj_values[0];
            let v = if mode == OomScoreAdj::Relative {
                v + b
            } else {
                v
            };
            v.clamp(-1000, 1000)
        }
    };
    std::fs::write(PATH, format!("{value}\n")).map_err(|e| logged("write", &e))?;
    if cfg.oom_score_adj == OomScoreAdj::No {
        // Back where it started: a later `yes` reads the base again, as in Redis.
        *base = None;
    }
    Ok(())
}

/// Logs a failure to `verb` the score as Redis words it, and returns the text.
fn logged(verb: &str, e: &std::io::Error) -> String {
    let msg = format!(
        "Unable to {verb} oom_score_adj: {}",
        crate::config::strerror(e)
    );
    tracing::warn!("{msg}");
    msg
}

fn read() -> std::io::Result<i32> {
    let text = std::fs::read_to_string(PATH)?;
    Ok(text.trim().parse().unwrap_or(0))
}

/// Redis's warning for values in an order an unprivileged process cannot follow (it may only
/// raise its score: a replica above the primary, a child above the replica).
pub fn warn_if_unordered(values: &[i32; 3]) {
    if values[1] < values[0] || values[2] < values[1] {
        tracing::warn!(
            "The oom-score-adj-values configuration may not work for non-privileged processes! Please consult the documentation."
        );
    }
}

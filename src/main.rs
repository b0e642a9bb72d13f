//! The `tessera` binary: parse configuration like redis-server, set up logging, run the shards.

use tessera::config::{self, LogLevel};

/// Every allocation is counted per thread, so INFO memory and maxmemory see exact totals.
#[cfg(feature = "counting-alloc")]
#[global_allocator]
static GLOBAL: tessera::alloc::CountingAlloc = tessera::alloc::CountingAlloc;

fn main() {
    // First, while this is the only thread: it moves the environment (see `proc_title`).
    tessera::server::proc_title::init();
    #[cfg(feature = "counting-alloc")]
    GLOBAL.activate();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Offline tools: no configuration, no server.
    match argv.first().map(String::as_str) {
        Some("check") => std::process::exit(tessera::persistence::check::main(&argv[1..])),
        Some("export-rdb") => std::process::exit(tessera::persistence::export::main(&argv[1..])),
        _ => {}
    }
    if argv.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "tessera v={} (redis compatible {})",
            env!("CARGO_PKG_VERSION"),
            tessera::REDIS_VERSION
        );
        return;
    }
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("Usage: tessera [/path/to/tessera.conf] [--name value ...]\n       tessera check [--fix] PATH...\n       tessera export-rdb [--dir DIR] [--dbfilename NAME] [SOURCE] OUT\n\nEvery redis.conf directive is accepted as --name value; --shards N sets the number of shards (default: online CPUs).\n'check' verifies RDB files, snapshots and AOFs offline; 'export-rdb' merges a snapshot into one RDB file for Redis 7.0 (each takes --help).");
        return;
    }
    let loaded = match config::load(&argv) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "\n*** FATAL CONFIG FILE ERROR (Tessera {}) ***\n{}",
                env!("CARGO_PKG_VERSION"),
                e
            );
            std::process::exit(1);
        }
    };
    let cfg = loaded.config;
    init_logging(&cfg);
    for w in &loaded.warnings {
        tracing::warn!("{}", w);
    }
    let config_file = cfg
        .config_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if let Err(e) = tessera::server::run(cfg, config_file) {
        tracing::error!("{}", e);
        eprintln!("{}", e);
        std::process::exit(1);
    }
}

fn init_logging(cfg: &config::Config) {
    use tracing_subscriber::prelude::*;
    let level = match cfg.loglevel {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Verbose => tracing::Level::DEBUG,
        LogLevel::Notice => tracing::Level::INFO,
        LogLevel::Warning => tracing::Level::WARN,
        #[allow(unreachable_patterns)]
        _ => tracing::Level::INFO,
    };
    // As in Redis, the system log gets every line the log file (or standard output) gets.
    let syslog = cfg
        .syslog_enabled
        .then(|| tessera::syslog::SyslogLayer::new(&cfg.syslog_ident, cfg.syslog_facility));
    let registry = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(level))
        .with(syslog);
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    if cfg.logfile.is_empty() {
        registry.with(fmt).init();
    } else {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.logfile)
        {
            Ok(f) => registry
                .with(fmt.with_ansi(false).with_writer(std::sync::Mutex::new(f)))
                .init(),
            Err(e) => {
                eprintln!("Can't open the log file: {}", e);
                std::process::exit(1);
            }
        }
    }
}

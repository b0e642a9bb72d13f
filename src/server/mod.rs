//! Process startup and shutdown: one glommio executor per shard, each with its own listeners on
//! the shared port (SO_REUSEPORT, see `listen`), its end of the router mesh, and its cron
//! (active expiry, shutdown checks).
//!
//! Nothing here executes commands; it wires shards together and tears them down.

pub mod acl;
pub mod acl_rules;
pub mod busy;
pub mod client;
pub mod client_eviction;
pub mod conn;
pub mod globals;
pub mod listen;
pub mod oom_score;
pub mod proc_title;
pub mod readiness;
pub mod split;
pub mod supervise;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::shard::router::{Router, ShardMsg};
use crate::shard::slot::SlotMap;
use crate::shard::{expiry, lazyfree, memory, Shard};
use globals::Globals;

/// Whether the configured eviction policy tracks access frequency (LFU).
pub fn policy_is_lfu(cfg: &Config) -> bool {
    cfg.maxmemory_policy.is_lfu()
}

/// Puts the calling shard thread under SCHED_BATCH: it keeps its fair share of its core, but a
/// wake-up (another shard's message, a socket) no longer preempts the thread running there.
/// Where shards share cores (more shards than cores, or a small host where the load generator
/// shares them), each cross-shard message otherwise switched to the woken shard and back,
/// serving one message per switch. Measured with two shards on one core at P=1 (SET, 50
/// clients): context switches per request 0.13-0.16 -> 0.08-0.09, server CPU per request
/// 6.4 -> 6.0 us. A failure (a policy the host forbids) is logged and changes nothing else.
fn set_sched_batch(shard: usize) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_BATCH,
    // whose only allowed priority is 0.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        tracing::warn!(
            shard,
            error = %std::io::Error::last_os_error(),
            "cannot set SCHED_BATCH for the shard thread; shard-sched-batch has no effect"
        );
    }
}

/// The CPUs this process may run on (its affinity mask: `taskset`, a cgroup cpuset, a container's
/// `--cpuset-cpus`), in ascending order. Shards are pinned to these, never to CPU ids outside
/// the mask, which the kernel would refuse.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit array that sched_getaffinity fills; pid 0 is this thread,
    // which is the main thread here, before any shard starts, so it carries the process mask.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    let cpus: Vec<usize> = if rc == 0 {
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: the index is below CPU_SETSIZE, the bit count of `set`.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        (0..n).collect()
    } else {
        cpus
    }
}

/// Starts every shard and blocks until the server shuts down.
pub fn run(cfg: Config, config_file: String) -> Result<(), String> {
    oom_score::warn_if_unordered(&cfg.oom_score_adj_values);
    // As in Redis, a score that cannot be written is logged and the server starts anyway.
    let _ = oom_score::apply(&cfg);
    proc_title::apply(&cfg);
    let nshards = if cfg.shards == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.shards
    };
    // A process of ours killed a moment ago can hold its listeners for a few milliseconds
    // after it is reaped (its io_uring rings are torn down asynchronously): a restart by a
    // supervisor must not fail on that, so "in use" is retried for a second.
    let addrs = listen::plan(
        &listen::resolve(&cfg.bind, cfg.port)?,
        &[],
        Duration::from_secs(1),
    )?;
    let unix_socket = match cfg.unixsocket() {
        Some((path, perm)) => Some(listen::UnixSocket::open(
            &path,
            &cfg.dir,
            perm,
            cfg.tcp_backlog,
        )?),
        None => None,
    };
    if addrs.is_empty() && unix_socket.is_none() {
        return Err("Configured to not listen anywhere (check 'bind' and 'port')".into());
    }
    let unix = unix_socket.as_ref().map(|u| u.shared());
    let cpus = allowed_cpus();
    let pinned = nshards <= cpus.len() && cfg.shard_pinning;
    let mut globals = Globals::new(cfg.port, nshards, config_file);
    globals.shards_pinned = pinned;
    if let Some(p) = &cfg.requirepass {
        globals.acl.set_requirepass(Some(p));
    }
    if !cfg.users.is_empty() {
        if cfg.aclfile().is_some() {
            return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
        }
        crate::commands::acl_family::create_configured_users(
            &globals.acl,
            &cfg.users,
            cfg.acl_pubsub_allchannels(),
        )?;
    }
    // The ACL file's users, as Redis loads them at startup: any error stops the server.
    if let Some(path) = cfg.aclfile() {
        let text = std::fs::read(&path).map_err(|e| {
            format!(
                "Aborting Redis startup because of ACL errors: Error loading ACLs, opening file '{path}': {}",
                crate::config::strerror(&e)
            )
        })?;
        let users = crate::commands::acl_family::parse_acl_file(
            &path,
            &String::from_utf8_lossy(&text),
            cfg.acl_pubsub_allchannels(),
        )
        .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        let mut t = globals.acl.lock();
        t.replace_all(users);
        globals.acl.changed(&t);
    }
    let globals = Arc::new(globals);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = globals.pid,
        port = cfg.port,
        shards = nshards,
        placement = if pinned {
            format!("one shard pinned per core, on cpus {:?}", &cpus[..nshards])
        } else if cfg.shard_pinning {
            format!("unbound (more shards than the {} cpus allowed)", cpus.len())
        } else {
            "unbound (shard-pinning no)".to_string()
        },
        "Tessera starting"
    );
    install_signal_thread(globals.clone());
    supervise::start(cfg.supervised());
    let pid_file = cfg.pidfile().and_then(|p| supervise::PidFile::create(&p));
    let slots = Arc::new(SlotMap::new(nshards));
    let mesh: Option<MeshBuilder<ShardMsg, _>> = if nshards > 1 {
        Some(MeshBuilder::full(nshards, 1024))
    } else {
        None
    };
    let mut handles = Vec::new();
    for id in 0..nshards {
        let placement = match cpus.get(id) {
            Some(&cpu) if pinned => Placement::Fixed(cpu),
            _ => Placement::Unbound,
        };
        let cfg = cfg.clone();
        let globals = globals.clone();
        let slots = slots.clone();
        let mesh = mesh.clone();
        let addrs = addrs.clone();
        let unix = unix.clone();
        let io_memory = cfg.io_memory.max(512 * 1024);
        let mut builder = LocalExecutorBuilder::new(placement);
        if pinned && cfg.shard_spin_us > 0 {
            builder = builder.spin_before_park(Duration::from_micros(cfg.shard_spin_us));
        }
        let handle = builder
            .name(&format!("shard-{}", id))
            .io_memory(io_memory)
            .ring_depth(cfg.ring_depth.max(32) as usize)
            .spawn(move || async move {
                if cfg.shard_sched_batch {
                    set_sched_batch(id);
                }
                shard_main(id, cfg, globals, slots, mesh, addrs, unix).await
            })
            .map_err(|e| format!("cannot start shard {}: {}", id, e))?;
        handles.push(handle);
    }
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                globals.request_shutdown();
                result = Err(e);
            }
            Err(e) => {
                globals.request_shutdown();
                result = Err(format!("shard thread failed: {}", e));
            }
        }
    }
    if let Some(u) = unix_socket {
        u.remove();
    }
    if let Some(p) = pid_file {
        p.remove();
    }
    tracing::info!("Tessera is now ready to exit, bye bye...");
    result
}

/// Runs one message another shard sent. Keyed commands contain their own panics; a panicking
/// job drops its reply sender, so the requester gets an error instead of this shard dying.
fn run_shard_msg(sh: &Rc<Shard>, msg: ShardMsg) {
    let run = std::panic::AssertUnwindSafe(|| match msg {
        ShardMsg::Batch(b) => Shard::receive_batch(sh, b),
        ShardMsg::Job(job) => job(sh),
        ShardMsg::Release(tx) => crate::tx::release_on(sh, tx),
        ShardMsg::Task(task) => {
            // Polled once in place first: most tasks (a transaction's lock that is free, a
            // part that runs at once) finish without waiting, and then cost no task of their
            // own. One that waits becomes a task, whose first poll registers its real waker.
            let mut fut = task(sh.clone());
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            if fut.as_mut().poll(&mut cx).is_pending() {
                glommio::spawn_local(fut).detach();
            }
        }
    });
    if std::panic::catch_unwind(run).is_err() {
        tracing::error!(
            shard = sh.id,
            "cross-shard job panicked; shard keeps serving"
        );
    }
}

async fn shard_main(
    id: usize,
    cfg: Config,
    globals: Arc<Globals>,
    slots: Arc<SlotMap>,
    mesh: Option<MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>>,
    addrs: Vec<SocketAddr>,
    unix: Option<(std::os::fd::RawFd, String)>,
) -> Result<(), String> {
    let backlog = cfg.tcp_backlog;
    let (senders, receivers) = match mesh {
        Some(m) => {
            let (s, r) = m
                .join()
                .await
                .map_err(|_| "router mesh join failed".to_string())?;
            (Some(s), Some(r))
        }
        None => (None, None),
    };
    let router = Router::new(slots, senders);
    let shard = Shard::new(id, cfg, router, globals.clone());
    if let Some(mut receivers) = receivers {
        for (_peer, rx) in receivers.streams() {
            let sh = shard.clone();
            glommio::spawn_local(async move {
                // What the peer queued is taken in one go (up to a bound, so a busy peer cannot
                // keep this loop from the rest of the shard's work any longer than before) and
                // run in order, after one look at all of it: the keys of many connections'
                // one-command batches are hinted together (`Shard::prefetch_queued`).
                const DRAIN_MAX: usize = 32;
                let mut queued: Vec<ShardMsg> = Vec::with_capacity(DRAIN_MAX);
                while let Some(first) = rx.recv().await {
                    queued.push(first);
                    rx.try_recv_many(&mut queued, DRAIN_MAX - 1);
                    if queued.len() > 1 {
                        sh.prefetch_queued(&queued);
                    }
                    for msg in queued.drain(..) {
                        run_shard_msg(&sh, msg);
                    }
                }
            })
            .detach();
        }
    }
    // The data is loaded (shard 0 drives it, every shard takes its keys) before anyone accepts
    // clients: the AOF when it is on (it is the more complete record, as in Redis), else the
    // snapshot.
    if id == 0 {
        let aof = crate::persistence::aof::Settings::from_config(&shard.state.borrow().config);
        let loaded = if aof.enabled {
            crate::persistence::aof::startup(&shard).await
        } else {
            crate::persistence::snapshot::load::startup(&shard).await
        };
        if let Err(e) = loaded {
            globals.request_shutdown();
            shard.router.close();
            return Err(e);
        }
        globals.aof.ready.store(true, Ordering::Release);
    } else {
        while !globals.aof.ready.load(Ordering::Acquire) {
            if globals.shutting_down() {
                shard.router.close();
                return Ok(());
            }
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
    }
    // Lazy freeing and eviction that outlives a command's time budget run in a task queue of
    // their own with a tenth of the shares of the connections' queue.
    let background_tq = glommio::executor().create_task_queue(
        glommio::Shares::Static(100),
        glommio::Latency::NotImportant,
        "background",
    );
    shard.background_tq.set(Some(background_tq));
    let sh = shard.clone();
    glommio::spawn_local_into(async move { background(sh).await }, background_tq)
        .map_err(|e| format!("shard {}: cannot start the background task: {}", id, e))?
        .detach();
    // Shard 0 opens every shard's listeners, the way CONFIG SET port moves them later. If that
    // fails, the server stops through the usual shutdown, without a final save.
    let listening = if id == 0 {
        listen::start(&shard, &addrs, backlog).await
    } else {
        Ok(())
    };
    if listening.is_ok() {
        if let Some((fd, path)) = &unix {
            listen::accept_unix(&shard, *fd, path);
        }
    }
    match &listening {
        Ok(()) if id == 0 => {
            if !addrs.is_empty() {
                tracing::info!("Ready to accept connections tcp");
            }
            if unix.is_some() {
                tracing::info!("Ready to accept connections unix");
            }
            supervise::ready();
        }
        Ok(()) => {}
        Err(_) => {
            let no_save = crate::persistence::snapshot::ShutdownSave::No;
            globals.snapshot.set_shutdown_save(no_save);
            globals.request_shutdown();
        }
    }
    shard.globals.mem.shard_ready();
    cron(&shard).await;
    // Shutdown: close every client of this shard, then let the executor wind down.
    for c in shard.clients.borrow().clients.values() {
        c.kill();
    }
    glommio::timer::sleep(Duration::from_millis(20)).await;
    crate::persistence::snapshot::shutdown_barrier(&shard).await;
    crate::persistence::aof::shutdown(&shard).await;
    shard.router.close();
    listening
}

/// The shard's periodic work: active expiry at `hz`, and watching for shutdown.
///
/// DEBUG PAUSE-CRON (`Globals::cron_paused`) stops what Redis's paused serverCron stops: active
/// expiry (with the incremental rehashing it drives), the `save` rules and scheduled BGSAVEs,
/// the automatic AOF rewrite and the instantaneous-metrics samples. What keeps the server
/// answering and safe goes on: SIGTERM/SIGINT still shut it down (a paused Redis ignores them
/// until resumed), CONFIG SET appendonly still takes effect, and the memory figures that
/// `maxmemory` enforcement reads are still published (Redis computes those per command).
async fn cron(shard: &Rc<Shard>) {
    loop {
        let hz = shard.state.borrow().config.hz.clamp(1, 500) as u64;
        glommio::timer::sleep(Duration::from_millis((1000 / hz).min(100))).await;
        if shard.globals.shutting_down() {
            return;
        }
        let sig = match shard.id {
            0 => shard.globals.shutdown_signal.swap(0, Ordering::SeqCst),
            _ => 0,
        };
        if sig != 0 {
            use crate::persistence::snapshot::ShutdownSave;
            // `shutdown-on-sigint` / `shutdown-on-sigterm`: the SHUTDOWN options the signal
            // stands for (NOW has nothing to skip without replicas).
            let flags = shard
                .state
                .borrow()
                .config
                .shutdown_on_signal(sig == libc::SIGINT);
            let mode = match flags & 3 {
                1 => ShutdownSave::Yes,
                2 => ShutdownSave::No,
                _ => ShutdownSave::IfRules,
            };
            let force = flags & 8 != 0;
            let sh = shard.clone();
            glommio::spawn_local(async move {
                let _ = crate::persistence::snapshot::prepare_shutdown(&sh, mode, force).await;
            })
            .detach();
        }
        let paused = shard.globals.cron_paused.load(Ordering::Relaxed);
        crate::persistence::aof::cron(shard);
        if !paused {
            crate::persistence::snapshot::cron(shard);
        }
        let mut st = shard.state.borrow_mut();
        st.clock_ms = globals::unix_ms();
        let now = st.clock_ms;
        shard.aof_replies_wait.set(st.aof.is_some());
        if !paused {
            st.stats.sample_instantaneous(now);
            expiry::cycle(&mut st);
            crate::pubsub::tracking::cron();
        }
        memory::refresh(&mut st, &shard.globals.mem);
        drop(st);
        client_eviction::check(shard, None);
    }
}

/// The shard's background memory work: lazily freed values, a bounded chunk at a time, and
/// eviction that ran out of its time budget inside a command (Redis's eviction time proc).
async fn background(shard: Rc<Shard>) {
    loop {
        if shard.globals.shutting_down() {
            return;
        }
        let evicting = shard.state.borrow().mem.eviction_running;
        if evicting {
            let now = globals::unix_ms();
            memory::perform_evictions(&mut shard.state.borrow_mut(), now);
        }
        let more = lazyfree::free_step(lazyfree::CHUNK);
        if more || shard.state.borrow().mem.eviction_running {
            glommio::executor().yield_task_queue_now().await;
        } else {
            lazyfree::wait_for_work().await;
        }
    }
}

/// SIGINT/SIGTERM are blocked in every thread and handled by one thread with `sigwait`, which
/// only raises a flag; shard 0's cron then runs the shutdown as SHUTDOWN does (a failed final
/// save keeps the server running, like Redis).
fn install_signal_thread(globals: Arc<Globals>) {
    // SAFETY: plain libc signal-mask calls on a sigset we own; done before any shard thread
    // starts, so every thread inherits the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // Writes to closed sockets must return EPIPE, not kill the process.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // A file size limit must fail the AOF write (EFBIG, refused writes), not kill us.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let set_copy = set;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set_copy, &mut sig) == 0 {
                    let name = if sig == libc::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    tracing::warn!("Received {} scheduling shutdown...", name);
                    if globals.aof.ready.load(Ordering::Acquire) {
                        globals.shutdown_signal.store(sig, Ordering::SeqCst);
                    } else {
                        // Still loading: nothing to save yet, stop at once.
                        globals.request_shutdown();
                    }
                }
            })
            .ok();
    }
}

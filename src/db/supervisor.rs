//! Keeps the embedded cluster running: when the postmaster exits unexpectedly
//! (`kill -9`, the OOM killer), it is started again with backoff, and requests
//! answer the "temporarily unavailable" page meanwhile. The pools reconnect by
//! themselves (a dead connection fails its check on acquire and is replaced).

use std::{
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use super::embedded::Cluster;

/// How often the postmaster is checked while it runs.
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// First and longest pause between failed restarts.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

struct State {
    cluster: Cluster,
    stopping: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// A cluster and, once [`Supervised::watch`] is called, a watchdog thread.
/// Stopping it (or dropping it) stops the watchdog first, then the server.
pub struct Supervised {
    shared: Shared,
    watchdog: Option<JoinHandle<()>>,
}

impl Supervised {
    /// Holds `cluster`, not yet watched (one-shot commands need no watchdog).
    pub fn new(cluster: Cluster) -> Self {
        Self {
            shared: Arc::new((
                Mutex::new(State {
                    cluster,
                    stopping: false,
                }),
                Condvar::new(),
            )),
            watchdog: None,
        }
    }

    /// Starts the watchdog (once): from now on a dead server is started again.
    pub fn watch(&mut self) -> std::io::Result<()> {
        if self.watchdog.is_none() {
            let watched = self.shared.clone();
            self.watchdog = Some(
                std::thread::Builder::new()
                    .name("pg-supervisor".into())
                    .spawn(move || watch(&watched))?,
            );
        }
        Ok(())
    }

    /// Runs `f` on the cluster (e.g. to read its URLs).
    pub fn with<T>(&self, f: impl FnOnce(&mut Cluster) -> T) -> T {
        f(&mut lock(&self.shared).cluster)
    }

    /// Stops the watchdog, then the server if this process started it.
    pub fn stop(&mut self) {
        lock(&self.shared).stopping = true;
        self.shared.1.notify_all();
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
        lock(&self.shared).cluster.stop();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Supervised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised").finish_non_exhaustive()
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

fn watch(shared: &Shared) {
    let mut backoff = FIRST_BACKOFF;
    let mut down_since: Option<std::time::Instant> = None;
    let mut state = lock(shared);
    loop {
        if state.stopping {
            return;
        }
        let pause = if state.cluster.is_running() {
            CHECK_EVERY
        } else {
            let since = *down_since.get_or_insert_with(std::time::Instant::now);
            tracing::warn!("the embedded PostgreSQL is not running: restarting it");
            match state.cluster.relaunch() {
                Ok(()) => {
                    tracing::info!(
                        down_ms = since.elapsed().as_millis() as u64,
                        "the embedded PostgreSQL is running again"
                    );
                    down_since = None;
                    backoff = FIRST_BACKOFF;
                    CHECK_EVERY
                }
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "restarting the embedded PostgreSQL failed"
                    );
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    pause
                }
            }
        };
        state = shared
            .1
            .wait_timeout(state, pause)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

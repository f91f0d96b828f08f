//! Resident memory of the server and of the embedded PostgreSQL, sampled in the
//! background while the load runs.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The PostgreSQL process tree is summed every this many samples (it scans /proc).
pub const PG_SAMPLE_EVERY_N: u64 = 5;

/// VmRSS of `pid` in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&status, "VmRSS:")
}

fn status_field_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Proportional set size of `pid` in KiB (shared memory split between sharers),
/// falling back to VmRSS.
fn pss_kib(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| status_field_kib(&t, "Pss:"))
        .or_else(|| vm_rss_kib(pid))
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The embedded PostgreSQL: (process count, summed PSS in KiB) of the
/// postmaster and its children.
pub fn postgres_usage(data_dir: &Path) -> Option<(usize, u64)> {
    let pid_file = fs::read_to_string(data_dir.join("pg").join("postmaster.pid")).ok()?;
    let postmaster: u32 = pid_file.lines().next()?.trim().parse().ok()?;
    let mut pids = vec![postmaster];
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if parent_pid(pid) == Some(postmaster) {
            pids.push(pid);
        }
    }
    let total = pids.iter().filter_map(|&pid| pss_kib(pid)).sum();
    Some((pids.len(), total))
}

/// Peak memory seen by the background sampler since the last `take`.
#[derive(Default)]
pub struct Peaks {
    server_kib: AtomicU64,
    postgres_kib: AtomicU64,
    postgres_procs: AtomicU64,
    samples: AtomicU64,
}

#[derive(Clone, Copy, Default)]
pub struct PeakSnapshot {
    pub server_kib: u64,
    pub postgres_kib: u64,
    pub postgres_procs: u64,
    pub samples: u64,
}

impl Peaks {
    pub fn take(&self) -> PeakSnapshot {
        PeakSnapshot {
            server_kib: self.server_kib.swap(0, Ordering::Relaxed),
            postgres_kib: self.postgres_kib.swap(0, Ordering::Relaxed),
            postgres_procs: self.postgres_procs.swap(0, Ordering::Relaxed),
            samples: self.samples.swap(0, Ordering::Relaxed),
        }
    }
}

pub struct Sampler {
    pub peaks: Arc<Peaks>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32, data_dir: PathBuf) -> Self {
        let peaks = Arc::new(Peaks::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let peaks = peaks.clone();
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(SAMPLE_EVERY);
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Some(kib) = vm_rss_kib(pid) {
                        peaks.server_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    if n.is_multiple_of(PG_SAMPLE_EVERY_N) {
                        let dir = data_dir.clone();
                        if let Ok(Some((procs, kib))) =
                            tokio::task::spawn_blocking(move || postgres_usage(&dir)).await
                        {
                            peaks.postgres_kib.fetch_max(kib, Ordering::Relaxed);
                            peaks
                                .postgres_procs
                                .fetch_max(procs as u64, Ordering::Relaxed);
                        }
                    }
                    peaks.samples.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }
        });
        Self { peaks, stop, task }
    }

    pub async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

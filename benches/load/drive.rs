//! The load itself: closed-loop `GET /portfolio` workers, and an open-loop
//! sign-in storm that can run beside them.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};

use crate::members;

const WARMUP_REQUESTS: usize = 20;
const MAX_REQUESTS: usize = 50_000;

/// What the workers of one row saw.
#[derive(Default)]
pub struct WorkerResult {
    pub latencies: Vec<Duration>,
    pub errors: BTreeMap<String, usize>,
    pub degraded: usize,
    pub warmup_errors: usize,
}

fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_body() || e.is_decode() {
        "body".into()
    } else {
        "transport".into()
    }
}

/// One `GET /portfolio`: Ok(degraded?) or Err(kind).
async fn fetch_portfolio(client: &Client, url: &str) -> Result<bool, String> {
    let resp = client.get(url).send().await.map_err(|e| classify(&e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| classify(&e))?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    Ok(body.contains("class=\"alert\""))
}

/// `concurrency` workers cycling through the members' clients for `run_for`.
pub async fn run_load(
    base: &str,
    clients: &Arc<Vec<Client>>,
    concurrency: usize,
    run_for: Duration,
) -> (WorkerResult, Duration) {
    let url = Arc::new(format!("{base}/portfolio"));
    // Warm-up: sequential, cycling through the members, not recorded.
    let mut warmup_errors = 0;
    for i in 0..WARMUP_REQUESTS {
        if fetch_portfolio(&clients[i % clients.len()], &url)
            .await
            .is_err()
        {
            warmup_errors += 1;
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + run_for;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let clients = clients.clone();
            let next = next.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut out = WorkerResult::default();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= MAX_REQUESTS {
                        break;
                    }
                    let client = &clients[i % clients.len()];
                    let t = Instant::now();
                    let outcome = fetch_portfolio(client, &url).await;
                    out.latencies.push(t.elapsed());
                    match outcome {
                        Ok(true) => out.degraded += 1,
                        Ok(false) => {}
                        Err(kind) => *out.errors.entry(kind).or_default() += 1,
                    }
                }
                out
            })
        })
        .collect();
    let mut total = WorkerResult {
        warmup_errors,
        ..WorkerResult::default()
    };
    for worker in workers {
        match worker.await {
            Ok(out) => {
                total.latencies.extend(out.latencies);
                total.degraded += out.degraded;
                for (k, v) in out.errors {
                    *total.errors.entry(k).or_default() += v;
                }
            }
            Err(e) => {
                *total
                    .errors
                    .entry(format!("worker panicked: {e}"))
                    .or_default() += 1
            }
        }
    }
    (total, started.elapsed())
}

/// Nearest-rank percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sign-ins started at a fixed rate (open loop: a slow one does not delay the
/// next), cycling through `emails`, until stopped.
pub struct Storm {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<StormResult>,
}

/// What a storm did.
#[derive(Default)]
pub struct StormResult {
    pub started: usize,
    pub latencies: Vec<Duration>,
    pub errors: BTreeMap<String, usize>,
}

impl Storm {
    pub fn start(base: &str, emails: Vec<String>, per_second: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let base = base.to_owned();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
                let mut inflight = Vec::new();
                let mut started = 0;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let email = emails[started % emails.len()].clone();
                    let base = base.clone();
                    started += 1;
                    inflight.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let outcome = members::sign_in(&base, &email).await;
                        (t.elapsed(), outcome.map_err(|e| e.to_string()))
                    }));
                }
                let mut result = StormResult {
                    started,
                    ..StormResult::default()
                };
                for task in inflight {
                    match task.await {
                        Ok((took, Ok(()))) => result.latencies.push(took),
                        Ok((_, Err(e))) => {
                            let kind: String = e.chars().take(120).collect();
                            *result.errors.entry(kind).or_default() += 1;
                        }
                        Err(e) => *result.errors.entry(e.to_string()).or_default() += 1,
                    }
                }
                result.latencies.sort_unstable();
                result
            }
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> StormResult {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

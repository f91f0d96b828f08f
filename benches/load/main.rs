//! Load benchmark for `GET /portfolio` against a real `paddock serve` (embedded
//! PostgreSQL) and the standalone Alpaca simulator, over loopback.
//!
//! For each simulated Alpaca latency (0 ms, 50 ms) it starts a fresh simulator
//! and server, signs up two groups of members (one paper account each, three
//! each), and drives `GET /portfolio` at concurrency 1 and 32 — once per Alpaca
//! cache setting (`PADDOCK_ALPACA_CACHE_SECS` 0 = every view calls Alpaca, and
//! the default 2), restarting the server on the same data between settings. At
//! 0 ms it also repeats the one-account, concurrency-32 row while a sign-in storm
//! (10 Argon2id sign-ins a second) runs beside it. It prints a markdown table
//! with throughput, latency percentiles and the server's peak resident memory.
//!
//! Run with `cargo bench --bench load`. Knobs (environment):
//! - `LOAD_BINARY`: the `paddock` binary to measure (default
//!   `target/release/paddock`, built if missing) — to compare builds in one sitting;
//! - `LOAD_MEMBERS` (16): members per group;
//! - `LOAD_LATENCIES` (`0,50`), `LOAD_CACHE` (`0,2`), `LOAD_ROWS` (`1x1,1x32,3x1,3x32`:
//!   accounts x concurrency), `LOAD_SECS` (5): what to run and for how long;
//! - `LOAD_STORM` (10): sign-ins a second in the storm row, 0 for none.

mod drive;
mod members;
mod memory;
mod procs;
mod report;

use std::{
    collections::BTreeMap,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::Client;

use drive::{Storm, percentile, run_load};
use memory::{PeakSnapshot, Sampler, postgres_usage, vm_rss_kib};
use procs::{Server, TempDir, describe_stop, scan_logs, start_server, start_simulator, wait_ready};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

/// Members signed in over and over by the storm.
const STORM_MEMBERS: usize = 4;
/// The row the storm runs beside: one account, concurrency 32, 0 ms.
const STORM_ROW: (usize, usize) = (1, 32);

/// What to run, from the environment.
pub struct Config {
    pub members: usize,
    pub latencies: Vec<u64>,
    pub cache: Vec<u64>,
    pub rows: Vec<(usize, usize)>,
    pub run_for: Duration,
    pub storm_per_second: u32,
    pub label: String,
}

fn numbers(name: &str, default: &str) -> Result<Vec<u64>> {
    let raw = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    raw.split(',')
        .map(|v| v.trim().parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("{name} must be comma-separated whole numbers (got {raw:?})").into())
}

impl Config {
    fn from_env(binary: &Path) -> Result<Self> {
        let members = numbers("LOAD_MEMBERS", "16")?;
        let members = match members.as_slice() {
            [n] if (1..=2000).contains(n) => *n as usize,
            _ => return Err("LOAD_MEMBERS must be a number from 1 to 2000".into()),
        };
        let raw_rows =
            std::env::var("LOAD_ROWS").unwrap_or_else(|_| "1x1,1x32,3x1,3x32".to_owned());
        let rows = raw_rows
            .split(',')
            .map(|r| {
                let (a, c) = r.trim().split_once('x')?;
                Some((a.parse().ok()?, c.parse().ok()?))
            })
            .collect::<Option<Vec<(usize, usize)>>>()
            .filter(|rows| rows.iter().all(|(a, c)| *a >= 1 && *c >= 1))
            .ok_or("LOAD_ROWS must look like 1x1,1x32,3x1,3x32 (accounts x concurrency)")?;
        let secs = numbers("LOAD_SECS", "5")?;
        let storm = numbers("LOAD_STORM", "10")?;
        Ok(Self {
            members,
            latencies: numbers("LOAD_LATENCIES", "0,50")?,
            cache: numbers("LOAD_CACHE", "0,2")?,
            rows,
            run_for: Duration::from_secs(secs.first().copied().unwrap_or(5).max(1)),
            storm_per_second: u32::try_from(storm.first().copied().unwrap_or(10)).unwrap_or(10),
            label: binary.display().to_string(),
        })
    }

    fn accounts(&self) -> Vec<usize> {
        let mut accounts: Vec<usize> = self.rows.iter().map(|(a, _)| *a).collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    let run = || -> Result<_> {
        let binary = procs::ensure_binary()?;
        let config = Config::from_env(&binary)?;
        Ok((binary, config))
    };
    let (binary, config) = match run() {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");

    let mut reports = Vec::new();
    let mut failed = false;
    for &latency_ms in &config.latencies {
        eprintln!("load: === simulated Alpaca latency {latency_ms} ms ===");
        match runtime.block_on(run_latency(&binary, &config, latency_ms)) {
            Ok(report) => reports.push(report),
            Err(e) => {
                eprintln!("load: latency {latency_ms} ms failed: {e}");
                failed = true;
            }
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));

    println!("{}", report::render(&reports, &config, started.elapsed()));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The sign-in storm that ran beside a row.
pub struct StormSummary {
    pub per_second: u32,
    pub started: usize,
    pub completed: usize,
    pub errors: BTreeMap<String, usize>,
    pub p50: Duration,
    pub p99: Duration,
}

/// One measured row.
pub struct Row {
    pub latency_ms: u64,
    pub cache_secs: u64,
    pub accounts: usize,
    pub concurrency: usize,
    pub storm: Option<StormSummary>,
    pub requests: usize,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
    pub degraded: usize,
    pub warmup_errors: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub peak: PeakSnapshot,
}

impl Row {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
}

/// Everything measured at one simulated latency.
pub struct LatencyReport {
    pub latency_ms: u64,
    pub rows: Vec<Row>,
    pub ready_after: Duration,
    pub setup_took: Duration,
    pub idle_rss_kib: Option<u64>,
    pub idle_postgres: Option<(usize, u64)>,
    pub after_setup_rss_kib: Option<u64>,
    pub log_findings: Vec<String>,
    pub stops: Vec<String>,
}

async fn run_latency(binary: &Path, config: &Config, latency_ms: u64) -> Result<LatencyReport> {
    // Declared first so it is dropped last, after the processes have stopped.
    let dir = TempDir::new(&format!("{latency_ms}ms"))?;
    let mut sim = start_simulator(binary, &dir.0, latency_ms)?;
    eprintln!("load: simulator at {}", sim.paper_url);
    let first_cache = config.cache.first().copied().unwrap_or(0);
    let mut server = start_server(binary, &dir.0, &sim, first_cache, "setup")?;
    let ready_after = wait_ready(&mut server).await?;
    eprintln!(
        "load: paddock ready at {} after {ready_after:.1?}",
        server.base
    );
    // Let start-up work settle before the idle sample.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = vm_rss_kib(server.proc.pid());
    let idle_postgres = postgres_usage(&server.data_dir);

    let setup_started = Instant::now();
    let mut groups: Vec<(usize, Arc<Vec<Client>>)> = Vec::new();
    let members = config.members;
    for (g, accounts) in config.accounts().into_iter().enumerate() {
        eprintln!("load: signing up {members} members with {accounts} paper account(s) each");
        let clients = members::create_group(&server.base, g * members, members, accounts).await?;
        groups.push((accounts, Arc::new(clients)));
    }
    let storm = config.storm_per_second > 0 && latency_ms == 0;
    let storm_first = groups.len() * members;
    if storm {
        members::create_group(&server.base, storm_first, STORM_MEMBERS, 0).await?;
    }
    let storm_emails: Vec<String> = (storm_first..storm_first + STORM_MEMBERS)
        .map(members::email)
        .collect();
    let setup_took = setup_started.elapsed();
    let after_setup_rss_kib = vm_rss_kib(server.proc.pid());

    let mut rows = Vec::new();
    let mut log_findings = Vec::new();
    let mut stops = Vec::new();
    for (i, &cache_secs) in config.cache.iter().enumerate() {
        if i > 0 {
            stops.push(format!(
                "paddock serve {}",
                describe_stop(server.proc.stop())
            ));
            server = start_server(
                binary,
                &dir.0,
                &sim,
                cache_secs,
                &format!("cache{cache_secs}"),
            )?;
            wait_ready(&mut server).await?;
        }
        let sampler = Sampler::start(server.proc.pid(), server.data_dir.clone());
        for &(accounts, concurrency) in &config.rows {
            let Some((_, clients)) = groups.iter().find(|(a, _)| *a == accounts) else {
                continue;
            };
            let at = (latency_ms, cache_secs, accounts, concurrency);
            let row = measure(&server, &sampler, clients, at, config.run_for, None).await;
            rows.push(row);
            if storm && (accounts, concurrency) == STORM_ROW {
                let storm = Some((storm_emails.clone(), config.storm_per_second));
                let row = measure(&server, &sampler, clients, at, config.run_for, storm).await;
                rows.push(row);
            }
        }
        sampler.finish().await;
        log_findings.extend(
            scan_logs(&server.log_path, &server.data_dir.join("postgres.log"))
                .into_iter()
                .map(|f| format!("cache {cache_secs} s: {f}")),
        );
    }
    drop(groups);
    stops.push(format!(
        "paddock serve {}",
        describe_stop(server.proc.stop())
    ));
    stops.push(format!("simulator {}", describe_stop(sim.proc.stop())));
    Ok(LatencyReport {
        latency_ms,
        rows,
        ready_after,
        setup_took,
        idle_rss_kib,
        idle_postgres,
        after_setup_rss_kib,
        log_findings,
        stops,
    })
}

/// Runs one row (with a sign-in storm beside it when `storm` is given).
async fn measure(
    server: &Server,
    sampler: &Sampler,
    clients: &Arc<Vec<Client>>,
    (latency_ms, cache_secs, accounts, concurrency): (u64, u64, usize, usize),
    run_for: Duration,
    storm: Option<(Vec<String>, u32)>,
) -> Row {
    sampler.peaks.take();
    let running = storm.map(|(emails, rate)| (Storm::start(&server.base, emails, rate), rate));
    let (result, wall) = run_load(&server.base, clients, concurrency, run_for).await;
    let storm = match running {
        Some((storm, per_second)) => {
            let done = storm.finish().await;
            Some(StormSummary {
                per_second,
                started: done.started,
                completed: done.latencies.len(),
                errors: done.errors,
                p50: percentile(&done.latencies, 50.0),
                p99: percentile(&done.latencies, 99.0),
            })
        }
        None => None,
    };
    let peak = sampler.peaks.take();
    let mut latencies = result.latencies;
    latencies.sort_unstable();
    let row = Row {
        latency_ms,
        cache_secs,
        accounts,
        concurrency,
        storm,
        requests: latencies.len(),
        errors: result.errors.values().sum(),
        error_kinds: result.errors,
        degraded: result.degraded,
        warmup_errors: result.warmup_errors,
        wall,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or_default(),
        peak,
    };
    eprintln!(
        "load: {latency_ms} ms, cache {cache_secs} s, {accounts} acct, c={concurrency}{}: {} req, {} err, {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms, peak RSS {:.1} MiB",
        if row.storm.is_some() { " + storm" } else { "" },
        row.requests,
        row.errors,
        row.per_second(),
        report::ms(row.p50),
        report::ms(row.p99),
        report::mib(row.peak.server_kib),
    );
    row
}

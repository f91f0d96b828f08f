//! Load benchmark for `GET /portfolio` against a real `paddock serve` (embedded
//! PostgreSQL) and the standalone Alpaca simulator, over loopback.
//!
//! For each simulated Alpaca latency (0 ms, 50 ms) it starts a fresh simulator
//! and a fresh server, signs up two groups of members (one paper account each,
//! three paper accounts each), and drives `GET /portfolio` at concurrency 1 and
//! 32 for a bounded time and count. It prints a markdown table of throughput and
//! latency percentiles plus resident-memory samples, then stops everything.
//!
//! Run with `cargo bench --bench load`. `LOAD_MEMBERS` (default 16) sets the
//! number of members per group. The server binary is `target/release/paddock`;
//! it is built first if it is missing.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::{Client, StatusCode, redirect::Policy};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const PASSWORD: &str = "quiet violet harbor engine";
const LATENCIES_MS: [u64; 2] = [0, 50];
const ACCOUNTS_PER_MEMBER: [usize; 2] = [1, 3];
const CONCURRENCY: [usize; 2] = [1, 32];
const DEFAULT_MEMBERS: usize = 16;
const WARMUP_REQUESTS: usize = 20;
const RUN_FOR: Duration = Duration::from_secs(5);
const MAX_REQUESTS: usize = 20_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The PostgreSQL process tree is summed every this many samples (it scans /proc).
const PG_SAMPLE_EVERY_N: u64 = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Members signed up at once (each sign-up costs an Argon2 hash on the server).
const SIGNUP_PARALLELISM: usize = 2;

fn main() -> ExitCode {
    let started = Instant::now();
    let members = match std::env::var("LOAD_MEMBERS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=2000).contains(&n) => n,
            _ => {
                eprintln!("load: LOAD_MEMBERS must be a number from 1 to 2000 (got {v:?})");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => DEFAULT_MEMBERS,
    };
    let binary = match ensure_binary() {
        Ok(path) => path,
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
    for latency_ms in LATENCIES_MS {
        eprintln!("load: === simulated Alpaca latency {latency_ms} ms ===");
        match runtime.block_on(run_latency(&binary, latency_ms, members)) {
            Ok(report) => reports.push(report),
            Err(e) => {
                eprintln!("load: latency {latency_ms} ms failed: {e}");
                failed = true;
            }
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));

    println!("{}", render(&reports, members, started.elapsed()));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

// ---------------------------------------------------------------------------
// Binary, processes and temp dirs
// ---------------------------------------------------------------------------

fn ensure_binary() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let binary = target.join("release").join("paddock");
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!(
        "load: {} not found; running `cargo build --release --bin paddock` \
         (takes a few minutes the first time)",
        binary.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "paddock"])
        .current_dir(&manifest)
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !status.success() || !binary.is_file() {
        return Err(format!(
            "`cargo build --release --bin paddock` failed ({status}); {} still missing",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

/// A temp dir removed on drop (best effort).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "paddock-load-{}-{tag}-{}",
            std::process::id(),
            time_tag()
        ));
        fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("load: could not remove {}: {e}", self.0.display());
        }
    }
}

fn time_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A child process that is sent SIGTERM (then SIGKILL) when dropped.
struct Proc {
    name: &'static str,
    child: Option<Child>,
}

/// How a process ended when we stopped it.
struct Stopped {
    status: Option<ExitStatus>,
    took: Duration,
    killed: bool,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, wait up to `STOP_TIMEOUT`, then SIGKILL.
    fn stop(&mut self) -> Option<Stopped> {
        let mut child = self.child.take()?;
        let started = Instant::now();
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Stopped {
                status: Some(status),
                took: Duration::ZERO,
                killed: false,
            });
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        while started.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Stopped {
                    status: Some(status),
                    took: started.elapsed(),
                    killed: false,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "load: {} (pid {}) ignored SIGTERM for {STOP_TIMEOUT:?}; killing it",
            self.name,
            child.id()
        );
        let _ = child.kill();
        let status = child.wait().ok();
        Some(Stopped {
            status,
            took: started.elapsed(),
            killed: true,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Environment variables that would change what `paddock` runs against.
const SCRUBBED_ENV: [&str; 8] = [
    "DATABASE_URL",
    "DATABASE_ADMIN_URL",
    "PADDOCK_ENV",
    "PADDOCK_SEAL_KEYS",
    "ALPACA_CONNECT_TIMEOUT",
    "ALPACA_REQUEST_TIMEOUT",
    "ALPACA_PAPER_URL",
    "ALPACA_LIVE_URL",
];

fn paddock_command(binary: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    // `paddock` reads `.env` from its working directory: use an empty one.
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1");
    for name in SCRUBBED_ENV {
        cmd.env_remove(name);
    }
    cmd
}

struct Simulator {
    proc: Proc,
    paper_url: String,
    live_url: String,
}

fn start_simulator(binary: &Path, dir: &Path, latency_ms: u64) -> Result<Simulator> {
    let log = fs::File::create(dir.join("alpaca-sim.log"))?;
    let mut child = paddock_command(binary, dir)
        .args([
            "alpaca-sim",
            "--bind",
            "127.0.0.1:0",
            "--latency-ms",
            &latency_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting the simulator: {e}"))?;
    let stdout = child.stdout.take().ok_or("simulator stdout not captured")?;
    let proc = Proc {
        name: "alpaca-sim",
        child: Some(child),
    };
    // Read its stdout on a thread (which keeps draining it afterwards).
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut paper_url, mut live_url) = (None, None);
    while paper_url.is_none() || live_url.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .map_err(|_| "the simulator did not print its URLs within 20 s")?;
        let line = line.trim();
        if let Some(url) = line.strip_prefix("ALPACA_PAPER_URL=") {
            paper_url = Some(url.to_owned());
        } else if let Some(url) = line.strip_prefix("ALPACA_LIVE_URL=") {
            live_url = Some(url.to_owned());
        }
    }
    Ok(Simulator {
        proc,
        paper_url: paper_url.unwrap_or_default(),
        live_url: live_url.unwrap_or_default(),
    })
}

struct Server {
    proc: Proc,
    base: String,
    data_dir: PathBuf,
    log_path: PathBuf,
}

fn start_server(binary: &Path, dir: &Path, sim: &Simulator) -> Result<Server> {
    let port = free_port()?;
    let data_dir = dir.join("data");
    fs::create_dir_all(&data_dir)?;
    let log_path = dir.join("server.log");
    let log = fs::File::create(&log_path)?;
    let child = paddock_command(binary, dir)
        .arg("serve")
        .env("PADDOCK_BIND", format!("127.0.0.1:{port}"))
        .env("PADDOCK_DATA_DIR", &data_dir)
        .env("PADDOCK_SIGNUP", "open")
        .env("ALPACA_PAPER_URL", &sim.paper_url)
        .env("ALPACA_LIVE_URL", &sim.live_url)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting paddock serve: {e}"))?;
    Ok(Server {
        proc: Proc {
            name: "paddock serve",
            child: Some(child),
        },
        base: format!("http://127.0.0.1:{port}"),
        data_dir,
        log_path,
    })
}

async fn wait_ready(server: &mut Server) -> Result<Duration> {
    let started = Instant::now();
    let probe = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("{}/healthz", server.base);
    loop {
        if let Some(status) = server.proc.exited() {
            return Err(format!(
                "paddock serve exited ({status}) before it was ready:\n{}",
                log_tail(&server.log_path, 20)
            )
            .into());
        }
        if let Ok(resp) = probe.get(&url).send().await
            && resp.status() == StatusCode::OK
            && resp.text().await.map(|b| b.trim() == "ok").unwrap_or(false)
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "paddock serve was not ready within {READY_TIMEOUT:?}:\n{}",
                log_tail(&server.log_path, 20)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------

fn member_client() -> Result<Client> {
    Ok(Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

fn csrf_token(html: &str) -> Result<String> {
    const MARKER: &str = "name=\"csrf_token\" value=\"";
    let start = html.find(MARKER).ok_or("no csrf_token in the page")? + MARKER.len();
    let len = html[start..]
        .find('"')
        .ok_or("unterminated csrf_token value")?;
    Ok(html[start..start + len].to_owned())
}

fn snippet(body: &str) -> String {
    body.chars().filter(|c| !c.is_control()).take(300).collect()
}

async fn get_csrf(client: &Client, url: &str) -> Result<String> {
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if status != StatusCode::OK {
        return Err(format!("GET {url}: {status}: {}", snippet(&body)).into());
    }
    csrf_token(&body)
}

async fn expect_redirect(resp: reqwest::Response, what: &str, to: &str) -> Result<()> {
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status == StatusCode::SEE_OTHER && location == to {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(format!(
        "{what}: expected 303 to {to}, got {status} to {location:?}: {}",
        snippet(&body)
    )
    .into())
}

/// Signs up member `index` and enrolls `accounts` paper accounts for it.
async fn create_member(base: &str, index: usize, accounts: usize) -> Result<Client> {
    let client = member_client()?;
    let token = get_csrf(&client, &format!("{base}/signup")).await?;
    let email = format!("load{index:04}@example.com");
    let organization = format!("Load org {index:04}");
    let resp = client
        .post(format!("{base}/signup"))
        .form(&[
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("confirm_password", PASSWORD),
            ("organization_name", organization.as_str()),
            ("invite_code", ""),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await?;
    expect_redirect(resp, &format!("sign-up of {email}"), "/portfolio").await?;
    for account in 0..accounts {
        let token = get_csrf(&client, &format!("{base}/credentials/new")).await?;
        let key_id = format!("PKLOAD{index:04}{account:02}ACCT");
        let secret = format!("LoadSecret{index:04}{account:02}abcdefghijklmnop");
        let label = format!("Load {account}");
        let resp = client
            .post(format!("{base}/credentials"))
            .form(&[
                ("label", label.as_str()),
                ("environment", "paper"),
                ("api_key_id", key_id.as_str()),
                ("secret_key", secret.as_str()),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await?;
        expect_redirect(
            resp,
            &format!("enrolling {key_id} for {email}"),
            "/credentials",
        )
        .await?;
    }
    // Check the portfolio shows every account without errors (this also
    // consumes the flash message left by the last enrollment).
    let resp = client.get(format!("{base}/portfolio")).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    let cards = body.matches("class=\"card\"").count();
    if status != StatusCode::OK || cards != accounts || body.contains("class=\"alert\"") {
        return Err(format!(
            "portfolio of {email}: {status}, {cards} card(s) for {accounts} account(s): {}",
            snippet(&body)
        )
        .into());
    }
    Ok(client)
}

async fn create_group(
    base: &str,
    first: usize,
    count: usize,
    accounts: usize,
) -> Result<Vec<Client>> {
    stream::iter(first..first + count)
        .map(|index| create_member(base, index, accounts))
        .buffered(SIGNUP_PARALLELISM)
        .try_collect()
        .await
}

// ---------------------------------------------------------------------------
// Memory sampling
// ---------------------------------------------------------------------------

/// VmRSS of `pid` in KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
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
fn postgres_usage(data_dir: &Path) -> Option<(usize, u64)> {
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
struct Peaks {
    server_kib: AtomicU64,
    postgres_kib: AtomicU64,
    postgres_procs: AtomicU64,
    samples: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct PeakSnapshot {
    server_kib: u64,
    postgres_kib: u64,
    postgres_procs: u64,
    samples: u64,
}

impl Peaks {
    fn take(&self) -> PeakSnapshot {
        PeakSnapshot {
            server_kib: self.server_kib.swap(0, Ordering::Relaxed),
            postgres_kib: self.postgres_kib.swap(0, Ordering::Relaxed),
            postgres_procs: self.postgres_procs.swap(0, Ordering::Relaxed),
            samples: self.samples.swap(0, Ordering::Relaxed),
        }
    }
}

struct Sampler {
    peaks: Arc<Peaks>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32, data_dir: PathBuf) -> Self {
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

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

#[derive(Default)]
struct WorkerResult {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, usize>,
    degraded: usize,
}

struct Row {
    latency_ms: u64,
    accounts: usize,
    concurrency: usize,
    requests: usize,
    errors: usize,
    error_kinds: BTreeMap<String, usize>,
    degraded: usize,
    warmup_errors: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    peak: PeakSnapshot,
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
async fn fetch_portfolio(client: &Client, url: &str) -> std::result::Result<bool, String> {
    let resp = client.get(url).send().await.map_err(|e| classify(&e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| classify(&e))?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    Ok(body.contains("class=\"alert\""))
}

async fn run_load(
    base: &str,
    clients: &Arc<Vec<Client>>,
    concurrency: usize,
) -> (usize, WorkerResult, Duration) {
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
    let deadline = started + RUN_FOR;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let clients = clients.clone();
            let next = next.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut out = WorkerResult::default();
                loop {
                    if Instant::now() >= deadline {
                        break;
                    }
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
    let mut total = WorkerResult::default();
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
    (warmup_errors, total, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------
// One latency setting end to end
// ---------------------------------------------------------------------------

struct LatencyReport {
    latency_ms: u64,
    rows: Vec<Row>,
    ready_after: Duration,
    setup_took: Duration,
    idle_rss_kib: Option<u64>,
    idle_postgres: Option<(usize, u64)>,
    after_setup_rss_kib: Option<u64>,
    log_findings: Vec<String>,
    server_stop: String,
    sim_stop: String,
}

async fn run_latency(binary: &Path, latency_ms: u64, members: usize) -> Result<LatencyReport> {
    // Declared first so it is dropped last, after the processes have stopped.
    let dir = TempDir::new(&format!("{latency_ms}ms"))?;
    let mut sim = start_simulator(binary, &dir.0, latency_ms)?;
    eprintln!("load: simulator at {}", sim.paper_url);
    let mut server = start_server(binary, &dir.0, &sim)?;
    let ready_after = wait_ready(&mut server).await?;
    eprintln!(
        "load: paddock ready at {} after {ready_after:.1?}",
        server.base
    );
    // Let start-up work settle before the idle sample.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = server.proc.pid();
    let idle_rss_kib = vm_rss_kib(pid);
    let idle_postgres = postgres_usage(&server.data_dir);

    let setup_started = Instant::now();
    let mut groups = Vec::new();
    for (g, accounts) in ACCOUNTS_PER_MEMBER.into_iter().enumerate() {
        eprintln!("load: signing up {members} members with {accounts} paper account(s) each");
        let clients = create_group(&server.base, g * members, members, accounts).await?;
        groups.push((accounts, Arc::new(clients)));
    }
    let setup_took = setup_started.elapsed();
    let after_setup_rss_kib = vm_rss_kib(pid);

    let sampler = Sampler::start(pid, server.data_dir.clone());
    let mut rows = Vec::new();
    for (accounts, clients) in &groups {
        for concurrency in CONCURRENCY {
            sampler.peaks.take();
            let (warmup_errors, result, wall) = run_load(&server.base, clients, concurrency).await;
            let peak = sampler.peaks.take();
            let mut latencies = result.latencies;
            latencies.sort_unstable();
            let errors = result.errors.values().sum();
            let row = Row {
                latency_ms,
                accounts: *accounts,
                concurrency,
                requests: latencies.len(),
                errors,
                error_kinds: result.errors,
                degraded: result.degraded,
                warmup_errors,
                wall,
                p50: percentile(&latencies, 50.0),
                p99: percentile(&latencies, 99.0),
                max: latencies.last().copied().unwrap_or_default(),
                peak,
            };
            eprintln!(
                "load: {latency_ms} ms, {accounts} acct, c={concurrency}: {} req, {} err, {:.1} req/s, p50 {:.1} ms, p99 {:.1} ms",
                row.requests,
                row.errors,
                row.requests as f64 / wall.as_secs_f64(),
                ms(row.p50),
                ms(row.p99)
            );
            rows.push(row);
        }
    }
    sampler.finish().await;
    drop(groups);

    let server_stop = describe_stop(server.proc.stop());
    let sim_stop = describe_stop(sim.proc.stop());
    let log_findings = scan_logs(&server.log_path, &server.data_dir.join("postgres.log"));
    Ok(LatencyReport {
        latency_ms,
        rows,
        ready_after,
        setup_took,
        idle_rss_kib,
        idle_postgres,
        after_setup_rss_kib,
        log_findings,
        server_stop,
        sim_stop,
    })
}

fn describe_stop(stopped: Option<Stopped>) -> String {
    match stopped {
        None => "already stopped".into(),
        Some(s) => format!(
            "{} after {:.2} s{}",
            s.status
                .map(|st| st.to_string())
                .unwrap_or_else(|| "unknown status".into()),
            s.took.as_secs_f64(),
            if s.killed { " (SIGKILLed)" } else { "" }
        ),
    }
}

/// Counts warnings and errors in the server and PostgreSQL logs.
fn scan_logs(server_log: &Path, postgres_log: &Path) -> Vec<String> {
    let mut findings = Vec::new();
    for (name, path, needles) in [
        ("server", server_log, &["WARN", "ERROR"][..]),
        (
            "postgres",
            postgres_log,
            &["WARNING", "ERROR", "FATAL", "PANIC"][..],
        ),
    ] {
        let text = fs::read_to_string(path).unwrap_or_default();
        for needle in needles {
            let hits: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
            if hits.is_empty() {
                continue;
            }
            let mut line = format!("{name} log: {} line(s) with {needle}", hits.len());
            let mut seen = Vec::new();
            for hit in &hits {
                let text = from_needle(hit, needle);
                if !seen.contains(&text) {
                    seen.push(text);
                }
                if seen.len() == 3 {
                    break;
                }
            }
            for s in seen {
                let _ = write!(line, "\n    e.g. `{s}`");
            }
            findings.push(line);
        }
    }
    findings
}

/// Drops what precedes the level (a timestamp) and truncates, so similar
/// lines compare equal.
fn from_needle(line: &str, needle: &str) -> String {
    let rest = line.find(needle).map(|i| &line[i..]).unwrap_or(line);
    rest.trim().chars().take(200).collect()
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn opt_mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", mib(k)))
        .unwrap_or_else(|| "n/a".into())
}

fn render(reports: &[LatencyReport], members: usize, took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Paddock load: GET /portfolio ({members} members per group, warm-up {WARMUP_REQUESTS}, then {}s or {MAX_REQUESTS} requests)\n",
        RUN_FOR.as_secs()
    );
    let _ = writeln!(
        out,
        "| latency | accounts/member | concurrency | requests | errors | req/s | p50 ms | p99 ms |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in reports.iter().flat_map(|r| &r.rows) {
        let _ = writeln!(
            out,
            "| {} ms | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            row.latency_ms,
            row.accounts,
            row.concurrency,
            row.requests,
            row.errors,
            row.requests as f64 / row.wall.as_secs_f64(),
            ms(row.p50),
            ms(row.p99),
        );
    }
    let _ = writeln!(
        out,
        "\nPercentiles cover every measured request (errors included); errors = non-200 or transport failure."
    );
    for report in reports {
        let _ = writeln!(out, "\n### Simulated latency {} ms\n", report.latency_ms);
        let _ = writeln!(
            out,
            "- ready after {:.1} s; setup of {} members took {:.1} s",
            report.ready_after.as_secs_f64(),
            members * ACCOUNTS_PER_MEMBER.len(),
            report.setup_took.as_secs_f64()
        );
        let pg_idle = report
            .idle_postgres
            .map(|(n, k)| format!("{:.1} MiB PSS over {n} processes", mib(k)))
            .unwrap_or_else(|| "n/a".into());
        let _ = writeln!(
            out,
            "- server RSS idle after start: {} (embedded PostgreSQL not included; it was {pg_idle}); after member setup: {}",
            opt_mib(report.idle_rss_kib),
            opt_mib(report.after_setup_rss_kib)
        );
        let peak_server = report
            .rows
            .iter()
            .map(|r| r.peak.server_kib)
            .max()
            .unwrap_or(0);
        let peak_pg = report
            .rows
            .iter()
            .map(|r| r.peak.postgres_kib)
            .max()
            .unwrap_or(0);
        let peak_procs = report
            .rows
            .iter()
            .map(|r| r.peak.postgres_procs)
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "- server RSS peak during load: {:.1} MiB; PostgreSQL peak {:.1} MiB PSS over up to {peak_procs} processes (sampled every {} ms)",
            mib(peak_server),
            mib(peak_pg),
            SAMPLE_EVERY.as_millis() * u128::from(PG_SAMPLE_EVERY_N)
        );
        for row in &report.rows {
            let mut extra = format!(
                "- {} acct/member, c={}: peak server RSS {:.1} MiB ({} samples), max latency {:.1} ms",
                row.accounts,
                row.concurrency,
                mib(row.peak.server_kib),
                row.peak.samples,
                ms(row.max)
            );
            if row.degraded > 0 {
                let _ = write!(
                    extra,
                    ", {} 200s with a degraded account card",
                    row.degraded
                );
            }
            if row.warmup_errors > 0 {
                let _ = write!(extra, ", {} warm-up errors", row.warmup_errors);
            }
            if !row.error_kinds.is_empty() {
                let kinds: Vec<String> = row
                    .error_kinds
                    .iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect();
                let _ = write!(extra, ", errors: {}", kinds.join(", "));
            }
            let _ = writeln!(out, "{extra}");
        }
        let _ = writeln!(
            out,
            "- stop: paddock serve {}; simulator {}",
            report.server_stop, report.sim_stop
        );
        if report.log_findings.is_empty() {
            let _ = writeln!(out, "- logs: no warnings or errors");
        }
        for finding in &report.log_findings {
            let _ = writeln!(out, "- {finding}");
        }
    }
    let _ = writeln!(out, "\nWhole bench took {:.1} s.", took.as_secs_f64());
    out
}

//! The processes under test: the `paddock` binary, the standalone simulator
//! and `paddock serve`, each stopped (SIGTERM, then SIGKILL) when dropped.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};

use crate::Result;

const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server binary: `LOAD_BINARY`, else `target/release/paddock` (built first
/// if it is missing).
pub fn ensure_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("LOAD_BINARY") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(format!("LOAD_BINARY {} is not a file", path.display()).into());
        }
        return Ok(path);
    }
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
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("paddock-load-{}-{tag}-{nanos}", std::process::id()));
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

/// A child process that is sent SIGTERM (then SIGKILL) when dropped.
pub struct Proc {
    name: &'static str,
    child: Option<Child>,
}

/// How a process ended when we stopped it.
pub struct Stopped {
    status: Option<ExitStatus>,
    took: Duration,
    killed: bool,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, wait up to `STOP_TIMEOUT`, then SIGKILL.
    pub fn stop(&mut self) -> Option<Stopped> {
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

/// "exit status: 0 after 0.31 s".
pub fn describe_stop(stopped: Option<Stopped>) -> String {
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

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Environment variables that would change what `paddock` runs against.
const SCRUBBED_ENV: [&str; 9] = [
    "DATABASE_URL",
    "DATABASE_ADMIN_URL",
    "PADDOCK_ENV",
    "PADDOCK_SEAL_KEYS",
    "ALPACA_CONNECT_TIMEOUT",
    "ALPACA_REQUEST_TIMEOUT",
    "ALPACA_PAPER_URL",
    "ALPACA_LIVE_URL",
    "PADDOCK_ALPACA_CACHE_SECS",
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

pub struct Simulator {
    pub proc: Proc,
    pub paper_url: String,
    pub live_url: String,
}

pub fn start_simulator(binary: &Path, dir: &Path, latency_ms: u64) -> Result<Simulator> {
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

pub struct Server {
    pub proc: Proc,
    pub base: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

/// Starts `paddock serve` on a free port with its data in `dir/data` (kept
/// between starts, so members survive a restart) and the Alpaca cache set to
/// `cache_secs`; its log goes to `dir/server-<tag>.log`.
pub fn start_server(
    binary: &Path,
    dir: &Path,
    sim: &Simulator,
    cache_secs: u64,
    tag: &str,
) -> Result<Server> {
    let port = free_port()?;
    let data_dir = dir.join("data");
    fs::create_dir_all(&data_dir)?;
    let log_path = dir.join(format!("server-{tag}.log"));
    let log = fs::File::create(&log_path)?;
    let child = paddock_command(binary, dir)
        .arg("serve")
        .env("PADDOCK_BIND", format!("127.0.0.1:{port}"))
        .env("PADDOCK_DATA_DIR", &data_dir)
        .env("PADDOCK_SIGNUP", "open")
        .env("PADDOCK_ALPACA_CACHE_SECS", cache_secs.to_string())
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

/// Polls `/healthz` until it answers `ok`.
pub async fn wait_ready(server: &mut Server) -> Result<Duration> {
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

/// Counts warnings and errors in the server and PostgreSQL logs.
pub fn scan_logs(server_log: &Path, postgres_log: &Path) -> Vec<String> {
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
                // Drop what precedes the level (a timestamp) so similar lines compare equal.
                let rest = hit.find(needle).map(|i| &hit[i..]).unwrap_or(hit);
                let text: String = rest.trim().chars().take(200).collect();
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

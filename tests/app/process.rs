//! Runs the real `paddock` binary: one-shot commands, and `serve` as a child
//! process whose log lines are collected and which is stopped when dropped.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    credentials::{KEY, SECRET, enroll},
    helpers::{PASSWORD, Visitor},
};

/// A private directory under the system temp dir (which the unprivileged
/// `postgres` user can traverse), removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("paddock-ops-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `paddock` with a clean environment: the embedded database in `data_dir`.
pub fn paddock(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PADDOCK_DATA_DIR", data_dir)
        .env("PADDOCK_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

/// Runs a one-shot command: (success, stdout, stderr).
pub fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.output().expect("running paddock");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `paddock serve` on the embedded database in `dir`, where Ada has signed up
/// (creating "Club") and enrolled a paper credential labelled "Main".
pub async fn serving_ada(dir: &TempDir) -> (Serve, Visitor) {
    let server = Serve::start(paddock(dir.path()));
    let ada = Visitor::new(&server.base);
    let page = ada.sign_up("ada@example.com", "Club", "").await;
    assert_eq!(page.status, reqwest::StatusCode::SEE_OTHER, "{}", page.body);
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    (server, ada)
}

/// Ada (of [`serving_ada`]) signs in on `server`, and her portfolio loads with no
/// alert: her account, password hash and sealed credential all survived.
pub async fn ada_is_back(server: &Serve) -> Visitor {
    let ada = Visitor::new(&server.base);
    let page = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, reqwest::StatusCode::SEE_OTHER, "{}", page.body);
    let portfolio = ada.get("/portfolio").await;
    assert_eq!(portfolio.status, reqwest::StatusCode::OK);
    assert!(portfolio.alert().is_empty(), "{}", portfolio.alert());
    assert!(portfolio.body.contains("<caption>Positions</caption>"));
    ada
}

/// A running `paddock serve`.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT` of the app.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread collecting the log: done once it has read the last line.
    reader: std::thread::JoinHandle<()>,
}

/// The first `http://host:port` in `line`.
pub fn address_in(line: &str) -> Option<String> {
    let at = line.find("http://")?;
    let rest = &line[at..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\\')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

impl Serve {
    /// Starts `cmd` (a [`paddock`] command; `serve --alpaca-sim` is added) and
    /// waits for the line that says where it serves.
    pub fn start(cmd: Command) -> Self {
        Self::start_with(cmd, &["serve", "--alpaca-sim"])
    }

    /// Starts `cmd` with `args` (a form of `serve`) and waits for the line that
    /// says where it serves.
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Self {
        cmd.args(args).stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = cmd.spawn().expect("spawning paddock serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Paddock is serving on")
                    && let Some(addr) = address_in(&line)
                {
                    let _ = tx.send(addr);
                }
                sink.lock().expect("lock").push(line);
            }
        });
        let started = rx.recv_timeout(Duration::from_secs(60));
        let log_so_far = log.lock().expect("lock").join("\n");
        let base = started.unwrap_or_else(|_| panic!("paddock serve did not start:\n{log_so_far}"));
        Self {
            child,
            base,
            log,
            reader,
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("lock").join("\n")
    }

    /// Polls the log until a line contains `needle`, at most `bound`.
    pub async fn wait_for_log(&self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(line) = self
                .log
                .lock()
                .expect("lock")
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {bound:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`, as the OOM killer or a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit (bounded); returns whether it
    /// exited successfully and everything it logged.
    pub fn stop(mut self) -> (bool, String) {
        let ok = self.terminate();
        (ok, self.log())
    }

    fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader take the last lines (bounded: a process that
                // inherited its stderr may keep the pipe open).
                let read_by = Instant::now() + Duration::from_secs(2);
                while !self.reader.is_finished() && Instant::now() < read_by {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

//! A private PostgreSQL cluster in the data dir, started from the machine's binaries.
//!
//! It listens only on a unix socket inside its own data directory (no TCP port to
//! collide with; the directory's permissions are the access control, so `trust`
//! authentication is safe). PostgreSQL refuses to run as root, so as root the
//! cluster runs as the unprivileged `postgres` OS user.

use std::{
    fs,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::binaries::{self, Installation};

mod os;
use os::check_traversable;
pub use os::{initdb, live_postmaster, tool_command, unprivileged_user};

/// The superuser created by `initdb`; used only to provision roles and databases.
pub const SUPERUSER: &str = "postgres";

/// How the cluster is tuned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The real embedded database: fsync on.
    Durable,
    /// Throwaway test clusters: fsync off.
    Throwaway,
}

/// A running (or attached) cluster.
#[derive(Debug)]
pub struct Cluster {
    data_dir: PathBuf,
    pgdata: PathBuf,
    installation: Installation,
    durability: Durability,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

impl Cluster {
    /// Starts the cluster in `<data_dir>/pg`, running `initdb` first if needed, with
    /// the binaries of the cluster's own major version. If a server from an earlier
    /// run is still alive on that directory it is reused and left running on
    /// [`Cluster::stop`].
    pub fn start(data_dir: &Path, durability: Durability) -> anyhow::Result<Self> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        // Others may pass through (the `postgres` user must reach `pg/`), not list.
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o711))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let run_as = unprivileged_user()?;
        if run_as.is_some() {
            check_traversable(&data_dir)?;
        }
        let pgdata = data_dir.join("pg");
        let major = binaries::cluster_major(&pgdata)?;
        let installation = binaries::choose(major, &binaries::installed())?;
        let mut cluster = Self {
            data_dir,
            pgdata,
            installation,
            durability,
            run_as,
            child: None,
        };
        if major.is_none() {
            cluster.initdb()?;
        }
        if cluster.running_pid().is_some() {
            tracing::info!(pgdata = %cluster.pgdata.display(), "reusing the running embedded PostgreSQL");
            return Ok(cluster);
        }
        cluster.launch()?;
        Ok(cluster)
    }

    /// The PostgreSQL installation this cluster runs with (its own major version).
    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    /// The cluster's data directory (`<data_dir>/pg`).
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Whether the server is alive: the child this process started has not exited
    /// (reaping it if it has), or a server from an earlier run still holds the lock.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    tracing::error!(%status, "the embedded PostgreSQL exited");
                    self.child = None;
                    false
                }
                Err(_) => false,
            },
            None => self.running_pid().is_some(),
        }
    }

    /// Starts the server again after it died (crash recovery replays the WAL).
    pub fn relaunch(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.launch()
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.pgdata
    }

    /// A libpq-style URL for `user` and `database` over the socket.
    pub fn url(&self, user: &str, database: &str) -> String {
        socket_url(&self.pgdata, user, database)
    }

    /// Whether this process started the server (and so stops it).
    pub fn owns_server(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server if this process started it: fast shutdown, then a wait.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The process id of the server, for a test harness's clean-up guard.
    pub fn server_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A command running `program` from this cluster's installation, as the
    /// unprivileged user when we are root.
    pub fn command(&self, program: &str) -> Command {
        tool_command(&self.installation, program, self.run_as)
    }

    fn initdb(&self) -> anyhow::Result<()> {
        initdb(&self.installation, &self.pgdata, self.run_as)?;
        tracing::info!(pgdata = %self.pgdata.display(), "initialized the embedded PostgreSQL cluster");
        Ok(())
    }

    /// The pid of a live postmaster on this directory; removes a stale lock file.
    fn running_pid(&self) -> Option<u32> {
        let pid = live_postmaster(&self.pgdata);
        let lock = self.pgdata.join("postmaster.pid");
        if pid.is_none() && lock.exists() {
            tracing::warn!("removing a stale postmaster.pid left by a killed run");
            let _ = fs::remove_file(lock);
        }
        pid
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let log_path = self.data_dir.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(&self.pgdata)
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.pgdata.display()))
            .args(["-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if self.durability == Durability::Throwaway {
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a Ctrl-C in the terminal must not stop the
            // database before in-flight requests have finished.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().context("starting postgres")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "postgres exited ({status}) while starting; see {}",
                    log_path.display()
                );
            }
            // A killed server's lock file still says `ready`: only ours counts.
            let lock = fs::read_to_string(self.pgdata.join("postmaster.pid")).unwrap_or_default();
            let mut lines = lock.lines().map(str::trim);
            if lines.next() == Some(child.id().to_string().as_str())
                && lines.nth(6) == Some("ready")
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "postgres did not become ready in 30 s; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A URL that both libpq (`psql`) and sqlx read as "this unix socket directory":
/// the `host` query parameter overrides the nominal `localhost`.
pub fn socket_url(socket_dir: &Path, user: &str, database: &str) -> String {
    format!(
        "postgres://{user}@localhost/{database}?host={}",
        socket_dir.display()
    )
}

/// The socket directory of the embedded cluster in `data_dir` (whether or not it runs).
pub fn socket_dir(data_dir: &Path) -> std::io::Result<PathBuf> {
    Ok(std::path::absolute(data_dir)?.join("pg"))
}

//! A private PostgreSQL cluster in the data dir, started from the machine's binaries.
//!
//! It listens only on a unix socket inside its own data directory (no TCP port to
//! collide with; the directory's permissions are the access control, so `trust`
//! authentication is safe). PostgreSQL refuses to run as root, so as root the
//! cluster runs as the unprivileged `postgres` OS user.

use std::{
    fs,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

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
    pgdata: PathBuf,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

impl Cluster {
    /// Starts the cluster in `<data_dir>/pg`, running `initdb` first if needed. If a
    /// server from an earlier run is still alive on that directory it is reused and
    /// left running on [`Cluster::stop`].
    pub fn start(data_dir: &Path, durability: Durability) -> anyhow::Result<Self> {
        let bin = find_binaries()?;
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
        let mut cluster = Self {
            pgdata,
            bin,
            run_as,
            child: None,
        };
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        if cluster.running_pid().is_some() {
            tracing::info!(pgdata = %cluster.pgdata.display(), "reusing the running embedded PostgreSQL");
            return Ok(cluster);
        }
        cluster.launch(&data_dir, durability)?;
        Ok(cluster)
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

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("LC_ALL", "C.UTF-8").env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid).current_dir("/");
        }
        cmd
    }

    fn initdb(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.pgdata)?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&self.pgdata, Some(uid), Some(gid))?;
        }
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        tracing::info!(pgdata = %self.pgdata.display(), "initialized the embedded PostgreSQL cluster");
        Ok(())
    }

    /// The pid of a live postmaster on this directory; removes a stale lock file.
    fn running_pid(&self) -> Option<u32> {
        let lock = self.pgdata.join("postmaster.pid");
        let pid: u32 = fs::read_to_string(&lock)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("postgres") {
            Some(pid)
        } else {
            tracing::warn!("removing a stale postmaster.pid left by a killed run");
            let _ = fs::remove_file(lock);
            None
        }
    }

    fn launch(&mut self, data_dir: &Path, durability: Durability) -> anyhow::Result<()> {
        let log_path = data_dir.join("postgres.log");
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
        if durability == Durability::Throwaway {
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
            let lock = fs::read_to_string(self.pgdata.join("postmaster.pid")).unwrap_or_default();
            if lock.lines().nth(7).map(str::trim) == Some("ready") {
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

/// Finds `initdb` and `postgres`: on PATH, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_binaries() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow::anyhow!(
            "PostgreSQL server binaries (initdb, postgres) not found: install the `postgresql` package (sudo apt-get install postgresql), or set DATABASE_URL and DATABASE_ADMIN_URL"
        )
    })
}

/// As root, the uid/gid of the `postgres` OS user; otherwise `None` (run as ourselves).
fn unprivileged_user() -> anyhow::Result<Option<(u32, u32)>> {
    let euid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if euid != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == SUPERUSER)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "running as root, and PostgreSQL refuses to: create a `postgres` OS user (it comes with the `postgresql` package) or run as a normal user"
            )
        })
}

/// The `postgres` user must be able to reach the data dir through every parent.
fn check_traversable(dir: &Path) -> anyhow::Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor)?;
        if meta.uid() == 0 && meta.mode() & 0o001 == 0 {
            bail!(
                "the data dir {} is inside {}, which the unprivileged `postgres` user cannot enter; set PADDOCK_DATA_DIR to a directory outside it",
                dir.display(),
                ancestor.display()
            );
        }
    }
    Ok(())
}

//! The operating-system side of the embedded cluster: running PostgreSQL's
//! programs as the unprivileged user, creating a cluster, finding a live server.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    process::Command,
};

use anyhow::{Context, bail};

use super::SUPERUSER;
use crate::db::binaries::Installation;

/// The pid of a live postmaster on `pgdata`, from its lock file.
pub fn live_postmaster(pgdata: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline)
        .contains("postgres")
        .then_some(pid)
}

/// A command running `program` of `installation`, as `run_as` if given.
pub fn tool_command(
    installation: &Installation,
    program: &str,
    run_as: Option<(u32, u32)>,
) -> Command {
    let mut cmd = Command::new(installation.bin.join(program));
    cmd.env("LC_ALL", "C.UTF-8").env_remove("PGDATA");
    if let Some((uid, gid)) = run_as {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid).current_dir("/");
    }
    cmd
}

/// Creates a cluster in `pgdata` (mode 0700, owned by `run_as`) with
/// `installation`'s `initdb`: UTF-8, C.UTF-8 locale, `trust` on the socket.
pub fn initdb(
    installation: &Installation,
    pgdata: &Path,
    run_as: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    fs::create_dir_all(pgdata)?;
    fs::set_permissions(pgdata, fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(pgdata, Some(uid), Some(gid))?;
    }
    let out = tool_command(installation, "initdb", run_as)
        .arg("-D")
        .arg(pgdata)
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
    Ok(())
}

/// As root, the uid/gid of the `postgres` OS user; otherwise `None` (run as ourselves).
pub fn unprivileged_user() -> anyhow::Result<Option<(u32, u32)>> {
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
pub(super) fn check_traversable(dir: &Path) -> anyhow::Result<()> {
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

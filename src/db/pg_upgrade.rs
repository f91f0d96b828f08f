//! The PostgreSQL side of `paddock db upgrade`: which majors to move between,
//! and `pg_upgrade` itself, keeping the old cluster.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};

use super::{
    binaries::{self, Installation},
    embedded::{self, SUPERUSER},
};

/// What `paddock db upgrade` is to do.
#[derive(Debug)]
pub enum Plan {
    /// The cluster already runs the newest installed major.
    AlreadyNewest { major: u32 },
    /// Move from `old` to `new`.
    Upgrade {
        old: Installation,
        new: Installation,
    },
}

/// The upgrade plan for the cluster in `data_dir`, or why it cannot be done.
pub fn plan(data_dir: &Path) -> anyhow::Result<Plan> {
    let pgdata = embedded::socket_dir(data_dir)?;
    let Some(from) = binaries::cluster_major(&pgdata)? else {
        bail!(
            "there is no embedded database in {} to upgrade",
            pgdata.display()
        );
    };
    let installed = binaries::installed();
    let Some(newest) = installed.iter().max_by_key(|i| i.major).cloned() else {
        bail!("{}", binaries::Mismatch::NoneInstalled);
    };
    if newest.major <= from {
        return Ok(Plan::AlreadyNewest { major: from });
    }
    let Some(old) = installed.iter().find(|i| i.major == from).cloned() else {
        bail!(
            "upgrading from PostgreSQL {from} needs PostgreSQL {from}'s binaries as well as {}'s: install the `postgresql-{from}` package alongside, then run `paddock db upgrade` again. Nothing was changed",
            newest.major
        );
    };
    newest.tool("pg_upgrade")?;
    Ok(Plan::Upgrade { old, new: newest })
}

/// Runs `pg_upgrade` from `old` to `new` on the (stopped) cluster in
/// `<data_dir>/pg`: a new cluster is made beside it in `pg.upgrading`, and only
/// when `pg_upgrade` succeeds is the old one moved to `pg.<major>.old` and the
/// new one put in its place. On failure the old cluster is untouched.
pub fn pg_upgrade(
    data_dir: &Path,
    old: &Installation,
    new: &Installation,
) -> anyhow::Result<PathBuf> {
    let data_dir = std::path::absolute(data_dir)?;
    let pgdata = data_dir.join("pg");
    if embedded::live_postmaster(&pgdata).is_some() {
        bail!(
            "the embedded database is running (is `paddock serve` running?): stop it, then run `paddock db upgrade` again"
        );
    }
    let kept = data_dir.join(format!("pg.{}.old", old.major));
    if kept.exists() {
        bail!(
            "{} already exists: move it away, then run `paddock db upgrade` again",
            kept.display()
        );
    }
    let run_as = embedded::unprivileged_user()?;
    let upgrading = data_dir.join("pg.upgrading");
    let work = data_dir.join("upgrade-work");
    for leftover in [&upgrading, &work] {
        if leftover.exists() {
            fs::remove_dir_all(leftover).with_context(|| {
                format!("removing {} from an earlier attempt", leftover.display())
            })?;
        }
    }
    embedded::initdb(new, &upgrading, run_as)?;
    fs::create_dir_all(&work)?;
    fs::set_permissions(&work, fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(&work, Some(uid), Some(gid))?;
    }
    let mut cmd = embedded::tool_command(new, "pg_upgrade", run_as);
    cmd.arg("--old-bindir")
        .arg(&old.bin)
        .arg("--new-bindir")
        .arg(&new.bin)
        .arg("--old-datadir")
        .arg(&pgdata)
        .arg("--new-datadir")
        .arg(&upgrading)
        .arg("--socketdir")
        .arg(&work)
        .args(["--username", SUPERUSER])
        // pg_upgrade writes its logs into the working directory.
        .current_dir(&work);
    let out = cmd.output().context("running pg_upgrade")?;
    if !out.status.success() {
        let report = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = report.lines().rev().take(15).collect();
        let _ = fs::remove_dir_all(&upgrading);
        bail!(
            "pg_upgrade failed; the old cluster is untouched. Its report ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    fs::rename(&pgdata, &kept).context("moving the old cluster aside")?;
    fs::rename(&upgrading, &pgdata).context("putting the upgraded cluster in place")?;
    let _ = fs::remove_dir_all(&work);
    Ok(kept)
}

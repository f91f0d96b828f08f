//! `paddock backup FILE` and `paddock restore FILE`: PostgreSQL's custom dump
//! format, written and read with the client tools of the server's own major
//! version, embedded cluster or external database alike.
//!
//! A backup holds sealed values only, never keys: the keyring must be kept
//! separately. Sessions are neither backed up nor restored (see
//! [`SESSION_TABLES`]), so everyone signs in again after a restore.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::{
    config::Settings,
    db::{
        self, Database,
        binaries::{self, Installation},
    },
};

/// Tables whose rows are left out of a backup (and deleted after a restore if a
/// dump carries them), whichever exist. Sessions: a restored session would be a
/// signed-out (or stolen) cookie working again, and a backup file is the last
/// place a bearer secret should rest; passkey ceremonies belong to their
/// sessions. Server secrets (the identity MAC and
/// attestation keys): `paddock migrate`, which restore runs, makes new ones.
pub const SESSION_TABLES: &[&str] = &[
    "paddock_private.sessions",
    "paddock_private.passkey_ceremonies",
    "paddock_private.secrets",
];

/// What a backup or restore did.
#[derive(Debug)]
pub struct Report {
    pub file: PathBuf,
    pub bytes: u64,
    pub took: Duration,
    pub major: u32,
}

/// Writes a consistent dump of the database in use to `file` (mode 0600); a
/// failed dump leaves no file under that name.
pub async fn backup(settings: &Settings, file: &Path) -> anyhow::Result<Report> {
    let database = Database::open(settings).await?;
    let result = backup_of(&database, file).await;
    database.shutdown();
    result
}

/// [`backup`] of an opened database.
pub async fn backup_of(database: &Database, file: &Path) -> anyhow::Result<Report> {
    let started = Instant::now();
    let tools = client_tools(database).await?;
    let partial = partial_path(file);
    let out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut cmd = libpq_command(&tools.tool("pg_dump")?, &database.urls.admin)?;
    cmd.args(["--format=custom", "--no-password"]);
    for table in SESSION_TABLES {
        cmd.arg(format!("--exclude-table-data={table}"));
    }
    cmd.stdout(out);
    let result = run_tool(cmd, "pg_dump").await;
    if let Err(e) = result {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, file).with_context(|| format!("writing {}", file.display()))?;
    Ok(Report {
        file: file.to_path_buf(),
        bytes: fs::metadata(file)?.len(),
        took: started.elapsed(),
        major: tools.major,
    })
}

/// Restores `file` into the database in use, which must be empty (a new data
/// dir, or a new database); then drops any sessions, applies newer migrations
/// and grants the app role its privileges.
pub async fn restore(settings: &Settings, file: &Path) -> anyhow::Result<Report> {
    let database = Database::open(settings).await?;
    let result = restore_into(&database, file).await;
    database.shutdown();
    result
}

/// [`restore`] into an opened database.
pub async fn restore_into(database: &Database, file: &Path) -> anyhow::Result<Report> {
    let started = Instant::now();
    let bytes = fs::metadata(file)
        .with_context(|| format!("reading the backup {}", file.display()))?
        .len();
    let admin = db::admin_pool(&database.urls.admin).await?;
    let result = async {
        let existing = relations(&admin).await?;
        if existing > 0 {
            bail!(
                "refusing to restore: the database is not empty ({existing} tables, views or sequences). Restore into an empty data dir (a new PADDOCK_DATA_DIR) or a new, empty database; nothing was changed"
            );
        }
        let tools = client_tools(database).await?;
        let mut cmd = libpq_command(&tools.tool("pg_restore")?, &database.urls.admin)?;
        cmd.args([
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
        ])
        .arg(file)
        .stdout(Stdio::null());
        run_tool(cmd, "pg_restore").await?;
        drop_sessions(&admin).await?;
        db::migrate(&admin, &db::role_of(&database.urls.app)?).await?;
        Ok(Report {
            file: file.to_path_buf(),
            bytes,
            took: started.elapsed(),
            major: tools.major,
        })
    }
    .await;
    admin.close().await;
    result
}

/// Deletes the rows of every [`SESSION_TABLES`] entry that exists.
pub async fn drop_sessions(admin: &PgPool) -> anyhow::Result<()> {
    for table in SESSION_TABLES {
        let exists: bool = sqlx::query_scalar("select to_regclass($1) is not null")
            .bind(table)
            .fetch_one(admin)
            .await?;
        if exists {
            sqlx::query(&format!("delete from {table}"))
                .execute(admin)
                .await
                .with_context(|| format!("emptying {table}"))?;
        }
    }
    Ok(())
}

/// Tables, views and sequences outside PostgreSQL's own schemas.
async fn relations(admin: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
           and n.nspname not in ('pg_catalog', 'information_schema')
           and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'",
    )
    .fetch_one(admin)
    .await
    .context("checking that the database is empty")
}

/// The client tools for the database's server: the embedded cluster's own
/// installation, or for an external server the same major (or the nearest newer).
async fn client_tools(database: &Database) -> anyhow::Result<Installation> {
    if let Some(cluster) = &database.cluster {
        return Ok(cluster.with(|c| c.installation().clone()));
    }
    let admin = db::admin_pool(&database.urls.admin).await?;
    let version: sqlx::Result<i32> =
        sqlx::query_scalar("select current_setting('server_version_num')::int")
            .fetch_one(&admin)
            .await;
    admin.close().await;
    let major = u32::try_from(version? / 10_000).context("server_version_num")?;
    binaries::client_for(major, &binaries::installed())
}

/// `program` aimed at `url`: the password (if any) goes in `PGPASSWORD`, never
/// on the command line where `ps` would show it.
fn libpq_command(program: &Path, url: &SecretString) -> anyhow::Result<Command> {
    let mut parsed = url::Url::from_str(url.expose_secret())
        .map_err(|_| anyhow::anyhow!("the admin database URL is not a valid URL"))?;
    let password = parsed
        .password()
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8())
        .transpose()
        .context("the admin database URL's password")?
        .map(|p| p.into_owned());
    let _ = parsed.set_password(None);
    let mut cmd = Command::new(program);
    cmd.env("LC_ALL", "C.UTF-8")
        .arg(format!("--dbname={parsed}"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    Ok(cmd)
}

/// Runs a client tool off the async runtime; its standard error becomes the
/// error message when it fails.
async fn run_tool(mut cmd: Command, name: &'static str) -> anyhow::Result<()> {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .with_context(|| format!("running {name}"))?;
    if !out.status.success() {
        bail!(
            "{name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let _ = std::io::stderr().write_all(&out.stderr);
    Ok(())
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}

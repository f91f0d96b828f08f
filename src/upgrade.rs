//! `paddock db upgrade`: a backup with the old binaries, then `pg_upgrade`, then
//! a first start of the upgraded cluster (migrations, fresh planner statistics).

use std::path::PathBuf;

use crate::{
    backup,
    config::Settings,
    db::{self, binaries::Installation, pg_upgrade},
    startup,
};

/// What an upgrade did and left behind.
#[derive(Debug)]
pub struct Upgraded {
    pub from: u32,
    pub to: u32,
    /// The backup taken before anything changed.
    pub backup: PathBuf,
    /// The old cluster, untouched by the upgrade.
    pub old_cluster: PathBuf,
}

/// Upgrades the embedded cluster in `settings.data_dir` from `old` to `new`.
/// Nothing changes unless the backup succeeded; the old cluster is replaced only
/// when `pg_upgrade` succeeded, and is kept beside the new one.
pub async fn run(
    settings: &Settings,
    old: Installation,
    new: Installation,
) -> anyhow::Result<Upgraded> {
    let backups = settings.data_dir.join("backups");
    std::fs::create_dir_all(&backups)?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let file = backups.join(format!("before-upgrade-pg{}-{stamp}.dump", old.major));
    backup::backup(settings, &file).await?;
    tracing::info!(backup = %file.display(), "backup taken; running pg_upgrade");

    let dir = settings.data_dir.clone();
    let (from, to) = (old.major, new.major);
    let old_cluster =
        tokio::task::spawn_blocking(move || pg_upgrade::pg_upgrade(&dir, &old, &new)).await??;

    let database = startup::prepare_database(settings).await?;
    let admin = db::admin_pool(&database.urls.admin).await?;
    let analyzed = sqlx::query("analyze").execute(&admin).await;
    admin.close().await;
    database.shutdown();
    analyzed?;
    Ok(Upgraded {
        from,
        to,
        backup: file,
        old_cluster,
    })
}

//! Subcommands: serve, migrate, keys, alpaca-sim, backup, restore, db url|upgrade.

use clap::{Parser, Subcommand};

use crate::{
    alpaca::sim::{self, SimOptions, Simulator},
    backup,
    config::{DatabaseSettings, Settings},
    db::{self, pg_upgrade},
    maintenance,
    seal::Keyring,
    startup, upgrade,
};

/// Paddock: share one Alpaca trading front end without sharing keys.
#[derive(Debug, Parser)]
#[command(name = "paddock", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do (default: serve).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app (the default).
    Serve {
        /// Run the Alpaca simulator in-process and point both base URLs at it.
        #[arg(long)]
        alpaca_sim: bool,
    },
    /// Run database migrations and grants, then exit.
    Migrate,
    /// Sealing keys: generate, status, rewrap.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run the Alpaca simulator on its own.
    AlpacaSim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: std::net::SocketAddr,
        /// Latency added to every response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Write a backup of the database in use to FILE (PostgreSQL custom format;
    /// sealed values only, never keys).
    Backup {
        /// Where to write the backup.
        file: std::path::PathBuf,
    },
    /// Restore a backup into an empty data dir or an empty database.
    Restore {
        /// The backup to restore.
        file: std::path::PathBuf,
    },
    /// Database helpers.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

/// `paddock keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new `id:base64` keyring entry (put it first in PADDOCK_SEAL_KEYS to seal with it).
    Generate,
    /// Count credentials per key id and show which key seals.
    Status,
    /// Re-seal every credential not under the first key (online, batched, resumable).
    Rewrap {
        /// Credentials per transaction.
        #[arg(long, default_value_t = 250)]
        batch_size: i64,
        /// Pause between batches, in milliseconds, to go easy on a busy database.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
}

/// `paddock db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Print the connection string of the database in use.
    Url {
        /// The owner (admin) connection instead of the app role's.
        #[arg(long)]
        admin: bool,
    },
    /// Upgrade the embedded cluster to the newest installed PostgreSQL (pg_upgrade, after a backup).
    Upgrade,
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve { alpaca_sim: false }) {
        Command::Serve { alpaca_sim } => startup::serve(settings, alpaca_sim).await,
        Command::Migrate => {
            let database = startup::prepare_database(&settings).await?;
            println!("migrations applied");
            database.shutdown();
            Ok(())
        }
        Command::Keys { command } => keys(&settings, command).await,
        Command::AlpacaSim { bind, latency_ms } => {
            let options = SimOptions {
                latency: std::time::Duration::from_millis(latency_ms),
            };
            let (addr, _sim, task) = sim::spawn(bind, options).await?;
            println!("Alpaca simulator listening on http://{addr}");
            println!("  ALPACA_PAPER_URL={}", Simulator::paper_url(addr));
            println!("  ALPACA_LIVE_URL={}", Simulator::live_url(addr));
            tokio::select! {
                _ = task => {},
                _ = startup::shutdown_signal() => {},
            }
            Ok(())
        }
        Command::Backup { file } => {
            let report = backup::backup(&settings, &file).await?;
            println!(
                "backup written to {} ({} bytes, PostgreSQL {}, {:.1} s); it holds sealed values only: keep PADDOCK_SEAL_KEYS safe separately",
                report.file.display(),
                report.bytes,
                report.major,
                report.took.as_secs_f64()
            );
            Ok(())
        }
        Command::Restore { file } => {
            let report = backup::restore(&settings, &file).await?;
            println!(
                "restored {} ({:.1} s); sessions were not restored, so everyone signs in again. `paddock keys status` names the key ids the credentials need",
                report.file.display(),
                report.took.as_secs_f64()
            );
            Ok(())
        }
        Command::Db {
            command: DbCommand::Upgrade,
        } => db_upgrade(&settings).await,
        Command::Db {
            command: DbCommand::Url { admin },
        } => {
            use secrecy::ExposeSecret;
            let urls = match &settings.database {
                crate::config::DatabaseSettings::External { url, admin_url } => db::Urls {
                    app: url.clone(),
                    admin: admin_url.clone(),
                },
                crate::config::DatabaseSettings::Embedded => {
                    let dir = db::embedded::socket_dir(&settings.data_dir)?;
                    db::Urls {
                        app: db::embedded::socket_url(&dir, db::APP_ROLE, db::DATABASE).into(),
                        admin: db::embedded::socket_url(&dir, db::OWNER_ROLE, db::DATABASE).into(),
                    }
                }
            };
            println!(
                "{}",
                if admin {
                    urls.admin.expose_secret()
                } else {
                    urls.app.expose_secret()
                }
            );
            Ok(())
        }
    }
}

/// `paddock db upgrade`.
async fn db_upgrade(settings: &Settings) -> anyhow::Result<()> {
    if !matches!(settings.database, DatabaseSettings::Embedded) {
        anyhow::bail!(
            "`paddock db upgrade` upgrades the embedded database; for an external PostgreSQL use its own upgrade (pg_upgrade, or your provider's), or move with `paddock backup` and `paddock restore`"
        );
    }
    match pg_upgrade::plan(&settings.data_dir)? {
        pg_upgrade::Plan::AlreadyNewest { major } => println!(
            "the embedded database already runs PostgreSQL {major}, the newest installed: nothing to upgrade"
        ),
        pg_upgrade::Plan::Upgrade { old, new } => {
            let done = upgrade::run(settings, old, new).await?;
            println!(
                "upgraded the embedded database from PostgreSQL {} to {}. The old cluster is kept in {} and the backup taken before in {}: delete them once Paddock runs well",
                done.from,
                done.to,
                done.old_cluster.display(),
                done.backup.display()
            );
        }
    }
    Ok(())
}

async fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::Generate = command {
        use secrecy::ExposeSecret;
        let entry = Keyring::generate_entry(&Keyring::new_random_id());
        println!("{}", entry.expose_secret());
        eprintln!(
            "Put this entry FIRST in PADDOCK_SEAL_KEYS (comma-separated, keep the old keys after it), restart, then run `paddock keys rewrap`."
        );
        return Ok(());
    }
    let keyring = startup::load_keyring(settings)?;
    let database = startup::prepare_database(settings).await?;
    let admin = db::admin_pool(&database.urls.admin).await?;
    let result = match command {
        KeysCommand::Generate => Ok(()),
        KeysCommand::Status => {
            let counts = maintenance::status(&admin, &keyring).await?;
            println!("sealing key: {}", keyring.sealing_key_id());
            println!(
                "{:<34} {:>12} {:>13}  state",
                "key id", "credentials", "TOTP secrets"
            );
            for k in &counts {
                let state = if k.key_id == keyring.sealing_key_id().as_str() {
                    "seals (current)"
                } else if k.in_keyring {
                    "opens only: run `paddock keys rewrap`"
                } else {
                    "MISSING from PADDOCK_SEAL_KEYS"
                };
                println!(
                    "{:<34} {:>12} {:>13}  {state}",
                    k.key_id, k.credentials, k.totp_secrets
                );
            }
            if counts.is_empty() {
                println!("(no credentials yet)");
            }
            Ok(())
        }
        KeysCommand::Rewrap {
            batch_size,
            pause_ms,
        } => {
            let report = maintenance::rewrap(
                &admin,
                &keyring,
                batch_size.clamp(1, 10_000),
                std::time::Duration::from_millis(pause_ms),
                |r| eprintln!("batch {}: {} re-sealed so far", r.batches, r.rewrapped),
            )
            .await?;
            println!(
                "rewrap done: {} re-sealed under `{}`, {} could not be opened, in {} batch(es)",
                report.rewrapped,
                keyring.sealing_key_id(),
                report.failed,
                report.batches
            );
            if report.failed > 0 {
                anyhow::bail!(
                    "{} credential(s) could not be opened; see the log",
                    report.failed
                );
            }
            Ok(())
        }
    };
    admin.close().await;
    database.shutdown();
    result
}

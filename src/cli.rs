//! Subcommands: serve, migrate, keys, alpaca-sim, db url.

use clap::{Parser, Subcommand};

use crate::{config::Settings, db, startup};

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
    /// Database helpers.
    Db {
        #[command(subcommand)]
        command: DbCommand,
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

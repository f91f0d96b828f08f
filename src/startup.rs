//! Start-up: database, migrations, posture check, router, bind, graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use secrecy::{ExposeSecret, SecretString};

use crate::{
    alpaca::sim::{self, SimOptions, Simulator},
    config::{RunEnv, Settings},
    db::{self, Database},
    passkey::Passkeys,
    retention::{self, Retention},
    seal::Keyring,
    server,
    state::{AppState, WebSettings},
    web,
};

/// Opens the database (embedded or configured) and applies migrations and grants.
pub async fn prepare_database(settings: &Settings) -> anyhow::Result<Database> {
    let database = Database::open(settings).await?;
    let admin = db::admin_pool(&database.urls.admin).await?;
    db::migrate(&admin, &db::role_of(&database.urls.app)?).await?;
    admin.close().await;
    Ok(database)
}

/// Refuses to serve when the runtime role could bypass row-level security.
pub async fn check_posture(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let problems = db::posture::problems(pool)
        .await
        .context("checking the database posture")?;
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "refusing to serve: the database posture is unsafe:\n  - {}",
        problems.join("\n  - ")
    )
}

/// `paddock serve`.
pub async fn serve(mut settings: Settings, alpaca_sim: bool) -> anyhow::Result<()> {
    let keyring = load_keyring(&settings)?;
    let _simulator = if alpaca_sim {
        let (addr, simulator, task) =
            sim::spawn(([127, 0, 0, 1], 0).into(), SimOptions::default()).await?;
        settings.alpaca.paper_url = Simulator::paper_url(addr);
        settings.alpaca.live_url = Simulator::live_url(addr);
        tracing::info!("Alpaca simulator running in-process on http://{addr}");
        Some((simulator, task))
    } else {
        None
    };
    let mut database = prepare_database(&settings).await?;
    database.supervise()?;
    let result = serve_on(&settings, &database, keyring).await;
    database.shutdown();
    result
}

async fn serve_on(
    settings: &Settings,
    database: &Database,
    keyring: Keyring,
) -> anyhow::Result<()> {
    let admin = db::admin_pool(&database.urls.admin).await?;
    let checked = crate::maintenance::check_keys_present(&admin, &keyring).await;
    let attestor = crate::attest::Attestor::load(&admin).await;
    if let Err(e) = checked.and_then(|()| {
        attestor
            .as_ref()
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }) {
        admin.close().await;
        return Err(e);
    }
    let attestor = attestor?;
    let pool = db::app_pool(&database.urls.app).await?;
    check_posture(&pool).await?;

    let state = AppState {
        pool: pool.clone(),
        alpaca: web::tenant::AlpacaGate::new(
            crate::alpaca::Client::new(&settings.alpaca)
                .context("building the HTTP client for Alpaca")?,
            settings.alpaca_cache,
        ),
        sealer: Arc::new(keyring),
        hashing: AppState::hashing_slots(),
        verifications: Default::default(),
        attestor,
        settings: Arc::new(WebSettings {
            signup: settings.signup,
            secure_cookies: settings.secure_cookies(),
            public_url: settings.public_url.clone(),
            hsts: settings.hsts(),
            trusted_proxies: settings.trusted_proxies.clone(),
            alpaca_deadline: settings.alpaca.request_timeout.min(Duration::from_secs(8)),
            passkeys_rp_id: settings.passkeys_rp_id(),
            passkeys: relying_party(settings)?,
        }),
    };
    let metrics = match settings.metrics_bind {
        Some(addr) => Some(serve_metrics(addr, pool.clone()).await?),
        None => None,
    };
    let sweeper = tokio::spawn(sweep(pool.clone()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let retention = tokio::spawn(retention::run(
        admin.clone(),
        Retention::days(settings.use_events_retention_days),
        stopped,
    ));
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("binding {}", settings.bind))?;
    tracing::info!("Paddock is serving on http://{}", listener.local_addr()?);
    let served = server::serve(
        listener,
        web::router(state),
        server::Limits::default(),
        shutdown_signal(),
    )
    .await;
    let _ = stop.send(true);
    let _ = retention.await;
    sweeper.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    admin.close().await;
    pool.close().await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// The WebAuthn relying party: the public URL's host at that origin, or
/// `localhost` on any port when no public URL is set; none for an IP address.
fn relying_party(settings: &Settings) -> anyhow::Result<Option<Passkeys>> {
    let Some(rp_id) = settings.passkeys_rp_id() else {
        return Ok(None);
    };
    let origin = settings.public_url.as_ref().map(|url| {
        let scheme = if url.https { "https" } else { "http" };
        match url.port {
            Some(port) => format!("{scheme}://{}:{port}", url.host),
            None => format!("{scheme}://{}", url.host),
        }
    });
    Passkeys::new(&rp_id, origin.as_deref()).map(Some)
}

/// Turns metrics on and serves `/metrics` on `addr`, apart from the app.
async fn serve_metrics(
    addr: SocketAddr,
    pool: sqlx::PgPool,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    crate::metrics::install();
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding PADDOCK_METRICS_BIND {addr}"))?;
    tracing::info!(
        "metrics are served on http://{}/metrics",
        listener.local_addr()?
    );
    Ok(tokio::spawn(server::serve(
        listener,
        crate::metrics::router(pool),
        server::Limits::default(),
        std::future::pending(),
    )))
}

/// The keyring from `PADDOCK_SEAL_KEYS`; in development without it, a key generated
/// once into the data dir (mode 0600), with a warning.
pub fn load_keyring(settings: &Settings) -> anyhow::Result<Keyring> {
    if let Some(spec) = &settings.seal_keys {
        return Keyring::parse(spec).context("PADDOCK_SEAL_KEYS");
    }
    if settings.run_env == RunEnv::Production {
        bail!(
            "PADDOCK_SEAL_KEYS is required in production; create a key with `paddock keys generate`"
        );
    }
    let path = settings.data_dir.join("seal-keys");
    std::fs::create_dir_all(&settings.data_dir)?;
    if !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let entry = Keyring::generate_entry(&Keyring::new_random_id());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(entry.expose_secret().as_bytes())?;
    }
    tracing::warn!(
        path = %path.display(),
        "PADDOCK_SEAL_KEYS is not set: using the development key in the data dir; set PADDOCK_SEAL_KEYS (see `paddock keys generate`) for real use"
    );
    let spec: SecretString = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned()
        .into();
    Keyring::parse(&spec).with_context(|| format!("the key in {}", path.display()))
}

/// Deletes expired sessions and stale sign-in failures every minute.
pub async fn sweep(pool: sqlx::PgPool) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = db::identity::sweep(&pool).await {
            tracing::warn!(error = %e, "sweeping expired sessions failed");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

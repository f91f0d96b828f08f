//! Retention: every page view records a `credential_used` event per account, so
//! those are pruned after `PADDOCK_USE_EVENTS_RETENTION_DAYS`; every other
//! security event is kept. Runs in the background as the owner role (the app
//! role cannot delete events), in batches so no long lock is held.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::db::events;

/// How a retention task runs.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// `credential_used` events older than this many days go.
    pub days: u32,
    /// Time between passes.
    pub every: Duration,
    /// Rows deleted per statement.
    pub batch: i64,
}

impl Retention {
    /// A pass an hour, 1,000 rows a statement.
    pub fn days(days: u32) -> Self {
        Self {
            days,
            every: Duration::from_secs(3600),
            batch: 1000,
        }
    }
}

/// Prunes at once and then every `retention.every`, until `stop` says `true`
/// (or its sender is dropped); a pass in progress stops between batches.
pub async fn run(admin: PgPool, retention: Retention, mut stop: watch::Receiver<bool>) {
    loop {
        let mut pruned = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            match events::prune_key_uses(&admin, retention.days, retention.batch).await {
                Ok(n) => {
                    pruned += n;
                    if n < u64::try_from(retention.batch).unwrap_or(0) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning old key-use events failed; trying again later");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, days = retention.days, "pruned old key-use events");
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
            () = tokio::time::sleep(retention.every) => {}
        }
    }
}

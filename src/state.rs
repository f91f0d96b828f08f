//! Shared application state: one pool, one Alpaca client, one keyring.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::{alpaca, config::SignupMode, seal::Sealer};

/// Web-facing settings, fixed at start-up.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub signup: SignupMode,
    pub secure_cookies: bool,
    /// How long a page waits for Alpaca before showing the affected accounts as unavailable.
    pub alpaca_deadline: std::time::Duration,
}

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub alpaca: alpaca::Client,
    pub sealer: Arc<dyn Sealer>,
    pub settings: Arc<WebSettings>,
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

//! Shared application state: one pool, one Alpaca client, one keyring.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::{
    attest::Attestor,
    config::{PublicUrl, SignupMode},
    net::TrustedProxies,
    passkey::Passkeys,
    seal::Sealer,
    web::{service::PerMember, tenant::AlpacaGate},
};

/// Web-facing settings, fixed at start-up.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub signup: SignupMode,
    pub secure_cookies: bool,
    /// The origin Paddock is served at (`PADDOCK_PUBLIC_URL`): the only `Host`
    /// answered and the only `Origin` a POST may come from. `None`: any host,
    /// and a POST's `Origin` must match its own `Host`.
    pub public_url: Option<PublicUrl>,
    /// Whether to send `Strict-Transport-Security` (an `https` public URL).
    pub hsts: bool,
    /// Peers whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// How long a page waits for Alpaca before showing the affected accounts as unavailable.
    pub alpaca_deadline: std::time::Duration,
    /// The WebAuthn relying party id; `None` when passkeys are unavailable.
    pub passkeys_rp_id: Option<String>,
    /// The WebAuthn relying party for that id; `None` when passkeys are unavailable.
    pub passkeys: Option<Passkeys>,
}

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Alpaca, reachable from handlers only once their transaction is released.
    pub alpaca: AlpacaGate,
    pub sealer: Arc<dyn Sealer>,
    pub settings: Arc<WebSettings>,
    /// Bounds concurrent Argon2 runs (19 MiB each), so a flood of sign-ins
    /// cannot exhaust memory.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Key verifications in flight per member (enrollment and rotation).
    pub verifications: PerMember,
    /// Vouches to the database for second factors only the app can check.
    pub attestor: Attestor,
}

impl AppState {
    /// How many password hashes may run at once: two per core.
    pub fn hashing_slots() -> Arc<tokio::sync::Semaphore> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Arc::new(tokio::sync::Semaphore::new(2 * cores))
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

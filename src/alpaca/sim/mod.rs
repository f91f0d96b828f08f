//! Offline, deterministic simulator of the Alpaca trading endpoints Paddock
//! uses, served by axum. Used by every test and for offline runs.
//!
//! # Layout
//!
//! One server serves both environments by path prefix: paper under
//! `/paper/v2/...`, live under `/live/v2/...`. Point a
//! [`ClientConfig`](crate::alpaca::ClientConfig) at
//! [`Simulator::paper_url`] / [`Simulator::live_url`].
//!
//! # Authentication
//!
//! `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` are required. A key id must be
//! 16–40 ASCII letters/digits; a secret 20–100 characters of
//! `[A-Za-z0-9/+=_-]`. Otherwise: 401
//! `{"code":40110000,"message":"request is not authorized"}`. Key ids starting
//! with `PK` are paper keys and only work under `/paper`; any other prefix
//! (e.g. `AK`) is a live key and only works under `/live`.
//!
//! # Account identity (key rotation rule)
//!
//! The account is derived deterministically from the environment and the key
//! id **without its last four characters**: key ids that differ only there
//! belong to the same account. A key id containing `NOPRICE` also holds 100
//! shares of `LEHMQ`, a delisted asset reported with `null` prices.
//!
//! # Fault keys
//!
//! The last four characters of the key id select a fault ([`faults::Fault`]):
//!
//! | last 4 | response |
//! |--------|----------|
//! | `0401` | 401 `{"code":40110000,"message":"request is not authorized"}` |
//! | `0403` | 403 `{"message":"forbidden"}` |
//! | `0429` | 429 `{"code":42910000,"message":"rate limit exceeded"}` |
//! | `0500` | 500 with a plain-text body |
//! | `HANG` | never answers (sleeps for an hour) |
//! | `SLOW` | answers normally after 2 seconds |
//! | `STRS` | answers normally, every JSON number sent as a string |
//! | `JUNK` | 200 with an HTML page, not JSON |
//! | `HUGE` | 200 with a 256 MB body, streamed |
//! | `LOST` | places orders, but `POST /v2/orders` never answers |
//! | `DARK` | like `LOST`, and `GET /v2/orders:by_client_order_id` never answers |
//!
//! # Market
//!
//! Assets: the ten symbols of [`SYMBOLS`], `ACME` (whole shares only) and
//! `LEHMQ` (inactive, not tradable, unpriced). Prices are fixed until moved
//! with [`Simulator::set_price`] (or `POST /sim/price?symbol=…&price=…`);
//! orders match as described in [`orders`]. Orders fill whatever the time;
//! `GET /v2/clock` reports regular hours (9:30–16:00 US/Eastern, weekdays).
//!
//! # Orders
//!
//! `POST /v2/orders` validates like Alpaca ([`validate`]): 422
//! `{"code":42210000,...}`, 422 `{"code":40010001,"message":"client_order_id
//! must be unique"}` for a client order id the account used before, 403
//! `{"code":40310000,...}` beyond buying power or shares held. Every body
//! received after authentication is recorded ([`Simulator::order_requests`]).

mod activities;
mod data;
pub mod faults;
mod handlers;
mod order_bodies;
pub mod orders;
mod state;
pub mod validate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::Environment;

pub use data::{SYMBOLS, UNPRICED, lastday_price, price};
pub use orders::SimOrder;
pub use state::{AccountState, Holding};

/// Simulator settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimOptions {
    /// Delay added to every response.
    pub latency: Duration,
}

/// One `POST /v2/orders` body as received (including rejected ones).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedOrder {
    /// Environment the order was sent to.
    pub env: Environment,
    /// Account number of the sender.
    pub account_number: String,
    /// HTTP status the simulator answered.
    pub status: u16,
    /// The body as parsed JSON (a JSON string holding the raw text when it
    /// was not JSON).
    pub body: Value,
    /// `symbol` field, if present.
    pub symbol: Option<String>,
    /// `side` field, if present.
    pub side: Option<String>,
    /// `qty` field as text, if present.
    pub qty: Option<String>,
    /// `type` field, if present.
    pub order_type: Option<String>,
    /// `time_in_force` field, if present.
    pub time_in_force: Option<String>,
    /// `limit_price` field as text, if present.
    pub limit_price: Option<String>,
}

impl RecordedOrder {
    /// Any field as text, `.`-separated for nested ones (`take_profit.limit_price`).
    pub fn field(&self, path: &str) -> Option<String> {
        let mut value = &self.body;
        for part in path.split('.') {
            value = value.get(part)?;
        }
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

type AccountKey = (Environment, String);

#[derive(Debug)]
struct Market {
    prices: state::Prices,
    accounts: HashMap<AccountKey, AccountState>,
}

#[derive(Debug)]
struct Inner {
    options: SimOptions,
    market: Mutex<Market>,
    recorded: Mutex<Vec<RecordedOrder>>,
    /// Requests per `METHOD /path`: counted, not kept (a long load run would
    /// otherwise grow this without bound).
    calls: Mutex<HashMap<String, usize>>,
    requests: AtomicU64,
    streamed: AtomicU64,
}

/// The simulator: shared state behind an `Arc`, cheap to clone.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `key_id` is a well-formed key id (16–40 ASCII alphanumerics).
pub fn valid_key_id(key_id: &str) -> bool {
    (16..=40).contains(&key_id.len()) && key_id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `secret` is a well-formed secret (20–100 of `[A-Za-z0-9/+=_-]`).
pub fn valid_secret(secret: &str) -> bool {
    (20..=100).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+=_-".contains(&b))
}

/// Environment a key id belongs to: `PK…` is paper, anything else live.
pub fn key_environment(key_id: &str) -> Environment {
    if key_id.starts_with("PK") {
        Environment::Paper
    } else {
        Environment::Live
    }
}

impl Simulator {
    /// A fresh simulator with no account state yet.
    pub fn new(options: SimOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                market: Mutex::new(Market {
                    prices: state::initial_prices(),
                    accounts: HashMap::new(),
                }),
                recorded: Mutex::new(Vec::new()),
                calls: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
                streamed: AtomicU64::new(0),
            }),
        }
    }

    /// Paper base URL for a simulator listening on `addr`.
    pub fn paper_url(addr: SocketAddr) -> String {
        format!("http://{addr}/paper")
    }

    /// Live base URL for a simulator listening on `addr`.
    pub fn live_url(addr: SocketAddr) -> String {
        format!("http://{addr}/live")
    }

    /// Every order body received so far, oldest first.
    pub fn order_requests(&self) -> Vec<RecordedOrder> {
        lock(&self.inner.recorded).clone()
    }

    /// Number of HTTP requests received so far (all endpoints, all outcomes).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// How many requests were `METHOD /path` (`/paper` or `/live` left out),
    /// e.g. `calls("GET", "/v2/assets/AAPL")`.
    pub fn calls(&self, method: &str, path: &str) -> usize {
        lock(&self.inner.calls)
            .get(&format!("{method} {path}"))
            .copied()
            .unwrap_or(0)
    }

    fn log_call(&self, method: &str, path: &str) {
        let path = path
            .strip_prefix("/paper")
            .or_else(|| path.strip_prefix("/live"))
            .unwrap_or(path);
        *lock(&self.inner.calls)
            .entry(format!("{method} {path}"))
            .or_default() += 1;
    }

    /// Bytes of `HUGE` bodies handed to the network so far.
    pub fn bytes_streamed(&self) -> u64 {
        self.inner.streamed.load(Ordering::Relaxed)
    }

    /// Current state of the account a key id maps to (created on demand), or
    /// `None` for a malformed key id. The environment follows the key prefix.
    pub fn account(&self, key_id: &str) -> Option<AccountState> {
        if !valid_key_id(key_id) {
            return None;
        }
        let env = key_environment(key_id);
        Some(self.with_account(env, key_stem(key_id), |a| a.clone()))
    }

    /// Moves `symbol` to `price` and lets every account's orders react.
    pub fn set_price(&self, symbol: &str, price: Decimal) {
        let now = OffsetDateTime::now_utc();
        let mut market = lock(&self.inner.market);
        let mut prices = (*market.prices).clone();
        prices.insert(symbol.to_owned(), price);
        market.prices = Arc::new(prices);
        let prices = market.prices.clone();
        for account in market.accounts.values_mut() {
            account.prices = prices.clone();
            account.match_symbol(symbol, now);
        }
    }

    fn with_account<R>(
        &self,
        env: Environment,
        stem: &str,
        f: impl FnOnce(&mut AccountState) -> R,
    ) -> R {
        let mut market = lock(&self.inner.market);
        let prices = market.prices.clone();
        let account = market
            .accounts
            .entry((env, stem.to_owned()))
            .or_insert_with(|| AccountState::generate(env, stem, prices));
        f(account)
    }
}

fn key_stem(key_id: &str) -> &str {
    // Key ids are validated as ASCII, so byte slicing is on char boundaries.
    key_id.get(..key_id.len().saturating_sub(4)).unwrap_or("")
}

#[derive(Clone)]
struct Ctx {
    sim: Simulator,
    env: Environment,
}

/// The simulator's axum router (`/paper/v2/...`, `/live/v2/...`, `/sim/price`).
pub fn router(sim: Simulator) -> Router {
    let side = |env: Environment| {
        let ctx = Ctx {
            sim: sim.clone(),
            env,
        };
        Router::new()
            .route("/v2/account", get(handlers::account))
            .route(
                "/v2/positions",
                get(handlers::positions).delete(handlers::close_all),
            )
            .route("/v2/positions/{symbol}", delete(handlers::close_position))
            .route(
                "/v2/orders",
                get(handlers::list_orders)
                    .post(handlers::post_order)
                    .delete(handlers::cancel_all),
            )
            .route(
                "/v2/orders:by_client_order_id",
                get(handlers::by_client_order_id),
            )
            .route("/v2/orders/{id}", delete(handlers::cancel_order))
            .route("/v2/account/portfolio/history", get(handlers::history))
            .route("/v2/account/activities", get(handlers::activities))
            .route("/v2/assets/{symbol}", get(handlers::asset))
            .route("/v2/clock", get(handlers::clock))
            .route_layer(from_fn_with_state(ctx.clone(), faults::gate))
            .with_state(ctx)
    };
    let counter = sim.clone();
    Router::new()
        .nest("/paper", side(Environment::Paper))
        .nest("/live", side(Environment::Live))
        .route(
            "/sim/price",
            post(handlers::set_price).with_state(Ctx {
                sim: sim.clone(),
                env: Environment::Paper,
            }),
        )
        .fallback(move || {
            let counter = counter.clone();
            async move {
                counter.inner.requests.fetch_add(1, Ordering::Relaxed);
                api_error(StatusCode::NOT_FOUND, 40410000, "endpoint not found")
            }
        })
}

/// Binds `bind` (port 0 allowed) and serves the simulator in the background.
/// Returns the bound address, the simulator handle and the server task.
pub async fn spawn(
    bind: SocketAddr,
    options: SimOptions,
) -> std::io::Result<(SocketAddr, Simulator, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let sim = Simulator::new(options);
    let app = router(sim.clone());
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "alpaca simulator stopped");
        }
    });
    tracing::info!(%addr, "alpaca simulator listening");
    Ok((addr, sim, handle))
}

fn api_error(status: StatusCode, code: u64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

#[cfg(test)]
mod tests;

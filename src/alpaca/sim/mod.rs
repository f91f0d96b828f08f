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
//! (e.g. `AK`) is a live key and only works under `/live`. The wrong side
//! answers the same 401. Any syntactically valid secret is accepted.
//!
//! # Account identity (key rotation rule)
//!
//! The account is derived deterministically from the environment and the key
//! id **without its last four characters**. Key ids that differ only in the
//! last four characters therefore belong to the same account (this is how
//! tests rotate keys and keep the account); any other difference gives a
//! different account, with a different id, account number (`PA` + 10 digits
//! on paper, `LA` + 10 digits on live), cash and positions.
//!
//! # Fault keys
//!
//! The last four characters of the key id select a fault, on every endpoint
//! (after the authentication checks above):
//!
//! | last 4 | response |
//! |--------|----------|
//! | `0401` | 401 `{"code":40110000,"message":"request is not authorized"}` |
//! | `0403` | 403 `{"message":"forbidden"}` |
//! | `0429` | 429 `{"code":42910000,"message":"rate limit exceeded"}` |
//! | `0500` | 500 with a plain-text body |
//! | `HANG` | never answers (sleeps for an hour) |
//! | `SLOW` | answers normally after 2 seconds |
//!
//! # Data
//!
//! Each account has cash, 2–5 positions drawn from [`SYMBOLS`] (whole or
//! half-share quantities), prices fixed per symbol ([`price`]), and:
//! `market_value = qty × current_price`, `unrealized_pl = market_value −
//! cost_basis`, `equity = cash + Σ market_value`, `buying_power = 2 × cash`,
//! and a fixed `last_equity` (Σ at the previous close) so the day change is
//! non-zero. Portfolio history (`period` `ND`/`NW`/`NM`/`NA`, i.e. 5, 21, 63
//! or 252 points for 1W/1M/3M/1A; `timeframe=1D` only) is a deterministic
//! daily series in seconds ending at the current equity, as JSON numbers; the
//! first point's `profit_loss_pct` is `null`, and series longer than 63 points
//! start with three all-`null` points.
//!
//! # Orders
//!
//! `POST /v2/orders` validates like Alpaca (422 `{"code":42210000,...}`), and
//! answers 403 `{"code":40310000,"message":"insufficient buying power"}` for a
//! buy costing more than the buying power (or an "insufficient qty" 403 for a
//! sell beyond the shares held). Market orders fill at once at the simulated
//! price and move cash and positions; limit orders rest as `new` until
//! cancelled. `DELETE /v2/orders/{id}` answers 204 for an open order of the
//! account, 404 for an unknown order or another account's, 422 when already
//! filled or cancelled. Every order body received after authentication is
//! recorded ([`Simulator::order_requests`]).

mod data;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::alpaca::client::{Environment, KEY_ID_HEADER, SECRET_HEADER};
use crate::alpaca::models::{OrderType, Side, TimeInForce};

pub use data::{SYMBOLS, lastday_price, price};
pub use state::{AccountState, Holding, SimOrder};

use state::order_json;

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

type AccountKey = (Environment, String);

#[derive(Debug)]
struct Inner {
    options: SimOptions,
    accounts: Mutex<HashMap<AccountKey, AccountState>>,
    recorded: Mutex<Vec<RecordedOrder>>,
    requests: AtomicU64,
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
                accounts: Mutex::new(HashMap::new()),
                recorded: Mutex::new(Vec::new()),
                requests: AtomicU64::new(0),
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

    /// Current state of the account a key id maps to (created on demand), or
    /// `None` for a malformed key id. The environment follows the key prefix.
    pub fn account(&self, key_id: &str) -> Option<AccountState> {
        if !valid_key_id(key_id) {
            return None;
        }
        let env = key_environment(key_id);
        let stem = key_stem(key_id);
        Some(self.with_account(env, stem, |a| a.clone()))
    }

    fn with_account<R>(
        &self,
        env: Environment,
        stem: &str,
        f: impl FnOnce(&mut AccountState) -> R,
    ) -> R {
        let mut accounts = lock(&self.inner.accounts);
        let account = accounts
            .entry((env, stem.to_owned()))
            .or_insert_with(|| AccountState::generate(env, stem));
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

/// The simulator's axum router (`/paper/v2/...` and `/live/v2/...`).
pub fn router(sim: Simulator) -> Router {
    let side = |env: Environment| {
        Router::new()
            .route("/v2/account", get(get_account))
            .route("/v2/positions", get(get_positions))
            .route("/v2/orders", get(list_orders).post(post_order))
            .route("/v2/orders/{id}", delete(cancel_order))
            .route("/v2/account/portfolio/history", get(get_history))
            .with_state(Ctx {
                sim: sim.clone(),
                env,
            })
    };
    let counter = sim.clone();
    Router::new()
        .nest("/paper", side(Environment::Paper))
        .nest("/live", side(Environment::Live))
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

fn unauthorized() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        40110000,
        "request is not authorized",
    )
}

/// Counts the request, applies latency, authenticates and applies faults.
/// Returns the account stem on success.
async fn gate(ctx: &Ctx, headers: &HeaderMap) -> Result<String, Response> {
    ctx.sim.inner.requests.fetch_add(1, Ordering::Relaxed);
    let latency = ctx.sim.inner.options.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key_id), Some(secret)) = (header(KEY_ID_HEADER), header(SECRET_HEADER)) else {
        return Err(unauthorized());
    };
    if !valid_key_id(key_id) || !valid_secret(secret) || key_environment(key_id) != ctx.env {
        return Err(unauthorized());
    }
    let fault = &key_id[key_id.len() - 4..];
    match fault {
        "0401" => return Err(unauthorized()),
        "0403" => {
            return Err((
                StatusCode::FORBIDDEN,
                axum::Json(json!({"message": "forbidden"})),
            )
                .into_response());
        }
        "0429" => {
            return Err(api_error(
                StatusCode::TOO_MANY_REQUESTS,
                42910000,
                "rate limit exceeded",
            ));
        }
        "0500" => {
            return Err(
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
            );
        }
        "HANG" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Err(StatusCode::GATEWAY_TIMEOUT.into_response());
        }
        "SLOW" => tokio::time::sleep(Duration::from_secs(2)).await,
        _ => {}
    }
    Ok(key_stem(key_id).to_owned())
}

async fn get_account(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    match gate(&ctx, &headers).await {
        Ok(stem) => {
            axum::Json(ctx.sim.with_account(ctx.env, &stem, |a| a.account_json())).into_response()
        }
        Err(r) => r,
    }
}

async fn get_positions(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    match gate(&ctx, &headers).await {
        Ok(stem) => {
            axum::Json(ctx.sim.with_account(ctx.env, &stem, |a| a.positions_json())).into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    direction: Option<String>,
}

async fn list_orders(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let stem = match gate(&ctx, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let status = q.status.as_deref().unwrap_or("open");
    if !matches!(status, "open" | "closed" | "all") {
        return api_error(StatusCode::UNPROCESSABLE_ENTITY, 42210000, "invalid status");
    }
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return api_error(StatusCode::UNPROCESSABLE_ENTITY, 42210000, "invalid limit");
        }
    };
    let ascending = match q.direction.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                42210000,
                "invalid direction",
            );
        }
    };
    let body = ctx.sim.with_account(ctx.env, &stem, |a| {
        let matching = a.orders.iter().filter(|o| match status {
            "open" => o.is_open(),
            "closed" => !o.is_open(),
            _ => true,
        });
        let list: Vec<Value> = if ascending {
            matching.take(limit).map(order_json).collect()
        } else {
            let mut all: Vec<&SimOrder> = matching.collect();
            all.reverse();
            all.into_iter().take(limit).map(order_json).collect()
        };
        Value::Array(list)
    });
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
struct HistoryQuery {
    period: Option<String>,
    timeframe: Option<String>,
}

fn period_points(period: &str) -> Option<usize> {
    let split = period.len().checked_sub(1)?;
    let (n, unit) = period.split_at(split);
    let n: usize = n.parse().ok().filter(|n| *n > 0)?;
    let per = match unit {
        "D" => 1,
        "W" => 5,
        "M" => 21,
        "A" => 252,
        _ => return None,
    };
    Some((n * per).min(2520))
}

async fn get_history(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let stem = match gate(&ctx, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(points) = period_points(q.period.as_deref().unwrap_or("1M")) else {
        return api_error(StatusCode::UNPROCESSABLE_ENTITY, 42210000, "invalid period");
    };
    if q.timeframe.as_deref().unwrap_or("1D") != "1D" {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "invalid timeframe",
        );
    }
    let now = OffsetDateTime::now_utc();
    let body = ctx
        .sim
        .with_account(ctx.env, &stem, |a| a.history_json(points, now));
    axum::Json(body).into_response()
}

fn text_field(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn valid_symbol(symbol: &str) -> bool {
    (1..=10).contains(&symbol.len()) && symbol.bytes().all(|b| b.is_ascii_uppercase() || b == b'.')
}

struct Validated {
    symbol: String,
    qty: Decimal,
    side: Side,
    order_type: OrderType,
    time_in_force: TimeInForce,
    limit_price: Option<Decimal>,
    client_order_id: Option<String>,
}

fn validate_order(body: &Value) -> Result<Validated, &'static str> {
    if !body.is_object() {
        return Err("request body format is invalid");
    }
    let symbol = text_field(body, "symbol").ok_or("symbol is required")?;
    if !valid_symbol(&symbol) {
        return Err("invalid symbol");
    }
    let qty = text_field(body, "qty").ok_or("qty is required")?;
    let qty = crate::alpaca::models::dec::parse(&qty).ok_or("invalid qty")?;
    if qty <= Decimal::ZERO {
        return Err("qty must be > 0");
    }
    let side = text_field(body, "side")
        .and_then(|s| match s.as_str() {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        })
        .ok_or("invalid side")?;
    let order_type = text_field(body, "type")
        .and_then(|s| match s.as_str() {
            "market" => Some(OrderType::Market),
            "limit" => Some(OrderType::Limit),
            _ => None,
        })
        .ok_or("invalid order type")?;
    let time_in_force = text_field(body, "time_in_force")
        .and_then(|s| match s.as_str() {
            "day" => Some(TimeInForce::Day),
            "gtc" => Some(TimeInForce::Gtc),
            _ => None,
        })
        .ok_or("invalid time_in_force")?;
    let limit_price = match body.get("limit_price") {
        None | Some(Value::Null) => None,
        Some(_) => {
            let text = text_field(body, "limit_price").ok_or("invalid limit_price")?;
            Some(crate::alpaca::models::dec::parse(&text).ok_or("invalid limit_price")?)
        }
    };
    match (order_type, limit_price) {
        (OrderType::Limit, None) => return Err("limit orders require limit_price"),
        (OrderType::Market, Some(_)) => {
            return Err("market orders must not have limit_price");
        }
        (OrderType::Limit, Some(p)) if p <= Decimal::ZERO => {
            return Err("limit_price must be > 0");
        }
        _ => {}
    }
    if price(&symbol).is_none() {
        return Err("asset not found");
    }
    Ok(Validated {
        symbol,
        qty,
        side,
        order_type,
        time_in_force,
        limit_price,
        client_order_id: text_field(body, "client_order_id"),
    })
}

async fn post_order(State(ctx): State<Ctx>, headers: HeaderMap, raw: Bytes) -> Response {
    let stem = match gate(&ctx, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let parsed: Option<Value> = serde_json::from_slice(&raw).ok();
    let body = parsed
        .clone()
        .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&raw).into_owned()));

    let (account_number, response) = ctx.sim.with_account(ctx.env, &stem, |account| {
        let response = match parsed.as_ref() {
            None => api_error(
                StatusCode::BAD_REQUEST,
                40010000,
                "request body format is invalid",
            ),
            Some(value) => match validate_order(value) {
                Err(message) => api_error(StatusCode::UNPROCESSABLE_ENTITY, 42210000, message),
                Ok(order) => place(account, order),
            },
        };
        (account.account_number.clone(), response)
    });

    lock(&ctx.sim.inner.recorded).push(RecordedOrder {
        env: ctx.env,
        account_number,
        status: response.status().as_u16(),
        symbol: text_field(&body, "symbol"),
        side: text_field(&body, "side"),
        qty: text_field(&body, "qty"),
        order_type: text_field(&body, "type"),
        time_in_force: text_field(&body, "time_in_force"),
        limit_price: text_field(&body, "limit_price"),
        body,
    });
    response
}

fn place(account: &mut AccountState, order: Validated) -> Response {
    let market = price(&order.symbol).unwrap_or_default();
    let reference = order.limit_price.unwrap_or(market);
    match order.side {
        Side::Buy => {
            if order.qty * reference > account.buying_power() {
                return api_error(StatusCode::FORBIDDEN, 40310000, "insufficient buying power");
            }
        }
        Side::Sell => {
            let available = account.qty_held(&order.symbol) - account.qty_reserved(&order.symbol);
            if order.qty > available {
                let message = format!(
                    "insufficient qty available for order (requested: {}, available: {})",
                    order.qty.normalize(),
                    available.normalize()
                );
                return api_error(StatusCode::FORBIDDEN, 40310000, &message);
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let id = Uuid::new_v4();
    let mut sim_order = SimOrder {
        id,
        client_order_id: order
            .client_order_id
            .unwrap_or_else(|| Uuid::new_v4().to_string()),
        created_at: now,
        symbol: order.symbol,
        qty: order.qty,
        side: order.side,
        order_type: order.order_type,
        time_in_force: order.time_in_force,
        limit_price: order.limit_price,
        status: "new".to_owned(),
        filled_avg_price: None,
        filled_at: None,
        canceled_at: None,
    };
    if order.order_type == OrderType::Market {
        account.apply_fill(&sim_order.symbol, sim_order.side, sim_order.qty, market);
        sim_order.status = "filled".to_owned();
        sim_order.filled_avg_price = Some(market);
        sim_order.filled_at = Some(now);
    }
    let body = order_json(&sim_order);
    account.orders.push(sim_order);
    axum::Json(body).into_response()
}

async fn cancel_order(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let stem = match gate(&ctx, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return api_error(StatusCode::NOT_FOUND, 40410000, "order not found");
    };
    ctx.sim.with_account(ctx.env, &stem, |a| {
        match a.orders.iter_mut().find(|o| o.id == id) {
            None => api_error(StatusCode::NOT_FOUND, 40410000, "order not found"),
            Some(o) if !o.is_open() => {
                let message = format!("order is already in \"{}\" state", o.status);
                api_error(StatusCode::UNPROCESSABLE_ENTITY, 42210000, &message)
            }
            Some(o) => {
                o.status = "canceled".to_owned();
                o.canceled_at = Some(OffsetDateTime::now_utc());
                StatusCode::NO_CONTENT.into_response()
            }
        }
    })
}

#[cfg(test)]
mod tests;

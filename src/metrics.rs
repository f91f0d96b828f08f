//! Prometheus metrics, served at `/metrics` on `PADDOCK_METRICS_BIND` only.
//!
//! One process-wide set, installed at start-up when metrics are on, so that a
//! call site is one line (`metrics::sign_in("success")`) and needs no handle
//! threaded through; with metrics off every call is a cheap no-op. Label values
//! are bounded: HTTP routes are the router's templates (`/accounts/{id}`), an
//! unmatched path is `unmatched`, Alpaca endpoints are templates too.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use sqlx::PgPool;

/// The `route` of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointOutcome {
    endpoint: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// 5 ms to about 20 s.
fn timings() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

struct Metrics {
    registry: Registry,
    http_requests: Family<RouteStatus, Counter>,
    http_duration: Timings<Route>,
    alpaca_requests: Family<EndpointOutcome, Counter>,
    alpaca_duration: Timings<Endpoint>,
    pool: Family<PoolState, Gauge>,
    sign_ins: Family<Outcome, Counter>,
    seals: Family<Op, Counter>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

impl Metrics {
    fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("paddock"),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(timings),
            alpaca_requests: Family::default(),
            alpaca_duration: Family::new_with_constructor(timings),
            pool: Family::default(),
            sign_ins: Family::default(),
            seals: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "HTTP requests by route template and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            m.http_duration.clone(),
        );
        r.register(
            "alpaca_requests",
            "Requests to Alpaca by endpoint and outcome",
            m.alpaca_requests.clone(),
        );
        r.register(
            "alpaca_request_duration_seconds",
            "Time Alpaca took to answer",
            m.alpaca_duration.clone(),
        );
        r.register(
            "db_pool_connections",
            "Connections of the app pool by state",
            m.pool.clone(),
        );
        r.register(
            "sign_ins",
            "Sign-in attempts by outcome",
            m.sign_ins.clone(),
        );
        r.register(
            "seal_operations",
            "Seal and unseal operations",
            m.seals.clone(),
        );
        m
    }
}

/// Turns metrics on for this process (idempotent).
pub fn install() {
    METRICS.get_or_init(Metrics::new);
}

/// Counts one answered HTTP request.
pub fn http_request(route: &str, status: u16, took: Duration) {
    if let Some(m) = METRICS.get() {
        let route = route.to_owned();
        m.http_duration
            .get_or_create(&Route {
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        m.http_requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
    }
}

/// Counts one request to Alpaca: `path` is made a template (ids become `{id}`).
pub fn alpaca_request(
    method: &reqwest::Method,
    path: &str,
    result: &Result<(reqwest::StatusCode, impl Sized), reqwest::Error>,
    took: Duration,
) {
    if let Some(m) = METRICS.get() {
        let endpoint = format!("{method} {}", endpoint_template(path));
        let outcome = alpaca_outcome(result.as_ref().map(|(status, _)| status.as_u16()));
        m.alpaca_duration
            .get_or_create(&Endpoint {
                endpoint: endpoint.clone(),
            })
            .observe(took.as_secs_f64());
        m.alpaca_requests
            .get_or_create(&EndpointOutcome { endpoint, outcome })
            .inc();
    }
}

/// Counts one sign-in attempt: `success`, `failure` or `locked`.
pub fn sign_in(outcome: &'static str) {
    if let Some(m) = METRICS.get() {
        m.sign_ins.get_or_create(&Outcome { outcome }).inc();
    }
}

/// Counts one `seal` or `unseal`.
pub fn seal_operation(op: &'static str) {
    if let Some(m) = METRICS.get() {
        m.seals.get_or_create(&Op { op }).inc();
    }
}

/// `/v2/orders/5f0c…` → `/v2/orders/{id}`.
fn endpoint_template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if uuid::Uuid::parse_str(segment).is_ok() {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn alpaca_outcome(result: Result<u16, &reqwest::Error>) -> &'static str {
    match result {
        Ok(200..=299) => "ok",
        Ok(401 | 403) => "rejected",
        Ok(404) => "not_found",
        Ok(422) => "unprocessable",
        Ok(429) => "rate_limited",
        Ok(400..=499) => "client_error",
        Ok(_) => "server_error",
        Err(e) if e.is_timeout() => "timeout",
        Err(_) => "unavailable",
    }
}

/// Middleware: counts and times every request under its matched route template.
pub async fn track(request: Request, next: Next) -> Response {
    if METRICS.get().is_none() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    http_request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// The `/metrics` app, sampling the pool's connections at each scrape.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(pool)
}

async fn scrape(State(pool): State<PgPool>) -> Response {
    let Some(m) = METRICS.get() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
    let all = i64::from(pool.size());
    m.pool.get_or_create(&PoolState { state: "idle" }).set(idle);
    m.pool
        .get_or_create(&PoolState { state: "in_use" })
        .set((all - idle).max(0));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &m.registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpaca_paths_become_templates() {
        assert_eq!(
            endpoint_template("/v2/orders/5f0c6a3e-8c1b-4a55-9a57-3c1f2b8e9d10"),
            "/v2/orders/{id}"
        );
        assert_eq!(
            endpoint_template("/v2/account/portfolio/history"),
            "/v2/account/portfolio/history"
        );
    }

    #[test]
    fn alpaca_outcomes_are_a_small_fixed_set() {
        assert_eq!(alpaca_outcome(Ok(200)), "ok");
        assert_eq!(alpaca_outcome(Ok(204)), "ok");
        assert_eq!(alpaca_outcome(Ok(403)), "rejected");
        assert_eq!(alpaca_outcome(Ok(429)), "rate_limited");
        assert_eq!(alpaca_outcome(Ok(418)), "client_error");
        assert_eq!(alpaca_outcome(Ok(503)), "server_error");
    }
}

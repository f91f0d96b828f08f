//! HTTP client for Alpaca's trading API.
//!
//! One [`Client`] (one pooled `reqwest::Client`) serves every member; each
//! call takes the member's [`ApiKeys`] and the [`Environment`] to talk to.
//! Keys are only ever sent as sensitive headers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alpaca::error::AlpacaError;
use crate::alpaca::models::{
    Account, Order, OrderRequest, OrderStatusFilter, PortfolioHistory, Position,
};

/// Header carrying the key id.
pub const KEY_ID_HEADER: &str = "APCA-API-KEY-ID";
/// Header carrying the secret key.
pub const SECRET_HEADER: &str = "APCA-API-SECRET-KEY";

/// Which Alpaca environment a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Paper trading (`paper-api.alpaca.markets`).
    Paper,
    /// Live trading (`api.alpaca.markets`).
    Live,
}

impl Environment {
    /// `"paper"` or `"live"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Paper => "paper",
            Environment::Live => "live",
        }
    }

    /// The other environment.
    pub fn other(self) -> Self {
        match self {
            Environment::Paper => Environment::Live,
            Environment::Live => Environment::Paper,
        }
    }

    /// `"Paper"` or `"Live"`, for display.
    pub fn label(self) -> &'static str {
        match self {
            Environment::Paper => "Paper",
            Environment::Live => "Live",
        }
    }

    /// Parses `"paper"` / `"live"` (case-insensitive, surrounding whitespace
    /// ignored).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "paper" => Some(Environment::Paper),
            "live" => Some(Environment::Live),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Base URL of the paper environment.
    pub paper_url: String,
    /// Base URL of the live environment.
    pub live_url: String,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            paper_url: "https://paper-api.alpaca.markets".to_owned(),
            live_url: "https://api.alpaca.markets".to_owned(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A member's Alpaca API key pair. `Debug` prints no key material.
#[derive(Clone)]
pub struct ApiKeys {
    key_id: SecretString,
    secret: SecretString,
}

impl ApiKeys {
    /// Wraps a key id and secret.
    pub fn new(key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            key_id: SecretString::from(key_id.into()),
            secret: SecretString::from(secret.into()),
        }
    }

    /// The key id (not secret to Alpaca, but still treated as sensitive).
    pub fn key_id(&self) -> &SecretString {
        &self.key_id
    }

    /// The secret key.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeys { .. }")
    }
}

/// Typed client for Alpaca's trading API. Cheap to clone; clones share one
/// connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    paper_url: Arc<str>,
    live_url: Arc<str>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("paper_url", &self.paper_url)
            .field("live_url", &self.live_url)
            .finish_non_exhaustive()
    }
}

fn trim_base(url: &str) -> Arc<str> {
    Arc::from(url.trim().trim_end_matches('/'))
}

impl Client {
    /// Builds the client (and its single pooled `reqwest::Client`).
    pub fn new(config: &ClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("paddock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // Never follow a redirect: the key headers would go along to its target.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            paper_url: trim_base(&config.paper_url),
            live_url: trim_base(&config.live_url),
        })
    }

    /// Base URL used for `env` (no trailing slash).
    pub fn base_url(&self, env: Environment) -> &str {
        match env {
            Environment::Paper => &self.paper_url,
            Environment::Live => &self.live_url,
        }
    }

    /// `GET /v2/account`.
    pub async fn account(&self, env: Environment, keys: &ApiKeys) -> Result<Account, AlpacaError> {
        let body = self
            .send(env, keys, Method::GET, "/v2/account", &[], None, false)
            .await?;
        decode(&body)
    }

    /// `GET /v2/positions`.
    pub async fn positions(
        &self,
        env: Environment,
        keys: &ApiKeys,
    ) -> Result<Vec<Position>, AlpacaError> {
        let body = self
            .send(env, keys, Method::GET, "/v2/positions", &[], None, false)
            .await?;
        decode(&body)
    }

    /// `GET /v2/orders?status=..&limit=..&direction=desc` (newest first).
    pub async fn orders(
        &self,
        env: Environment,
        keys: &ApiKeys,
        status: OrderStatusFilter,
        limit: u32,
    ) -> Result<Vec<Order>, AlpacaError> {
        let limit = limit.to_string();
        let query = [
            ("status", status.as_str()),
            ("limit", limit.as_str()),
            ("direction", "desc"),
        ];
        let body = self
            .send(env, keys, Method::GET, "/v2/orders", &query, None, false)
            .await?;
        decode(&body)
    }

    /// `GET /v2/account/portfolio/history?period=..&timeframe=..`, e.g.
    /// period `"1M"`, timeframe `"1D"`.
    pub async fn portfolio_history(
        &self,
        env: Environment,
        keys: &ApiKeys,
        period: &str,
        timeframe: &str,
    ) -> Result<PortfolioHistory, AlpacaError> {
        let query = [("period", period), ("timeframe", timeframe)];
        let body = self
            .send(
                env,
                keys,
                Method::GET,
                "/v2/account/portfolio/history",
                &query,
                None,
                false,
            )
            .await?;
        decode(&body)
    }

    /// `POST /v2/orders`. A 403 here means Alpaca refused the order
    /// ([`AlpacaError::Refused`]), not the keys.
    pub async fn place_order(
        &self,
        env: Environment,
        keys: &ApiKeys,
        order: &OrderRequest,
    ) -> Result<Order, AlpacaError> {
        let payload = serde_json::to_vec(order)
            .map_err(|e| AlpacaError::Unprocessable(format!("could not encode order: {e}")))?;
        let body = self
            .send(
                env,
                keys,
                Method::POST,
                "/v2/orders",
                &[],
                Some(payload),
                true,
            )
            .await?;
        decode(&body)
    }

    /// `DELETE /v2/orders/{id}` (Alpaca answers 204).
    pub async fn cancel_order(
        &self,
        env: Environment,
        keys: &ApiKeys,
        order_id: Uuid,
    ) -> Result<(), AlpacaError> {
        let path = format!("/v2/orders/{order_id}");
        self.send(env, keys, Method::DELETE, &path, &[], None, true)
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        env: Environment,
        keys: &ApiKeys,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        json_body: Option<Vec<u8>>,
        write: bool,
    ) -> Result<Vec<u8>, AlpacaError> {
        let url = format!("{}{}", self.base_url(env), path);
        let mut key_id = HeaderValue::from_str(keys.key_id.expose_secret())
            .map_err(|_| AlpacaError::Rejected)?;
        key_id.set_sensitive(true);
        let mut secret = HeaderValue::from_str(keys.secret.expose_secret())
            .map_err(|_| AlpacaError::Rejected)?;
        secret.set_sensitive(true);

        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(KEY_ID_HEADER, key_id)
            .header(SECRET_HEADER, secret)
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = json_body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }

        let started = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        crate::metrics::alpaca_request(&method, path, &result, started.elapsed());

        let (status, bytes) = match result {
            Ok(ok) => ok,
            Err(e) => {
                let error = transport_error(&e);
                tracing::warn!(
                    env = env.as_str(),
                    %method,
                    path,
                    elapsed_ms,
                    kind = error.kind(),
                    error = %e.without_url(),
                    "alpaca request failed"
                );
                return Err(error);
            }
        };

        if status.is_success() {
            tracing::debug!(env = env.as_str(), %method, path, status = status.as_u16(), elapsed_ms, "alpaca request");
            return Ok(bytes.to_vec());
        }
        let text = String::from_utf8_lossy(&bytes);
        let error = AlpacaError::from_response(status.as_u16(), &text, write);
        tracing::info!(
            env = env.as_str(),
            %method,
            path,
            status = status.as_u16(),
            elapsed_ms,
            kind = error.kind(),
            "alpaca request returned an error"
        );
        Err(error)
    }
}

fn transport_error(e: &reqwest::Error) -> AlpacaError {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    AlpacaError::Unavailable(what.to_owned())
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AlpacaError> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(error = %e, "undecodable alpaca response body");
        AlpacaError::Unavailable(format!("undecodable response: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_strings() {
        assert_eq!(Environment::Paper.as_str(), "paper");
        assert_eq!(Environment::Live.label(), "Live");
        assert_eq!(Environment::parse(" LIVE "), Some(Environment::Live));
        assert_eq!(Environment::parse("demo"), None);
        assert_eq!(
            serde_json::to_string(&Environment::Paper).expect("json"),
            "\"paper\""
        );
    }

    #[test]
    fn keys_debug_has_no_key_material() {
        let keys = ApiKeys::new("PKSECRETKEYID0000001", "verysecretsecretvalue1234");
        let shown = format!("{keys:?}");
        assert!(!shown.contains("PKSECRET"));
        assert!(!shown.contains("verysecret"));
        assert_eq!(shown, "ApiKeys { .. }");
    }

    #[test]
    fn base_urls_are_trimmed() {
        let client = Client::new(&ClientConfig {
            paper_url: "http://x/paper/".into(),
            ..ClientConfig::default()
        })
        .expect("client");
        assert_eq!(client.base_url(Environment::Paper), "http://x/paper");
        assert_eq!(
            client.base_url(Environment::Live),
            "https://api.alpaca.markets"
        );
    }
}

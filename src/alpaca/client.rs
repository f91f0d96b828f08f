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
use serde::{Deserialize, de::DeserializeOwned};

use crate::alpaca::asset_cache::AssetCache;
use crate::alpaca::error::AlpacaError;
use crate::domain::Environment;

/// Header carrying the key id.
pub const KEY_ID_HEADER: &str = "APCA-API-KEY-ID";
/// Header carrying the secret key.
pub const SECRET_HEADER: &str = "APCA-API-SECRET-KEY";

/// Largest success body Paddock reads. Alpaca's biggest answers (500 orders,
/// 100 activities, a year of history) are well under 1 MB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Largest part of an error body read (it only feeds a message).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

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
    pub(super) assets: Arc<AssetCache>,
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
            assets: Arc::new(AssetCache::default()),
        })
    }

    /// Base URL used for `env` (no trailing slash).
    pub fn base_url(&self, env: Environment) -> &str {
        match env {
            Environment::Paper => &self.paper_url,
            Environment::Live => &self.live_url,
        }
    }

    /// The one way a request reaches Alpaca: keys as sensitive headers, the
    /// success body read up to [`MAX_BODY_BYTES`], errors mapped and logged
    /// (never with a key). `write` marks order and position changes, where a
    /// 403 means Alpaca refused the action rather than the keys.
    pub(super) async fn send(
        &self,
        call: Call<'_>,
        keys: &ApiKeys,
    ) -> Result<Vec<u8>, AlpacaError> {
        let Call {
            env,
            method,
            path,
            query,
            json_body,
            write,
        } = call;
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
            let cap = if status.is_success() {
                MAX_BODY_BYTES
            } else {
                MAX_ERROR_BODY_BYTES
            };
            let body = read_capped(response, cap).await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        crate::metrics::alpaca_request(&method, path, &result, started.elapsed());

        let (status, body) = match result {
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

        let bytes = match body {
            Capped::Whole(bytes) => bytes,
            Capped::Cut(bytes) if !status.is_success() => bytes,
            Capped::Cut(_) => {
                tracing::warn!(
                    env = env.as_str(),
                    %method,
                    path,
                    status = status.as_u16(),
                    elapsed_ms,
                    cap = MAX_BODY_BYTES,
                    "alpaca response body exceeds the size cap; stopped reading"
                );
                return Err(AlpacaError::Unreadable(format!(
                    "body larger than {MAX_BODY_BYTES} bytes"
                )));
            }
        };
        if status.is_success() {
            tracing::debug!(env = env.as_str(), %method, path, status = status.as_u16(), elapsed_ms, "alpaca request");
            return Ok(bytes);
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

/// One request to Alpaca, before the keys are added.
pub(super) struct Call<'a> {
    pub env: Environment,
    pub method: Method,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub json_body: Option<Vec<u8>>,
    pub write: bool,
}

impl<'a> Call<'a> {
    /// A read (`GET`) of `path` with `query`.
    pub fn get(env: Environment, path: &'a str, query: &'a [(&'a str, &'a str)]) -> Self {
        Self {
            env,
            method: Method::GET,
            path,
            query,
            json_body: None,
            write: false,
        }
    }

    /// A change (`POST`, `DELETE`) of `path`.
    pub fn write(
        env: Environment,
        method: Method,
        path: &'a str,
        query: &'a [(&'a str, &'a str)],
    ) -> Self {
        Self {
            env,
            method,
            path,
            query,
            json_body: None,
            write: true,
        }
    }
}

/// A body read up to a cap.
enum Capped {
    Whole(Vec<u8>),
    /// The first `cap` bytes; the rest was never read.
    Cut(Vec<u8>),
}

/// Reads at most `cap` bytes of the body, chunk by chunk, so a hostile or
/// broken answer can never make Paddock hold more than `cap` bytes of it.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Capped, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Ok(Capped::Cut(Vec::new()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body))
}

/// Decodes a success body whose top level must be a JSON object (an
/// account, an order). Anything else — not JSON, another shape — is
/// [`AlpacaError::Unreadable`], logged with the endpoint and the path inside
/// the body (never a key). Within that shape the models read every field
/// leniently.
///
/// Read straight from the bytes; only a body that fails that way is read
/// again through a `serde_json::Value`, the reference reading, for its answer
/// and the path of the problem.
pub(super) fn decode<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, AlpacaError> {
    if let Ok(Object(value)) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let value = parse(endpoint, body)?;
    if !value.is_object() {
        return Err(unreadable(endpoint, body, ".", &"expected an object"));
    }
    typed(endpoint, body, value)
}

/// Like [`decode`], for a body that must be an array of objects.
pub(super) fn decode_list<T: DeserializeOwned>(
    endpoint: &str,
    body: &[u8],
) -> Result<Vec<T>, AlpacaError> {
    if let Ok(items) = serde_json::from_slice::<Vec<Object<T>>>(body) {
        return Ok(items.into_iter().map(|Object(item)| item).collect());
    }
    let value = parse(endpoint, body)?;
    let Some(items) = value.as_array() else {
        return Err(unreadable(endpoint, body, ".", &"expected a list"));
    };
    if let Some(i) = items.iter().position(|item| !item.is_object()) {
        let at = format!("[{i}]");
        return Err(unreadable(
            endpoint,
            body,
            &at,
            &"a list item that is not an object",
        ));
    }
    typed(endpoint, body, value)
}

/// A `T` read only from a JSON object (a derived struct would also read an
/// array, positionally).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }

        d.deserialize_map(Fields(std::marker::PhantomData))
    }
}

fn parse(endpoint: &str, body: &[u8]) -> Result<serde_json::Value, AlpacaError> {
    serde_json::from_slice(body).map_err(|e| unreadable(endpoint, body, ".", &e))
}

fn typed<T: DeserializeOwned>(
    endpoint: &str,
    body: &[u8],
    value: serde_json::Value,
) -> Result<T, AlpacaError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        unreadable(endpoint, body, &at, e.inner())
    })
}

fn unreadable(endpoint: &str, body: &[u8], at: &str, error: &dyn std::fmt::Display) -> AlpacaError {
    tracing::warn!(
        endpoint,
        at,
        error = %error,
        bytes = body.len(),
        "alpaca sent a body Paddock could not read"
    );
    AlpacaError::Unreadable(format!("{endpoint}: {error} at {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_json_or_the_wrong_shape_are_unreadable() {
        use crate::alpaca::models::{Account, Position};
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{\"cash\":",
            b"\x00\xff",
        ] {
            let e = decode::<Account>("GET /v2/account", body).expect_err("unreadable");
            assert!(matches!(e, AlpacaError::Unreadable(_)), "{e:?}");
            assert_eq!(
                e.user_message(),
                "Alpaca sent a response Paddock could not read"
            );
        }
        let e = decode::<Account>("GET /v2/account", br#"[{"cash":"1"}]"#)
            .expect_err("a list where an object belongs");
        assert!(matches!(e, AlpacaError::Unreadable(_)));
        let e = decode_list::<Position>("GET /v2/positions", br#"{"positions":[]}"#)
            .expect_err("an object where a list belongs");
        assert!(matches!(e, AlpacaError::Unreadable(ref d) if d.starts_with("GET /v2/positions")));
        let e = decode_list::<Position>("GET /v2/positions", br#"[{"symbol":"A"}, 7]"#)
            .expect_err("a list item that is not an object");
        assert!(
            matches!(e, AlpacaError::Unreadable(ref d) if d.contains("[1]")),
            "{e:?}"
        );
    }

    #[test]
    fn reading_straight_from_the_bytes_gives_what_the_reference_reading_gives() {
        use crate::alpaca::models::{Account, Position};
        let reference = |body: &str| -> Account {
            typed(
                "test",
                body.as_bytes(),
                parse("test", body.as_bytes()).expect("json"),
            )
            .expect("typed")
        };
        for body in [
            r#"{"account_number":"PA1","equity":"100.10","cash":0.1,"buying_power":1e21,"daytrade_count":"0","pattern_day_trader":"true","created_at":"2019-08-01"}"#,
            r#"{"account_number":7,"equity":null,"cash":{"amount":"1"},"buying_power":[1,2],"multiplier":"4","status":"ACT\u0049VE"}"#,
            r#"{"equity":12345678901234567890123,"last_equity":-0.000001,"daytrade_count":2.0,"id":"904837e3-3b76-47ec-b432-046db621571b"}"#,
            r#"{"cash":"1","cash":"2","unknown_field":{"deep":[{"x":1}]}}"#,
        ] {
            assert_eq!(
                decode::<Account>("test", body.as_bytes()).expect("decodes"),
                reference(body),
                "{body}"
            );
        }
        let positions = decode_list::<Position>(
            "test",
            br#"[{"symbol":"AAPL","qty":"10","market_value":null},{"symbol":"MSFT","qty":5}]"#,
        )
        .expect("list");
        assert_eq!(positions.len(), 2);
        assert_eq!(positions[1].qty.map(|q| q.to_string()), Some("5".into()));
        let e = decode_list::<Position>("test", br#"[{"symbol":"A"}, ["AAPL", "10"]]"#)
            .expect_err("an array is not a position, even positionally");
        assert!(
            matches!(e, AlpacaError::Unreadable(ref d) if d.contains("[1]")),
            "{e:?}"
        );
        let e = decode::<Account>("test", br#"["PA1", "ACTIVE"]"#).expect_err("not an account");
        assert!(matches!(e, AlpacaError::Unreadable(_)));
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

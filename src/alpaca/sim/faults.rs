//! The simulator's front door: counts and logs each request, adds latency,
//! checks the keys, and applies the fault the key id's last four characters
//! select. Handlers receive the caller as an extension.

use std::{
    pin::Pin,
    sync::atomic::Ordering,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::Frame;
use serde_json::Value;

use crate::alpaca::client::{KEY_ID_HEADER, SECRET_HEADER};
use crate::alpaca::sim::{
    Ctx, Simulator, api_error, key_environment, key_stem, valid_key_id, valid_secret,
};

/// Size of the `HUGE` fault's body.
pub const HUGE_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// What a key's last four characters ask the simulator to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    None,
    /// 401 everywhere.
    Unauthorized,
    /// 403 everywhere.
    Forbidden,
    /// 429 everywhere.
    RateLimited,
    /// 500 with a plain-text body everywhere.
    ServerError,
    /// Never answer.
    Hang,
    /// Answer after 2 s.
    Slow,
    /// Every JSON number sent as a string.
    Strings,
    /// A 200 whose body is an HTML error page, not JSON.
    Junk,
    /// A 200 whose body streams 256 MB.
    Huge,
    /// Orders are placed, but `POST /v2/orders` never answers.
    Lost,
    /// Like `Lost`, and looking an order up by client order id never answers either.
    Dark,
}

impl Fault {
    /// The fault a key id selects.
    pub fn of(key_id: &str) -> Self {
        match &key_id[key_id.len().saturating_sub(4)..] {
            "0401" => Fault::Unauthorized,
            "0403" => Fault::Forbidden,
            "0429" => Fault::RateLimited,
            "0500" => Fault::ServerError,
            "HANG" => Fault::Hang,
            "SLOW" => Fault::Slow,
            "STRS" => Fault::Strings,
            "JUNK" => Fault::Junk,
            "HUGE" => Fault::Huge,
            "LOST" => Fault::Lost,
            "DARK" => Fault::Dark,
            _ => Fault::None,
        }
    }
}

/// Who is calling: their account and the fault their key selects.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key id without its last four characters.
    pub stem: String,
    /// The selected fault.
    pub fault: Fault,
}

/// Never answers (well, after an hour).
pub async fn hang() -> Response {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

/// The middleware in front of every endpoint.
pub(super) async fn gate(State(ctx): State<Ctx>, mut request: Request, next: Next) -> Response {
    let sim = &ctx.sim;
    sim.inner.requests.fetch_add(1, Ordering::Relaxed);
    sim.log_call(request.method().as_str(), request.uri().path());
    let keys = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (header(KEY_ID_HEADER), header(SECRET_HEADER))
    };
    let latency = sim.inner.options.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (Some(key_id), Some(secret)) = keys else {
        return unauthorized();
    };
    if !valid_key_id(&key_id) || !valid_secret(&secret) || key_environment(&key_id) != ctx.env {
        return unauthorized();
    }
    let fault = Fault::of(&key_id);
    match fault {
        Fault::Unauthorized => return unauthorized(),
        Fault::Forbidden => {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"message": "forbidden"})),
            )
                .into_response();
        }
        Fault::RateLimited => {
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                42910000,
                "rate limit exceeded",
            );
        }
        Fault::ServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Fault::Hang => return hang().await,
        Fault::Slow => tokio::time::sleep(Duration::from_secs(2)).await,
        Fault::Junk => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response();
        }
        Fault::Huge => {
            return (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Body::new(Huge {
                    sim: sim.clone(),
                    left: HUGE_BODY_BYTES,
                }),
            )
                .into_response();
        }
        _ => {}
    }
    request.extensions_mut().insert(Caller {
        stem: key_stem(&key_id).to_owned(),
        fault,
    });
    let response = next.run(request).await;
    if fault == Fault::Strings {
        return numbers_as_strings(response).await;
    }
    response
}

fn unauthorized() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        40110000,
        "request is not authorized",
    )
}

/// Re-sends a JSON answer with every number as a string.
async fn numbers_as_strings(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) => {
            stringify(&mut value);
            let mut response = axum::Json(value).into_response();
            *response.status_mut() = parts.status;
            response
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}

fn stringify(value: &mut Value) {
    match value {
        Value::Number(n) => *value = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(stringify),
        Value::Object(map) => map.values_mut().for_each(stringify),
        _ => {}
    }
}

/// A body of `{"padding":"aaaa…` that goes on for [`HUGE_BODY_BYTES`],
/// produced as it is sent (the simulator holds one chunk, not 256 MB).
struct Huge {
    sim: Simulator,
    left: u64,
}

const CHUNK: &[u8] = &[b'a'; 64 * 1024];

impl http_body::Body for Huge {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let chunk = if self.left == HUGE_BODY_BYTES {
            let mut first = b"{\"padding\":\"".to_vec();
            first.extend_from_slice(&CHUNK[first.len()..]);
            Bytes::from(first)
        } else {
            Bytes::from_static(CHUNK)
        };
        let n = (chunk.len() as u64).min(self.left);
        self.left -= n;
        self.sim.inner.streamed.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(chunk.slice(..n as usize)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_four_characters_select_the_fault() {
        assert_eq!(Fault::of("PKANYTHING00000STRS"), Fault::Strings);
        assert_eq!(Fault::of("PKANYTHING00000JUNK"), Fault::Junk);
        assert_eq!(Fault::of("PKANYTHING0000HUGE"), Fault::Huge);
        assert_eq!(Fault::of("PKANYTHING00000DARK"), Fault::Dark);
        assert_eq!(Fault::of("PKANYTHING00000001"), Fault::None);
    }

    #[test]
    fn every_number_becomes_a_string() {
        let mut v = serde_json::json!({"a": 1, "b": [2.5, {"c": -3}], "d": "4", "e": null});
        stringify(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": "1", "b": ["2.5", {"c": "-3"}], "d": "4", "e": null})
        );
    }
}

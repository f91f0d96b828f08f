//! What every request passes first: who the client is (behind trusted proxies),
//! whether it asked for our host, and the HSTS header.
//!
//! Only from a peer in `PADDOCK_TRUSTED_PROXIES` are `X-Forwarded-For` and RFC
//! 7239 `Forwarded` believed. The client is then the nearest address, walking the
//! chain from our peer outwards, that is not itself a trusted proxy: entries
//! further out were written by the client and prove nothing. Anything we cannot
//! read (an `unknown` or obfuscated hop, garbage, or the two headers naming
//! different clients) falls back to the peer.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};

use crate::{error::error_page, net::TrustedProxies, state::AppState};

/// The client's address as resolved for this request (a request extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The middleware.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let settings = &state.settings;
    if let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let client = client_address(peer, request.headers(), &settings.trusted_proxies);
        request.extensions_mut().insert(ClientAddr(client));
    }
    // Load balancers probe replicas directly, by their own addresses.
    let probe = request.uri().path() == "/healthz";
    let mut response = match &settings.public_url {
        Some(url) if !probe => {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            if host.is_some_and(|h| url.is_host(h)) {
                next.run(request).await
            } else {
                // Not a warning: scanners ask for bare addresses all day.
                tracing::info!(
                    host = host.map(|h| h.chars().take(100).collect::<String>()),
                    "refused a request for another host"
                );
                error_page(
                    StatusCode::BAD_REQUEST,
                    "Wrong address",
                    "This Paddock is not served at the address you used. Use its public address.",
                )
            }
        }
        _ => next.run(request).await,
    };
    if settings.hsts {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let through = |name: header::HeaderName, parse: fn(&str) -> Vec<Option<IpAddr>>| {
        let values: Vec<_> = headers.get_all(name).iter().collect();
        if values.is_empty() {
            return None;
        }
        let mut hops = Vec::new();
        for value in values {
            match value.to_str() {
                Ok(text) => hops.extend(parse(text)),
                Err(_) => hops.push(None),
            }
        }
        Some(nearest_untrusted(&hops, trusted))
    };
    let forwarded = through(header::FORWARDED, forwarded_hops);
    let x_forwarded_for = through(
        header::HeaderName::from_static("x-forwarded-for"),
        x_forwarded_for_hops,
    );
    let client = match (forwarded, x_forwarded_for) {
        (Some(one), None) | (None, Some(one)) => one,
        (Some(a), Some(b)) if a == b => a,
        // Disagreeing headers: one of them came from the client; believe neither.
        _ => None,
    };
    client.unwrap_or(peer)
}

/// Walking from our side: the first hop that is not a trusted proxy; the
/// farthest hop when all are trusted; `None` at an unreadable hop.
fn nearest_untrusted(hops: &[Option<IpAddr>], trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut farthest = None;
    for hop in hops.iter().rev() {
        let ip = (*hop)?.to_canonical();
        if !trusted.contains(ip) {
            return Some(ip);
        }
        farthest = Some(ip);
    }
    farthest
}

/// `X-Forwarded-For: client, proxy1, proxy2` (ports and brackets tolerated).
fn x_forwarded_for_hops(value: &str) -> Vec<Option<IpAddr>> {
    value.split(',').map(|hop| node_ip(hop.trim())).collect()
}

/// The `for=` of each element of `Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]:80"`.
fn forwarded_hops(value: &str) -> Vec<Option<IpAddr>> {
    split_outside_quotes(value, ',')
        .into_iter()
        .map(|element| {
            split_outside_quotes(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| node_ip(&unquote(v.trim())?))
        })
        .collect()
}

/// An address with an optional port, IPv6 possibly in brackets; `None` for
/// `unknown`, obfuscated identifiers and anything else.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Splits at `sep` except inside double quotes (with backslash escapes).
fn split_outside_quotes(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A token as is, or a quoted string without its quotes and escapes; `None`
/// for an unterminated quote.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn resolve(peer: &str, trusted: &str, pairs: &[(&str, &str)]) -> IpAddr {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_bytes(value.as_bytes()).expect("value"),
            );
        }
        let trusted = TrustedProxies::parse(trusted).expect("trusted");
        client_address(ip(peer), &headers, &trusted)
    }

    const XFF: &str = "x-forwarded-for";

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        assert_eq!(
            resolve("198.51.100.1", "", &[(XFF, "203.0.113.9")]),
            ip("198.51.100.1")
        );
        assert_eq!(
            resolve(
                "198.51.100.1",
                "10.0.0.0/8",
                &[("forwarded", "for=203.0.113.9")]
            ),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_client_is_the_nearest_hop_that_is_not_a_trusted_proxy() {
        let trusted = "10.0.0.0/8";
        assert_eq!(
            resolve("10.0.0.1", trusted, &[(XFF, "203.0.113.9")]),
            ip("203.0.113.9")
        );
        // A client that writes its own X-Forwarded-For cannot choose its address.
        assert_eq!(
            resolve(
                "10.0.0.1",
                trusted,
                &[(XFF, "1.1.1.1, 203.0.113.9, 10.0.0.7")]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(
                "10.0.0.1",
                trusted,
                &[(XFF, "1.1.1.1"), (XFF, "203.0.113.9")]
            ),
            ip("203.0.113.9"),
            "several header lines form one list"
        );
        assert_eq!(
            resolve("10.0.0.1", trusted, &[(XFF, "10.0.0.9, 10.0.0.8")]),
            ip("10.0.0.9"),
            "all trusted: the farthest"
        );
        assert_eq!(
            resolve("10.0.0.1", trusted, &[(XFF, "203.0.113.9:4711")]),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve("10.0.0.1", trusted, &[(XFF, "[2001:db8::1]:4711")]),
            ip("2001:db8::1")
        );
        assert_eq!(
            resolve("::ffff:10.0.0.1", trusted, &[(XFF, "::ffff:203.0.113.9")]),
            ip("203.0.113.9"),
            "IPv4-mapped addresses are IPv4"
        );
    }

    #[test]
    fn rfc_7239_forwarded_is_read() {
        let trusted = "10.0.0.0/8";
        assert_eq!(
            resolve(
                "10.0.0.1",
                trusted,
                &[(
                    "forwarded",
                    "for=1.1.1.1, For=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1, for=10.0.0.5"
                )]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            resolve(
                "10.0.0.1",
                trusted,
                &[(
                    "forwarded",
                    "proto=https;for=\"203.0.113.9\";host=\"a,b;c\""
                )]
            ),
            ip("203.0.113.9"),
            "separators inside quotes"
        );
    }

    #[test]
    fn unreadable_or_contradicting_headers_fall_back_to_the_peer() {
        let trusted = "10.0.0.0/8";
        for (name, value) in [
            (XFF, "not an address"),
            (XFF, "203.0.113.9, garbage"),
            (XFF, ""),
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", "proto=https"),
            ("forwarded", "for=\"[2001:db8::1]"),
            ("forwarded", "for=\"unterminated"),
            ("forwarded", "===;;;,,,\"\\"),
        ] {
            assert_eq!(
                resolve("10.0.0.1", trusted, &[(name, value)]),
                ip("10.0.0.1"),
                "{name}: {value}"
            );
        }
        assert_eq!(
            resolve(
                "10.0.0.1",
                trusted,
                &[(XFF, "203.0.113.9"), ("forwarded", "for=198.51.100.5")]
            ),
            ip("10.0.0.1"),
            "the two headers disagree"
        );
        assert_eq!(
            resolve(
                "10.0.0.1",
                trusted,
                &[(XFF, "203.0.113.9"), ("forwarded", "for=203.0.113.9")]
            ),
            ip("203.0.113.9"),
            "the two headers agree"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            XFF,
            HeaderValue::from_bytes(b"203.0.113.\xff").expect("opaque bytes"),
        );
        let trusted = TrustedProxies::parse(trusted).expect("trusted");
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.1")
        );
    }
}

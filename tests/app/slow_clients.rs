//! The serving function's limits: slow and hostile clients cannot hold the server.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo, routing::get};
use paddock::server::{self, Limits};
use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::helpers::{Options, TestApp};

/// Limits tight enough for a test to watch them act.
fn tight() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

async fn app_with(limits: Limits) -> TestApp {
    TestApp::spawn_with(Options {
        limits,
        ..Options::default()
    })
    .await
}

/// Reads until the server closes the connection (EOF or reset), at most `bound`;
/// returns what was read and how long it took. Panics if the connection stays open.
async fn read_until_closed(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
    bound: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let read = tokio::time::timeout(
            bound.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        .unwrap_or_else(|_| panic!("the connection was still open after {bound:?}"));
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

/// Writes `bytes` one at a time every 100 ms until the server stops listening.
fn trickle(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    bytes: &'static [u8],
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut sent = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for byte in bytes.iter().cycle() {
            tick.tick().await;
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    })
}

#[tokio::test]
async fn a_client_that_sends_half_a_request_line_and_then_trickles_is_closed_within_the_time_out() {
    let app = app_with(tight()).await;
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"GET /log")
        .await
        .expect("half a request line");
    let writer = trickle(write, b"in");

    let (answer, took) = read_until_closed(&mut read, Duration::from_secs(10)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    let sent = writer.await.expect("writer");
    assert!(sent < 60, "the trickle was cut off after {sent} bytes");

    let page = app.visitor().get("/login").await;
    assert_eq!(page.status, StatusCode::OK, "others are still served");
}

#[tokio::test]
async fn a_form_body_that_trickles_is_answered_408_and_closed() {
    let app = app_with(tight()).await;
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            format!(
                "POST /login HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\nemail=a",
                app.addr
            )
            .as_bytes(),
        )
        .await
        .expect("head");
    let writer = trickle(write, b"aaaa");

    let (answer, took) = read_until_closed(&mut read, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Request timed out"), "{answer}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    let sent = writer.await.expect("writer");
    assert!(sent < 60, "the trickle was cut off after {sent} bytes");
}

#[tokio::test]
async fn seventy_kib_of_headers_get_431() {
    let app = TestApp::spawn().await;
    let filler = "x".repeat(7 * 1024);
    let mut request = format!("GET /login HTTP/1.1\r\nhost: {}\r\n", app.addr);
    for i in 0..10 {
        request.push_str(&format!("x-filler-{i}: {filler}\r\n"));
    }
    request.push_str("\r\n");
    assert!(request.len() > 70 * 1024);
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let reader =
        tokio::spawn(async move { read_until_closed(&mut read, Duration::from_secs(10)).await });
    let _ = write.write_all(request.as_bytes()).await;
    let (answer, _) = reader.await.expect("reader");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    let mut fits = reqwest::header::HeaderMap::new();
    fits.insert("x-filler", filler[..4096].parse().expect("header"));
    let response = reqwest::Client::new()
        .get(app.url("/login"))
        .headers(fits)
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "headers under the cap are fine"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_serving_resumes_when_they_go() {
    let app = app_with(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let first = TcpStream::connect(app.addr).await.expect("first");
    let second = TcpStream::connect(app.addr).await.expect("second");

    let refused = reqwest::Client::new()
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let text = refused.text().await.expect("body");
    assert!(text.contains("Try again in a moment"), "{text}");

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = reqwest::Client::new()
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("answer")
            .status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "a freed slot was never reused");
        tokio::task::yield_now().await;
    }
    drop(second);
}

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins_and_handlers_see_the_peer_address() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let router = {
        let (entered, release) = (entered.clone(), release.clone());
        Router::new().route(
            "/slow",
            get(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    entered.notify_one();
                    release.notified().await;
                    peer.to_string()
                },
            ),
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, router, Limits::default(), async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let request = tokio::spawn(client.get(format!("http://{addr}/slow")).send());
    entered.notified().await;
    stop.send(()).expect("stop");
    release.notify_one();
    let response = request
        .await
        .expect("join")
        .expect("the in-flight request finished");
    assert_eq!(response.status(), StatusCode::OK);
    let peer: SocketAddr = response.text().await.expect("body").parse().expect("peer");
    assert!(
        peer.ip().is_loopback() && peer.port() != addr.port(),
        "{peer}"
    );

    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returned after the last request")
        .expect("join")
        .expect("serve");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

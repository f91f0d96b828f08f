//! The one serving function, used by `paddock serve` and by the tests: HTTP/1.1
//! on a TCP listener, with limits a slow or hostile client cannot outlast.
//!
//! `axum::serve` offers no knobs for these (no header or body time-out, no header
//! size or connection cap), so this drives hyper's HTTP/1 connection directly:
//! hyper's own header read time-out and header size cap (431), a deadline on the
//! request body (408), a connection cap (503 beyond it), the peer address as
//! axum's `ConnectInfo<SocketAddr>`, and graceful shutdown that lets in-flight
//! requests finish.

mod deadline;

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderValue, Request, Response, StatusCode, header},
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tower::ServiceExt;

use deadline::DeadlineBody;

/// How long and how much a client may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request head (or the next one on a kept-alive connection) must arrive
    /// within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// A request body must have fully arrived this long after its head, or the
    /// request is answered 408 and the connection closed.
    pub body_read_timeout: Duration,
    /// Request line plus headers larger than this get 431.
    pub max_header_bytes: usize,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    /// The limits SPEC asks for: 30 s, 30 s, 64 KiB; and 512 connections,
    /// well below the usual soft limit of 1,024 open files, which the pool,
    /// the Alpaca client and the log share.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            max_connections: 512,
        }
    }
}

/// Refusals written at once; beyond this a surplus connection is just closed.
const MAX_REFUSALS: usize = 64;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting
/// and waits for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            handle(router.clone(), request, peer, limits.body_read_timeout)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One request: the peer address for `ConnectInfo`, a deadline on the body, and
/// a 408 page if the body did not arrive in time.
async fn handle(
    router: Router,
    request: Request<Incoming>,
    peer: SocketAddr,
    body_timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let expired = Arc::new(AtomicBool::new(false));
    let mut request =
        request.map(|body| Body::new(DeadlineBody::new(body, body_timeout, expired.clone())));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.oneshot(request).await?;
    if expired.load(Ordering::Acquire) {
        tracing::info!(%peer, "request body did not arrive in time");
        let mut response = crate::error::error_page(
            StatusCode::REQUEST_TIMEOUT,
            "Request timed out",
            "Your browser took too long to send the form, so nothing was changed. Try again.",
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    Ok(response)
}

/// Answers a connection beyond the cap with 503 and closes it, within a second.
/// The request head is read first (a client does not expect an answer before
/// it has asked), and what follows is drained briefly, so that closing does not
/// reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "Paddock is serving as many connections as it can. Try again in a moment.\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await? {
                0 => break,
                n => head.extend_from_slice(&buf[..n]),
            }
        }
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Per-connection errors (the client went away) are normal; anything else, such
/// as running out of file descriptors, is logged and retried after a pause so
/// the loop does not spin.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

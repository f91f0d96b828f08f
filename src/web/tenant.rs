//! The tenant-scoped request transaction and the extractors that hand it out.
//!
//! For every signed-in request, [`require_member`] opens one transaction on the app
//! role whose first statement presents the session's secret to PostgreSQL, which
//! checks it and sets the identity the row-level security policies read; the
//! transaction is shared with the handler through [`Tx`].
//! After the handler it commits if the response is a success or a redirect and rolls
//! back otherwise — handlers never call `commit()`. The pages that mostly wait for
//! Alpaca open no transaction up front ([`require_member_lazily`]).

mod lazy;
mod transaction;

use std::{sync::Arc, time::Duration};

pub use lazy::{Credentials, Page, Shows, require_member_lazily};
pub use transaction::{Released, Tx};

use crate::{
    alpaca,
    db::{
        self,
        events::Origin,
        identity::{Identity, SecondFactors},
        members::Member,
    },
    error::AppError,
    portfolio::cache::AccountCache,
    state::AppState,
    token::Token,
    web::{front::ClientAddr, session::Session},
};
use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Mutex;

type Shared = Arc<Mutex<Option<Transaction<'static, Postgres>>>>;

/// The Alpaca client as the web layer holds it, with the reuse of account reads:
/// handlers reach both only through [`Released`], which exists only while the
/// request holds no transaction (waiting for another view's read is waiting
/// for Alpaca too).
#[derive(Clone)]
pub struct AlpacaGate {
    client: alpaca::Client,
    accounts: AccountCache,
}

impl AlpacaGate {
    /// Wraps the one shared client; account reads are reused for `reuse`
    /// (`PADDOCK_ALPACA_CACHE_SECS`; zero: never, and never shared).
    pub fn new(client: alpaca::Client, reuse: Duration) -> Self {
        Self {
            client,
            accounts: AccountCache::new(reuse),
        }
    }

    /// Whether account reads are reused (and shared) at all.
    pub fn reuses(&self) -> bool {
        self.accounts.reuses()
    }
}

/// What a request needs to open tenant transactions again after an outside call.
#[derive(Clone)]
struct Tenant {
    shared: Shared,
    pool: PgPool,
    token: Token,
    alpaca: AlpacaGate,
}

/// The page context every signed-in handler gets: who is asking (as the database
/// vouched for them), the CSRF token, and where the request came from.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub member: Member,
    pub csrf: String,
    pub origin: Origin,
    /// The session's public id (never the cookie value).
    pub session_id: uuid::Uuid,
    /// When this session last proved who it is.
    pub authenticated_at: time::OffsetDateTime,
    /// The member's second factors and the organization's policy.
    pub second_factors: SecondFactors,
    /// This page's path and query, for "Confirm it's you" links that come back.
    pub path: String,
}

/// How long a sign-in counts as recent for actions that need one (step-up).
pub const STEP_UP_WINDOW: time::Duration = time::Duration::minutes(10);

impl Ctx {
    /// Whether this session proved who it is within the step-up window.
    pub fn fresh(&self) -> bool {
        time::OffsetDateTime::now_utc() - self.authenticated_at < STEP_UP_WINDOW
    }

    /// Refuses an action that needs a recent sign-in when this one is older:
    /// the caller answers 303 to `/reauth?next=<back>` with nothing changed.
    pub fn step_up(&self, back: &str) -> Result<(), AppError> {
        if self.fresh() {
            Ok(())
        } else {
            Err(AppError::StepUp(back.to_owned()))
        }
    }

    /// The "Confirm it's you" link that comes back to this page.
    pub fn reauth_link(&self) -> String {
        format!(
            "/reauth?next={}",
            form_urlencoded::byte_serialize(self.path.as_bytes()).collect::<String>()
        )
    }

    /// Whether the member is an owner of the organization.
    pub fn is_owner(&self) -> bool {
        self.member.role == crate::domain::Role::Owner
    }
}

/// Paths a member who must still set up a second factor may reach.
fn allowed_before_second_factor(path: &str) -> bool {
    path == "/settings/totp" || path.starts_with("/settings/passkeys") || path == "/logout"
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("route lacks the tenant layer")))
    }
}

/// Where the request came from, for the security log: the client's address
/// (resolved behind trusted proxies, see `web::front`) and its user agent.
pub fn origin_of(
    parts_headers: &axum::http::HeaderMap,
    client: Option<std::net::IpAddr>,
) -> Origin {
    Origin {
        ip: client.map(|ip| ip.to_string()),
        user_agent: parts_headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
    }
}

/// Extractor for the request's [`Origin`] on public routes.
pub struct ClientOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for ClientOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client = match parts.extensions.get::<ClientAddr>() {
            Some(ClientAddr(ip)) => Some(*ip),
            None => parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_canonical()),
        };
        Ok(Self(origin_of(&parts.headers, client)))
    }
}

/// Signed-out requests go to `/login`; signed-in ones get the tenant transaction,
/// which the database opened only after checking the session's secret.
pub async fn require_member(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(token) = session.presented() else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some((tx, identity)) = db::identity::begin_request(&state.pool, &token).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let vouched = Vouched {
        token,
        identity,
        origin,
    };
    serve_member(&state, &session, vouched, Some(tx), request, next).await
}

/// A member the database has just vouched for, and where the request came from.
struct Vouched {
    token: Token,
    identity: Identity,
    origin: Origin,
}

/// Runs the handler for a vouched member with the request's transaction, if one
/// is open yet; afterwards commits whatever transaction is open if the response
/// is a success or a redirect, and rolls it back otherwise.
async fn serve_member(
    state: &AppState,
    session: &Session,
    vouched: Vouched,
    tx: Option<Transaction<'static, Postgres>>,
    mut request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Vouched {
        token,
        identity,
        origin,
    } = vouched;
    tracing::Span::current().record("member_id", tracing::field::display(identity.member.id));
    if identity.second_factors.missing() && !allowed_before_second_factor(request.uri().path()) {
        // The organization requires a second factor: set one up before anything else.
        return Ok(Redirect::to("/settings/totp").into_response());
    }
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let shared: Shared = Arc::new(Mutex::new(tx));
    request.extensions_mut().insert(Tenant {
        shared: shared.clone(),
        pool: state.pool.clone(),
        token,
        alpaca: state.alpaca.clone(),
    });
    request.extensions_mut().insert(Ctx {
        member: identity.member,
        csrf: session.csrf(),
        origin,
        session_id: identity.session_id,
        authenticated_at: identity.authenticated_at,
        second_factors: identity.second_factors,
        path,
    });

    let response = next.run(request).await;

    let tx = shared.lock().await.take();
    if let Some(tx) = tx {
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
    }
    Ok(response)
}

//! Pages that mostly wait for Alpaca (the portfolio, an account) open no
//! transaction: one statement checks the session, reads the credentials the
//! page shows and — when every view calls Alpaca (`PADDOCK_ALPACA_CACHE_SECS=0`)
//! — records their uses, committed before any key is used. With reuse on, the
//! page cannot know yet which keys it will need: it records the uses of the
//! accounts no recent read serves in one more statement, and a page served
//! from the cache costs one statement in all.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Path, Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use super::{ClientOrigin, Vouched, serve_member};
use crate::{
    alpaca::ApiKeys,
    db::{
        self,
        credentials::Credential,
        request::{KeyUses, Reads},
    },
    domain::CredentialId,
    error::AppError,
    seal::Sealer,
    state::AppState,
    vault::{self, Purpose},
    web::session::Session,
};

/// Which credentials a page shows.
#[derive(Clone, Copy, Debug)]
pub enum Shows {
    /// All the member's (`/portfolio`).
    All,
    /// The one named by the path's `{id}` (`/accounts/{id}`).
    OneInPath,
}

/// The state of [`require_member_lazily`] on one route.
#[derive(Clone)]
pub struct Page {
    state: AppState,
    shows: Shows,
}

impl Page {
    /// A route whose page shows `shows`.
    pub fn new(state: &AppState, shows: Shows) -> Self {
        Self {
            state: state.clone(),
            shows,
        }
    }
}

/// The credentials the page shows, oldest first, as the request's statement
/// read them (row-level security applied). Handlers on these routes take
/// [`super::Released`], not `Tx`.
#[derive(Clone)]
pub struct Credentials {
    list: Arc<[Credential]>,
    /// Whether that statement also recorded one use of each.
    recorded: bool,
}

impl Credentials {
    /// All of them.
    pub fn list(&self) -> &[Credential] {
        &self.list
    }

    /// One of them by its URL id; unknown and other members' ids are the same 404.
    pub fn own(&self, id: CredentialId) -> Result<&Credential, AppError> {
        self.list
            .iter()
            .find(|c| c.id == id)
            .ok_or(AppError::NotFound)
    }

    /// Their keys, in order, when the request's statement recorded their uses
    /// (`None` where they do not open); `None` when it did not.
    pub fn unseal_recorded(&self, sealer: &dyn Sealer) -> Option<Vec<Option<ApiKeys>>> {
        if !self.recorded {
            return None;
        }
        let all: Vec<&Credential> = self.list.iter().collect();
        let unsealed = vault::unseal(sealer, &all);
        let recorded = unsealed.to_record();
        Some(unsealed.recorded(&recorded))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Credentials>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("route lacks the lazy tenant layer")))
    }
}

/// Like [`super::require_member`], without a transaction: one statement checks
/// the session, reads what the page shows and, when every view calls Alpaca,
/// records the uses.
pub async fn require_member_lazily(
    State(page): State<Page>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(token) = session.presented() else {
        return Ok(Redirect::to("/login").into_response());
    };
    let (mut parts, body) = request.into_parts();
    let only: Option<Vec<CredentialId>> = match page.shows {
        Shows::All => None,
        Shows::OneInPath => Some(
            Path::<CredentialId>::from_request_parts(&mut parts, &())
                .await
                .map(|Path(id)| vec![id])
                .unwrap_or_default(),
        ),
    };
    let request = Request::from_parts(parts, body);
    let every_view_calls_alpaca = !page.state.alpaca.reuses();
    let reads = Reads {
        credentials: only.as_deref(),
        uses: every_view_calls_alpaca.then_some(KeyUses {
            purpose: Purpose::Portfolio.as_str(),
            changes: false,
            origin: &origin,
        }),
    };
    let mut conn = page.state.pool.acquire().await?;
    let opened = db::request::open(&mut conn, &token, &reads).await?;
    drop(conn);
    let Some(opened) = opened else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut request = request;
    request.extensions_mut().insert(Credentials {
        list: opened.credentials.into(),
        recorded: every_view_calls_alpaca,
    });
    let vouched = Vouched {
        token,
        identity: opened.identity,
        origin,
    };
    serve_member(&page.state, &session, vouched, None, request, next).await
}

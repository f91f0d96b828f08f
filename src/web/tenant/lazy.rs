//! Pages that mostly wait for Alpaca (the portfolio, an account) open no
//! transaction up front: one statement checks the session and reads the
//! member's credentials, and the handler records its key uses — when it needs
//! keys at all — in one more statement of its own, committed before any key is
//! used. A page whose accounts come from the cache costs one statement.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use super::{ClientOrigin, Vouched, serve_member};
use crate::{
    db::{self, credentials::Credential},
    domain::CredentialId,
    error::AppError,
    state::AppState,
    web::session::Session,
};

/// The member's credentials, oldest first, as the request's first statement
/// read them (row-level security applied). Handlers on these routes take
/// [`super::Released`], not `Tx`.
#[derive(Clone)]
pub struct Credentials(pub Arc<[Credential]>);

impl Credentials {
    /// One of them by its URL id; unknown and other members' ids are the same 404.
    pub fn own(&self, id: CredentialId) -> Result<&Credential, AppError> {
        self.0.iter().find(|c| c.id == id).ok_or(AppError::NotFound)
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

/// Like [`super::require_member`], without opening a transaction: the session
/// check and the member's credentials come back in one statement.
pub async fn require_member_lazily(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    mut request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(token) = session.presented() else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(opened) = db::request::open(&state.pool, &token, true).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    request
        .extensions_mut()
        .insert(Credentials(opened.credentials.into()));
    let vouched = Vouched {
        token,
        identity: opened.identity,
        origin,
    };
    serve_member(&state, &session, vouched, None, request, next).await
}

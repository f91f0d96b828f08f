//! Extractors whose rejections are our own pages: a malformed id in a URL is the
//! same 404 as another member's, and a form that cannot be read gets a plain 400
//! page rather than axum's text.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::FormRejection},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Typed path parameters (`Path<CredentialId>`); anything that does not parse is 404.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| AppError::NotFound)
    }
}

/// A URL-encoded form body; a wrong content type or an unreadable body is our 400 page.
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        axum::Form::<T>::from_request(request, state)
            .await
            .map(|axum::Form(value)| Self(value))
            .map_err(|e: FormRejection| {
                tracing::info!(reason = %e.body_text(), "refused an unreadable form");
                AppError::BadRequest
            })
    }
}

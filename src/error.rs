//! One error type for handlers: causes are logged, people see a plain page.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// Something went wrong while handling a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Unknown route, or a resource that is not the member's: the same page either way.
    #[error("not found")]
    NotFound,
    /// A POST without a valid CSRF token, or from another site.
    #[error("forbidden")]
    Forbidden,
    /// The session ended mid-request (e.g. signed out elsewhere): sign in again.
    #[error("signed out")]
    SignedOut,
    /// The action needs a sign-in within the last 10 minutes: confirm it's you,
    /// then come back to this local path.
    #[error("step-up needed")]
    StepUp(String),
    /// An owner-only action asked for by a plain member.
    #[error("owners only")]
    OwnersOnly,
    /// A request whose form or query could not be read at all.
    #[error("bad request")]
    BadRequest,
    /// Too much password hashing at once; try again shortly.
    #[error("busy")]
    Busy,
    /// The database is unreachable or overloaded.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if database_unavailable(&e) {
            Self::Unavailable(e.into())
        } else {
            Self::Internal(e.into())
        }
    }
}

/// Whether a database error means "cannot serve right now" rather than a bug.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (08), insufficient resources (53), operator
        // intervention such as a restart (57), a database refusing connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || c.starts_with("53") || c.starts_with("57") || c == "55000"
        }),
        _ => false,
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        let unavailable = e.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(database_unavailable)
        });
        if unavailable {
            Self::Unavailable(e)
        } else {
            Self::Internal(e)
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(e.into())
    }
}

/// The plain error page.
#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: &'static str,
}

/// Renders the error page with `status`.
pub fn error_page(status: StatusCode, title: &'static str, message: &'static str) -> Response {
    (status, ErrorPage { title, message }).into_response()
}

/// The 404 page, identical for unknown routes and for other members' resources.
pub fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here. Check the address, or go back to your portfolio.",
    )
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => not_found(),
            Self::Forbidden => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was expired or sent from another site, so nothing was changed. Go back, reload the page and try again.",
            ),
            Self::SignedOut => axum::response::Redirect::to("/login").into_response(),
            Self::StepUp(next) => axum::response::Redirect::to(&format!(
                "/reauth?next={}",
                form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .into_response(),
            Self::OwnersOnly => error_page(
                StatusCode::FORBIDDEN,
                "Owners only",
                "Only an owner of this organization can do that, so nothing was changed.",
            ),
            Self::BadRequest => error_page(
                StatusCode::BAD_REQUEST,
                "Form not understood",
                "Paddock could not read what this form sent, so nothing was changed. Go back, reload the page and try again.",
            ),
            Self::Busy => {
                let mut response = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Busy",
                    "Paddock is busy signing people in. Nothing was changed; try again in a few seconds.",
                );
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                );
                response
            }
            Self::Unavailable(cause) => {
                tracing::error!(error = format!("{cause:#}"), "database unavailable");
                error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Paddock cannot reach its database right now. Nothing was changed; try again in a moment.",
                )
            }
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Paddock hit an unexpected problem and nothing was changed. Try again; if it keeps happening, tell your organization's owner.",
                )
            }
        }
    }
}

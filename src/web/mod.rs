//! The HTTP layer: one route table, the layers around it, and the handlers.

mod accounts;
mod activity;
mod assets;
mod auth;
mod cancels;
mod confirm;
mod credentials;
mod csrf;
mod extract;
mod forms;
pub mod front;
mod history;
mod orders;
mod org;
mod passkeys;
mod portfolio;
mod positions;
mod reads;
mod reauth;
mod reset;
mod second_factor;
pub mod service;
pub mod session;
mod settings;
pub mod tenant;
mod trading_views;
mod views;

use std::time::Duration;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::{error, state::AppState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = session::COOKIE;

/// Scripts only from our own `static/paddock.js` (passkeys), which fetches only
/// from us; no inline script or handlers anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Builds the whole application: the same function serves the binary and the tests.
pub fn router(state: AppState) -> Router {
    // Pages that mostly wait for Alpaca: no transaction, one statement for the
    // session, the credentials shown and (when every view calls Alpaca) their uses.
    let lazily = |shows| {
        from_fn_with_state(
            tenant::Page::new(&state, shows),
            tenant::require_member_lazily,
        )
    };
    let members_waiting_for_alpaca = Router::new()
        .route(
            "/portfolio",
            get(portfolio::show).route_layer(lazily(tenant::Shows::All)),
        )
        .route(
            "/accounts/{id}",
            get(accounts::show).route_layer(lazily(tenant::Shows::OneInPath)),
        );

    let members_only = Router::new()
        .route("/accounts/{id}/orders", post(orders::place))
        .route(
            "/accounts/{id}/orders/{order_id}/cancel",
            post(cancels::cancel),
        )
        .route(
            "/accounts/{id}/orders/cancel-all",
            get(cancels::cancel_all_form).post(cancels::cancel_all),
        )
        .route(
            "/accounts/{id}/positions/{symbol}/close",
            get(positions::close_form).post(positions::close),
        )
        .route(
            "/accounts/{id}/positions/close-all",
            get(positions::close_all_form).post(positions::close_all),
        )
        .route("/accounts/{id}/history", get(history::index))
        .route("/accounts/{id}/history.csv", get(history::csv))
        .route(
            "/credentials",
            get(credentials::index).post(credentials::create),
        )
        .route("/credentials/new", get(credentials::new))
        .route(
            "/credentials/{id}/rotate",
            get(credentials::rotate_form).post(credentials::rotate),
        )
        .route("/credentials/{id}/delete", post(credentials::delete))
        .route("/activity", get(activity::index))
        .route("/org", get(org::show))
        .route("/org/invites", post(org::create_invite))
        .route("/org/members/{id}/remove", post(org::remove))
        .route("/org/members/{id}/reset-link", post(org::reset_link))
        .route("/org/members/{id}/role", post(org::set_role))
        .route("/org/policy", post(org::set_policy))
        .route("/settings", get(settings::show))
        .route("/settings/password", post(settings::change_password))
        .route(
            "/settings/totp",
            get(settings::totp::show).post(settings::totp::enable),
        )
        .route("/settings/totp/disable", post(settings::totp::disable))
        .route("/settings/recovery-codes", post(settings::totp::regenerate))
        .route("/settings/passkeys", post(settings::passkeys::add))
        .route(
            "/settings/passkeys/options",
            post(settings::passkeys::options),
        )
        .route(
            "/settings/passkeys/{id}/remove",
            post(settings::passkeys::remove),
        )
        .route("/settings/sessions/{id}/revoke", post(settings::revoke))
        .route(
            "/settings/sessions/revoke-others",
            post(settings::revoke_others),
        )
        .route("/reauth", get(reauth::show).post(reauth::confirm))
        .route("/reauth/passkey", post(reauth::passkey))
        .route("/reauth/passkey/options", post(reauth::passkey_options))
        .route("/logout", post(auth::logout))
        .route_layer(from_fn_with_state(state.clone(), tenant::require_member))
        .merge(members_waiting_for_alpaca);

    let pages = Router::new()
        .route("/", get(root))
        .route("/signup", get(auth::signup_form).post(auth::signup))
        .route("/login", get(auth::login_form).post(auth::login))
        .route(
            "/login/2fa",
            get(second_factor::show).post(second_factor::verify),
        )
        .route("/login/2fa/passkey", post(second_factor::passkey))
        .route(
            "/login/2fa/passkey/options",
            post(second_factor::passkey_options),
        )
        .route("/reset/{code}", get(reset::show).post(reset::set))
        .merge(members_only)
        .layer(from_fn_with_state(state.clone(), csrf::guard))
        .layer(from_fn_with_state(state.clone(), session::layer));

    // No cookies on these: static files are cached, and probes have no session.
    let infrastructure = Router::new()
        .route("/healthz", get(healthz))
        .route("/static/{file}", get(assets::serve));

    let request_id = HeaderName::from_static("x-request-id");
    pages
        .merge(infrastructure)
        .fallback(|| async { error::not_found() })
        .layer(panic_guard())
        .layer(from_fn_with_state(state.clone(), front::guard))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let path = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %request.method(), path, request_id = id, member_id = tracing::field::Empty)
            }),
        )
        .layer(from_fn(crate::metrics::track))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .with_state(state)
}

/// Turns a handler panic into the plain 500 page; the server keeps serving.
fn panic_guard() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    CatchPanicLayer::custom(|_| internal_error_page())
}

fn internal_error_page() -> Response {
    error::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Paddock hit an unexpected problem and nothing was changed. Try again; if it keeps happening, tell your organization's owner.",
    )
}

async fn root(
    State(state): State<AppState>,
    session: session::Session,
) -> Result<Redirect, error::AppError> {
    let signed_in = match session.presented() {
        Some(token) => crate::db::identity::is_signed_in(&state.pool, &token).await?,
        None => false,
    };
    Ok(Redirect::to(if signed_in {
        "/portfolio"
    } else {
        "/login"
    }))
}

async fn healthz(State(state): State<AppState>) -> Response {
    let probe = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.pool),
    )
    .await;
    match probe {
        Ok(Ok(1)) => (StatusCode::OK, "ok").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_gets_a_plain_500_and_the_router_keeps_serving() {
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    let secret_detail = "internal detail";
                    panic!("{secret_detail}");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .layer(panic_guard());
        let request = |path: &str| {
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request")
        };
        let response = app
            .clone()
            .oneshot(request("/boom"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("Something went wrong"));
        assert!(!body.contains("internal detail") && !body.contains("panicked"));
        let response = app.oneshot(request("/fine")).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

//! Static files, compiled into the binary and cached for a year.

use axum::{
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

const FILES: &[(&str, &str, &str)] = &[
    (
        "paddock.css",
        "text/css; charset=utf-8",
        include_str!("../../static/paddock.css"),
    ),
    (
        "paddock.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/paddock.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => crate::error::not_found(),
    }
}

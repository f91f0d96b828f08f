//! The member's own security events: newest first, a page at a time, all kinds
//! or one.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::RawQuery,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{
    db::events::{self, Cursor, EventKind},
    error::{self, AppError},
    web::{
        forms::when,
        tenant::{Ctx, Tx},
    },
};

/// Events per page.
pub const PAGE_SIZE: i64 = 50;

struct EventView {
    when: String,
    event: &'static str,
    detail: String,
    ip: String,
}

struct KindOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "activity/index.html")]
pub struct ActivityPage {
    ctx: Ctx,
    events: Vec<EventView>,
    kinds: Vec<KindOption>,
    filtered: bool,
    paged: bool,
    newest: String,
    older: Option<String>,
}

/// What the query string asks for.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    kind: Option<EventKind>,
    before: Option<Cursor>,
}

impl Filter {
    /// `kind` (empty: all) and `before` (a cursor); other parameters are
    /// ignored, and a value that is not one of ours is an error.
    fn parse(query: &str) -> Option<Self> {
        let mut filter = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "kind" if value.is_empty() => filter.kind = None,
                "kind" => filter.kind = Some(EventKind::parse(&value)?),
                "before" => filter.before = Some(Cursor::parse(&value)?),
                _ => {}
            }
        }
        Some(filter)
    }

    /// `/activity` with this kind, starting below `before`.
    fn href(kind: Option<EventKind>, before: Option<Cursor>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(kind) = kind {
            query.append_pair("kind", kind.as_str());
        }
        if let Some(before) = before {
            query.append_pair("before", &before.encode());
        }
        match query.finish() {
            q if q.is_empty() => "/activity".to_owned(),
            q => format!("/activity?{q}"),
        }
    }
}

/// `GET /activity[?kind=…][&before=…]`.
pub async fn index(ctx: Ctx, mut tx: Tx, RawQuery(query): RawQuery) -> Result<Response, AppError> {
    let Some(filter) = Filter::parse(query.as_deref().unwrap_or("")) else {
        return Ok(error::error_page(
            StatusCode::BAD_REQUEST,
            "No such list of events",
            "That address asks for events in a way Paddock does not know. Go back to Activity and choose a filter there.",
        ));
    };
    let page = events::page(&mut tx, filter.kind, filter.before, PAGE_SIZE).await?;
    let events = page
        .events
        .into_iter()
        .map(|e| EventView {
            when: when(e.at),
            event: e.kind_label,
            detail: e.detail,
            ip: e.ip,
        })
        .collect();
    let kinds = EventKind::ALL
        .iter()
        .copied()
        .map(|k| KindOption {
            value: k.as_str(),
            label: k.label(),
            selected: filter.kind == Some(k),
        })
        .collect();
    Ok(ActivityPage {
        ctx,
        events,
        kinds,
        filtered: filter.kind.is_some(),
        paged: filter.before.is_some(),
        newest: Filter::href(filter.kind, None),
        older: page.older.map(|c| Filter::href(filter.kind, Some(c))),
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_back_from_the_links_they_make() {
        let cursor = Cursor::parse("1767225600000001_7").expect("cursor");
        let href = Filter::href(Some(EventKind::CredentialUsed), Some(cursor));
        let query = href.split_once('?').expect("query").1;
        assert_eq!(
            Filter::parse(query),
            Some(Filter {
                kind: Some(EventKind::CredentialUsed),
                before: Some(cursor)
            })
        );
        assert_eq!(Filter::href(None, None), "/activity");
    }

    #[test]
    fn empty_kind_means_all_and_unknown_values_are_refused() {
        assert_eq!(Filter::parse("kind="), Some(Filter::default()));
        assert_eq!(Filter::parse("utm_source=x"), Some(Filter::default()));
        assert_eq!(Filter::parse("kind=drop+table"), None);
        assert_eq!(Filter::parse("before=yesterday"), None);
        assert_eq!(Filter::parse("before=%FF%FE"), None);
    }
}

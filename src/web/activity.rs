//! The member's own security events.

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    db,
    error::AppError,
    web::{
        forms::when,
        tenant::{Ctx, Tx},
    },
};

struct EventView {
    when: String,
    event: &'static str,
    detail: String,
    ip: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "activity/index.html")]
pub struct ActivityPage {
    ctx: Ctx,
    events: Vec<EventView>,
}

/// `GET /activity`: the newest 200 events.
pub async fn index(ctx: Ctx, mut tx: Tx) -> Result<ActivityPage, AppError> {
    let events = db::events::recent(&mut tx, 200)
        .await?
        .into_iter()
        .map(|e| EventView {
            when: when(e.at),
            event: e.kind_label,
            detail: e.detail,
            ip: e.ip,
        })
        .collect();
    Ok(ActivityPage { ctx, events })
}

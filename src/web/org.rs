//! The organization page: members, and single-use invites for owners.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Response};

use crate::{
    db::{self, events::EventKind},
    domain::Role,
    error::AppError,
    token::Token,
    web::{
        forms::when,
        tenant::{Ctx, Tx},
    },
};

struct MemberView {
    email: String,
    role: &'static str,
    joined: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "org/show.html")]
struct OrgPage {
    ctx: Ctx,
    members: Vec<MemberView>,
    is_owner: bool,
    new_invite: Option<String>,
}

/// `GET /org`.
pub async fn show(ctx: Ctx, mut tx: Tx) -> Result<Response, AppError> {
    page(ctx, &mut tx, None).await
}

async fn page(ctx: Ctx, tx: &mut Tx, new_invite: Option<String>) -> Result<Response, AppError> {
    let members = db::members::list(tx)
        .await?
        .into_iter()
        .map(|m| MemberView {
            email: m.email,
            role: m.role.label(),
            joined: when(m.joined),
        })
        .collect();
    Ok(OrgPage {
        is_owner: ctx.member.role == Role::Owner,
        ctx,
        members,
        new_invite,
    }
    .into_response())
}

/// `POST /org/invites`: owners only. The code is shown on this response, once;
/// only its hash is stored, and it is kept nowhere else.
pub async fn create_invite(ctx: Ctx, mut tx: Tx) -> Result<Response, AppError> {
    if ctx.member.role != Role::Owner {
        return Err(AppError::OwnersOnly);
    }
    let code = Token::generate()?.expose_text();
    let expires = db::invites::create(&mut tx, &db::invites::code_hash(&code)?).await?;
    db::events::record(
        &mut tx,
        EventKind::InviteCreated,
        &format!("expires {}", when(expires)),
        &ctx.origin,
    )
    .await?;
    page(ctx, &mut tx, Some(code)).await
}

//! The organization page: members, and single-use invites for owners.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::{
    db::{self, events::EventKind},
    domain::Role,
    error::AppError,
    web::{
        auth::invite_hash,
        forms::when,
        session::{self, Once},
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
pub async fn show(ctx: Ctx, mut tx: Tx, session: Session) -> Result<Response, AppError> {
    let members = db::members::list(&mut tx)
        .await?
        .into_iter()
        .map(|m| MemberView {
            email: m.email,
            role: m.role.label(),
            joined: when(m.joined),
        })
        .collect();
    let new_invite = session::take_once(&session, Once::NewInvite).await?;
    Ok(OrgPage {
        is_owner: ctx.member.role == Role::Owner,
        ctx,
        members,
        new_invite,
    }
    .into_response())
}

/// `POST /org/invites`: owners only; the code is shown once on the next page.
pub async fn create_invite(ctx: Ctx, mut tx: Tx, session: Session) -> Result<Response, AppError> {
    if ctx.member.role != Role::Owner {
        return Err(AppError::NotFound);
    }
    let code = session::random_token(16)?;
    let expires = db::invites::create(&mut tx, &invite_hash(&code)?).await?;
    db::events::record(
        &mut tx,
        EventKind::InviteCreated,
        &format!("expires {}", when(expires)),
        &ctx.origin,
    )
    .await?;
    session::set_once(&session, Once::NewInvite, &code).await?;
    Ok(Redirect::to("/org").into_response())
}

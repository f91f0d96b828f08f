//! The organization page: members, and for owners invites, roles, reset links,
//! removal and the two-factor policy — each owner action after a recent sign-in.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    db::{self, account::RoleChange, events::EventKind},
    domain::{MemberId, Role},
    error::AppError,
    token::Token,
    web::{
        extract::{Form, Path},
        forms::when,
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
    },
};

struct MemberView {
    id: String,
    email: String,
    role: &'static str,
    joined: String,
    owner: bool,
    me: bool,
}

/// A reset link, shown once.
struct ResetLinkView {
    email: String,
    url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "org/show.html")]
struct OrgPage {
    ctx: Ctx,
    members: Vec<MemberView>,
    owner_actions: bool,
    status: Option<String>,
    alert: Option<String>,
    new_invite: Option<String>,
    reset_link: Option<ResetLinkView>,
}

impl OrgPage {
    async fn load(ctx: Ctx, tx: &mut Tx) -> Result<Self, AppError> {
        let members = db::members::list(tx)
            .await?
            .into_iter()
            .map(|m| MemberView {
                id: m.id.to_string(),
                me: m.id == ctx.member.id,
                owner: m.role == Role::Owner,
                email: m.email,
                role: m.role.label(),
                joined: when(m.joined),
            })
            .collect();
        Ok(Self {
            owner_actions: ctx.is_owner() && ctx.fresh(),
            ctx,
            members,
            status: None,
            alert: None,
            new_invite: None,
            reset_link: None,
        })
    }
}

/// `GET /org`.
pub async fn show(ctx: Ctx, mut tx: Tx, session: Session) -> Result<Response, AppError> {
    let mut page = OrgPage::load(ctx, &mut tx).await?;
    page.status = session::take_once(&session, Once::Status);
    page.alert = session::take_once(&session, Once::Alert);
    Ok(page.into_response())
}

/// Owners only, and after a recent sign-in: the gate of every owner action.
fn owner_action(ctx: &Ctx) -> Result<(), AppError> {
    if !ctx.is_owner() {
        return Err(AppError::OwnersOnly);
    }
    ctx.step_up("/org")
}

/// `POST /org/invites`: the code is shown on this response, once; only its hash
/// is stored, and it is kept nowhere else.
pub async fn create_invite(ctx: Ctx, mut tx: Tx) -> Result<Response, AppError> {
    owner_action(&ctx)?;
    let code = Token::generate()?.expose_text();
    let expires = db::invites::create(&mut tx, &db::invites::code_hash(&code)?).await?;
    db::events::record(
        &mut tx,
        EventKind::InviteCreated,
        &format!("expires {}", when(expires)),
        &ctx.origin,
    )
    .await?;
    let mut page = OrgPage::load(ctx, &mut tx).await?;
    page.new_invite = Some(code);
    Ok(page.into_response())
}

/// `POST /org/members/{id}/remove`: their sessions end, their credentials and
/// second factors are deleted, they can no longer sign in; their events stay.
pub async fn remove(
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(member): Path<MemberId>,
) -> Result<Response, AppError> {
    owner_action(&ctx)?;
    if member == ctx.member.id {
        session::set_once(&session, Once::Alert, "You cannot remove yourself.");
        return Ok(Redirect::to("/org").into_response());
    }
    if !db::account::remove_member(&mut tx, member, &ctx.origin).await? {
        return Err(AppError::NotFound);
    }
    session::set_once(
        &session,
        Once::Status,
        "The member was removed: signed out everywhere, their keys deleted.",
    );
    Ok(Redirect::to("/org").into_response())
}

/// `POST /org/members/{id}/reset-link`: a single-use link, valid one hour,
/// shown on this response once.
pub async fn reset_link(
    ctx: Ctx,
    mut tx: Tx,
    Path(member): Path<MemberId>,
) -> Result<Response, AppError> {
    owner_action(&ctx)?;
    let code = Token::generate()?;
    let hash = code.sha256();
    if !db::account::create_reset_link(&mut tx, member, &hash, &ctx.origin).await? {
        return Err(AppError::NotFound);
    }
    let mut page = OrgPage::load(ctx, &mut tx).await?;
    let email = page
        .members
        .iter()
        .find(|m| m.id == member.to_string())
        .map(|m| m.email.clone())
        .unwrap_or_default();
    page.reset_link = Some(ResetLinkView {
        email,
        url: format!("/reset/{}", code.expose_text()),
    });
    Ok(page.into_response())
}

/// The role form as posted.
#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /org/members/{id}/role`: make owner / make member; one owner at least.
pub async fn set_role(
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(member): Path<MemberId>,
    Form(form): Form<RoleForm>,
) -> Result<Response, AppError> {
    owner_action(&ctx)?;
    let Some(role) = Role::parse(&form.role) else {
        return Err(AppError::BadRequest);
    };
    match db::account::set_role(&mut tx, member, role, &ctx.origin).await? {
        RoleChange::Done => {
            session::set_once(&session, Once::Status, "The role was changed.");
            Ok(Redirect::to("/org").into_response())
        }
        RoleChange::Unchanged => Ok(Redirect::to("/org").into_response()),
        RoleChange::LastOwner => {
            let mut page = OrgPage::load(ctx, &mut tx).await?;
            page.alert = Some(
                "An organization needs at least one owner: make someone else an owner first."
                    .into(),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// The policy form as posted.
#[derive(Deserialize)]
pub struct PolicyForm {
    require_two_factor: Option<String>,
}

/// `POST /org/policy`: "Require two-factor authentication".
pub async fn set_policy(
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Form(form): Form<PolicyForm>,
) -> Result<Response, AppError> {
    owner_action(&ctx)?;
    let require = form.require_two_factor.is_some();
    db::account::set_policy(&mut tx, require, &ctx.origin).await?;
    session::set_once(
        &session,
        Once::Status,
        if require {
            "Two-factor authentication is now required in this organization."
        } else {
            "Two-factor authentication is now optional in this organization."
        },
    );
    Ok(Redirect::to("/org").into_response())
}

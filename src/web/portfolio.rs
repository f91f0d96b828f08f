//! The portfolio across all of the member's accounts.

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    error::AppError,
    web::tenant::{Ctx, Tx},
};

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/empty.html")]
pub struct EmptyPortfolio {
    ctx: Ctx,
}

/// `GET /portfolio`.
pub async fn show(ctx: Ctx, _tx: Tx) -> Result<EmptyPortfolio, AppError> {
    Ok(EmptyPortfolio { ctx })
}

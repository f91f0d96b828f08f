//! The typed session: who is signed in, since when, and the CSRF token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use time::{Duration, OffsetDateTime};
use tower_sessions::Session;

use crate::domain::{MemberId, OrganizationId};

const MEMBER: &str = "member_id";
const ORGANIZATION: &str = "organization_id";
const SIGNED_IN_AT: &str = "signed_in_at";
const CSRF: &str = "csrf_token";

/// Sessions end this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// Sessions end after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);

/// A fresh random token, URL-safe.
pub fn random_token(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    orion::util::secure_rand_bytes(&mut buf)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> anyhow::Result<String> {
    if let Some(token) = session.get::<String>(CSRF).await? {
        return Ok(token);
    }
    let token = random_token(32)?;
    session.insert(CSRF, &token).await?;
    Ok(token)
}

/// Whether `candidate` is this session's CSRF token (constant-time comparison).
pub async fn csrf_matches(session: &Session, candidate: &str) -> bool {
    match session.get::<String>(CSRF).await {
        Ok(Some(expected)) => {
            orion::util::secure_cmp(expected.as_bytes(), candidate.as_bytes()).is_ok()
        }
        _ => false,
    }
}

/// Starts a signed-in session under a new id, with a new CSRF token.
pub async fn sign_in(
    session: &Session,
    member: MemberId,
    organization: OrganizationId,
) -> anyhow::Result<()> {
    session.cycle_id().await?;
    session.clear().await;
    session.insert(MEMBER, member).await?;
    session.insert(ORGANIZATION, organization).await?;
    session
        .insert(SIGNED_IN_AT, OffsetDateTime::now_utc().unix_timestamp())
        .await?;
    session.insert(CSRF, random_token(32)?).await?;
    Ok(())
}

/// The signed-in member, if any and within the absolute timeout.
pub async fn signed_in(session: &Session) -> anyhow::Result<Option<(MemberId, OrganizationId)>> {
    let (Some(member), Some(organization), Some(at)) = (
        session.get::<MemberId>(MEMBER).await?,
        session.get::<OrganizationId>(ORGANIZATION).await?,
        session.get::<i64>(SIGNED_IN_AT).await?,
    ) else {
        return Ok(None);
    };
    let age = OffsetDateTime::now_utc().unix_timestamp() - at;
    if age > ABSOLUTE_TIMEOUT.whole_seconds() || age < 0 {
        session.flush().await?;
        return Ok(None);
    }
    Ok(Some((member, organization)))
}

/// Ends the session and deletes it server-side.
pub async fn sign_out(session: &Session) -> anyhow::Result<()> {
    session.flush().await?;
    Ok(())
}

/// Values kept in the session until the next page shows them, once.
#[derive(Clone, Copy, Debug)]
pub enum Once {
    /// A confirmation, shown with `role="status"`.
    Status,
    /// A problem, shown with `role="alert"`.
    Alert,
    /// A freshly created invite code.
    NewInvite,
}

impl Once {
    fn key(self) -> &'static str {
        match self {
            Self::Status => "flash",
            Self::Alert => "flash_alert",
            Self::NewInvite => "new_invite_code",
        }
    }
}

/// Keeps `value` for the next page.
pub async fn set_once(session: &Session, kind: Once, value: &str) -> anyhow::Result<()> {
    session.insert(kind.key(), value).await?;
    Ok(())
}

/// Takes the value kept for this page, if any.
pub async fn take_once(session: &Session, kind: Once) -> anyhow::Result<Option<String>> {
    Ok(session.remove::<String>(kind.key()).await?)
}

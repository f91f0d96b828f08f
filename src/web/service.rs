//! What the handlers share beyond views: finding the member's credential,
//! unsealing keys for one use and releasing the transaction before Alpaca, and
//! the person-facing words for Alpaca's failures (reading accounts for the
//! portfolio and account pages is `web::reads`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use secrecy::SecretString;

use crate::{
    alpaca::{AlpacaError, ApiKeys, Environment},
    db::{self, account::Proof, credentials::Credential, events::Origin, identity::Attempt},
    domain::{CredentialId, MemberId, OrganizationId},
    error::AppError,
    password,
    state::AppState,
    vault::{self, Purpose},
    web::tenant::{Ctx, Released, Tx},
};

/// One of the member's credentials by its URL id; unknown and other members'
/// ids are the same 404.
pub async fn own_credential(tx: &mut Tx, id: CredentialId) -> Result<Credential, AppError> {
    db::credentials::find(tx, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// Shown instead of an account's data when its stored keys do not open.
pub const UNSEAL_FAILED: &str =
    "The stored keys for this account could not be unsealed. Rotate or re-enroll them.";

/// Unseals each credential for `purpose`, records each use (one statement), then
/// commits the request's transaction, so no pooled connection or row lock is
/// held while the caller waits for Alpaca. `None` where the stored keys do not
/// open. After an order action, cached reads of the account are forgotten once
/// the handler is done with Alpaca.
pub async fn unseal_and_release(
    state: &AppState,
    ctx: &Ctx,
    mut tx: Tx,
    credentials: &[Credential],
    purpose: Purpose,
) -> Result<(Vec<Option<ApiKeys>>, Released), AppError> {
    let credentials: Vec<&Credential> = credentials.iter().collect();
    let keys = tx
        .unseal(state.sealer.as_ref(), &credentials, purpose, &ctx.origin)
        .await?;
    let released = tx.release().await?;
    Ok((keys, released))
}

/// The error of a page that waited for Alpaca as long as it may.
pub fn deadline_passed() -> AlpacaError {
    AlpacaError::Unavailable("the page deadline passed".to_owned())
}

/// The person-facing message for an Alpaca failure.
pub fn describe(e: &AlpacaError) -> String {
    tracing::warn!(error = e.kind(), "Alpaca call failed");
    e.user_message()
}

/// Concurrent key verifications one member may have in flight.
const VERIFICATIONS_PER_MEMBER: usize = 2;

/// What checking keys with Alpaca concluded.
pub enum Verified {
    Account(String),
    Invalid(&'static str, String),
    Unavailable(String),
}

/// Verifies keys with `GET /v2/account` in `environment` under the page deadline;
/// when that environment rejects them but the other accepts them, says so. At
/// most [`VERIFICATIONS_PER_MEMBER`] run at once per member.
pub async fn verify_keys(
    state: &AppState,
    released: &Released,
    member: MemberId,
    environment: Environment,
    keys: &ApiKeys,
) -> Verified {
    let Some(_permit) = state
        .verifications
        .try_acquire(member, VERIFICATIONS_PER_MEMBER)
    else {
        return Verified::Unavailable(
            "Paddock is still checking other keys of yours with Alpaca. Nothing was saved; wait for that to finish, then try again.".into(),
        );
    };
    let alpaca = released.alpaca();
    let check = async {
        match alpaca.account(environment, keys).await {
            Ok(account) => Ok(account.account_number),
            Err(AlpacaError::Rejected) => {
                let other = environment.other();
                if alpaca.account(other, keys).await.is_ok() {
                    Err(Verified::Invalid(
                        "environment",
                        format!(
                            "These are {} keys: choose {}.",
                            other.as_str(),
                            other.label()
                        ),
                    ))
                } else {
                    Err(Verified::Invalid(
                        "api_key_id",
                        AlpacaError::Rejected.user_message(),
                    ))
                }
            }
            Err(e) => Err(unavailable(&e)),
        }
    };
    match tokio::time::timeout(state.settings.alpaca_deadline, check).await {
        Ok(Ok(number)) => Verified::Account(number),
        Ok(Err(verdict)) => verdict,
        Err(_) => unavailable(&deadline_passed()),
    }
}

fn unavailable(e: &AlpacaError) -> Verified {
    let advice = match e {
        AlpacaError::Unreadable(_) => "Nothing was saved.",
        _ => "Nothing was saved; try again in a minute.",
    };
    Verified::Unavailable(format!("{}. {advice}", describe(e)))
}

/// Counts what each member has in flight, to cap it.
#[derive(Clone, Default)]
pub struct PerMember(Arc<Mutex<HashMap<MemberId, usize>>>);

/// One slot of a [`PerMember`] cap, given back on drop.
pub struct PerMemberPermit {
    counts: PerMember,
    member: MemberId,
}

impl PerMember {
    /// Takes a slot for `member` if fewer than `max` are taken.
    pub fn try_acquire(&self, member: MemberId, max: usize) -> Option<PerMemberPermit> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(member).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PerMemberPermit {
            counts: self.clone(),
            member,
        })
    }
}

impl Drop for PerMemberPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.member) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.member);
            }
        }
    }
}

/// Runs CPU- and memory-heavy password hashing on the blocking pool, at most a
/// few at a time; a request that cannot get a slot within 5 s gets a 503.
pub async fn hashing<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let permit = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.hashing.clone().acquire_owned(),
    )
    .await
    .map_err(|_| AppError::Busy)?
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await?)
}

/// The throttling subject for the client's address: the address itself for
/// IPv4, its /64 for IPv6 (the activity log keeps the full address).
pub fn address_subject(origin: &Origin) -> String {
    match origin.ip.as_deref().map(str::parse::<std::net::IpAddr>) {
        Some(Ok(ip)) => crate::net::throttle_subject(ip),
        Some(Err(_)) => origin.ip.clone().unwrap_or_default(),
        None => "unknown".into(),
    }
}

/// A password guess, counted against the throttle before it is checked.
pub enum Guess {
    /// Too many failures: try again after this many seconds.
    Locked(i64),
    /// The candidate's Argon2id output under the account's salt, and the counted
    /// attempt that buys one comparison in the database.
    Counted {
        derived: Vec<u8>,
        attempts: Vec<i64>,
    },
}

/// Counts a password guess for `email` (per account and address, or — when the
/// browser presents a device cookie the database recognizes as this account's —
/// against that device only, so nobody else's failures lock it out) and computes
/// its Argon2id output with the salt the database hands out, never the stored hash.
pub async fn guess(
    state: &AppState,
    email: &str,
    address: &str,
    devices: &[String],
    password: SecretString,
) -> Result<Guess, AppError> {
    match db::identity::sign_in_attempt(&state.pool, email, address, devices).await? {
        Attempt::Locked { retry_after } => Ok(Guess::Locked(retry_after)),
        Attempt::Counted { params, ids } => {
            let derived = hashing(state, move || password::derive(&password, &params)).await??;
            Ok(Guess::Counted {
                derived,
                attempts: ids,
            })
        }
    }
}

/// The 429 answer to a throttled guess, with `Retry-After`.
pub fn too_many(mut response: Response, retry_after: i64) -> Response {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A member's sealed TOTP secret and the last time step it accepted.
pub struct SealedTotp<'a> {
    pub organization: OrganizationId,
    pub member: MemberId,
    pub sealed: &'a [u8],
    pub last_used_step: i64,
}

/// A TOTP code checked against a member's sealed secret: the database's proof
/// (the step, attested as `{context}:totp:{step}`), or `None` for a wrong,
/// malformed or already used code.
pub fn totp_proof(
    state: &AppState,
    totp: &SealedTotp<'_>,
    code: &str,
    context: &str,
) -> Result<Option<Proof<'static>>, AppError> {
    let secret = vault::open_totp(
        state.sealer.as_ref(),
        totp.organization,
        totp.member,
        &crate::seal::Sealed::from_bytes(totp.sealed.to_vec()),
    )
    .map_err(|e| AppError::Internal(e.into()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let Some(step) = secret
        .check(code, now)
        .and_then(|s| i64::try_from(s).ok())
        .filter(|s| *s > totp.last_used_step)
    else {
        return Ok(None);
    };
    let attestation = state.attestor.attest(&format!("{context}:totp:{step}"));
    Ok(Some(Proof::Totp { step, attestation }))
}

/// Whether `next` is a path on this site (no scheme, no host, no backslash
/// tricks): the only places "Confirm it's you" returns to.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 512;
    ok.then_some(next)
}

/// Whether the live checkbox of a form was ticked, or the form has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveConfirmation {
    /// A form with the "I confirm this live order" checkbox, ticked.
    Ticked,
    /// A form with the checkbox, not ticked.
    NotTicked,
    /// A form without the checkbox (cancelling one order).
    NotAsked,
}

impl LiveConfirmation {
    /// From a form's `confirm_live` field.
    pub fn of_checkbox(value: &Option<String>) -> Self {
        if value.is_some() {
            Self::Ticked
        } else {
            Self::NotTicked
        }
    }
}

/// The one gate every action that changes an account passes before anything
/// is sent (place, cancel, close, cancel all, close all). On a live account:
/// a sign-in within the step-up window (else `Err`: 303 to "Confirm it's you",
/// coming back to `back`), then the ticked confirmation (else the field and
/// message to show beside it).
pub fn live_action_allowed(
    ctx: &Ctx,
    credential: &Credential,
    confirmation: LiveConfirmation,
    back: &str,
) -> Result<Option<(&'static str, &'static str)>, AppError> {
    if credential.environment != Environment::Live {
        return Ok(None);
    }
    ctx.step_up(back)?;
    Ok((confirmation == LiveConfirmation::NotTicked).then_some((
        "confirm_live",
        "Tick the box to confirm this action uses real money.",
    )))
}

/// Runs an Alpaca call under the page deadline.
pub async fn within<T>(
    state: &AppState,
    call: impl std::future::Future<Output = Result<T, AlpacaError>>,
) -> Result<T, AlpacaError> {
    tokio::time::timeout(state.settings.alpaca_deadline, call)
        .await
        .unwrap_or_else(|_| Err(deadline_passed()))
}

/// The status of a page that shows an Alpaca failure.
pub fn failure_status(e: &AlpacaError) -> StatusCode {
    match e {
        AlpacaError::Rejected
        | AlpacaError::Refused(_)
        | AlpacaError::Unprocessable(_)
        | AlpacaError::NotFound => StatusCode::UNPROCESSABLE_ENTITY,
        AlpacaError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        AlpacaError::Unreadable(_) => StatusCode::BAD_GATEWAY,
        AlpacaError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

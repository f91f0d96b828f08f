//! The request's transaction ([`Tx`]) and the proof that it is gone
//! ([`Released`]): the only way to Alpaca.

use std::ops::{Deref, DerefMut};

use axum::{extract::FromRequestParts, http::request::Parts};
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::{OwnedMappedMutexGuard, OwnedMutexGuard};

use super::Tenant;
use crate::{
    alpaca::{self, ApiKeys},
    db::{
        self,
        credentials::Credential,
        events::Origin,
        request::{KeyUses, Reads},
    },
    domain::CredentialId,
    error::AppError,
    portfolio::cache::AccountCache,
    seal::Sealer,
    token::Token,
    vault::{self, Purpose},
};

/// The request's transaction, as a handler extractor. Derefs to a connection.
///
/// The rule "read and record in a short transaction, commit, then call Alpaca"
/// is enforced here: Alpaca is reachable only through [`Released`], which
/// [`Tx::release`] hands out after committing and returning the connection.
pub struct Tx {
    guard: OwnedMappedMutexGuard<
        Option<Transaction<'static, Postgres>>,
        Transaction<'static, Postgres>,
    >,
    tenant: Tenant,
    /// Accounts an order action was recorded for: their cached reads go stale.
    changed: Vec<CredentialId>,
}

impl Tx {
    /// Commits the request's database work now and returns the connection to the
    /// pool; only then may the handler wait for Alpaca, through the [`Released`]
    /// this returns. A slow or hung Alpaca thus holds no pooled connection.
    pub async fn release(self) -> Result<Released, AppError> {
        let Self {
            guard,
            tenant,
            changed,
        } = self;
        drop(guard);
        let tx = tenant.shared.lock().await.take();
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(Released { tenant, changed })
    }

    /// Unseals `credentials` for one use each and records the uses in this
    /// transaction (one statement); the keys reach Alpaca only after
    /// [`Tx::release`] has committed that record. `None` where the stored keys
    /// do not open.
    pub async fn unseal(
        &mut self,
        sealer: &dyn Sealer,
        credentials: &[&Credential],
        purpose: Purpose,
        origin: &Origin,
    ) -> Result<Vec<Option<ApiKeys>>, AppError> {
        let token = self.tenant.token.clone();
        let (keys, recorded) = unseal_recording(
            &mut self.guard,
            &token,
            sealer,
            credentials,
            purpose,
            origin,
        )
        .await?;
        if purpose.changes_account() {
            self.changed.extend_from_slice(&recorded);
        }
        Ok(keys)
    }
}

/// Opens the keys of `credentials` in memory, then records their uses on
/// `conn` in one statement. The keys of the credentials recorded, in order
/// (`None` for keys that did not open or a credential gone meanwhile), and
/// those credentials.
async fn unseal_recording(
    conn: &mut PgConnection,
    token: &Token,
    sealer: &dyn Sealer,
    credentials: &[&Credential],
    purpose: Purpose,
    origin: &Origin,
) -> Result<(Vec<Option<ApiKeys>>, Vec<CredentialId>), AppError> {
    let unsealed = vault::unseal(sealer, credentials);
    let ids = unsealed.to_record();
    if ids.is_empty() {
        return Ok((unsealed.recorded(&[]), Vec::new()));
    }
    let reads = Reads {
        credentials: Some(&ids),
        uses: Some(KeyUses {
            purpose: purpose.as_str(),
            changes: purpose.changes_account(),
            origin,
        }),
    };
    let Some(opened) = db::request::open(conn, token, &reads).await? else {
        // The session ended meanwhile (signed out elsewhere): no use is recorded.
        return Err(AppError::SignedOut);
    };
    let recorded: Vec<CredentialId> = opened.credentials.iter().map(|c| c.id).collect();
    Ok((unsealed.recorded(&recorded), recorded))
}

/// Proof that the request holds no database connection: the only way for a
/// handler to reach Alpaca. When it goes (the handler is done with Alpaca),
/// cached reads of the accounts an order action changed are forgotten.
pub struct Released {
    tenant: Tenant,
    changed: Vec<CredentialId>,
}

impl Drop for Released {
    fn drop(&mut self) {
        for credential in self.changed.drain(..) {
            self.tenant.alpaca.accounts.forget(credential);
        }
    }
}

impl Released {
    /// The Alpaca client, for calls made while no transaction is open.
    pub fn alpaca(&self) -> &alpaca::Client {
        &self.tenant.alpaca.client
    }

    /// Recent and in-flight account reads, shared by every request.
    pub fn accounts(&self) -> &AccountCache {
        &self.tenant.alpaca.accounts
    }

    /// Unseals `credentials` for one use each, recording the uses in one
    /// statement of their own, committed before this returns the keys. The
    /// pooled connection it takes is back in the pool before any key is used.
    /// `None` where the stored keys do not open.
    pub async fn unseal(
        &mut self,
        sealer: &dyn Sealer,
        credentials: &[&Credential],
        purpose: Purpose,
        origin: &Origin,
    ) -> Result<Vec<Option<ApiKeys>>, AppError> {
        let mut conn = self.tenant.pool.acquire().await?;
        let (keys, recorded) = unseal_recording(
            &mut conn,
            &self.tenant.token,
            sealer,
            credentials,
            purpose,
            origin,
        )
        .await?;
        drop(conn);
        if purpose.changes_account() {
            self.changed.extend_from_slice(&recorded);
        }
        Ok(keys)
    }

    /// Opens a new tenant transaction for the work that follows an outside call,
    /// giving up Alpaca access until it is released again. Like the first one, it
    /// commits by itself when the response is a success or a redirect.
    pub async fn begin(mut self) -> Result<Tx, AppError> {
        let tenant = self.tenant.clone();
        let changed = std::mem::take(&mut self.changed);
        drop(self);
        let Some((tx, _)) = db::identity::begin_request(&tenant.pool, &tenant.token).await? else {
            // The session ended while we waited for Alpaca (signed out elsewhere).
            return Err(AppError::SignedOut);
        };
        *tenant.shared.lock().await = Some(tx);
        Tx::take(tenant, changed).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Released {
    type Rejection = AppError;

    /// On routes behind [`require_member_lazily`], which open no transaction.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let tenant =
            parts.extensions.get::<Tenant>().cloned().ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("route lacks the tenant layer"))
            })?;
        if tenant.shared.lock().await.is_some() {
            return Err(AppError::Internal(anyhow::anyhow!(
                "this route holds a transaction: take Tx and release it"
            )));
        }
        Ok(Released {
            tenant,
            changed: Vec::new(),
        })
    }
}

impl Tx {
    async fn take(tenant: Tenant, changed: Vec<CredentialId>) -> Result<Self, AppError> {
        let guard: OwnedMutexGuard<_> =
            tenant.shared.clone().try_lock_owned().map_err(|_| {
                AppError::Internal(anyhow::anyhow!("the transaction is held twice"))
            })?;
        OwnedMutexGuard::try_map(guard, Option::as_mut)
            .map(|guard| Tx {
                guard,
                tenant,
                changed,
            })
            .map_err(|_| AppError::Internal(anyhow::anyhow!("transaction already finished")))
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.guard
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.guard
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let tenant =
            parts.extensions.get::<Tenant>().cloned().ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("route lacks the tenant layer"))
            })?;
        Tx::take(tenant, Vec::new()).await
    }
}

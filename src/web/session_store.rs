//! The session store: tower-sessions-sqlx-store's PostgreSQL table, except that
//! saving never re-creates a deleted session.
//!
//! The stock store saves with an upsert, so a request that loaded a session just
//! before its sign-out could write it back afterwards and revive a stolen cookie.
//! Here only `create` (new sessions, and new ids at sign-in) inserts; `save`
//! updates a row that still exists, and does nothing otherwise.

use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::{
    ExpiredDeletion, SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};
use tower_sessions_sqlx_store::PostgresStore;

/// Sessions in PostgreSQL that stay deleted once deleted.
#[derive(Clone, Debug)]
pub struct RevocableStore {
    inner: PostgresStore,
    pool: PgPool,
}

impl RevocableStore {
    /// A store on the `tower_sessions.session` table of `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: PostgresStore::new(pool.clone()),
            pool,
        }
    }
}

#[async_trait]
impl SessionStore for RevocableStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        sqlx::query("update tower_sessions.session set data = $2, expiry_date = $3 where id = $1")
            .bind(record.id.to_string())
            .bind(data)
            .bind(record.expiry_date)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> Result<Option<Record>> {
        self.inner.load(session_id).await
    }

    async fn delete(&self, session_id: &Id) -> Result<()> {
        self.inner.delete(session_id).await
    }
}

#[async_trait]
impl ExpiredDeletion for RevocableStore {
    async fn delete_expired(&self) -> Result<()> {
        self.inner.delete_expired().await
    }
}

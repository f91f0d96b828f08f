//! The injection console: arbitrary SQL as the app role inside a member's real
//! request transaction — exactly what an SQL injection anywhere in that member's
//! request would get. The transaction is opened by the same library function the
//! tenant middleware uses, with the secret from the member's own session cookie.

use sqlx::{PgPool, Postgres, Row, Transaction, postgres::PgRow};

use crate::helpers::{TestApp, Visitor};

/// SQLSTATE `insufficient_privilege`: missing grants, and rows refused by
/// row-level security (`new row violates row-level security policy`).
pub const REFUSED: &str = "42501";

/// An open transaction to run injected SQL in; every statement runs in its own
/// savepoint, so a refused one does not end the attack.
pub struct Console {
    tx: Transaction<'static, Postgres>,
}

impl Console {
    /// Inside `visitor`'s request: their session secret presented to PostgreSQL.
    pub async fn as_member(app: &TestApp, visitor: &Visitor) -> Self {
        let (tx, _) = paddock::db::identity::begin_request(&app.pool, &visitor.session_token())
            .await
            .expect("begin")
            .expect("the visitor is signed in");
        Self { tx }
    }

    /// As the app role with no identity and no settings at all.
    pub async fn anonymous(pool: &PgPool) -> Self {
        Self {
            tx: pool.begin().await.expect("begin"),
        }
    }

    /// Runs `sql`; the rows, or the database's refusal.
    pub async fn run(&mut self, sql: &str) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut savepoint = sqlx::Connection::begin(&mut *self.tx)
            .await
            .expect("savepoint");
        let result = sqlx::raw_sql(sql).fetch_all(&mut *savepoint).await;
        if result.is_ok() {
            savepoint.commit().await.expect("release savepoint");
        } else {
            savepoint.rollback().await.expect("rollback to savepoint");
        }
        result
    }

    /// The single number `sql` returns.
    pub async fn number(&mut self, sql: &str) -> i64 {
        let rows = self.run(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows[0].try_get::<i64, _>(0).expect("a number")
    }

    /// Asserts PostgreSQL refuses `sql` for lack of privilege or by row-level
    /// security (not for a typo), and returns its message.
    pub async fn refused(&mut self, sql: &str) -> String {
        match self.run(sql).await {
            Ok(rows) => panic!("{sql} was allowed ({} rows)", rows.len()),
            Err(sqlx::Error::Database(e)) => {
                assert_eq!(e.code().as_deref(), Some(REFUSED), "{sql}: {e}");
                e.message().to_owned()
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    /// Rows a statement changed, or the refusal's SQLSTATE.
    pub async fn affected(&mut self, sql: &str) -> Result<u64, String> {
        let mut savepoint = sqlx::Connection::begin(&mut *self.tx)
            .await
            .expect("savepoint");
        match sqlx::query(sql).execute(&mut *savepoint).await {
            Ok(done) => {
                savepoint.commit().await.expect("release savepoint");
                Ok(done.rows_affected())
            }
            Err(e) => {
                savepoint.rollback().await.expect("rollback to savepoint");
                match e {
                    sqlx::Error::Database(db) => Err(db.code().unwrap_or_default().into_owned()),
                    other => panic!("{sql}: {other}"),
                }
            }
        }
    }

    /// Commits what the injection did (to check it from outside).
    pub async fn commit(self) {
        self.tx.commit().await.expect("commit");
    }
}

//! Failed sign-in counting, per account and per client address, kept in the
//! database so it holds across browser restarts, server restarts and replicas.

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::minutes(15);
/// Failures per account within the window before sign-in is refused.
pub const ACCOUNT_LIMIT: i64 = 5;
/// Failures per client address within the window before sign-in is refused.
pub const ADDRESS_LIMIT: i64 = 20;

/// What is being throttled.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }

    fn limit(self) -> i64 {
        match self {
            Self::Account => ACCOUNT_LIMIT,
            Self::Address => ADDRESS_LIMIT,
        }
    }
}

/// If `subject` is over its limit, how long until it may try again.
pub async fn locked_for(
    conn: &mut PgConnection,
    scope: Scope,
    subject: &str,
) -> sqlx::Result<Option<Duration>> {
    let since = OffsetDateTime::now_utc() - WINDOW;
    let (count, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
        "select count(*), min(failed_at) from (
             select failed_at from sign_in_failures
             where scope = $1 and subject = $2 and failed_at > $3
             order by failed_at desc limit $4
         ) recent",
    )
    .bind(scope.as_str())
    .bind(subject)
    .bind(since)
    .bind(scope.limit())
    .fetch_one(conn)
    .await?;
    Ok(match oldest {
        Some(oldest) if count >= scope.limit() => {
            let wait = oldest + WINDOW - OffsetDateTime::now_utc();
            Some(wait.max(Duration::seconds(1)))
        }
        _ => None,
    })
}

/// Serializes sign-in attempts on `subject` until the transaction ends, so that
/// parallel guesses are counted one after another, not all against the same count.
/// Take account locks before address locks (one order everywhere: no deadlocks).
pub async fn serialize(conn: &mut PgConnection, scope: Scope, subject: &str) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("paddock.sign_in:{}:{subject}", scope.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records one attempt, counted as a failure until [`forget`] says otherwise.
/// Returns its id and whether `subject` has just reached its limit.
pub async fn record_attempt(
    conn: &mut PgConnection,
    scope: Scope,
    subject: &str,
) -> sqlx::Result<(i64, bool)> {
    let id: i64 = sqlx::query_scalar(
        "insert into sign_in_failures (scope, subject) values ($1, $2) returning id",
    )
    .bind(scope.as_str())
    .bind(subject)
    .fetch_one(&mut *conn)
    .await?;
    let since = OffsetDateTime::now_utc() - WINDOW;
    let count: i64 = sqlx::query_scalar(
        "select count(*) from sign_in_failures where scope = $1 and subject = $2 and failed_at > $3",
    )
    .bind(scope.as_str())
    .bind(subject)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok((id, count == scope.limit()))
}

/// Forgets attempts that turned out to succeed.
pub async fn forget(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query("delete from sign_in_failures where id = any($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets an account's failures after a successful sign-in.
pub async fn clear(conn: &mut PgConnection, scope: Scope, subject: &str) -> sqlx::Result<()> {
    sqlx::query("delete from sign_in_failures where scope = $1 and subject = $2")
        .bind(scope.as_str())
        .bind(subject)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes failures older than the window (run by the background sweeper).
pub async fn prune(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let since = OffsetDateTime::now_utc() - WINDOW;
    Ok(
        sqlx::query("delete from sign_in_failures where failed_at < $1")
            .bind(since)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

//! The server's check of its own database posture before it serves.

use sqlx::PgPool;

/// Tables holding member data: each must have row-level security enabled and forced.
pub const PROTECTED_TABLES: &[&str] = &[
    "organizations",
    "members",
    "invites",
    "security_events",
    "credentials",
    "totp",
    "passkeys",
    "action_tokens",
];

/// Returns the problems found with the runtime role; empty means safe to serve.
pub async fn problems(app: &PgPool) -> sqlx::Result<Vec<String>> {
    let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "select rolname::text, rolsuper, rolbypassrls from pg_roles where rolname = current_user",
    )
    .fetch_one(app)
    .await?;
    let mut problems = Vec::new();
    if superuser {
        problems.push(format!(
            "the runtime role `{role}` is a superuser, so row-level security does not apply to it; point DATABASE_URL at a NOSUPERUSER role"
        ));
    }
    if bypass {
        problems.push(format!(
            "the runtime role `{role}` has BYPASSRLS; run `alter role {role} nobypassrls`"
        ));
    }
    let powerful: Vec<String> = sqlx::query_scalar(
        "select g.rolname::text from pg_roles g join pg_roles me on me.rolname = current_user
         where g.oid <> me.oid and pg_has_role(me.oid, g.oid, 'MEMBER') and (g.rolsuper or g.rolbypassrls)",
    )
    .fetch_all(app)
    .await?;
    for granted in powerful {
        problems.push(format!(
            "the runtime role `{role}` is a member of `{granted}`, which bypasses row-level security; revoke that membership"
        ));
    }
    let private: bool =
        sqlx::query_scalar("select has_schema_privilege(current_user, 'paddock_private', 'USAGE')")
            .fetch_one(app)
            .await?;
    if private {
        problems.push(format!(
            "the runtime role `{role}` may use schema `paddock_private` (sessions, server secrets); run `paddock migrate` to revoke it"
        ));
    }
    let tables: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity, pg_has_role(r.oid, c.relowner, 'MEMBER')
         from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
         join pg_roles r on r.rolname = current_user
         where n.nspname = 'public' and c.relkind = 'r' and c.relname = any($1)",
    )
    .bind(PROTECTED_TABLES)
    .fetch_all(app)
    .await?;
    for name in PROTECTED_TABLES {
        match tables.iter().find(|t| t.0 == *name) {
            None => problems.push(format!("table `{name}` is missing; run `paddock migrate`")),
            Some((_, enabled, forced, owned)) => {
                if *owned {
                    problems.push(format!(
                        "the runtime role `{role}` owns table `{name}` (or is a member of its owner); the app role must own nothing (use a separate owner role for DATABASE_ADMIN_URL)"
                    ));
                }
                if !enabled || !forced {
                    problems.push(format!(
                        "table `{name}` lacks enabled and forced row-level security; run `paddock migrate`"
                    ));
                }
            }
        }
    }
    Ok(problems)
}

//! Isolation enforced by PostgreSQL itself, tried as an attacker with an SQL
//! injection in Ada's request would: arbitrary SQL as the app role inside the
//! transaction her request opens (see `console.rs`), and with no identity at all.

use paddock::db::{self, embedded, posture};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::{
    account_actions::confirmation,
    console::{Console, REFUSED},
    credentials::enroll,
    helpers::{TestApp, Visitor, url},
};

const SECRET: &str = "isolationsecret000000000000000000000001";

/// A member's ids, read as the owner.
#[derive(Clone, Copy, Debug)]
struct Ids {
    member: Uuid,
    organization: Uuid,
}

async fn ids(app: &TestApp, email: &str) -> Ids {
    let row = sqlx::query("select id, organization_id from members where email = $1")
        .bind(email)
        .fetch_one(&app.admin)
        .await
        .expect("member");
    Ids {
        member: row.get(0),
        organization: row.get(1),
    }
}

/// Ada (owner) and Bob (member) in Club, Eve (owner) in Elsewhere; each with a
/// credential and events; a pending invite in each organization.
struct World {
    ada: Visitor,
    bob: Visitor,
    eve: Visitor,
    ada_ids: Ids,
    bob_ids: Ids,
    eve_ids: Ids,
}

async fn world(app: &TestApp) -> World {
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    let eve = app.owner("eve@example.com", "Elsewhere").await;
    enroll(&ada, "Ada paper", "PKADAACCOUNT00000001", SECRET, "paper").await;
    enroll(&bob, "Bob paper", "PKBOBACCOUNT00000001", SECRET, "paper").await;
    enroll(&eve, "Eve paper", "PKEVEACCOUNT00000001", SECRET, "paper").await;
    ada.create_invite().await;
    eve.create_invite().await;
    // A used confirmation token each (cancel all orders), so action_tokens has rows to hide.
    for (v, label) in [(&ada, "Ada paper"), (&eve, "Eve paper")] {
        let id: String = sqlx::query_scalar("select id::text from credentials where label = $1")
            .bind(label)
            .fetch_one(&app.admin)
            .await
            .expect("credential");
        let path = format!("/accounts/{id}/orders/cancel-all");
        let token = confirmation(v, &path, "Cancel all orders").await;
        assert_eq!(v.post(&path, &[("action_token", &token)]).await.status, 303);
    }
    World {
        ada_ids: ids(app, "ada@example.com").await,
        bob_ids: ids(app, "bob@example.com").await,
        eve_ids: ids(app, "eve@example.com").await,
        ada,
        bob,
        eve,
    }
}

/// Every table in every non-system schema, as the owner sees them.
async fn all_tables(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "select quote_ident(schemaname) || '.' || quote_ident(tablename) from pg_tables
         where schemaname not in ('pg_catalog', 'information_schema') order by 1",
    )
    .fetch_all(&app.admin)
    .await
    .expect("tables")
}

/// The columns of `table` the app role may read.
async fn readable_columns(app: &TestApp, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select quote_ident(a.attname) from pg_attribute a
         where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
           and has_column_privilege('paddock_app', a.attrelid, a.attnum, 'SELECT')
         order by a.attnum",
    )
    .bind(table)
    .fetch_all(&app.admin)
    .await
    .expect("columns")
}

#[tokio::test]
async fn an_injection_in_adas_request_reads_only_her_rows_in_every_table() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let mut console = Console::as_member(&app, &w.ada).await;
    let mut readable = Vec::new();
    for table in all_tables(&app).await {
        let columns = readable_columns(&app, &table).await;
        if columns.is_empty() {
            console.refused(&format!("select * from {table}")).await;
            continue;
        }
        let rows = console
            .run(&format!("select {} from {table}", columns.join(", ")))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        for row in &rows {
            for (column, mine) in [
                ("member_id", w.ada_ids.member),
                ("organization_id", w.ada_ids.organization),
                ("created_by", w.ada_ids.member),
            ] {
                if let Ok(value) = row.try_get::<Uuid, _>(column) {
                    assert_eq!(value, mine, "{table}.{column} leaks another member's row");
                }
            }
        }
        readable.push((table, rows.len()));
    }
    let names: Vec<&str> = readable.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        [
            "public.action_tokens",
            "public.credentials",
            "public.invites",
            "public.members",
            "public.organizations",
            "public.passkeys",
            "public.security_events",
            "public.totp",
        ],
        "exactly the tables row-level security guards are readable; everything else (sessions, secrets, throttling) is refused"
    );
    let seen = |name: &str| {
        readable
            .iter()
            .find(|(t, _)| t == name)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{name} is readable"))
    };
    assert_eq!(seen("public.organizations"), 1, "her organization only");
    assert_eq!(seen("public.members"), 2, "Ada and Bob, not Eve");
    assert_eq!(seen("public.credentials"), 1, "her credential only");
    assert_eq!(
        seen("public.action_tokens"),
        1,
        "her confirmation token only"
    );
    assert_eq!(seen("public.invites"), 2, "her organization's invites only");
    assert!(seen("public.security_events") > 0, "her own events");
    assert_eq!(
        console
            .number("select count(*)::bigint from organizations where id <> (select organization_id from members limit 1)")
            .await,
        0
    );
    let _ = (&w.bob, &w.eve_ids);
}

#[tokio::test]
async fn an_injection_in_adas_request_changes_no_one_elses_rows() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (bob, eve) = (w.bob_ids.member, w.eve_ids.member);
    let club = w.ada_ids.organization;
    let mut console = Console::as_member(&app, &w.ada).await;
    assert_eq!(
        console
            .affected("update credentials set label = 'pwned'")
            .await,
        Ok(1),
        "only her own credential"
    );
    assert_eq!(
        console
            .affected(&format!(
                "delete from credentials where member_id in ('{bob}', '{eve}')"
            ))
            .await,
        Ok(0)
    );
    for statement in [
        format!(
            "insert into credentials (id, organization_id, member_id, label, environment, sealed_key_id, sealed_secret, key_id_last4, account_number, seal_key_version) values (gen_random_uuid(), '{club}', '{bob}', 'x', 'paper', '\\x00', '\\x00', 'ABCD', 'PA9', 'k1')"
        ),
        format!("update credentials set member_id = '{bob}'"),
        format!(
            "insert into security_events (organization_id, member_id, kind) values ('{club}', '{bob}', 'sign_in')"
        ),
        "update security_events set detail = 'rewritten'".into(),
        "delete from security_events".into(),
        "update members set role = 'owner'".into(),
        "delete from members".into(),
        format!(
            "insert into members (organization_id, email, password_hash, role) values ('{club}', 'mallory@example.com', 'x', 'owner')"
        ),
        "update organizations set name = 'Pwned'".into(),
        "delete from invites".into(),
        "update invites set expires_at = now() + interval '10 years'".into(),
        format!("update paddock_private.sessions set member_id = '{bob}'"),
        "delete from paddock_private.sign_in_failures".into(),
    ] {
        assert_eq!(
            console.affected(&statement).await,
            Err(REFUSED.to_owned()),
            "{statement}"
        );
    }
    console
        .run(&format!(
            "select set_config('paddock.member_id', '{bob}', true), set_config('paddock.organization_id', '{}', true)",
            w.bob_ids.organization
        ))
        .await
        .expect("set_config");
    assert_eq!(
        console
            .affected(&format!(
                "update credentials set label = 'pwned bob' where member_id = '{bob}'"
            ))
            .await,
        Ok(0),
        "claiming Bob's ids does not reach his rows"
    );
    console.commit().await;
    let labels: Vec<String> = sqlx::query_scalar("select label from credentials order by label")
        .fetch_all(&app.admin)
        .await
        .expect("labels");
    assert_eq!(labels, ["Bob paper", "Eve paper", "pwned"]);
    let roles: Vec<String> = sqlx::query_scalar("select role from members order by email")
        .fetch_all(&app.admin)
        .await
        .expect("roles");
    assert_eq!(roles, ["owner", "member", "owner"]);
}

#[tokio::test]
async fn an_injection_reads_no_session_invite_or_password_secret() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let mut console = Console::as_member(&app, &w.ada).await;
    for statement in [
        "select * from paddock_private.sessions",
        "select token_hash from paddock_private.sessions",
        "select * from paddock_private.secrets",
        "select code_hash from invites",
        "select password_hash from members",
        "select paddock_private.identity_mac(gen_random_uuid(), gen_random_uuid(), gen_random_uuid())",
        "set role paddock_owner",
    ] {
        console.refused(statement).await;
    }
    // Function bodies are readable by anyone: they must hold no key.
    let key: Vec<u8> =
        sqlx::query_scalar("select value from paddock_private.secrets where name = 'identity'")
            .fetch_one(&app.admin)
            .await
            .expect("key");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let sources = console
        .run("select coalesce(string_agg(prosrc, ' '), '') from pg_proc")
        .await
        .expect("pg_proc");
    let sources: String = sources[0].get(0);
    assert!(!sources.contains(&hex), "no key in a function body");
    // Bob's request is in flight: its secret is nowhere Ada's injection can see.
    let bob_secret = w.bob.session_token();
    let _bob_request = Console::as_member(&app, &w.bob).await;
    let activity = console
        .run("select coalesce(string_agg(query, ' '), '') from pg_stat_activity")
        .await
        .expect("pg_stat_activity");
    let activity: String = activity[0].get(0);
    assert!(!activity.contains(&bob_secret.expose_text()));
    let bob_hex: String = bob_secret
        .expose_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!activity.contains(&bob_hex));
}

#[tokio::test]
async fn setting_another_members_ids_or_identity_yields_nothing() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (bob, club) = (w.bob_ids.member, w.bob_ids.organization);
    let bobs_credential =
        format!("select count(*)::bigint from credentials where member_id = '{bob}'");
    let mut console = Console::as_member(&app, &w.ada).await;
    // The settings policies used to trust.
    console
        .run(&format!(
            "select set_config('paddock.member_id', '{bob}', true), set_config('paddock.organization_id', '{club}', true)"
        ))
        .await
        .expect("set_config");
    assert_eq!(console.number(&bobs_credential).await, 0);
    assert_eq!(
        console
            .number("select count(*)::bigint from credentials")
            .await,
        1,
        "still Ada, seeing her own"
    );
    // A made-up identity naming Bob.
    console
        .run(&format!(
            "select set_config('paddock.identity', 'v1:{bob}:{club}:{}:{}', true)",
            Uuid::new_v4(),
            "0".repeat(64)
        ))
        .await
        .expect("set_config");
    assert_eq!(console.number(&bobs_credential).await, 0);
    assert_eq!(
        console
            .number("select count(*)::bigint from credentials")
            .await,
        0,
        "a forged identity is no identity"
    );
    assert_eq!(
        console
            .number("select count(*)::bigint from security_events")
            .await,
        0
    );
    // Bob's real identity, copied out of his own request while it runs.
    let mut bobs_request = Console::as_member(&app, &w.bob).await;
    let rows = bobs_request
        .run("select current_setting('paddock.identity')")
        .await
        .expect("identity");
    let bobs_identity: String = rows[0].get(0);
    assert_eq!(bobs_request.number(&bobs_credential).await, 1);
    console
        .run(&format!(
            "select set_config('paddock.identity', '{bobs_identity}', true)"
        ))
        .await
        .expect("set_config");
    assert_eq!(
        console.number(&bobs_credential).await,
        0,
        "an identity is bound to the transaction that proved it"
    );
    // Nor does it work set for the whole connection and replayed later.
    let mut later = Console::anonymous(&app.pool).await;
    later
        .run(&format!(
            "select set_config('paddock.identity', '{bobs_identity}', false)"
        ))
        .await
        .expect("set_config");
    assert_eq!(later.number(&bobs_credential).await, 0);
}

#[tokio::test]
async fn no_invite_can_be_created_in_another_organization() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let insert = |organization: Uuid, created_by: Uuid| {
        format!(
            "insert into invites (organization_id, code_hash, created_by, expires_at) values ('{organization}', gen_random_uuid()::text::bytea, '{created_by}', now() + interval '1 day')"
        )
    };
    let mut ada = Console::as_member(&app, &w.ada).await;
    for (organization, created_by) in [
        (w.eve_ids.organization, w.ada_ids.member),
        (w.eve_ids.organization, w.eve_ids.member),
        (w.ada_ids.organization, w.bob_ids.member),
    ] {
        assert_eq!(
            ada.affected(&insert(organization, created_by)).await,
            Err(REFUSED.to_owned())
        );
    }
    assert_eq!(
        ada.affected(&insert(w.ada_ids.organization, w.ada_ids.member))
            .await,
        Ok(1),
        "an owner may invite into her own organization"
    );
    // Claiming to be Eve with the settings policies used to trust changes nothing.
    ada.run(&format!(
        "select set_config('paddock.member_id', '{}', true), set_config('paddock.organization_id', '{}', true)",
        w.eve_ids.member, w.eve_ids.organization
    ))
    .await
    .expect("set_config");
    assert_eq!(
        ada.affected(&insert(w.eve_ids.organization, w.eve_ids.member))
            .await,
        Err(REFUSED.to_owned()),
        "set_config does not make Ada an owner of Elsewhere"
    );
    let mut bob = Console::as_member(&app, &w.bob).await;
    assert_eq!(
        bob.affected(&insert(w.bob_ids.organization, w.bob_ids.member))
            .await,
        Err(REFUSED.to_owned()),
        "a plain member may not invite"
    );
}

#[tokio::test]
async fn no_event_can_be_forged_for_another_member() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let bobs_events = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from security_events where member_id = (select id from members where email = 'bob@example.com')",
        )
        .fetch_one(&app.admin)
        .await
        .expect("count")
    };
    let before = bobs_events().await;
    let mut console = Console::as_member(&app, &w.ada).await;
    for (organization, member) in [
        (w.bob_ids.organization, w.bob_ids.member),
        (w.eve_ids.organization, w.eve_ids.member),
    ] {
        assert_eq!(
            console
                .affected(&format!(
                    "insert into security_events (organization_id, member_id, kind, detail) values ('{organization}', '{member}', 'credential_deleted', 'forged')"
                ))
                .await,
            Err(REFUSED.to_owned())
        );
    }
    // The sign-in function writes to the account it names, but only for an
    // attempt that was counted (and throttled), with a kind and detail it fixes.
    let forged = console
        .run("select * from paddock_sign_in('bob@example.com', 'x', '\\x00', '{1,2,3}', '\\x00', 'forged ip', 'forged agent')")
        .await
        .expect("callable");
    assert!(forged.is_empty());
    console.commit().await;
    assert_eq!(bobs_events().await, before, "no counted attempt, no event");
}

/// Functions the app role may execute, by signature. A new one must be added
/// here, with a check below that it returns nobody else's data.
const REACHABLE: &[&str] = &[
    "paddock_add_passkey(text,bytea,text,bytea,text,text)",
    "paddock_authenticate(bytea)",
    "paddock_begin_passkey_ceremony(text,text,bytea)",
    "paddock_begin_second_factor_passkey(bytea,text,bytea)",
    "paddock_change_password(bytea,bigint[],text,bytea,text,text)",
    "paddock_complete_second_factor(bytea,bytea,bigint[],text,bigint,bytea,text,text,text,text)",
    "paddock_create_organization(text,text,text,bytea,text,text)",
    "paddock_create_reset_link(uuid,bytea,text,text)",
    "paddock_current_member()",
    "paddock_current_organization()",
    "paddock_current_session()",
    "paddock_device_cookie(bytea,text[])",
    "paddock_disable_totp(text,text)",
    "paddock_enable_totp(bigint,bytea[],text,text)",
    "paddock_end_session()",
    "paddock_open_request(bytea,uuid[],text,boolean,text,text)",
    "paddock_passkey_used(bytea,text,bytea)",
    "paddock_pending_passkeys(bytea)",
    "paddock_pending_second_factor(bytea)",
    "paddock_reauthenticate(bytea,bigint[],text,bigint,bytea,text,text,text)",
    "paddock_recovery_codes_left()",
    "paddock_redeem_invite(bytea,text,text,bytea,text,text)",
    "paddock_remove_member(uuid,text,text)",
    "paddock_remove_passkey(uuid,text,text)",
    "paddock_replace_recovery_codes(bytea[],text,text)",
    "paddock_reset_link(bytea)",
    "paddock_reset_password(bytea,text,text,text)",
    "paddock_revoke_sessions(uuid,text,text)",
    "paddock_second_factor_attempt(bytea,text)",
    "paddock_sessions()",
    "paddock_set_policy(boolean,text,text)",
    "paddock_set_role(uuid,text,text,text)",
    "paddock_sign_in(text,text,bytea,bigint[],bytea,text,text)",
    "paddock_sign_in_attempt(text,text,text[])",
    "paddock_sweep()",
    "paddock_take_passkey_ceremony(text)",
    "paddock_take_second_factor_passkey(bytea)",
];

#[tokio::test]
async fn no_function_reachable_by_the_app_role_returns_another_members_data() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let reachable: Vec<String> = sqlx::query_scalar(
        "select p.proname || '(' || regexp_replace(pg_get_function_identity_arguments(p.oid), '(^|, )p_\\w+ ', '\\1', 'g') || ')'
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname not in ('pg_catalog', 'information_schema')
           and has_function_privilege('paddock_app', p.oid, 'EXECUTE')
           and has_schema_privilege('paddock_app', n.oid, 'USAGE')
         order by 1",
    )
    .fetch_all(&app.admin)
    .await
    .expect("functions");
    let reachable: Vec<String> = reachable
        .into_iter()
        .map(|f| f.replace(", ", ","))
        .collect();
    assert_eq!(reachable, REACHABLE);

    let mut console = Console::as_member(&app, &w.ada).await;
    let me = console
        .run("select paddock_current_member(), paddock_current_organization()")
        .await
        .expect("identity");
    assert_eq!(me[0].get::<Uuid, _>(0), w.ada_ids.member);
    assert_eq!(me[0].get::<Uuid, _>(1), w.ada_ids.organization);
    assert!(
        console
            .run("select * from paddock_authenticate(sha256('guess'))")
            .await
            .expect("authenticate")
            .is_empty()
    );
    // The salt lookup gives a salt and parameters, never a hash; an unknown
    // email gets an answer of the same shape, stable across calls.
    let columns = console
        .run("select * from paddock_sign_in_attempt('bob@example.com', 'injection')")
        .await
        .expect("attempt");
    let names: Vec<&str> = columns[0]
        .columns()
        .iter()
        .map(sqlx::Column::name)
        .collect();
    assert_eq!(
        names,
        [
            "retry_after",
            "salt",
            "memory_kib",
            "iterations",
            "parallelism",
            "hash_length",
            "attempts"
        ]
    );
    let stored: String =
        sqlx::query_scalar("select password_hash from members where email = 'bob@example.com'")
            .fetch_one(&app.admin)
            .await
            .expect("hash");
    for email in ["bob@example.com", "nobody@example.com"] {
        let sql = format!(
            "select salt, memory_kib, iterations, parallelism, hash_length from paddock_sign_in_attempt('{email}', 'injection')"
        );
        let first = console.run(&sql).await.expect("attempt");
        let again = console.run(&sql).await.expect("attempt");
        let salt: Vec<u8> = first[0].get(0);
        assert_eq!(salt.len(), 16, "{email}");
        assert_eq!(salt, again[0].get::<Vec<u8>, _>(0), "{email}: stable");
        assert_eq!(first[0].get::<i32, _>(1), 19456);
        assert_eq!(first[0].get::<i32, _>(4), 32);
        let hash_part = stored.rsplit('$').next().expect("hash part");
        assert_ne!(
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, &salt),
            hash_part
        );
    }
    assert!(
        console
            .run("select * from paddock_sign_in('bob@example.com', 'injection', '\\x00', array(select unnest(attempts) from paddock_sign_in_attempt('bob@example.com', 'injection')), '\\x01', null, null)")
            .await
            .expect("sign in")
            .is_empty(),
        "a wrong hash opens nothing"
    );
    assert!(
        console
            .run("select * from paddock_redeem_invite(sha256('guess'), 'mallory@example.com', 'x', '\\x02', null, null)")
            .await
            .expect("redeem")
            .is_empty()
    );
    // The session, second-factor and owner functions act on Ada's own member and
    // organization only: Eve, in another organization, is out of reach.
    let eve = w.eve_ids.member;
    let eves_passkey: Uuid = sqlx::query_scalar(
        "insert into passkeys (member_id, organization_id, name, credential_id, passkey)
         values ($1, $2, 'Eve''s key', '\\xeeee', '{}') returning id",
    )
    .bind(eve)
    .bind(w.eve_ids.organization)
    .fetch_one(&app.admin)
    .await
    .expect("Eve's passkey");
    let eves_session: Uuid = sqlx::query_scalar(
        "select public_id from paddock_private.sessions where member_id = $1 limit 1",
    )
    .bind(eve)
    .fetch_one(&app.admin)
    .await
    .expect("Eve's session");
    for (call, expected) in [
        (format!("select paddock_remove_member('{eve}', null, null)::text"), "false"),
        (format!("select paddock_set_role('{eve}', 'member', null, null)"), "unchanged"),
        (format!("select paddock_create_reset_link('{eve}', '\\x01', null, null)::text"), "false"),
        (format!("select paddock_revoke_sessions('{eves_session}', null, null)::text"), "0"),
        ("select paddock_reset_link(sha256('guess'))::text".to_owned(), ""),
        ("select paddock_reset_password(sha256('guess'), 'x', null, null)::text".to_owned(), "false"),
        ("select paddock_change_password('\\x00', '{}', 'x', '\\x03', null, null)::text".to_owned(), "false"),
        ("select paddock_reauthenticate('\\x00', '{}', null, null, null, null, null, null)::text".to_owned(), "false"),
        ("select paddock_recovery_codes_left()::text".to_owned(), "0"),
        // A device cookie is minted only for a live session's own secret.
        ("select paddock_device_cookie(sha256('guess'), '{}')".to_owned(), ""),
        ("select count(*)::text from paddock_pending_second_factor(sha256('guess'))".to_owned(), "0"),
        ("select count(*)::text from paddock_second_factor_attempt(sha256('guess'), 'x')".to_owned(), "0"),
        ("select count(*)::text from paddock_complete_second_factor(sha256('guess'), '\\x04', '{}', 'totp', 1, '\\x00', null, 'x', null, null)".to_owned(), "0"),
        ("select paddock_disable_totp(null, null)".to_owned(), "done"),
        ("select paddock_enable_totp(1, '{}', null, null)::text".to_owned(), "false"),
        ("select paddock_replace_recovery_codes('{}', null, null)::text".to_owned(), "false"),
        (format!("select paddock_remove_passkey('{eves_passkey}', null, null)"), "not_found"),
        ("select paddock_passkey_used('\\xeeee', '{}', '\\x00')::text".to_owned(), "false"),
        ("select paddock_add_passkey('x', '\\xeeee', '{}', '\\x00', null, null)".to_owned(), "refused"),
        ("select paddock_begin_passkey_ceremony('register', '{}', '\\x00')::text".to_owned(), "false"),
        ("select paddock_take_passkey_ceremony('register')".to_owned(), ""),
        ("select count(*)::text from paddock_pending_passkeys(sha256('guess'))".to_owned(), "0"),
        ("select paddock_begin_second_factor_passkey(sha256('guess'), '{}', '\\x00')::text".to_owned(), "false"),
        ("select paddock_take_second_factor_passkey(sha256('guess'))".to_owned(), ""),
    ] {
        let rows = console.run(&call).await.unwrap_or_else(|e| panic!("{call}: {e}"));
        let value: Option<String> = rows[0].get(0);
        assert_eq!(value.unwrap_or_default(), expected, "{call}");
    }
    let listed: Vec<Uuid> = console
        .run("select session_id from paddock_sessions()")
        .await
        .expect("sessions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let adas: Vec<Uuid> =
        sqlx::query_scalar("select public_id from paddock_private.sessions where member_id = $1")
            .bind(w.ada_ids.member)
            .fetch_all(&app.admin)
            .await
            .expect("Ada's sessions");
    assert!(
        !listed.is_empty() && listed.iter().all(|s| adas.contains(s)),
        "only Ada's sessions"
    );
    console
        .run("select paddock_set_policy(true, null, null)")
        .await
        .expect("policy");
    console.run("select paddock_sweep()").await.expect("sweep");
    console
        .run("select paddock_end_session()")
        .await
        .expect("end session");
    console.commit().await;
    let policies: Vec<(String, bool)> =
        sqlx::query_as("select name, require_two_factor from organizations order by name")
            .fetch_all(&app.admin)
            .await
            .expect("policies");
    assert_eq!(
        policies,
        [("Club".to_owned(), true), ("Elsewhere".to_owned(), false)],
        "only her own organization's policy"
    );
    let eves_keys: Vec<(String, Option<time::OffsetDateTime>)> =
        sqlx::query_as("select passkey::text, last_used_at from passkeys where member_id = $1")
            .bind(eve)
            .fetch_all(&app.admin)
            .await
            .expect("Eve's passkeys");
    assert_eq!(
        eves_keys,
        [("{}".to_owned(), None)],
        "Eve's passkey untouched"
    );
    // Ending "the current session" ended Ada's, and nobody else's.
    // (Club now requires a second factor, so Bob's live session is sent to set one up.)
    assert_eq!(w.bob.get("/credentials").await.location(), "/settings/totp");
    assert_eq!(w.bob.get("/settings/totp").await.status, 200);
    assert_eq!(w.eve.get("/credentials").await.status, 200);
    assert_eq!(w.ada.get("/credentials").await.location(), "/login");
}

/// The credential ids of `email`'s member, and how many `credential_used`
/// events and used credentials that member has, as the owner sees them.
async fn key_use_trail(app: &TestApp, email: &str) -> (Vec<Uuid>, i64, i64) {
    let ids = ids(app, email).await;
    let credentials: Vec<Uuid> =
        sqlx::query_scalar("select id from credentials where member_id = $1 order by id")
            .bind(ids.member)
            .fetch_all(&app.admin)
            .await
            .expect("credentials");
    let (events, used): (i64, i64) = sqlx::query_as(
        "select (select count(*) from security_events where member_id = $1 and kind = 'credential_used'),
                (select count(*) from credentials where member_id = $1 and last_used_at is not null)",
    )
    .bind(ids.member)
    .fetch_one(&app.admin)
    .await
    .expect("trail");
    (credentials, events, used)
}

#[tokio::test]
async fn the_one_statement_page_function_reads_and_records_only_for_the_secrets_member() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (adas, _, _) = key_use_trail(&app, "ada@example.com").await;
    let (eves, eve_events, eve_used) = key_use_trail(&app, "eve@example.com").await;
    let (bobs, bob_events, bob_used) = key_use_trail(&app, "bob@example.com").await;
    let everyone = format!("array['{}', '{}', '{}']::uuid[]", adas[0], bobs[0], eves[0]);
    let ada_secret = format!(
        "'\\x{}'::bytea",
        paddock::attest::hex(w.ada.session_token().expose_bytes())
    );
    let mut console = Console::as_member(&app, &w.ada).await;
    // A malformed identity is no identity, and no error either.
    let malformed = console
        .run(
            "select set_config('paddock.identity', 'v1:not-a-uuid:x:y:0000', true), paddock_current_member()",
        )
        .await
        .expect("no error");
    assert_eq!(malformed[0].get::<Option<Uuid>, _>(1), None);
    // Without a live session's secret: no identity, no rows, nothing recorded.
    for guess in ["sha256('guess')", "null"] {
        for reads in [
            "null, null, false".to_owned(),
            format!("{everyone}, 'forged', true"),
        ] {
            let opened = console
                .run(&format!(
                    "select * from paddock_open_request({guess}, {reads}, null, null)"
                ))
                .await
                .expect("callable");
            assert!(opened.is_empty(), "{guess} {reads}");
        }
    }
    // With Ada's own secret: exactly what row-level security lets Ada read, and
    // uses recorded for Ada's credential only, whatever ids are asked for.
    let credentials = |rows: Vec<sqlx::postgres::PgRow>| -> Vec<Option<Uuid>> {
        rows.iter().map(|r| r.get(0)).collect()
    };
    let opened = credentials(
        console
            .run(&format!(
                "select credential_id from paddock_open_request({ada_secret}, null, null, false, null, null)"
            ))
            .await
            .expect("open"),
    );
    let visible = credentials(
        console
            .run("select id from credentials")
            .await
            .expect("select"),
    );
    assert_eq!(opened, visible);
    assert_eq!(opened, [Some(adas[0])]);
    let recorded = credentials(
        console
            .run(&format!(
                "select credential_id from paddock_open_request({ada_secret}, {everyone}, 'forged', true, null, null)"
            ))
            .await
            .expect("record"),
    );
    assert_eq!(recorded, [Some(adas[0])]);
    console.commit().await;
    assert_eq!(
        key_use_trail(&app, "eve@example.com").await,
        (eves, eve_events, eve_used)
    );
    assert_eq!(
        key_use_trail(&app, "bob@example.com").await,
        (bobs, bob_events, bob_used)
    );
    let (_, ada_events, ada_used) = key_use_trail(&app, "ada@example.com").await;
    assert!(ada_events >= 1 && ada_used == 1);
}

#[tokio::test]
async fn an_injection_with_no_identity_at_all_sees_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (bob, club) = (w.bob_ids.member, w.bob_ids.organization);
    let mut console = Console::anonymous(&app.pool).await;
    for table in all_tables(&app).await {
        let columns = readable_columns(&app, &table).await;
        if columns.is_empty() {
            console.refused(&format!("select * from {table}")).await;
        } else {
            let rows = console
                .run(&format!("select {} from {table}", columns.join(", ")))
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"));
            assert!(
                rows.is_empty(),
                "{table} shows {} rows without an identity",
                rows.len()
            );
        }
    }
    console
        .run(&format!(
            "select set_config('paddock.member_id', '{bob}', true), set_config('paddock.organization_id', '{club}', true)"
        ))
        .await
        .expect("set_config");
    assert_eq!(
        console
            .number("select count(*)::bigint from credentials")
            .await,
        0
    );
    for statement in [
        format!(
            "insert into security_events (organization_id, member_id, kind) values ('{club}', '{bob}', 'sign_in')"
        ),
        format!(
            "insert into invites (organization_id, code_hash, created_by, expires_at) values ('{club}', '\\x01', '{bob}', now() + interval '1 day')"
        ),
        "update credentials set label = 'pwned'".into(),
    ] {
        match console.affected(&statement).await {
            Err(code) => assert_eq!(code, REFUSED, "{statement}"),
            Ok(rows) => assert_eq!(rows, 0, "{statement}"),
        }
    }
    for call in [
        "select paddock_current_member()",
        "select paddock_current_organization()",
        "select paddock_current_session()",
    ] {
        let rows = console.run(call).await.expect("callable");
        assert!(
            rows[0]
                .try_get::<Option<Uuid>, _>(0)
                .expect("uuid")
                .is_none()
        );
    }
}

#[tokio::test]
async fn the_posture_check_accepts_the_app_role() {
    let app = TestApp::spawn().await;
    let problems = posture::problems(&app.pool).await.expect("check");
    assert!(problems.is_empty(), "{problems:?}");
}

async fn pool_as(user: &str, database: &str) -> PgPool {
    PgPool::connect(&url(user, database))
        .await
        .expect("connect")
}

#[tokio::test]
async fn the_posture_check_refuses_a_superuser_a_bypassrls_role_and_a_table_owner() {
    let app = TestApp::spawn().await;
    let superuser = pool_as(embedded::SUPERUSER, &app.database).await;
    let problems = posture::problems(&superuser).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("superuser")),
        "{problems:?}"
    );

    sqlx::query("do $$ begin if not exists (select from pg_roles where rolname = 'sneaky') then create role sneaky login bypassrls; end if; end $$")
        .execute(&superuser)
        .await
        .expect("role");
    let sneaky = pool_as("sneaky", &app.database).await;
    let problems = posture::problems(&sneaky).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("BYPASSRLS")),
        "{problems:?}"
    );

    sqlx::query(
        "do $$ begin if not exists (select from pg_roles where rolname = 'owner_in_disguise') then create role owner_in_disguise login nobypassrls; grant paddock_owner to owner_in_disguise; end if; end $$",
    )
    .execute(&superuser)
    .await
    .expect("role");
    let disguised = pool_as("owner_in_disguise", &app.database).await;
    let problems = posture::problems(&disguised).await.expect("check");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("member of `paddock_owner`")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("owns table")),
        "{problems:?}"
    );

    let owner = pool_as(db::OWNER_ROLE, &app.database).await;
    let problems = posture::problems(&owner).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("owns table")),
        "{problems:?}"
    );

    sqlx::query("grant usage on schema paddock_private to paddock_app")
        .execute(&app.admin)
        .await
        .expect("weaken");
    sqlx::query("alter table members no force row level security")
        .execute(&app.admin)
        .await
        .expect("weaken");
    let problems = posture::problems(&app.pool).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("`members` lacks")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("paddock_private")),
        "{problems:?}"
    );

    let err = paddock::startup::check_posture(&app.pool)
        .await
        .expect_err("refuses to serve");
    assert!(err.to_string().contains("refusing to serve"));
}

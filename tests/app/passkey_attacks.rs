//! Passkeys against an attacker, over HTTP with the software authenticator:
//! replayed and misdirected answers, cloned keys, another member's key,
//! guessing, an SQL injection in the member's own request, and two requests
//! racing to remove the last second factors.

use reqwest::StatusCode;

use crate::{
    console::{Console, REFUSED},
    helpers::TestApp,
    passkeys::{
        ORIGIN, add_passkey, age_sign_in, answer_second_step, events, password_step,
        sign_in_options, turn_on_totp,
    },
    soft_authenticator::SoftPasskey,
};

#[tokio::test]
async fn a_passkey_answer_counts_once_and_only_for_the_session_that_asked() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let mut passkey = add_passkey(&ada, "Laptop").await;

    // Another browser past the password step cannot use this browser's challenge.
    let first = password_step(&app, "ada@example.com").await;
    let other = password_step(&app, "ada@example.com").await;
    let options = sign_in_options(&first).await;
    let answer = passkey.assert(&options);
    let stolen = answer_second_step(&other, &answer).await;
    assert_eq!(stolen.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        stolen
            .alert()
            .contains("took too long, or was already used")
    );
    assert_eq!(other.get("/portfolio").await.location(), "/login");

    let done = answer_second_step(&first, &answer).await;
    assert_eq!(done.location(), "/portfolio", "{}", done.body);

    // The same answer again: its challenge is gone, and a new challenge does not match it.
    let again = password_step(&app, "ada@example.com").await;
    let replayed = answer_second_step(&again, &answer).await;
    assert_eq!(replayed.status, StatusCode::UNPROCESSABLE_ENTITY);
    sign_in_options(&again).await;
    let replayed = answer_second_step(&again, &answer).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert!(replayed.alert().contains("could not be verified"));
    assert_eq!(again.get("/portfolio").await.location(), "/login");
}

#[tokio::test]
async fn a_cloned_passkey_or_another_members_passkey_does_not_sign_in() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let mut passkey = add_passkey(&ada, "Laptop").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    let mut bobs = add_passkey(&bob, "Bob's key").await;

    let v = password_step(&app, "ada@example.com").await;
    let options = sign_in_options(&v).await;
    assert_eq!(
        answer_second_step(&v, &passkey.assert(&options))
            .await
            .location(),
        "/portfolio"
    );

    // A copy of the key whose counter did not move on since.
    let v = password_step(&app, "ada@example.com").await;
    let options = sign_in_options(&v).await;
    let cloned = passkey.assert_with_counter(&options, passkey.counter);
    assert_eq!(
        answer_second_step(&v, &cloned).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Bob's passkey answering Ada's challenge.
    let options = sign_in_options(&v).await;
    let refused = answer_second_step(&v, &bobs.assert(&options)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(v.get("/portfolio").await.location(), "/login");
    assert_eq!(
        events(&app, "ada@example.com", "sign_in_failed").await,
        ["wrong authentication code", "wrong authentication code"]
    );

    let options = sign_in_options(&v).await;
    assert_eq!(
        answer_second_step(&v, &passkey.assert(&options))
            .await
            .location(),
        "/portfolio",
        "the real key still works"
    );
}

#[tokio::test]
async fn passkey_guesses_at_sign_in_are_throttled_like_passwords() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    add_passkey(&ada, "Laptop").await;
    let mut unknown = SoftPasskey::new(ORIGIN);
    let v = password_step(&app, "ada@example.com").await;
    for _ in 0..5 {
        let options = sign_in_options(&v).await;
        let wrong = answer_second_step(&v, &unknown.assert(&options)).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    let options = sign_in_options(&v).await;
    let locked = answer_second_step(&v, &unknown.assert(&options)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s > 0)
    );
}

#[tokio::test]
async fn an_injection_cannot_add_a_passkey_or_plant_a_challenge() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let mut passkey = add_passkey(&ada, "Laptop").await;
    age_sign_in(&app, "ada@example.com").await;
    let mallory = SoftPasskey::new(ORIGIN);
    let mut console = Console::as_member(&app, &ada).await;
    assert_eq!(
        console
            .affected(
                "insert into passkeys (member_id, organization_id, name, credential_id, passkey)
                 select paddock_current_member(), paddock_current_organization(), 'mine', '\\x01', '{}'"
            )
            .await,
        Err(REFUSED.to_owned())
    );
    for (call, expected) in [
        (
            "select paddock_add_passkey('mine', '\\x01', '{}', '\\x00', null, null)",
            "refused",
        ),
        (
            "select paddock_begin_passkey_ceremony('reauthenticate', '{}', '\\x00')::text",
            "false",
        ),
        (
            "select paddock_passkey_used('\\x01', '{}', '\\x00')::text",
            "false",
        ),
        (
            "select coalesce(paddock_take_passkey_ceremony('reauthenticate'), 'none')",
            "none",
        ),
    ] {
        let rows = console
            .run(call)
            .await
            .unwrap_or_else(|e| panic!("{call}: {e}"));
        let value: String = sqlx::Row::get(&rows[0], 0);
        assert_eq!(value, expected, "{call}");
    }
    console
        .refused("select * from paddock_private.passkey_ceremonies")
        .await;
    console.commit().await;

    // Without a challenge Paddock began, Mallory's answer confirms nothing.
    let forged = mallory.assert_with_counter(
        r#"{"publicKey":{"challenge":"AAAA","rpId":"localhost"}}"#,
        1,
    );
    let page = ada
        .post(
            "/reauth/passkey",
            &[("next", "/org"), ("credential", &forged)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let options = ada.post("/reauth/passkey/options", &[]).await;
    let page = ada
        .post(
            "/reauth/passkey",
            &[
                ("next", "/org"),
                ("credential", &mallory.assert_with_counter(&options.body, 1)),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNAUTHORIZED,
        "her key is not Ada's"
    );
    let options = ada.post("/reauth/passkey/options", &[]).await;
    let page = ada
        .post(
            "/reauth/passkey",
            &[
                ("next", "/org"),
                ("credential", &passkey.assert(&options.body)),
            ],
        )
        .await;
    assert_eq!(page.location(), "/org");
}

#[tokio::test]
async fn removing_a_passkey_and_turning_off_totp_at_once_leave_a_second_factor() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    add_passkey(&ada, "Laptop").await;
    turn_on_totp(&ada).await;
    let policy = ada
        .post("/org/policy", &[("require_two_factor", "on")])
        .await;
    assert_eq!(policy.status, StatusCode::SEE_OTHER);
    let id: String = sqlx::query_scalar("select id::text from passkeys")
        .fetch_one(&app.admin)
        .await
        .expect("id");

    // Two requests of Ada's at once: one removes the passkey (TOTP remains) and
    // has not committed yet; the other turns TOTP off (the passkey seems to remain).
    let mut removing = Console::as_member(&app, &ada).await;
    let rows = removing
        .run(&format!(
            "select paddock_remove_passkey('{id}', null, null)"
        ))
        .await
        .expect("remove");
    assert_eq!(sqlx::Row::get::<String, _>(&rows[0], 0), "done");
    let mut disabling = Console::as_member(&app, &ada).await;
    let superuser = sqlx::PgPool::connect(&crate::helpers::url(
        paddock::db::embedded::SUPERUSER,
        "postgres",
    ))
    .await
    .expect("superuser");
    let disable = async {
        let rows = disabling
            .run("select paddock_disable_totp(null, null)")
            .await
            .expect("disable");
        disabling.commit().await;
        sqlx::Row::get::<String, _>(&rows[0], 0)
    };
    let finish_removing = async {
        crate::helpers::wait_until(
            std::time::Duration::from_secs(10),
            "turning TOTP off waits for the removal",
            || async {
                sqlx::query_scalar::<_, i64>(
                    "select count(*) from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'",
                )
                .bind(&app.database)
                .fetch_one(&superuser)
                .await
                .expect("pg_stat_activity")
                    > 0
            },
        )
        .await;
        removing.commit().await;
    };
    let (disabled, ()) = tokio::join!(disable, finish_removing);
    assert_eq!(disabled, "required");
    let (totp, passkeys): (i64, i64) = sqlx::query_as(
        "select (select count(*) from totp where enabled_at is not null), (select count(*) from passkeys)",
    )
    .fetch_one(&app.admin)
    .await
    .expect("counts");
    assert_eq!((totp, passkeys), (1, 0), "the authenticator app stays");
}

//! Device cookies: a browser that has signed in to an account before is not
//! locked out by other people's failed guesses, and the cookie cannot be forged
//! or used for another account.

use paddock::totp::TotpSecret;
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, Visitor, element_text};

const WRONG: &str = "a wrong password guess";

/// Ada signs up (her browser is remembered for her account) and signs out.
async fn ada_signed_up_and_out(app: &TestApp) -> Visitor {
    let ada = app.owner("ada@example.com", "Club").await;
    let device = ada.cookie("paddock_device").expect("a device cookie");
    assert!(!device.is_empty());
    assert_eq!(ada.post("/logout", &[]).await.status, StatusCode::SEE_OTHER);
    ada
}

/// Fresh browsers guess Ada's password until her account is locked for them.
async fn lock_ada_for_strangers(app: &TestApp) {
    for i in 0..5 {
        let page = app.visitor().sign_in("ada@example.com", WRONG).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let page = app.visitor().sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked for strangers"
    );
}

async fn locks_recorded(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "select detail from security_events where kind = 'sign_in_locked' order by created_at",
    )
    .fetch_all(&app.admin)
    .await
    .expect("events")
}

#[tokio::test]
async fn a_browser_that_signed_in_before_gets_in_while_others_lock_the_account_and_address() {
    let app = TestApp::spawn().await;
    let ada = ada_signed_up_and_out(&app).await;
    lock_ada_for_strangers(&app).await;
    // The same address now also reaches its limit of 20 (5 above, 15 here).
    for i in 0..15 {
        let page = app
            .visitor()
            .sign_in(&format!("guess{i}@example.com"), WRONG)
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let page = app.visitor().sign_in("someone@example.com", WRONG).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "address locked");

    let page = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.alert());
    assert_eq!(page.location(), "/portfolio");
    assert_eq!(ada.get("/portfolio").await.status, StatusCode::OK);

    // Her success does not reset what the strangers have used up.
    let page = app.visitor().sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        locks_recorded(&app).await,
        ["too many failed sign-ins for this account"]
    );
}

#[tokio::test]
async fn a_device_cookie_opens_nothing_for_another_account_and_cannot_be_forged() {
    let app = TestApp::spawn().await;
    let shared = ada_signed_up_and_out(&app).await;
    app.owner("bob@example.com", "Other").await;
    // Bob uses Ada's browser once: it now remembers both accounts.
    let page = shared.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        shared.post("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let cookie = shared.cookie("paddock_device").expect("a device cookie");
    let (bobs, adas) = cookie.split_once('~').expect("two entries, newest first");

    lock_ada_for_strangers(&app).await;
    for _ in 0..5 {
        app.visitor().sign_in("bob@example.com", WRONG).await;
    }
    // Each entry is bound to its own account.
    for (entry, email) in [(adas, "bob@example.com"), (bobs, "ada@example.com")] {
        let carrier = app.visitor();
        carrier.add_cookie("paddock_device", entry);
        let page = carrier.sign_in(email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{email}");
    }
    let (nonce, mac) = adas.split_once('.').expect("nonce.mac");
    let flipped = if mac.starts_with('0') { "1" } else { "0" };
    for forged in [
        format!("{nonce}.{flipped}{}", &mac[1..]),
        format!("{}.{mac}", "0".repeat(32)),
        format!("{nonce}.{}", "0".repeat(64)),
    ] {
        let forger = app.visitor();
        forger.add_cookie("paddock_device", &forged);
        let page = forger.sign_in("ada@example.com", PASSWORD).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{forged}");
    }
    // The shared browser signs in to both.
    for email in ["bob@example.com", "ada@example.com"] {
        let page = shared.sign_in(email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{email}");
        assert_eq!(
            shared.post("/logout", &[]).await.status,
            StatusCode::SEE_OTHER
        );
    }
    assert_eq!(
        shared.cookie("paddock_device").as_deref(),
        Some(cookie.as_str()),
        "a remembered account is not added again"
    );
}

#[tokio::test]
async fn a_remembered_browser_has_its_own_limit_of_five_guesses() {
    let app = TestApp::spawn().await;
    let ada = ada_signed_up_and_out(&app).await;
    for i in 0..5 {
        let page = ada.sign_in("ada@example.com", WRONG).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let page = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.header("retry-after").parse::<u32>().is_ok());
    assert_eq!(
        locks_recorded(&app).await,
        ["too many failed sign-ins on a device this account signed in from before"]
    );
    // Guesses on that device did not use up the account's budget elsewhere.
    let elsewhere = app.visitor();
    let page = elsewhere.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_second_step_on_a_remembered_browser_is_not_locked_by_strangers() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let setup = ada.get("/settings/totp").await;
    let secret = element_text(&setup.body, "class=\"secret-once\"");
    let secret = TotpSecret::from_base32(&secret).expect("a base32 secret");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let code = secret.code_at(now).expect("a code");
    let enabled = ada.post("/settings/totp", &[("code", &code)]).await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.alert());
    let recovery = element_text(&enabled.body, "class=\"secret-once\"");
    assert_eq!(ada.post("/logout", &[]).await.status, StatusCode::SEE_OTHER);

    lock_ada_for_strangers(&app).await;
    let page = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.location(), "/login/2fa", "{}", page.alert());
    let page = ada.post("/login/2fa", &[("code", &recovery)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.alert());
    assert_eq!(page.location(), "/portfolio");
    let page = app.visitor().sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "still locked for strangers"
    );
}

//! Account security in a real browser (headless Chromium): passkeys with
//! Chromium's virtual authenticator, two-factor codes computed from the key the
//! page shows, two sessions in two browsers, an owner removing a member — with
//! JavaScript on and, where a flow does not need it, off.
//!
//! Each page visited is checked for what an accessibility checker would flag
//! first (see `a11y.rs`); with `PADDOCK_SCREENSHOTS=<dir>` the key pages are
//! also saved as PNGs at desktop and phone widths.

use std::time::{SystemTime, UNIX_EPOCH};

use chromiumoxide::cdp::browser_protocol::{
    emulation::{ClearDeviceMetricsOverrideParams, SetDeviceMetricsOverrideParams},
    page::GetLayoutMetricsParams,
    web_authn::{
        AddVirtualAuthenticatorParams, AuthenticatorId, AuthenticatorProtocol,
        AuthenticatorTransport, Ctap2Version, EnableParams, GetCredentialsParams,
        VirtualAuthenticatorOptions,
    },
};
use paddock::totp::TotpSecret;

use crate::{
    a11y::audit,
    browser::{Browser, members, table_rows},
    helpers::{PASSWORD, TestApp},
};

/// WebAuthn needs a domain: the browser visits `localhost`, not 127.0.0.1.
fn localhost(app: &TestApp) -> String {
    format!("http://localhost:{}", app.addr.port())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A platform authenticator (CTAP2.1, internal, resident keys, user
/// verification that succeeds) in this browser's tab.
async fn add_virtual_authenticator(browser: &Browser) -> AuthenticatorId {
    browser
        .page
        .execute(EnableParams::default())
        .await
        .expect("WebAuthn.enable");
    let options = VirtualAuthenticatorOptions::builder()
        .protocol(AuthenticatorProtocol::Ctap2)
        .ctap2_version(Ctap2Version::Ctap21)
        .transport(AuthenticatorTransport::Internal)
        .has_resident_key(true)
        .has_user_verification(true)
        .is_user_verified(true)
        .automatic_presence_simulation(true)
        .build()
        .expect("authenticator options");
    browser
        .page
        .execute(AddVirtualAuthenticatorParams::new(options))
        .await
        .expect("WebAuthn.addVirtualAuthenticator")
        .result
        .authenticator_id
}

/// Passkeys the virtual authenticator holds.
async fn credentials_on(browser: &Browser, authenticator: &AuthenticatorId) -> usize {
    browser
        .page
        .execute(GetCredentialsParams::new(authenticator.clone()))
        .await
        .expect("WebAuthn.getCredentials")
        .result
        .credentials
        .len()
}

/// Saves the page as `{name}-desktop.png` and `{name}-phone.png` in
/// `$PADDOCK_SCREENSHOTS`, whole pages, when that is set.
async fn screenshots(browser: &Browser, name: &str) {
    let Some(dir) = std::env::var_os("PADDOCK_SCREENSHOTS") else {
        return;
    };
    std::fs::create_dir_all(&dir).expect("the screenshot dir");
    for (label, width, mobile) in [("desktop", 1280, false), ("phone", 390, true)] {
        let metrics = |height: i64| SetDeviceMetricsOverrideParams::new(width, height, 1.0, mobile);
        browser
            .page
            .execute(metrics(800))
            .await
            .expect("emulating a size");
        let layout = browser
            .page
            .execute(GetLayoutMetricsParams::default())
            .await
            .expect("layout metrics");
        let height = layout.result.css_content_size.height.ceil() as i64;
        browser
            .page
            .execute(metrics(height.max(600)))
            .await
            .expect("emulating a size");
        let png = browser
            .page
            .screenshot(chromiumoxide::page::ScreenshotParams::builder().build())
            .await
            .expect("a screenshot");
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}-{label}.png")),
            png,
        )
        .expect("saving a screenshot");
    }
    browser
        .page
        .execute(ClearDeviceMetricsOverrideParams::default())
        .await
        .expect("back to the window's size");
}

async fn assert_accessible(browser: &Browser) {
    let problems = audit(&browser.html().await);
    assert!(
        problems.is_empty(),
        "{}: {problems:?}",
        browser.current_path().await
    );
}

/// Makes every session of `email` older than the step-up window.
async fn age_sign_in(app: &TestApp, email: &str) {
    sqlx::query(
        "update paddock_private.sessions set authenticated_at = now() - interval '11 minutes'
         where member_id = (select id from members where email = $1)",
    )
    .bind(email)
    .execute(&app.admin)
    .await
    .expect("age the sign-in");
}

/// Email and password on `/login`; the browser lands on `/login/2fa`.
async fn password_step(browser: &Browser, email: &str) {
    browser.goto("/login").await;
    browser.fill("Email", email).await;
    browser.fill("Password", PASSWORD).await;
    browser.click_button("Sign in").await;
    browser.assert_path("/login/2fa").await;
}

/// Every `<code class="secret-once">` text in `html`.
fn secrets_once(html: &str) -> Vec<String> {
    html.split("class=\"secret-once\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .map(str::to_owned)
        .collect()
}

/// Turns TOTP on from `/settings`, reading the key off the page like a person
/// typing it into an authenticator app; returns the secret and the ten
/// recovery codes shown once.
async fn turn_on_totp(browser: &Browser) -> (TotpSecret, Vec<String>) {
    browser.goto("/settings").await;
    browser.click_link("Set up two-factor authentication").await;
    browser.assert_path("/settings/totp").await;
    assert_accessible(browser).await;
    let key = browser
        .text_of("code.secret-once")
        .await
        .expect("the key for manual entry");
    let secret = TotpSecret::from_base32(&key).expect("a base32 key");
    browser
        .fill("Authentication code", &secret.code_at(now()).expect("code"))
        .await;
    browser
        .click_button("Turn on two-factor authentication")
        .await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert!(status.contains("recovery codes"), "{status}");
    let codes = secrets_once(&browser.html().await);
    assert_eq!(codes.len(), 10, "ten recovery codes");
    (secret, codes)
}

#[tokio::test]
async fn a_passkey_is_added_used_at_sign_in_and_to_confirm_and_removed_in_the_browser() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let browser = Browser::launch_at(&localhost(&app)).await;
    let authenticator = add_virtual_authenticator(&browser).await;
    browser.sign_up_owner(email, "Club").await;

    browser.goto("/settings").await;
    assert!(
        browser
            .xpath("//p[contains(@class, 'needs-js') and @hidden]")
            .await
            .is_some(),
        "with JavaScript on, the hint is hidden"
    );
    browser.fill("Passkey name", "Laptop").await;
    browser.click_button("Add passkey").await;
    browser.assert_path("/settings").await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert!(
        status.contains("Passkey “Laptop” added"),
        "{status}\n{}",
        browser.text().await
    );
    let rows = table_rows(&browser.html().await, "Your passkeys");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0][0].as_str(), rows[0][2].as_str()),
        ("Laptop", "Never")
    );
    assert_eq!(credentials_on(&browser, &authenticator).await, 1);
    assert_accessible(&browser).await;
    screenshots(&browser, "settings").await;

    browser.sign_out().await;
    password_step(&browser, email).await;
    assert_accessible(&browser).await;
    screenshots(&browser, "login-2fa").await;
    browser.click_button("Use a passkey").await;
    browser.assert_path("/portfolio").await;

    age_sign_in(&app, email).await;
    browser.goto("/org").await;
    assert!(
        !browser.text().await.contains("Create invite"),
        "owner actions need a recent sign-in"
    );
    browser.click_link("Confirm it's you").await;
    browser.assert_path("/reauth?next=%2Forg").await;
    assert_accessible(&browser).await;
    screenshots(&browser, "reauth").await;
    browser.click_button("Use a passkey").await;
    browser.assert_path("/org").await;
    assert!(
        browser.text().await.contains("Create invite"),
        "fresh again"
    );
    assert_accessible(&browser).await;

    browser.goto("/settings").await;
    let rows = table_rows(&browser.html().await, "Your passkeys");
    assert_ne!(rows[0][2], "Never", "the last use is shown");
    browser.click_button("Remove").await;
    browser.assert_path("/settings").await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert_eq!(status, "Passkey removed.");
    assert!(browser.text().await.contains("No passkeys yet."));

    browser.click_link("Activity").await;
    let text = browser.text().await;
    for event in ["Passkey added", "Passkey removed", "Confirmed it was me"] {
        assert!(text.contains(event), "{event}");
    }
    browser.close().await;
}

#[tokio::test]
async fn with_javascript_off_two_factor_works_with_codes_and_passkeys_say_they_need_javascript() {
    let app = TestApp::spawn().await;
    let email = "linus@example.com";
    let browser = Browser::launch_at(&localhost(&app)).await;
    browser.disable_javascript().await;
    browser.sign_up_owner(email, "Kernel Club").await;

    browser.goto("/settings").await;
    assert!(
        browser
            .text()
            .await
            .contains("Adding a passkey needs JavaScript")
    );
    browser.fill("Passkey name", "Laptop").await;
    browser.click_button("Add passkey").await;
    browser.assert_path("/settings/passkeys").await;
    let error = browser
        .text_of("#passkey_name-error")
        .await
        .unwrap_or_default();
    assert!(error.contains("needs JavaScript"), "{error}");
    assert_accessible(&browser).await;
    screenshots(&browser, "settings-passkey-nojs").await;

    let (secret, recovery) = turn_on_totp(&browser).await;
    // A passkey added elsewhere (a browser with JavaScript, here over HTTP),
    // signed in there with a recovery code.
    let elsewhere = app.visitor();
    let signed_in = elsewhere.sign_in(email, PASSWORD).await;
    assert_eq!(signed_in.location(), "/login/2fa");
    let signed_in = elsewhere
        .post("/login/2fa", &[("code", &recovery[0])])
        .await;
    assert_eq!(signed_in.location(), "/portfolio", "{}", signed_in.body);
    crate::passkeys::add_passkey(&elsewhere, "Phone").await;

    browser.sign_out().await;
    password_step(&browser, email).await;
    let text = browser.text().await;
    assert!(text.contains("Using a passkey needs JavaScript"), "{text}");
    let button = browser
        .xpath("//button[normalize-space(.)='Use a passkey' and @hidden]")
        .await
        .expect("the passkey button, marked hidden without JavaScript");
    assert!(
        button.bounding_box().await.is_err(),
        "and not drawn (the stylesheet honours `hidden` on buttons)"
    );
    assert_accessible(&browser).await;
    screenshots(&browser, "login-2fa-nojs").await;
    // The next time step: the one just used cannot be used twice.
    let code = secret.code_at(now() + 30).expect("code");
    browser.fill("Authentication code", &code).await;
    browser.click_button("Verify").await;
    browser.assert_path("/portfolio").await;

    age_sign_in(&app, email).await;
    browser.goto("/reauth?next=/org").await;
    assert!(
        browser
            .text()
            .await
            .contains("Using a passkey needs JavaScript")
    );
    assert_accessible(&browser).await;
    screenshots(&browser, "reauth-nojs").await;
    browser.fill("Password", PASSWORD).await;
    browser.fill("Authentication code", &recovery[1]).await;
    browser.click_button("Confirm").await;
    browser.assert_path("/org").await;
    assert!(browser.text().await.contains("Create invite"));
    browser.close().await;
}

#[tokio::test]
async fn two_factor_with_an_authenticator_app_in_the_browser() {
    let app = TestApp::spawn().await;
    let email = "grace@example.com";
    let browser = Browser::launch(&app).await;
    browser.sign_up_owner(email, "Compilers").await;
    let (secret, _) = turn_on_totp(&browser).await;
    browser.goto("/settings").await;
    assert!(
        browser
            .text()
            .await
            .contains("10 of 10 recovery codes left")
    );
    browser.sign_out().await;

    password_step(&browser, email).await;
    browser.fill("Authentication code", "000000").await;
    browser.click_button("Verify").await;
    browser.assert_path("/login/2fa").await;
    assert!(
        browser.text_of("[role=alert]").await.is_some(),
        "a wrong code is refused"
    );
    browser
        .fill(
            "Authentication code",
            &secret.code_at(now() + 30).expect("code"),
        )
        .await;
    browser.click_button("Verify").await;
    browser.assert_path("/portfolio").await;
    browser.close().await;
}

async fn end_the_other_session(javascript: bool) {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let here = Browser::launch(&app).await;
    let there = Browser::launch(&app).await;
    if !javascript {
        here.disable_javascript().await;
        there.disable_javascript().await;
    }
    here.sign_up_owner(email, "Club").await;
    there.sign_in(email, PASSWORD).await;

    here.goto("/settings").await;
    let rows = table_rows(&here.html().await, "Sessions");
    assert_eq!(rows.len(), 2, "two browsers, two sessions: {rows:?}");
    assert!(
        rows[0].last().is_some_and(|c| c == "This session"),
        "{rows:?}"
    );
    here.click_xpath(
        "//table[caption='Sessions']//button[normalize-space(.)='Sign out']",
        "the other session's Sign out",
    )
    .await;
    here.assert_path("/settings").await;
    let status = here.text_of("[role=status]").await.unwrap_or_default();
    assert_eq!(status, "That session was signed out.");
    assert_eq!(table_rows(&here.html().await, "Sessions").len(), 1);

    there.goto("/portfolio").await;
    there.assert_path("/login").await;
    here.goto("/portfolio").await;
    here.assert_path("/portfolio").await;
    here.close().await;
    there.close().await;
}

#[tokio::test]
async fn a_member_sees_two_browsers_sessions_and_ends_the_other() {
    end_the_other_session(true).await;
}

#[tokio::test]
async fn ending_the_other_session_works_with_javascript_disabled() {
    end_the_other_session(false).await;
}

async fn remove_a_member(javascript: bool) {
    let app = TestApp::spawn().await;
    let owner = Browser::launch(&app).await;
    let member = Browser::launch(&app).await;
    if !javascript {
        owner.disable_javascript().await;
        member.disable_javascript().await;
    }
    owner.sign_up_owner("ada@example.com", "Club").await;
    owner.goto("/org").await;
    owner.click_button("Create invite").await;
    let code = owner
        .text_of("code.secret-once")
        .await
        .expect("an invite code");
    member.sign_up_member("grace@example.com", &code).await;

    owner.goto("/org").await;
    assert_accessible(&owner).await;
    if javascript {
        screenshots(&owner, "org").await;
    }
    owner
        .click_xpath(
            "//button[@aria-label='Remove grace@example.com']",
            "Remove for grace@example.com",
        )
        .await;
    owner.assert_path("/org").await;
    let status = owner.text_of("[role=status]").await.unwrap_or_default();
    assert!(status.contains("The member was removed"), "{status}");
    assert_eq!(
        members(&owner).await,
        [("ada@example.com".to_owned(), "Owner".to_owned())]
    );

    member.goto("/portfolio").await;
    member.assert_path("/login").await;
    member.fill("Email", "grace@example.com").await;
    member.fill("Password", PASSWORD).await;
    member.click_button("Sign in").await;
    member.assert_path("/login").await;
    assert!(
        member.text_of("[role=alert]").await.is_some(),
        "sign-in is refused"
    );
    owner.close().await;
    member.close().await;
}

#[tokio::test]
async fn an_owner_removes_a_member_in_the_browser() {
    remove_a_member(true).await;
}

#[tokio::test]
async fn removing_a_member_works_with_javascript_disabled() {
    remove_a_member(false).await;
}

//! Sign-up, sign-in, sessions, CSRF, throttling, invites, headers.

use paddock::config::SignupMode;
use reqwest::StatusCode;

use crate::helpers::{Options, PASSWORD, TestApp};

#[tokio::test]
async fn root_sends_visitors_to_login_and_members_to_their_portfolio() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor();
    let page = visitor.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login");

    let owner = app.owner("ada@example.com", "Ada's Club").await;
    let page = owner.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/portfolio");
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_login_from_every_member_page() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor();
    for path in [
        "/portfolio",
        "/activity",
        "/org",
        "/credentials",
        "/credentials/new",
        "/accounts/00000000-0000-0000-0000-000000000000",
    ] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/login", "{path}");
    }
}

#[tokio::test]
async fn signing_up_creates_an_organization_with_me_as_owner() {
    let app = TestApp::spawn().await;
    let owner = app.owner("Ada@Example.com", "Ada's Club").await;
    let page = owner.get("/org").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Ada&#39;s Club") || page.body.contains("Ada&#x27;s Club"));
    assert!(page.body.contains("<caption>Members</caption>"));
    assert!(page.body.contains("ada@example.com"), "email is normalized");
    assert!(page.body.contains("Owner"));
    assert!(page.body.contains("Create invite"));
    for link in [
        "Portfolio",
        "Credentials",
        "Activity",
        "Organization",
        "Sign out",
    ] {
        assert!(page.body.contains(link), "header has {link}");
    }
}

#[tokio::test]
async fn the_empty_portfolio_prompts_to_add_a_credential() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    let page = owner.get("/portfolio").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("href=\"/credentials/new\">Add credential</a>")
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    for (page, personal) in [
        (app.visitor().get("/login").await, true),
        (app.visitor().get("/signup").await, true),
        (app.visitor().get("/nowhere").await, false),
        (owner.get("/org").await, true),
        (owner.get("/activity").await, true),
    ] {
        let csp = page.header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("referrer-policy"), "same-origin");
        if personal {
            assert_eq!(page.header("cache-control"), "no-store");
        }
    }
    let css = app.visitor().get("/static/paddock.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("cache-control").contains("max-age=31536000"));
}

#[tokio::test]
async fn the_session_cookie_has_the_promised_flags() {
    let app = TestApp::spawn().await;
    let page = app.visitor().get("/login").await;
    let cookie = page.header("set-cookie");
    assert!(cookie.starts_with("paddock_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback is not Secure"
    );
}

fn session_id(page: &crate::helpers::Page) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("paddock_session="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

#[tokio::test]
async fn signing_in_issues_a_new_session_id() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    owner.post("/logout", &[]).await;

    let visitor = app.visitor();
    let before = session_id(&visitor.get("/login").await).expect("anonymous session");
    let signed_in = visitor.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/portfolio");
    let after = session_id(&signed_in).expect("new cookie at sign-in");
    assert_ne!(before, after);
}

#[tokio::test]
async fn a_cookie_replayed_after_sign_out_is_refused() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor();
    visitor.get("/signup").await;
    let signup = visitor.sign_up("ada@example.com", "Club", "").await;
    let cookie = session_id(&signup).expect("session cookie");
    let out = visitor.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");

    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url("/portfolio"))
        .header("cookie", format!("paddock_session={cookie}"))
        .send()
        .await
        .expect("request");
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(replay.headers()["location"], "/login");
    let sessions: i64 = sqlx::query_scalar("select count(*) from paddock_private.sessions")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(sessions, 0, "sign-out deletes the session server-side");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_generic_401() {
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    let wrong = app
        .visitor()
        .sign_in("ada@example.com", "not the password at all")
        .await;
    let unknown = app.visitor().sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.alert(), unknown.alert());
    assert!(wrong.alert().contains("do not match"));
    assert!(
        !wrong.body.contains("not the password at all"),
        "password is never echoed"
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    let page = owner.post_raw("/org/invites", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = owner
        .post_raw("/org/invites", &[("csrf_token", "forged")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let invites: i64 = sqlx::query_scalar("select count(*) from invites")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(invites, 0);

    let visitor = app.visitor();
    visitor.get("/signup").await;
    let page = visitor
        .post_raw(
            "/signup",
            &[
                ("email", "eve@example.com"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", "Eve"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let members: i64 = sqlx::query_scalar("select count(*) from members")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(members, 1);
}

#[tokio::test]
async fn a_cross_site_post_is_refused_even_with_a_valid_token() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    let token = owner.csrf().await;
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let response = owner
            .http
            .post(app.url("/org/invites"))
            .header(name, value)
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
    }
    let ok = owner.post("/org/invites", &[]).await;
    assert_eq!(ok.status, StatusCode::OK, "same-origin POST works");
}

/// Form fields, the id of the expected error element, and part of its message.
type SignupCase<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[tokio::test]
async fn invalid_sign_up_input_gets_422_with_messages_and_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor();
    let cases: &[SignupCase] = &[
        (
            &[
                ("email", "not-an-email"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", "Club"),
            ],
            "email-error",
            "Enter an email address",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", "short"),
                ("confirm_password", "short"),
                ("organization_name", "Club"),
            ],
            "password-error",
            "at least 12",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", "password12345"),
                ("confirm_password", "password12345"),
                ("organization_name", "Club"),
            ],
            "password-error",
            "too easy to guess",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm_password", "something else entirely"),
                ("organization_name", "Club"),
            ],
            "confirm_password-error",
            "differ",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
            "organization_name-error",
            "organization name",
        ),
        (
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", "Club"),
                ("invite_code", "abc"),
            ],
            "invite_code-error",
            "not both",
        ),
    ];
    for (fields, error_id, message) in cases {
        let page = visitor.post("/signup", fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{error_id}");
        let text = crate::helpers::element_text(&page.body, &format!("id=\"{error_id}\""));
        assert!(text.contains(message), "{error_id}: {text}");
        assert!(
            page.body
                .contains(&format!("aria-describedby=\"{error_id}"))
        );
        assert!(page.alert().contains("fix"), "summary in role=alert");
        assert!(
            !page.body.contains(PASSWORD),
            "the password is never echoed back"
        );
        let email = fields
            .iter()
            .find(|(k, _)| *k == "email")
            .map(|(_, v)| *v)
            .unwrap_or("");
        assert!(
            page.body.contains(&format!("value=\"{email}\"")),
            "email kept"
        );
    }
    let members: i64 = sqlx::query_scalar("select count(*) from members")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(members, 0, "nothing was created");
}

#[tokio::test]
async fn an_email_can_only_sign_up_once() {
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    let page = app.visitor().sign_up("ADA@example.com", "Other", "").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("already exists"));
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled_even_for_a_fresh_browser() {
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    for _ in 0..5 {
        let page = app
            .visitor()
            .sign_in("ada@example.com", "wrong password guess")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // A new cookie jar, and even the right password: still locked.
    let page = app.visitor().sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = page
        .header("retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    assert!(page.alert().contains("Too many"));

    let locked: i64 =
        sqlx::query_scalar("select count(*) from security_events where kind = 'sign_in_locked'")
            .fetch_one(&app.admin)
            .await
            .expect("count");
    assert_eq!(locked, 1, "the lockout is recorded once");
}

#[tokio::test]
async fn one_address_trying_many_accounts_is_throttled() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor();
    for i in 0..20 {
        let page = visitor
            .sign_in(&format!("guess{i}@example.com"), "wrong password guess")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let page = visitor
        .sign_in("someone-else@example.com", "wrong password guess")
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!page.header("retry-after").is_empty());
}

#[tokio::test]
async fn an_invite_lets_one_person_join_once() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    let code = owner.create_invite().await;
    assert!(
        owner.get("/org").await.body.find(&code).is_none(),
        "the code is shown only once"
    );
    let stored: i64 = sqlx::query_scalar("select count(*) from invites where code_hash = $1 or encode(code_hash, 'escape') like '%' || $2 || '%'")
        .bind(code.as_bytes())
        .bind(&code)
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(stored, 0, "only a hash of the code is stored");

    let bob = app.member("bob@example.com", &code).await;
    let page = bob.get("/org").await;
    assert!(page.body.contains("ada@example.com") && page.body.contains("bob@example.com"));
    assert!(page.body.contains("Member"));
    assert!(
        !page.body.contains("Create invite"),
        "members cannot invite"
    );
    let refused = bob.post("/org/invites", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Only an owner"), "{}", refused.body);

    let again = app.visitor().sign_up("carol@example.com", "", &code).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("not valid"));

    let owner_activity = owner.get("/activity").await;
    assert!(owner_activity.body.contains("Invite created"));
    assert!(owner_activity.body.contains("Invite accepted"));
}

#[tokio::test]
async fn an_expired_invite_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    let code = owner.create_invite().await;
    sqlx::query("update invites set expires_at = now() - interval '1 minute'")
        .execute(&app.admin)
        .await
        .expect("expire");
    let page = app.visitor().sign_up("bob@example.com", "", &code).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("expired"));
}

#[tokio::test]
async fn invite_only_mode_refuses_new_organizations_but_accepts_invites() {
    let app = TestApp::spawn_with(Options {
        signup: SignupMode::InviteOnly,
        ..Options::default()
    })
    .await;
    let page = app.visitor().sign_up("ada@example.com", "Club", "").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("closed"));

    // An owner (seeded directly here) can still invite people in.
    let hash = paddock_hash("seeded-code");
    sqlx::query(
        "with o as (insert into organizations (name) values ('Club') returning id),
              m as (insert into members (organization_id, email, password_hash, role)
                    select id, 'owner@example.com', 'x', 'owner' from o returning id, organization_id)
         insert into invites (organization_id, code_hash, created_by, expires_at)
         select organization_id, $1, id, now() + interval '1 day' from m",
    )
    .bind(hash)
    .execute(&app.admin)
    .await
    .expect("seed");
    let bob = app.member("bob@example.com", "seeded-code").await;
    assert!(bob.get("/org").await.body.contains("owner@example.com"));
}

fn paddock_hash(code: &str) -> Vec<u8> {
    orion::hash::digest(code.as_bytes())
        .expect("hash")
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn activity_lists_my_sign_ins_failures_and_sign_outs() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ada@example.com", "Club").await;
    owner.post("/logout", &[]).await;
    app.visitor()
        .sign_in("ada@example.com", "wrong password guess")
        .await;
    let again = app.visitor();
    assert_eq!(
        again.sign_in("ada@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let page = again.get("/activity").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<caption>Security events</caption>"));
    for label in [
        "Account created",
        "Signed in",
        "Signed out",
        "Failed sign-in",
    ] {
        assert!(page.body.contains(label), "{label}");
    }
    assert!(page.body.contains("127.0.0.1"), "the IP is recorded");
}

#[tokio::test]
async fn unknown_routes_get_the_404_page_and_healthz_answers() {
    let app = TestApp::spawn().await;
    let page = app.visitor().get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Not found"));
    let health = app.visitor().get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, "ok");
}

#[tokio::test]
async fn a_request_racing_the_sign_out_cannot_revive_the_session() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor();
    let signup = visitor.sign_up("ada@example.com", "Club", "").await;
    let cookie = session_id(&signup).expect("session cookie");
    let token = paddock::token::Token::parse(&cookie).expect("a session secret");
    // A request authenticated just before the sign-out, and commits afterwards.
    let (in_flight, _) = paddock::db::identity::begin_request(&app.pool, &token)
        .await
        .expect("begin")
        .expect("a live session");
    assert_eq!(
        visitor.post("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    in_flight.commit().await.expect("commit");

    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url("/portfolio"))
        .header("cookie", format!("paddock_session={cookie}"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        replay.status(),
        StatusCode::SEE_OTHER,
        "the stolen cookie stays dead"
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_throttle() {
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    let mut visitors = Vec::new();
    for _ in 0..30 {
        let v = app.visitor();
        v.csrf().await;
        visitors.push(v);
    }
    let guesses: Vec<_> = visitors
        .into_iter()
        .map(|v| {
            tokio::spawn(async move {
                v.sign_in("ada@example.com", "a wrong password guess")
                    .await
                    .status
            })
        })
        .collect();
    let mut refused = 0;
    let mut checked = 0;
    for guess in guesses {
        match guess.await.expect("guess") {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        checked, 5,
        "only the account's limit of guesses reach the password check"
    );
    assert_eq!(refused, 25);
}

#[tokio::test]
async fn the_right_password_sent_from_several_browsers_at_once_signs_in_every_one() {
    // A double-clicked Sign in, or two tabs: a success must not forget the
    // attempts still being checked, or the right password gets "incorrect".
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    let mut browsers = Vec::new();
    for _ in 0..4 {
        let b = app.visitor();
        b.csrf().await;
        browsers.push(b);
    }
    let sign_ins: Vec<_> = browsers
        .into_iter()
        .map(|b| tokio::spawn(async move { b.sign_in("ada@example.com", PASSWORD).await }))
        .collect();
    for sign_in in sign_ins {
        let page = sign_in.await.expect("sign-in");
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/portfolio");
    }
}

#[tokio::test]
async fn an_empty_sign_in_form_gets_422_beside_its_fields() {
    let app = TestApp::spawn().await;
    let page = app.visitor().sign_in("  ", "").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"email-error\""));
    assert!(page.body.contains("id=\"password-error\""));
    assert!(page.alert().contains("fix"));
    let page = app.visitor().sign_in("ada@example.com", "").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("value=\"ada@example.com\""),
        "the email is kept"
    );
    let counted: i64 = sqlx::query_scalar("select count(*) from paddock_private.sign_in_failures")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(counted, 0, "an incomplete form is not a guess");
}

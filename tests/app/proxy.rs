//! Behind a TLS proxy: the client address from trusted proxies only (for
//! throttling and the activity log), IPv6 throttled per /64, and with a public
//! URL the `Host` check, the `Origin` check, `Secure` cookies and HSTS.

use reqwest::{StatusCode, header};

use crate::helpers::{Options, PASSWORD, TestApp, csrf_in};

fn behind_loopback_proxy() -> Options {
    Options {
        trusted_proxies: "127.0.0.1/32",
        ..Options::default()
    }
}

/// Twenty failed sign-ins for made-up accounts "from" `client`.
async fn twenty_failures_from(app: &TestApp, client: &str) {
    let attacker = app.visitor_from(client);
    for i in 0..20 {
        let page = attacker
            .sign_in(&format!("guess{i}@example.com"), "a wrong password guess")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let page = attacker
        .sign_in("guess20@example.com", "a wrong password guess")
        .await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_clients_failures_do_not_lock_out_another() {
    let app = TestApp::spawn_with(behind_loopback_proxy()).await;
    app.owner("bob@example.com", "Other club").await;
    twenty_failures_from(&app, "203.0.113.66").await;
    let bob = app.visitor_from("198.51.100.20");
    let page = bob.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.alert());
    assert_eq!(page.location(), "/portfolio");
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // The reproduction without PADDOCK_TRUSTED_PROXIES: everyone is the
    // proxy's address, and a client cannot talk its way out with a header.
    let app = TestApp::spawn().await;
    let bob = app.visitor_from("198.51.100.20");
    assert_eq!(
        bob.sign_up("bob@example.com", "Other club", "")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    twenty_failures_from(&app, "203.0.113.66").await;
    let page = app
        .visitor_from("198.51.100.20")
        .sign_in("bob@example.com", PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let ips: Vec<Option<String>> = sqlx::query_scalar("select distinct ip from security_events")
        .fetch_all(&app.admin)
        .await
        .expect("events");
    assert_eq!(
        ips,
        [Some("127.0.0.1".to_owned())],
        "the peer, never a header"
    );
}

#[tokio::test]
async fn the_activity_log_shows_the_client_behind_the_proxy_not_the_hops_it_wrote() {
    let app = TestApp::spawn_with(behind_loopback_proxy()).await;
    // The client claims 192.0.2.99 itself; the (trusted) proxy appended the
    // address it saw.
    let ada = app.visitor_from("192.0.2.99, 203.0.113.7");
    let page = ada.sign_up("ada@example.com", "Club", "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let activity = ada.get("/activity").await.body;
    assert!(activity.contains("203.0.113.7"), "{activity}");
    assert!(!activity.contains("192.0.2.99"));

    let mut forwarded = header::HeaderMap::new();
    forwarded.insert(
        "forwarded",
        "for=192.0.2.99, for=\"[2001:db8:cafe::17]:4711\";proto=https"
            .parse()
            .expect("value"),
    );
    let bob = crate::helpers::Visitor::with(
        &app.url(""),
        reqwest::Client::builder().default_headers(forwarded),
    );
    assert_eq!(
        bob.sign_up("bob@example.com", "Other", "").await.status,
        StatusCode::SEE_OTHER
    );
    let activity = bob.get("/activity").await.body;
    assert!(
        activity.contains("2001:db8:cafe::17"),
        "the full IPv6 address is logged: {activity}"
    );

    let garbage = app.visitor_from("not an address");
    assert_eq!(
        garbage.sign_up("cy@example.com", "Third", "").await.status,
        StatusCode::SEE_OTHER,
        "a malformed header is no error"
    );
    assert!(garbage.get("/activity").await.body.contains("127.0.0.1"));
}

#[tokio::test]
async fn ipv6_clients_are_throttled_per_64() {
    let app = TestApp::spawn_with(behind_loopback_proxy()).await;
    for i in 0..20 {
        let page = app
            .visitor_from(&format!("2001:db8:1:2::{:x}", i + 1))
            .sign_in(&format!("guess{i}@example.com"), "a wrong password guess")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let same_64 = app
        .visitor_from("2001:db8:1:2:ffff:ffff:ffff:ffff")
        .sign_in("guess@example.com", "a wrong password guess")
        .await;
    assert_eq!(same_64.status, StatusCode::TOO_MANY_REQUESTS);
    let next_64 = app
        .visitor_from("2001:db8:1:3::1")
        .sign_in("guess@example.com", "a wrong password guess")
        .await;
    assert_eq!(next_64.status, StatusCode::UNAUTHORIZED);
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn a_public_url_is_the_only_host_and_origin_with_secure_cookies_and_hsts() {
    let app = TestApp::spawn_with(Options {
        public_url: Some("https://paddock.example.org"),
        ..Options::default()
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get =
        |host: &'static str, path: &str| http.get(app.url(path)).header(header::HOST, host).send();

    let login = get("paddock.example.org", "/login").await.expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(
        login.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let cookies = set_cookies(&login);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("paddock_session="))
        .expect("a session cookie");
    assert!(session.contains("; Secure"), "{session}");
    let session = session.split(';').next().expect("name=value").to_owned();
    let csrf = csrf_in(&login.text().await.expect("body")).expect("token");

    for host in ["evil.example", "paddock.example.org:8443"] {
        let wrong = get(host, "/login").await.expect("response");
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "{host}");
        assert!(
            wrong
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
        assert!(
            set_cookies(&wrong).is_empty(),
            "no session for another host"
        );
        assert!(wrong.text().await.expect("body").contains("Wrong address"));
    }
    let probe = get("10.1.2.3:8080", "/healthz").await.expect("probe");
    assert_eq!(probe.status(), StatusCode::OK, "load balancer probes pass");

    let post = |origin: &'static str| {
        http.post(app.url("/login"))
            .header(header::HOST, "paddock.example.org")
            .header(header::ORIGIN, origin)
            .header(header::COOKIE, &session)
            .form(&[
                ("email", "nobody@example.com"),
                ("password", "a wrong password guess"),
                ("csrf_token", &csrf),
            ])
            .send()
    };
    assert_eq!(
        post("https://paddock.example.org")
            .await
            .expect("post")
            .status(),
        StatusCode::UNAUTHORIZED,
        "the public origin passes the CSRF check (and the password is wrong)"
    );
    for origin in ["http://paddock.example.org", "https://evil.example", "null"] {
        assert_eq!(
            post(origin).await.expect("post").status(),
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn without_a_public_url_any_host_is_served_without_hsts() {
    let app = TestApp::spawn().await;
    let response = reqwest::Client::new()
        .get(app.url("/login"))
        .header(header::HOST, "whatever.example")
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .headers()
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
    assert!(
        set_cookies(&response).iter().all(|c| !c.contains("Secure")),
        "plain HTTP on loopback"
    );
}

//! Members as a browser makes them: sign-up, enrollment of paper accounts, and
//! sign-in (for the storm), each over HTTP with the forms' CSRF tokens.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::{Client, StatusCode, redirect::Policy};

use crate::Result;

pub const PASSWORD: &str = "quiet violet harbor engine";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Members signed up at once (each sign-up costs an Argon2 hash on the server).
const SIGNUP_PARALLELISM: usize = 2;

/// A client that keeps cookies and does not follow redirects.
pub fn member_client() -> Result<Client> {
    Ok(Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

fn csrf_token(html: &str) -> Result<String> {
    const MARKER: &str = "name=\"csrf_token\" value=\"";
    let start = html.find(MARKER).ok_or("no csrf_token in the page")? + MARKER.len();
    let len = html[start..]
        .find('"')
        .ok_or("unterminated csrf_token value")?;
    Ok(html[start..start + len].to_owned())
}

pub fn snippet(body: &str) -> String {
    body.chars().filter(|c| !c.is_control()).take(300).collect()
}

async fn get_csrf(client: &Client, url: &str) -> Result<String> {
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if status != StatusCode::OK {
        return Err(format!("GET {url}: {status}: {}", snippet(&body)).into());
    }
    csrf_token(&body)
}

async fn expect_redirect(resp: reqwest::Response, what: &str, to: &str) -> Result<()> {
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status == StatusCode::SEE_OTHER && location == to {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(format!(
        "{what}: expected 303 to {to}, got {status} to {location:?}: {}",
        snippet(&body)
    )
    .into())
}

/// The email of member `index`.
pub fn email(index: usize) -> String {
    format!("load{index:04}@example.com")
}

/// Signs up member `index` and enrolls `accounts` paper accounts for it.
async fn create_member(base: &str, index: usize, accounts: usize) -> Result<Client> {
    let client = member_client()?;
    let token = get_csrf(&client, &format!("{base}/signup")).await?;
    let email = email(index);
    let organization = format!("Load org {index:04}");
    let resp = client
        .post(format!("{base}/signup"))
        .form(&[
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("confirm_password", PASSWORD),
            ("organization_name", organization.as_str()),
            ("invite_code", ""),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await?;
    expect_redirect(resp, &format!("sign-up of {email}"), "/portfolio").await?;
    for account in 0..accounts {
        let token = get_csrf(&client, &format!("{base}/credentials/new")).await?;
        let key_id = format!("PKLOAD{index:04}{account:02}ACCT");
        let secret = format!("LoadSecret{index:04}{account:02}abcdefghijklmnop");
        let label = format!("Load {account}");
        let resp = client
            .post(format!("{base}/credentials"))
            .form(&[
                ("label", label.as_str()),
                ("environment", "paper"),
                ("api_key_id", key_id.as_str()),
                ("secret_key", secret.as_str()),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await?;
        expect_redirect(
            resp,
            &format!("enrolling {key_id} for {email}"),
            "/credentials",
        )
        .await?;
    }
    if accounts > 0 {
        check_portfolio(&client, base, &email, accounts).await?;
    }
    Ok(client)
}

/// Checks that the portfolio shows every account without errors (this also
/// consumes the flash message left by the last enrollment).
pub async fn check_portfolio(
    client: &Client,
    base: &str,
    email: &str,
    accounts: usize,
) -> Result<()> {
    let resp = client.get(format!("{base}/portfolio")).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    let cards = body.matches("class=\"card\"").count();
    if status != StatusCode::OK || cards != accounts || body.contains("class=\"alert\"") {
        return Err(format!(
            "portfolio of {email}: {status}, {cards} card(s) for {accounts} account(s): {}",
            snippet(&body)
        )
        .into());
    }
    Ok(())
}

/// Signs up `count` members from index `first`, each with `accounts` accounts.
pub async fn create_group(
    base: &str,
    first: usize,
    count: usize,
    accounts: usize,
) -> Result<Vec<Client>> {
    stream::iter(first..first + count)
        .map(|index| create_member(base, index, accounts))
        .buffered(SIGNUP_PARALLELISM)
        .try_collect()
        .await
}

/// One sign-in as a browser does it: `GET /login` for the form's token, then
/// `POST /login`, which must answer 303 to `/portfolio`.
pub async fn sign_in(base: &str, email: &str) -> Result<()> {
    let client = member_client()?;
    let token = get_csrf(&client, &format!("{base}/login")).await?;
    let resp = client
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await?;
    expect_redirect(resp, &format!("sign-in of {email}"), "/portfolio").await
}

//! Real-browser end-to-end tests: headless Chromium (Debian's `chromium`
//! package) driven over the DevTools protocol with chromiumoxide.
//!
//! [`Browser`] wraps one Chromium process with its own fresh profile and one
//! tab. It fills forms by clicking into the field labelled so and typing real
//! key strokes, and submits them by clicking the real button, so the browser
//! posts the real form with its hidden CSRF token and follows the redirects
//! itself. Reading the page (`html`, `text`, `text_of`, `current_path`) goes
//! through the DOM domain of the protocol, not through page JavaScript, so the
//! helper works the same with JavaScript disabled.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use chromiumoxide::{
    BrowserConfig, Element, Page,
    cdp::browser_protocol::{
        dom::{GetOuterHtmlParams, QuerySelectorParams, ScrollIntoViewIfNeededParams},
        emulation::SetScriptExecutionDisabledParams,
        input::{DispatchKeyEventParams, DispatchKeyEventType},
        page::EventLoadEventFired,
    },
};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::helpers::{PASSWORD, TestApp, strip_tags};

/// Where Debian's `chromium` package puts the real binary (`/usr/bin/chromium`
/// is a shell wrapper). `PADDOCK_CHROMIUM` overrides it.
const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// How long one navigation (a click that submits a form, a `goto`) may take.
const NAVIGATION_TIMEOUT: Duration = Duration::from_secs(20);

static NEXT_PROFILE: AtomicUsize = AtomicUsize::new(0);

fn chromium_path() -> PathBuf {
    let path =
        std::env::var_os("PADDOCK_CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    assert!(
        path.is_file(),
        "Chromium is not installed: {} does not exist. The browser tests need Debian's \
         `chromium` and `chromium-driver` packages: `apt-get install chromium chromium-driver` \
         (or set PADDOCK_CHROMIUM to a Chromium binary).",
        path.display()
    );
    path
}

/// One headless Chromium with a fresh profile and one tab, pointed at one app.
pub struct Browser {
    base: String,
    browser: chromiumoxide::Browser,
    /// The tab, for anything the helper does not cover.
    pub page: Page,
    handler: Option<JoinHandle<()>>,
    profile: PathBuf,
}

impl Browser {
    /// Launches a new Chromium (its own profile: no cookies shared with any
    /// other `Browser`) on `about:blank`, for `app`.
    pub async fn launch(app: &TestApp) -> Self {
        Self::launch_at(&app.url("")).await
    }

    /// Launches a new Chromium for the app at `base` (e.g.
    /// `http://localhost:PORT`, which WebAuthn needs: a domain, not an IP).
    pub(crate) async fn launch_at(base: &str) -> Self {
        let executable = chromium_path();
        let profile = std::env::temp_dir().join(format!(
            "paddock-chromium-{}-{}",
            std::process::id(),
            NEXT_PROFILE.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("creating a Chromium profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .new_headless_mode()
            .user_data_dir(&profile)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args([
                "no-sandbox",
                "disable-gpu",
                "disable-dev-shm-usage",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "no-default-browser-check",
            ])
            .build()
            .unwrap_or_else(|e| panic!("configuring Chromium: {e}"));
        let (browser, mut handler) =
            chromiumoxide::Browser::launch(config)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "launching Chromium ({}) failed: {e}. The browser tests need Debian's \
                     `chromium` and `chromium-driver` packages: `apt-get install chromium \
                     chromium-driver`.",
                        executable.display()
                    )
                });
        // The handler drives the DevTools connection; it ends when the browser closes.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser
            .new_page("about:blank")
            .await
            .expect("opening a Chromium tab");
        Self {
            base: base.to_owned(),
            browser,
            page,
            handler: Some(handler),
            profile,
        }
    }

    /// Turns off JavaScript in this tab (`Emulation.setScriptExecutionDisabled`).
    pub async fn disable_javascript(&self) {
        self.page
            .execute(SetScriptExecutionDisabledParams::new(true))
            .await
            .expect("disabling JavaScript");
    }

    /// Navigates to `path` on the app and waits until the page has loaded
    /// (following redirects).
    pub async fn goto(&self, path: &str) -> &Self {
        let url = format!("{}{path}", self.base);
        tokio::time::timeout(NAVIGATION_TIMEOUT, self.page.goto(url.as_str()))
            .await
            .unwrap_or_else(|_| panic!("loading {url} timed out"))
            .unwrap_or_else(|e| panic!("loading {url}: {e}"));
        self
    }

    /// Replaces the value of the input labelled `label_or_id` (the exact text of
    /// a `<label>`, else an element id) by typing `value` into it.
    pub async fn fill(&self, label_or_id: &str, value: &str) -> &Self {
        let input = self.field(label_or_id).await;
        self.click_on(&input, label_or_id).await;
        // Clear what is there (a re-rendered form keeps its input), like Ctrl+A, Backspace.
        self.page
            .execute(
                DispatchKeyEventParams::builder()
                    .r#type(DispatchKeyEventType::RawKeyDown)
                    .key("a")
                    .code("KeyA")
                    .modifiers(2)
                    .windows_virtual_key_code(65)
                    .command("selectAll")
                    .build()
                    .expect("key event"),
            )
            .await
            .expect("selecting the field's text");
        input
            .press_key("Backspace")
            .await
            .expect("clearing the field");
        if !value.is_empty() {
            input
                .type_str(value)
                .await
                .unwrap_or_else(|e| panic!("typing into {label_or_id:?}: {e}"));
        }
        self
    }

    /// Clicks the button whose text is exactly `text` and waits until the page
    /// it leads to (after any redirects) has loaded.
    pub async fn click_button(&self, text: &str) -> &Self {
        let query = format!(
            "//button[normalize-space(.)={q}] | //input[(@type='submit' or @type='button') and @value={q}]",
            q = xpath_literal(text)
        );
        let Some(button) = self.xpath(&query).await else {
            panic!(
                "no button {text:?} on {}:\n{}",
                self.current_path().await,
                self.text().await
            );
        };
        self.click_and_wait(&button, &format!("button {text:?}"))
            .await;
        self
    }

    /// Clicks the button whose text is exactly `text` twice in a row, as an
    /// impatient double click does, then waits for the page that follows.
    pub(crate) async fn double_click_button(&self, text: &str) -> &Self {
        let query = format!("//button[normalize-space(.)={}]", xpath_literal(text));
        let Some(button) = self.xpath(&query).await else {
            panic!("no button {text:?} on {}", self.current_path().await);
        };
        let mut loads = self
            .page
            .event_listener::<EventLoadEventFired>()
            .await
            .expect("listening for page loads");
        // A real double click: press and release, then press and release again
        // with a click count of 2, at the same spot, without waiting between.
        self.page
            .execute(
                ScrollIntoViewIfNeededParams::builder()
                    .backend_node_id(button.backend_node_id)
                    .build(),
            )
            .await
            .unwrap_or_else(|e| panic!("scrolling to {text}: {e}"));
        let point = button
            .clickable_point()
            .await
            .unwrap_or_else(|e| panic!("{text} is not clickable: {e}"));
        self.page
            .click(point)
            .await
            .unwrap_or_else(|e| panic!("clicking {text}: {e}"));
        let second = chromiumoxide::types::ClickOptions::builder()
            .click_count(2)
            .build();
        // The first click may already have left the page; the second lands anyway.
        let _ = self.page.click_with(point, second).await;
        tokio::time::timeout(NAVIGATION_TIMEOUT, loads.next())
            .await
            .unwrap_or_else(|_| panic!("double-clicking {text:?} loaded no new page"))
            .expect("the page went away");
        tokio::time::timeout(NAVIGATION_TIMEOUT, self.page.wait_for_navigation())
            .await
            .unwrap_or_else(|_| {
                panic!("the page after double-clicking {text:?} never finished loading")
            })
            .expect("waiting for the navigation");
        self
    }

    /// Saves a full-page PNG of what is shown as `<name>.png` in the directory
    /// `PADDOCK_SCREENSHOTS` names, when it is set (for looking at the pages).
    pub(crate) async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("PADDOCK_SCREENSHOTS") else {
            return;
        };
        let path = PathBuf::from(dir).join(format!("{name}.png"));
        // A desktop-wide layout, whatever the headless window's size.
        self.page
            .execute(
                chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams::new(
                    1280, 900, 1.0, false,
                ),
            )
            .await
            .expect("setting the screenshot width");
        let params = chromiumoxide::page::ScreenshotParams::builder()
            .full_page(true)
            .build();
        self.page
            .save_screenshot(params, &path)
            .await
            .unwrap_or_else(|e| panic!("saving {}: {e}", path.display()));
    }

    /// Clicks the first element matching the XPath `query` and waits until
    /// the page it leads to has loaded.
    pub(crate) async fn click_xpath(&self, query: &str, what: &str) -> &Self {
        let Some(element) = self.xpath(query).await else {
            panic!(
                "no {what} on {}:\n{}",
                self.current_path().await,
                self.text().await
            );
        };
        self.click_and_wait(&element, what).await;
        self
    }

    /// Clicks the link whose text is exactly `text` and waits for the new page.
    pub async fn click_link(&self, text: &str) -> &Self {
        let query = format!("//a[normalize-space(.)={}]", xpath_literal(text));
        let Some(link) = self.xpath(&query).await else {
            panic!("no link {text:?} on {}", self.current_path().await);
        };
        self.click_and_wait(&link, &format!("link {text:?}")).await;
        self
    }

    /// A real mouse click on `element`, then waits for the next page load.
    async fn click_and_wait(&self, element: &Element, what: &str) {
        // Subscribe before clicking, so the load that follows cannot be missed.
        let mut loads = self
            .page
            .event_listener::<EventLoadEventFired>()
            .await
            .expect("listening for page loads");
        self.click_on(element, what).await;
        tokio::time::timeout(NAVIGATION_TIMEOUT, loads.next())
            .await
            .unwrap_or_else(|_| panic!("clicking {what} loaded no new page"))
            .expect("the page went away");
        tokio::time::timeout(NAVIGATION_TIMEOUT, self.page.wait_for_navigation())
            .await
            .unwrap_or_else(|_| panic!("the page after clicking {what} never finished loading"))
            .expect("waiting for the navigation");
    }

    /// A real mouse click (press and release) on the middle of `element`,
    /// scrolled into view first. Unlike `Element::click`, which scrolls with an
    /// awaited page-JavaScript promise that never settles when JavaScript is
    /// disabled, this only uses the DOM and Input domains.
    async fn click_on(&self, element: &Element, what: &str) {
        self.page
            .execute(
                ScrollIntoViewIfNeededParams::builder()
                    .backend_node_id(element.backend_node_id)
                    .build(),
            )
            .await
            .unwrap_or_else(|e| panic!("scrolling to {what}: {e}"));
        let point = element
            .clickable_point()
            .await
            .unwrap_or_else(|e| panic!("{what} is not clickable: {e}"));
        self.page
            .click(point)
            .await
            .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
    }

    /// The document's HTML as the browser has it now.
    pub async fn html(&self) -> String {
        let root = self.page.get_document().await.expect("the document");
        self.page
            .execute(GetOuterHtmlParams::builder().node_id(root.node_id).build())
            .await
            .expect("the document's HTML")
            .result
            .outer_html
    }

    /// The page's text: tags stripped, whitespace collapsed.
    pub async fn text(&self) -> String {
        strip_tags(&self.html().await)
    }

    /// The text of the first element matching the CSS `selector`, if any.
    pub async fn text_of(&self, selector: &str) -> Option<String> {
        let root = self.page.get_document().await.expect("the document");
        let node = self
            .page
            .execute(QuerySelectorParams::new(root.node_id, selector))
            .await
            .ok()?
            .result
            .node_id;
        if *node.inner() == 0 {
            return None;
        }
        let html = self
            .page
            .execute(GetOuterHtmlParams::builder().node_id(node).build())
            .await
            .ok()?
            .result
            .outer_html;
        Some(strip_tags(&html))
    }

    /// The absolute URL of the page shown.
    pub async fn current_url(&self) -> String {
        self.page
            .url()
            .await
            .expect("the page URL")
            .unwrap_or_default()
    }

    /// The path (and query) of the page shown, e.g. `/portfolio`.
    pub async fn current_path(&self) -> String {
        let url = self.current_url().await;
        url.strip_prefix(&self.base)
            .map_or(url.clone(), str::to_owned)
    }

    /// Signs up through `/signup`, creating organization `org`; lands on /portfolio.
    pub async fn sign_up_owner(&self, email: &str, org: &str) -> &Self {
        self.goto("/signup").await;
        self.fill("Email", email).await;
        self.fill("Password", PASSWORD).await;
        self.fill("Confirm password", PASSWORD).await;
        self.fill("Organization name", org).await;
        self.click_button("Create account").await;
        self.assert_path("/portfolio").await;
        self
    }

    /// Signs up through `/signup`, joining with invite `code`; lands on /portfolio.
    pub async fn sign_up_member(&self, email: &str, code: &str) -> &Self {
        self.goto("/signup").await;
        self.fill("Email", email).await;
        self.fill("Password", PASSWORD).await;
        self.fill("Confirm password", PASSWORD).await;
        self.fill("Invite code", code).await;
        self.click_button("Create account").await;
        self.assert_path("/portfolio").await;
        self
    }

    /// Signs in through `/login`; lands on /portfolio.
    pub async fn sign_in(&self, email: &str, password: &str) -> &Self {
        self.goto("/login").await;
        self.fill("Email", email).await;
        self.fill("Password", password).await;
        self.click_button("Sign in").await;
        self.assert_path("/portfolio").await;
        self
    }

    /// Clicks "Sign out" in the header; lands on /login.
    pub async fn sign_out(&self) -> &Self {
        self.click_button("Sign out").await;
        self.assert_path("/login").await;
        self
    }

    /// Fails, showing the page, unless the page shown is `path`.
    pub async fn assert_path(&self, path: &str) {
        let current = self.current_path().await;
        if current != path {
            panic!(
                "expected to be on {path}, but the browser is on {current}:\n{}",
                self.text().await
            );
        }
    }

    /// Closes Chromium, waits for it and its DevTools handler to finish, and
    /// removes the profile.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let exited = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        if !matches!(exited, Ok(Ok(_))) {
            let _ = self.browser.kill().await;
        }
        if let Some(handler) = self.handler.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), handler).await;
        }
    }

    /// The input for `label_or_id`: the target of the label with that exact
    /// text, else the element with that id.
    async fn field(&self, label_or_id: &str) -> Element {
        let id = match self
            .xpath(&format!(
                "//label[normalize-space(.)={}]",
                xpath_literal(label_or_id)
            ))
            .await
        {
            Some(label) => attribute(&label, "for")
                .await
                .unwrap_or_else(|| panic!("the label {label_or_id:?} has no `for`")),
            None => label_or_id.to_owned(),
        };
        match self.page.find_element(format!("[id=\"{id}\"]")).await {
            Ok(input) => input,
            Err(e) => panic!(
                "no field labelled or with id {label_or_id:?} on {} ({e})",
                self.current_path().await
            ),
        }
    }

    pub(crate) async fn xpath(&self, query: &str) -> Option<Element> {
        self.page
            .find_xpaths(query)
            .await
            .ok()
            .and_then(|found| found.into_iter().next())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failing test does not reach `close`: kill Chromium (its helper
        // processes follow it) and remove the profile.
        if let Some(handler) = self.handler.take() {
            handler.abort();
        }
        if let Some(child) = self.browser.get_mut_child() {
            let child = child.as_mut_inner();
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.start_kill();
                // Give it a moment to go, so its profile can be removed.
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        remove_profile(&self.profile);
    }
}

fn remove_profile(profile: &Path) {
    let _ = std::fs::remove_dir_all(profile);
}

/// An attribute read through the DOM domain (works without page JavaScript).
pub(crate) async fn attribute(element: &Element, name: &str) -> Option<String> {
    let attributes = element.attributes().await.ok()?;
    attributes
        .chunks(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair.get(1).cloned())
}

/// `text` as an XPath string literal.
pub(crate) fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// The rows of the table captioned `caption` in `html`, each as its cells' text.
pub(crate) fn table_rows(html: &str, caption: &str) -> Vec<Vec<String>> {
    let marker = format!("<caption>{caption}</caption>");
    let Some(start) = html.find(&marker) else {
        return Vec::new();
    };
    let table = &html[start..];
    let table = &table[..table.find("</table>").unwrap_or(table.len())];
    let body = table.find("<tbody").map_or(table, |i| &table[i..]);
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').map_or(0, |i| i + 1)..];
                    strip_tags(&cell[..cell.find("</td>").unwrap_or(cell.len())])
                })
                .collect()
        })
        .collect()
}

/// (email, role) per row of the **Members** table on the page shown.
pub(crate) async fn members(browser: &Browser) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = table_rows(&browser.html().await, "Members")
        .into_iter()
        .map(|cells| {
            (
                cells.first().cloned().unwrap_or_default(),
                cells.get(1).cloned().unwrap_or_default(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn an_owner_invites_a_member_and_both_appear_on_the_org_page() {
    let started = Instant::now();
    let app = TestApp::spawn().await;
    let owner_email = "ada@example.com";
    let member_email = "grace@example.com";

    let owner = Browser::launch(&app).await;
    owner.sign_up_owner(owner_email, "Analytical Engines").await;
    owner.goto("/org").await;
    owner.assert_path("/org").await;
    assert_eq!(
        owner.text_of("h1").await.as_deref(),
        Some("Analytical Engines"),
        "the org page shows the organization's name"
    );
    assert_eq!(
        owner.text_of("code.secret-once").await,
        None,
        "no invite code before one is created"
    );
    owner.click_button("Create invite").await;
    owner.assert_path("/org/invites").await;
    let Some(code) = owner.text_of("code.secret-once").await else {
        panic!("no invite code shown:\n{}", owner.text().await);
    };
    assert!(code.len() >= 8, "a plausible invite code: {code:?}");
    owner.goto("/org").await;
    assert_eq!(
        owner.text_of("code.secret-once").await,
        None,
        "the invite code is shown only once"
    );

    let member = Browser::launch(&app).await;
    member.goto("/org").await;
    member.assert_path("/login").await;
    member.sign_up_member(member_email, &code).await;

    let expected = vec![
        (owner_email.to_owned(), "Owner".to_owned()),
        (member_email.to_owned(), "Member".to_owned()),
    ];
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    for browser in [&owner, &member] {
        browser.click_link("Organization").await;
        browser.assert_path("/org").await;
        assert_eq!(
            browser.text_of("h1").await.as_deref(),
            Some("Analytical Engines")
        );
        assert_eq!(members(browser).await, expected_sorted);
    }
    assert!(
        member.text_of("code.secret-once").await.is_none()
            && !member.text().await.contains("Create invite"),
        "a member cannot create invites"
    );
    assert!(
        member.text().await.contains(member_email),
        "the header shows the member's email"
    );

    for browser in [&owner, &member] {
        browser.sign_out().await;
        browser.goto("/org").await;
        browser.assert_path("/login").await;
    }

    owner.close().await;
    member.close().await;
    eprintln!(
        "an_owner_invites_a_member_and_both_appear_on_the_org_page: {:.1?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn pages_work_with_javascript_disabled() {
    let started = Instant::now();
    let app = TestApp::spawn().await;
    let email = "linus@example.com";
    let browser = Browser::launch(&app).await;
    browser.disable_javascript().await;

    // A wrong confirmation is refused and the form comes back, keeping the email.
    browser.goto("/signup").await;
    browser.fill("Email", email).await;
    browser.fill("Password", PASSWORD).await;
    browser
        .fill("Confirm password", "not the same password")
        .await;
    browser.fill("Organization name", "Kernel Club").await;
    browser.click_button("Create account").await;
    browser.assert_path("/signup").await;
    assert!(
        browser.text_of("[role=alert]").await.is_some(),
        "the refused sign-up shows an alert:\n{}",
        browser.text().await
    );

    // Then the real thing, through the same form.
    browser.fill("Email", email).await;
    browser.fill("Password", PASSWORD).await;
    browser.fill("Confirm password", PASSWORD).await;
    browser.fill("Organization name", "Kernel Club").await;
    browser.click_button("Create account").await;
    browser.assert_path("/portfolio").await;
    assert!(browser.text().await.contains(email));

    browser.sign_out().await;
    browser.goto("/portfolio").await;
    browser.assert_path("/login").await;

    // A wrong password: 401, still on /login, an alert.
    browser.goto("/login").await;
    browser.fill("Email", email).await;
    browser.fill("Password", "definitely the wrong one").await;
    browser.click_button("Sign in").await;
    browser.assert_path("/login").await;
    assert!(
        browser.text_of("[role=alert]").await.is_some(),
        "a failed sign-in shows an alert:\n{}",
        browser.text().await
    );

    browser.sign_in(email, PASSWORD).await;
    browser.goto("/org").await;
    browser.assert_path("/org").await;
    assert_eq!(
        members(&browser).await,
        vec![(email.to_owned(), "Owner".to_owned())]
    );
    browser.sign_out().await;
    browser.goto("/org").await;
    browser.assert_path("/login").await;

    browser.close().await;
    eprintln!(
        "pages_work_with_javascript_disabled: {:.1?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_member_enrolls_rotates_and_deletes_a_paper_credential() {
    let app = TestApp::spawn().await;
    let browser = Browser::launch(&app).await;
    browser.sign_up_owner("ada@example.com", "Club").await;
    browser.assert_path("/portfolio").await;
    browser.click_link("Add credential").await;
    browser.assert_path("/credentials/new").await;
    browser.fill("Label", "Main paper").await;
    browser.fill("API key ID", "PKBROWSERACCOUNTWXYZ").await;
    browser
        .fill("Secret key", "browsersecret00000000000000000000000001")
        .await;
    browser.click_button("Save credential").await;
    browser.assert_path("/credentials").await;
    let html = browser.html().await;
    assert!(html.contains("PK…WXYZ"), "masked key in the list");
    assert!(!html.contains("PKBROWSERACCOUNTWXYZ") && !html.contains("browsersecret"));
    assert!(
        browser
            .text_of("[role=status]")
            .await
            .unwrap_or_default()
            .contains("Saved")
    );

    browser.click_link("Rotate").await;
    browser.fill("API key ID", "PKBROWSERACCOUNTNEWK").await;
    browser
        .fill("Secret key", "browsersecret00000000000000000000000002")
        .await;
    browser.click_button("Replace keys").await;
    browser.assert_path("/credentials").await;
    let html = browser.html().await;
    assert!(
        html.contains("PK…NEWK") && !html.contains("PK…WXYZ"),
        "rotated"
    );

    browser.click_button("Delete").await;
    browser.assert_path("/credentials").await;
    assert!(browser.text().await.contains("No credentials yet."));
    browser.click_link("Activity").await;
    let text = browser.text().await;
    for event in [
        "Credential added",
        "Credential rotated",
        "Credential deleted",
    ] {
        assert!(text.contains(event), "{event}");
    }
    browser.close().await;
}

/// Two accounts, the aggregated portfolio and chart, then a limit order placed and cancelled.
async fn trade_through_the_pages(javascript: bool) {
    let app = TestApp::spawn().await;
    let browser = Browser::launch(&app).await;
    if !javascript {
        browser.disable_javascript().await;
    }
    browser.sign_up_owner("ada@example.com", "Club").await;
    for (label, key) in [
        ("First", "PKBROWSERFIRST000001"),
        ("Second", "PKBROWSERSECOND00002"),
    ] {
        browser.goto("/credentials/new").await;
        browser.fill("Label", label).await;
        browser.fill("API key ID", key).await;
        browser
            .fill("Secret key", "browsersecret00000000000000000000000001")
            .await;
        browser.click_button("Save credential").await;
        browser.assert_path("/credentials").await;
    }
    browser.click_link("Portfolio").await;
    let html = browser.html().await;
    let first = app.sim.account("PKBROWSERFIRST000001").expect("first");
    let second = app.sim.account("PKBROWSERSECOND00002").expect("second");
    let total = paddock::money::money(first.equity() + second.equity());
    assert!(
        browser.text().await.contains(&total),
        "aggregated equity {total}"
    );
    assert!(
        html.contains("<svg") && html.contains("class=\"line\""),
        "the chart is drawn"
    );
    assert!(html.contains("<caption>Positions</caption>"));

    browser.click_link("First").await;
    assert!(browser.current_path().await.starts_with("/accounts/"));
    browser.fill("Symbol", "MSFT").await;
    browser.fill("Quantity", "2").await;
    browser.fill("Order type", "Limit").await;
    browser.fill("Limit price", "123.45").await;
    browser.click_button("Place order").await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert!(
        status.contains("Limit order placed: buy 2 MSFT at $123.45"),
        "{status}\n{}",
        browser.text().await
    );
    let orders = app.sim.order_requests();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].limit_price.as_deref(), Some("123.45"));
    assert!(
        browser.text().await.contains("$123.45"),
        "listed under open orders"
    );

    browser.click_button("Cancel").await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert!(status.contains("canceled"), "{status}");
    assert!(browser.text().await.contains("No open orders."));
    browser.close().await;
}

#[tokio::test]
async fn a_member_with_two_accounts_sees_the_portfolio_and_trades() {
    trade_through_the_pages(true).await;
}

#[tokio::test]
async fn trading_works_with_javascript_disabled() {
    trade_through_the_pages(false).await;
}

//! The console (issue 17) through HTTP (sign-in, session cookie, CSRF, throttling, every page
//! and change), and driven in real headless Chromium (Debian's, through playwright-core:
//! `tests/browser/console.mjs`). Shared here: a client that does not follow redirects, the
//! sign-in, the session cookie, a page's CSRF token, a page's text and a form's post.

mod browser;
mod deliveries;
mod hooks;
mod pages;
mod session;

use crate::helpers::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `token`; the response.
async fn sign_in(app: &TestApp, token: &str) -> reqwest::Response {
    browserless()
        .post(format!("{}/console/sign-in", app.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// The session cookie (`name=value`) a sign-in set.
fn session_cookie(res: &reqwest::Response) -> String {
    let set = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token of a page's sign-out form.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// A console page's text, through the session `cookie`.
async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let res = browserless()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// POSTs `form` to the console's `path` with the session `cookie` (redirects not followed).
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browserless()
        .post(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

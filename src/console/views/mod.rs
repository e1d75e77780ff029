//! The console's pages as `maud` templates (every interpolated value is HTML-escaped) and
//! its stylesheet. Layout: a header with the navigation and the sign-out button, then the
//! page. Readable from 320 px wide up; every control has a label.

mod actions;
mod deliveries;
mod events;
mod hooks;
mod identity;

pub use actions::*;
pub use deliveries::*;
pub use events::*;
pub use hooks::*;
pub use identity::*;

use super::session::Session;
use maud::{html, Markup, DOCTYPE};

/// The whole stylesheet (system fonts, no external resources).
pub const STYLESHEET: &str = include_str!("../console.css");
/// The one script: live table bodies (progressive enhancement).
pub const SCRIPT: &str = include_str!("../console.js");

/// The console's sections, as the main navigation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Hooks,
    Deliveries,
    Events,
    Actions,
    Identity,
}

impl Section {
    const ALL: [(Section, &'static str, &'static str); 5] = [
        (Section::Hooks, "/console/hooks", "Hooks"),
        (Section::Deliveries, "/console/deliveries", "Deliveries"),
        (Section::Events, "/console/events", "Events"),
        (Section::Actions, "/console/actions", "Actions"),
        (Section::Identity, "/console/users", "Identity"),
    ];
}

/// The frame of every page: `signed_in` (the session and the section the page is in) is
/// `None` on the sign-in and error pages, which have no navigation.
fn layout(title: &str, signed_in: Option<(&Session, Section)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hookline" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console/hooks" { "hookline" }
                    @if let Some((s, here)) = signed_in {
                        nav aria-label="Main" {
                            @for (section, href, label) in Section::ALL {
                                @if section == here { a.current href=(href) aria-current="page" { (label) } }
                                @else { a href=(href) { (label) } }
                            }
                        }
                        form.sign-out method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The sign-in form, with `error` above it when the last try failed.
pub fn sign_in(error: Option<&str>, notice: Option<&str>, next: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            p { "Sign in with the admin token hookline printed at its first start (or the one given with " code { "--admin-token" } "). It is exchanged for a session cookie; the browser never keeps the token." }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form.card method="post" action="/console/sign-in" {
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A page that says what went wrong.
pub fn problem(message: &str) -> Markup {
    layout(
        "Error",
        None,
        html! {
            h1 { "Something went wrong" }
            p.error role="alert" { (message) }
            p { a href="/console/hooks" { "Back to the console" } }
        },
    )
}

/// A hook as the console names it: its name, or its id when it has none.
fn hook_name(h: &crate::domain::hook::Hook) -> &str {
    if h.name.is_empty() {
        &h.id
    } else {
        &h.name
    }
}

/// A time as the console shows it: RFC 3339 in UTC, to the second.
fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

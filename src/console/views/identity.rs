//! The identity core's directories (users, roles, organizations, applications), read-only.

use super::{layout, when, Section};
use crate::console::session::Session;
use crate::storage::identity::Kind;
use maud::{html, Markup};
use serde_json::Value;

/// Which directory a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directory {
    Users,
    Roles,
    Organizations,
    Applications,
}

impl Directory {
    pub const ALL: [Directory; 4] = [
        Directory::Users,
        Directory::Roles,
        Directory::Organizations,
        Directory::Applications,
    ];

    pub fn kind(self) -> Kind {
        match self {
            Directory::Users => Kind::User,
            Directory::Roles => Kind::Role,
            Directory::Organizations => Kind::Organization,
            Directory::Applications => Kind::Application,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Directory::Users => "Users",
            Directory::Roles => "Roles",
            Directory::Organizations => "Organizations",
            Directory::Applications => "Applications",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Directory::Users => "/console/users",
            Directory::Roles => "/console/roles",
            Directory::Organizations => "/console/organizations",
            Directory::Applications => "/console/applications",
        }
    }

    /// The columns shown (the document's field, its heading); the rest is in each row's
    /// details.
    fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Directory::Users => &[
                ("username", "Username"),
                ("primaryEmail", "Email"),
                ("primaryPhone", "Phone"),
                ("name", "Name"),
                ("lastSignInAt", "Last sign-in"),
                ("isSuspended", "Suspended"),
            ],
            Directory::Roles => &[
                ("name", "Name"),
                ("type", "Type"),
                ("description", "Description"),
            ],
            Directory::Organizations => &[("name", "Name"), ("description", "Description")],
            Directory::Applications => &[
                ("name", "Name"),
                ("type", "Type"),
                ("description", "Description"),
            ],
        }
    }

    /// What the search field finds, in words.
    fn searched(self) -> &'static str {
        match self {
            Directory::Users => "ID, username, email, phone or name",
            _ => "ID or name",
        }
    }
}

/// A directory page's query string.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct DirectoryQuery {
    #[serde(default)]
    pub search: Option<String>,
    /// From 1.
    #[serde(default)]
    pub page: Option<u64>,
}

/// One page of a directory: its search, the documents, and the pages.
pub fn directory(
    session: &Session,
    which: Directory,
    q: &DirectoryQuery,
    docs: &[Value],
    total: u64,
    page: u64,
    page_size: u64,
) -> Markup {
    let search = q.search.as_deref().unwrap_or_default();
    let link = |page: u64| {
        let mut pairs = vec![("page", page.to_string())];
        if !search.trim().is_empty() {
            pairs.insert(0, ("search", search.to_owned()));
        }
        format!(
            "{}?{}",
            which.path(),
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    let columns = which.columns();
    layout(
        which.title(),
        Some((session, Section::Identity)),
        html! {
            nav.row aria-label="Identity" {
                @for d in Directory::ALL {
                    @if d == which { strong aria-current="page" { (d.title()) } }
                    @else { a href=(d.path()) { (d.title()) } }
                }
            }
            h1 { (which.title()) }
            form.filters method="get" action=(which.path()) role="search" {
                label for="search" { "Search by " (which.searched()) }
                input #search type="search" name="search" value=(search);
                button type="submit" { "Search" }
            }
            @if docs.is_empty() {
                p.empty {
                    @if search.trim().is_empty() { "None yet." } @else { "Nothing matches “" (search) "”." }
                }
            } @else {
                div.scroll {
                    table {
                        caption { (total) " match; read-only (change them through the API)" }
                        thead {
                            tr {
                                th scope="col" { "ID" }
                                @for (_, heading) in columns { th scope="col" { (heading) } }
                                th scope="col" { "Created" }
                            }
                        }
                        tbody {
                            @for doc in docs {
                                tr {
                                    td {
                                        details {
                                            summary { code { (doc["id"].as_str().unwrap_or_default()) } }
                                            pre { (serde_json::to_string_pretty(doc).unwrap_or_default()) }
                                        }
                                    }
                                    @for (field, _) in columns { td { (cell(field, &doc[*field])) } }
                                    td { (doc["createdAt"].as_i64().map(when).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
            nav.row aria-label="Pages" {
                @if page > 1 { a.button href=(link(page - 1)) { "Previous" } }
                @if page.saturating_mul(page_size) < total { a.button href=(link(page + 1)) { "Next" } }
            }
        },
    )
}

/// A field as a table cell: text as is, times (`…At`) as times, nothing as a dash.
fn cell(field: &str, value: &Value) -> Markup {
    html! {
        @match value {
            Value::Null => span.muted { "–" },
            Value::String(s) => (s),
            Value::Bool(b) => (if *b { "yes" } else { "no" }),
            Value::Number(n) if field.ends_with("At") => (n.as_i64().map(when).unwrap_or_else(|| n.to_string())),
            other => (other.to_string()),
        }
    }
}

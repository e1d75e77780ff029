//! The identity core's tables as both backends name them: which table holds each kind of
//! document, its unique-key columns and parent, the link tables, and where credentials live.
//! The SQL each backend writes around these names is its own (placeholders, JSON access).

use super::identity::{Key, Kind, Link};
use super::{StoreError, StoreResult};
use serde_json::Value;

pub struct Table {
    pub name: &'static str,
    pub keys: &'static [(Key, &'static str)],
    pub parent: Option<&'static str>,
    /// What `search` looks in: these columns…
    pub search: &'static [&'static str],
    /// …and this field of the document, if any (each backend says how to read it).
    pub search_doc: Option<&'static str>,
}

pub fn table(kind: Kind) -> &'static Table {
    match kind {
        Kind::User => &Table {
            name: "users",
            keys: &[
                (Key::Username, "username"),
                (Key::Email, "email_key"),
                (Key::Phone, "phone"),
            ],
            parent: None,
            search: &["id", "username", "email_key", "phone"],
            search_doc: Some("name"),
        },
        Kind::Resource => &Table {
            name: "resources",
            keys: &[(Key::Indicator, "indicator")],
            parent: None,
            search: &["id", "indicator"],
            search_doc: Some("name"),
        },
        Kind::Scope => &Table {
            name: "scopes",
            keys: &[(Key::Name, "name")],
            parent: Some("resource_id"),
            search: &["id", "name"],
            search_doc: None,
        },
        Kind::Role => &Table {
            name: "roles",
            keys: &[(Key::Name, "name")],
            parent: None,
            search: &["id", "name"],
            search_doc: None,
        },
        Kind::Organization => &Table {
            name: "organizations",
            keys: &[],
            parent: None,
            search: &["id"],
            search_doc: Some("name"),
        },
        Kind::OrganizationRole => &Table {
            name: "organization_roles",
            keys: &[(Key::Name, "name")],
            parent: None,
            search: &["id", "name"],
            search_doc: None,
        },
        Kind::OrganizationScope => &Table {
            name: "organization_scopes",
            keys: &[(Key::Name, "name")],
            parent: None,
            search: &["id", "name"],
            search_doc: None,
        },
        Kind::Application => &Table {
            name: "applications",
            keys: &[],
            parent: None,
            search: &["id"],
            search_doc: Some("name"),
        },
        Kind::OrganizationInvitation => &Table {
            name: "organization_invitations",
            keys: &[(Key::PendingInvitee, "pending_key")],
            parent: Some("organization_id"),
            search: &["id"],
            search_doc: Some("invitee"),
        },
    }
}

pub struct LinkTable {
    pub name: &'static str,
    pub scope: Option<&'static str>,
    pub a: &'static str,
    pub b: &'static str,
}

pub fn link_table(link: Link) -> LinkTable {
    let (name, scope, a, b) = match link {
        Link::RoleScopes => ("role_scopes", None, "role_id", "scope_id"),
        Link::UserRoles => ("user_roles", None, "user_id", "role_id"),
        Link::OrganizationUsers => ("organization_users", None, "organization_id", "user_id"),
        Link::OrganizationApplications => (
            "organization_applications",
            None,
            "organization_id",
            "application_id",
        ),
        Link::OrganizationRoleScopes => (
            "organization_role_scopes",
            None,
            "organization_role_id",
            "organization_scope_id",
        ),
        Link::OrganizationUserRoles => (
            "organization_user_roles",
            Some("organization_id"),
            "user_id",
            "organization_role_id",
        ),
    };
    LinkTable { name, scope, a, b }
}

/// Where a kind keeps its credential.
pub fn credential_column(kind: Kind) -> StoreResult<&'static str> {
    match kind {
        Kind::User => Ok("password_hash"),
        Kind::Application => Ok("secret_hash"),
        other => Err(StoreError::Corrupt(format!("{other:?} has no credential"))),
    }
}

pub fn column(t: &Table, key: Key) -> StoreResult<&'static str> {
    t.keys
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, c)| *c)
        .ok_or_else(|| StoreError::Corrupt(format!("{} has no key {key:?}", t.name)))
}

pub fn parse_doc(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("a stored document: {e}")))
}

/// One link row: its table, its columns (the scope's first, if any) and their values.
pub fn link_row<'a>(
    link: Link,
    scope: Option<&'a str>,
    a: &'a str,
    b: &'a str,
) -> StoreResult<(&'static str, Vec<&'static str>, Vec<&'a str>)> {
    let l = link_table(link);
    check_scope(&l, scope)?;
    let mut cols = Vec::with_capacity(3);
    let mut args = Vec::with_capacity(3);
    if let (Some(s), Some(scope)) = (l.scope, scope) {
        cols.push(s);
        args.push(scope);
    }
    cols.extend([l.a, l.b]);
    args.extend([a, b]);
    Ok((l.name, cols, args))
}

/// `scope` given exactly when the link has a scope column.
pub fn check_scope(l: &LinkTable, scope: Option<&str>) -> StoreResult<()> {
    if l.scope.is_some() != scope.is_some() {
        return Err(StoreError::Corrupt(format!(
            "link {} used with the wrong scope",
            l.name
        )));
    }
    Ok(())
}

/// A search term as a `LIKE` pattern matching it as a substring, with `LIKE`'s own wildcards
/// (and the escape character `\`) taken literally: use with `ESCAPE '\'`.
pub fn like_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// How a backend writes its bind parameters: SQLite `?1`, PostgreSQL `$1`.
#[derive(Debug, Clone, Copy)]
pub enum Marks {
    Question,
    Dollar,
}

impl Marks {
    /// The `i`-th (1-based) parameter.
    pub fn at(self, i: usize) -> String {
        match self {
            Marks::Question => format!("?{i}"),
            Marks::Dollar => format!("${i}"),
        }
    }

    /// `c1 = ?1 AND c2 = ?2 …`
    pub fn row_filter(self, cols: &[&str]) -> String {
        cols.iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = {}", self.at(i + 1)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The documents (`what`: `t.id` or `t.doc`) that `a` links to, in the order they were
    /// created, and the query's arguments.
    pub fn linked_sql(
        self,
        link: Link,
        scope: Option<&str>,
        a: &str,
        what: &str,
    ) -> StoreResult<(String, Vec<String>)> {
        let l = link_table(link);
        check_scope(&l, scope)?;
        let target = table(link.target()).name;
        let mut sql = format!(
            "SELECT {what} FROM {} l JOIN {target} t ON t.id = l.{} WHERE l.{} = {}",
            l.name,
            l.b,
            l.a,
            self.at(1)
        );
        let mut args = vec![a.to_owned()];
        if let (Some(s), Some(scope)) = (l.scope, scope) {
            sql.push_str(&format!(" AND l.{s} = {}", self.at(2)));
            args.push(scope.to_owned());
        }
        sql.push_str(" ORDER BY t.created_at, t.id");
        Ok((sql, args))
    }
}

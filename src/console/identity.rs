//! `/console/users`, `/console/roles`, `/console/organizations`, `/console/applications`: the
//! identity core's data, read-only, newest first, searched as the API's `?search=` searches
//! (a substring of the id, a unique key or the name, case-insensitively).

use super::{html, store_failed, views, SignedIn};
use crate::routes::AppState;
use crate::storage::identity::DocQuery;
use crate::storage::Page;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use views::Directory;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Directory::ALL
        .into_iter()
        .fold(Router::new(), |router, which| {
            router.route(
                which.path(),
                get(
                    move |s: State<AppState>, i: SignedIn, q: Query<views::DirectoryQuery>| {
                        directory(s, i, q, which)
                    },
                ),
            )
        })
}

/// Entries a page.
const PAGE_SIZE: u32 = 50;
/// The last page asked for that is read (a larger number shows it, empty): offsets stay far
/// inside what both databases take.
const MAX_PAGE: u64 = 1_000_000;

/// One page of a directory, searched.
async fn directory(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<views::DirectoryQuery>,
    which: Directory,
) -> Response {
    let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
    // In NFC, as identifiers are stored (as the API searches).
    let search = q
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(crate::domain::identity::user::nfc);
    let query = DocQuery {
        parent: None,
        search,
        page: Some(Page {
            limit: PAGE_SIZE,
            offset: (page - 1).saturating_mul(u64::from(PAGE_SIZE)),
        }),
    };
    match state.store.list_docs(which.kind(), &query).await {
        Ok((docs, total)) => html(
            StatusCode::OK,
            views::directory(
                &signed_in.session,
                which,
                &q,
                &docs,
                total,
                page,
                u64::from(PAGE_SIZE),
            ),
        ),
        Err(e) => store_failed(e),
    }
}

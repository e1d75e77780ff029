//! `/console/deliveries…`: the deliveries list (live, filtered by hook, status and time),
//! recovery and replay of a hook's window, one delivery, a retry.

use super::{
    html, refuse_forgery, said, see_item, see_other, store_failed, views, ConsoleForm, CsrfForm,
    SignedIn,
};
use crate::clock::now_ms;
use crate::routes::AppState;
use crate::storage::deliveries::{DeliveryInfo, DeliveryQuery, DeliveryStatus};
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/deliveries", get(deliveries_page))
        .route("/console/deliveries/live", get(live_table))
        .route("/console/deliveries/{id}", get(delivery_page))
        .route(
            "/console/deliveries/{id}/retry",
            get(back_to_delivery).post(retry_delivery),
        )
        // A GET (a reload after a refusal shown at the POST's URL) goes back to the list.
        .route(
            "/console/deliveries/recover",
            get(|| async { see_other("/console/deliveries") }).post(recover),
        )
        .route(
            "/console/deliveries/replay",
            get(|| async { see_other("/console/deliveries") }).post(replay),
        )
}

/// Deliveries a page.
const PAGE_SIZE: u32 = 50;
/// The last page read (a larger number shows it): offsets stay far inside what both
/// databases take.
const MAX_PAGE: u64 = 1_000_000;

/// The filter as a query of one page; why not for an unknown status, a bad time or a window
/// that ends before it starts.
fn query_of(filter: &views::DeliveryFilter) -> Result<DeliveryQuery, String> {
    let status = match filter.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match DeliveryStatus::parse(s) {
            Some(s) => Some(s),
            None => return Err("That is not a delivery status.".into()),
        },
    };
    let (since, until) = filter.times()?;
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err("“From” is after “To”: no delivery can match.".into());
        }
    }
    let page = filter.page.unwrap_or(1).clamp(1, MAX_PAGE);
    Ok(DeliveryQuery {
        hook_id: filter.hook_id.clone().filter(|h| !h.is_empty()),
        status,
        since,
        until,
        page: crate::storage::Page {
            limit: PAGE_SIZE,
            offset: (page - 1) * u64::from(PAGE_SIZE),
        },
        ..Default::default()
    })
}

/// What the deliveries page shows: the hooks, by name, and the filter's page of matches
/// with how many match; a filter that cannot be read shows none, and why.
struct Found {
    hooks: Vec<crate::domain::hook::Hook>,
    list: Vec<DeliveryInfo>,
    total: u64,
    refused: Option<String>,
}

async fn deliveries_of(
    state: &AppState,
    filter: &views::DeliveryFilter,
) -> Result<Found, crate::storage::StoreError> {
    let hooks = state.store.list_hooks(None).await?.0;
    let (list, total, refused) = match query_of(filter) {
        Ok(query) => {
            let (list, total) = state.store.list_deliveries(&query).await?;
            (list, total, None)
        }
        Err(why) => (Vec::new(), 0, Some(why)),
    };
    Ok(Found {
        hooks,
        list,
        total,
        refused,
    })
}

async fn deliveries_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filter): Query<views::DeliveryFilter>,
) -> Response {
    let notice = match (filter.done.as_deref(), filter.queued) {
        (Some("recovered"), Some(0)) => {
            Some("Nothing to recover: no failed delivery was created in the window.".into())
        }
        (Some("replayed"), Some(0)) => Some(
            "Nothing to replay: every event of the window the hook takes already has a delivery to it."
                .into(),
        ),
        (Some("recovered"), Some(n)) => Some(format!(
            "{n} failed deliver{} queued again; they are sent in the background.",
            if n == 1 { "y was" } else { "ies were" }
        )),
        (Some("replayed"), Some(n)) => Some(format!(
            "{n} deliver{} created for the window's events; they are sent in the background.",
            if n == 1 { "y was" } else { "ies were" }
        )),
        _ => None,
    };
    show_deliveries(
        &state,
        &signed_in,
        &filter,
        StatusCode::OK,
        notice.as_deref(),
        None,
    )
    .await
}

/// The deliveries page for `filter`, with what a change did or why it did not.
async fn show_deliveries(
    state: &AppState,
    signed_in: &SignedIn,
    filter: &views::DeliveryFilter,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    match deliveries_of(state, filter).await {
        Ok(found) => {
            let (status, error) = match &found.refused {
                Some(why) => (StatusCode::BAD_REQUEST, Some(why.as_str())),
                None => (status, error),
            };
            html(
                status,
                views::deliveries(
                    &signed_in.session,
                    &views::DeliveriesPage {
                        filter,
                        hooks: &found.hooks,
                        list: &found.list,
                        total: found.total,
                        page_size: u64::from(PAGE_SIZE),
                        notice,
                        error,
                    },
                ),
            )
        }
        Err(e) => store_failed(e),
    }
}

/// What the recover and replay forms send: the CSRF token and the filter they act on.
#[derive(Deserialize)]
struct WindowForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    filter: views::DeliveryFilter,
}

/// Which of the API's window operations a form asks for.
#[derive(Clone, Copy)]
enum WindowOperation {
    Recover,
    Replay,
}

/// Recovers the failed deliveries of the filter's hook and window (as `POST
/// /api/hooks/{id}/recover`): 303 back to the list with how many, or the list with the API's
/// reason (a disabled hook, no window).
async fn recover(
    State(state): State<AppState>,
    signed_in: SignedIn,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<WindowForm>,
) -> Response {
    run_window(&state, &signed_in, &parts, form, WindowOperation::Recover).await
}

/// Replays the window's events to the filter's hook (as `POST /api/hooks/{id}/replay`).
async fn replay(
    State(state): State<AppState>,
    signed_in: SignedIn,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<WindowForm>,
) -> Response {
    run_window(&state, &signed_in, &parts, form, WindowOperation::Replay).await
}

async fn run_window(
    state: &AppState,
    signed_in: &SignedIn,
    parts: &Parts,
    form: WindowForm,
    op: WindowOperation,
) -> Response {
    if let Some(refused) = refuse_forgery(parts, signed_in, &form.csrf) {
        return refused;
    }
    let filter = &form.filter;
    let refuse = |message: String| async move {
        show_deliveries(
            state,
            signed_in,
            filter,
            StatusCode::BAD_REQUEST,
            None,
            Some(&message),
        )
        .await
    };
    let Some(hook_id) = filter.hook_id.clone().filter(|h| !h.is_empty()) else {
        return refuse("Choose a hook first: recovery and replay work on one hook.".into()).await;
    };
    let window = match filter.times() {
        Ok((None, _)) => {
            return refuse("Choose when the window starts (“From”) first.".into()).await
        }
        Ok((since, until)) => crate::routes::recovery::window(since, until, now_ms()),
        Err(m) => return refuse(m).await,
    };
    let window = match window {
        Ok(w) => w,
        // (A window ending before it starts is refused with the list itself.)
        Err(_) => {
            return refuse("“From” is in the future: nothing is in the window yet.".into()).await
        }
    };
    let (done, result) = match op {
        WindowOperation::Recover => (
            "recovered",
            crate::routes::recovery::recover_window(state, &hook_id, window).await,
        ),
        WindowOperation::Replay => (
            "replayed",
            crate::routes::recovery::replay_window(state, &hook_id, window).await,
        ),
    };
    match result {
        // Back to the hook's window, whatever the status: what was queued shows there.
        Ok(queued) => {
            let window = views::DeliveryFilter {
                status: None,
                page: None,
                ..filter.clone()
            };
            see_other(&format!(
                "/console/deliveries?{}&done={done}&queued={queued}",
                window.query()
            ))
        }
        Err(e) => {
            let status = e.status;
            show_deliveries(state, signed_in, filter, status, None, Some(&said(&e))).await
        }
    }
}

/// The deliveries table alone, for the page's live refresh (400 for a filter the page
/// refused: the script then leaves the table as it is).
async fn live_table(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    Query(filter): Query<views::DeliveryFilter>,
) -> Response {
    match deliveries_of(&state, &filter).await {
        Ok(Found {
            refused: Some(why), ..
        }) => html(StatusCode::BAD_REQUEST, views::problem(&why)),
        Ok(found) => html(
            StatusCode::OK,
            views::delivery_table(&views::matches(found.total), &found.list, &found.hooks),
        ),
        Err(e) => store_failed(e),
    }
}

/// A GET of the retry's URL (Enter in the address bar after a refusal shown there) goes to
/// the delivery.
async fn back_to_delivery(Path(id): Path<String>) -> Response {
    see_item("/console/deliveries", &id)
}

async fn delivery_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    show_delivery(&state, &signed_in, &id, StatusCode::OK, None).await
}

/// The delivery page, with `notice` above it (what a retry did).
async fn show_delivery(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let detail = match state.store.get_delivery(id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                views::problem("There is no such delivery (its hook may have been deleted)."),
            )
        }
        Err(e) => return store_failed(e),
    };
    let hook = match state.store.get_hook(&detail.delivery.hook_id).await {
        Ok(h) => h,
        Err(e) => return store_failed(e),
    };
    html(
        status,
        views::delivery(&signed_in.session, &detail, hook.as_ref(), notice),
    )
}

/// Sends the delivery again now: 303 back to it, or the page with the API's reason (a
/// disabled hook, a blocking call).
async fn retry_delivery(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    match crate::routes::deliveries::retry_delivery(&state, &id).await {
        Ok(_) => see_other(&format!("/console/deliveries/{id}")),
        Err(e) => show_delivery(&state, &signed_in, &id, e.status, Some(&said(&e))).await,
    }
}

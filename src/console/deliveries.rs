//! `/console/deliveries…`: the deliveries list (live), one delivery, a retry.

use super::{
    html, refuse_forgery, see_other, store_failed, views, ConsoleForm, CsrfForm, SignedIn,
};
use crate::routes::AppState;
use crate::storage::deliveries::{DeliveryInfo, DeliveryQuery, DeliveryStatus};
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/deliveries", get(deliveries_page))
        .route("/console/deliveries/rows", get(delivery_rows))
        .route("/console/deliveries/{id}", get(delivery_page))
        .route("/console/deliveries/{id}/retry", post(retry_delivery))
}

/// What the deliveries page shows: the filter's matches (the newest 50) and the hooks, by
/// name. An unknown status is an error page.
async fn deliveries_of(
    state: &AppState,
    filter: &views::DeliveryFilter,
) -> Result<(Vec<crate::domain::hook::Hook>, Vec<DeliveryInfo>, u64), Response> {
    let status = match filter.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match DeliveryStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return Err(html(
                    StatusCode::BAD_REQUEST,
                    views::problem("That is not a delivery status."),
                ))
            }
        },
    };
    let hooks = state.store.list_hooks(None).await.map_err(store_failed)?.0;
    let query = DeliveryQuery {
        hook_id: filter.hook_id.clone().filter(|h| !h.is_empty()),
        status,
        page: crate::storage::Page {
            limit: 50,
            offset: 0,
        },
        ..Default::default()
    };
    let (list, total) = state
        .store
        .list_deliveries(&query)
        .await
        .map_err(store_failed)?;
    Ok((hooks, list, total))
}

async fn deliveries_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filter): Query<views::DeliveryFilter>,
) -> Response {
    match deliveries_of(&state, &filter).await {
        Ok((hooks, list, total)) => html(
            StatusCode::OK,
            views::deliveries(&signed_in.session, &filter, &hooks, &list, total),
        ),
        Err(page) => page,
    }
}

/// The deliveries table's rows alone, for the page's live refresh.
async fn delivery_rows(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    Query(filter): Query<views::DeliveryFilter>,
) -> Response {
    match deliveries_of(&state, &filter).await {
        Ok((hooks, list, _)) => html(StatusCode::OK, views::delivery_rows(&list, &hooks)),
        Err(page) => page,
    }
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
        Err(e) => show_delivery(&state, &signed_in, &id, e.status, Some(&e.message)).await,
    }
}

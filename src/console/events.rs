//! `/console/events…`: the published events, newest first (filtered by name), and one event
//! with its payload and where it was delivered.

use super::{html, store_failed, views, SignedIn};
use crate::routes::AppState;
use crate::storage::deliveries::DeliveryQuery;
use crate::storage::events::EventQuery;
use crate::storage::Page;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/events", get(events_page))
        .route("/console/events/{id}", get(event_page))
}

/// Events a page.
const PAGE_SIZE: u32 = 50;
/// The last page read (a larger number shows it): offsets stay far inside what both
/// databases take.
const MAX_PAGE: u64 = 1_000_000;
/// The most deliveries an event's page lists (one per subscribed hook).
const DELIVERIES_SHOWN: u32 = 200;

async fn events_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filter): Query<views::EventFilter>,
) -> Response {
    let name = match filter.event.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => match crate::domain::event::HookEvent::parse(e) {
            Ok(e) => Some(e.name().to_owned()),
            Err(_) => {
                return html(
                    StatusCode::BAD_REQUEST,
                    views::problem("That is not an event name."),
                )
            }
        },
    };
    let page = filter.page.unwrap_or(1).clamp(1, MAX_PAGE);
    // One more than a page: whether there is an older one, without counting the table.
    let query = EventQuery {
        name,
        page: Page {
            limit: PAGE_SIZE + 1,
            offset: (page - 1).saturating_mul(u64::from(PAGE_SIZE)),
        },
    };
    let mut list = match state.store.list_events(&query).await {
        Ok(list) => list,
        Err(e) => return store_failed(e),
    };
    let older = list.len() > PAGE_SIZE as usize;
    list.truncate(PAGE_SIZE as usize);
    html(
        StatusCode::OK,
        views::events(&signed_in.session, &filter, page, &list, older),
    )
}

async fn event_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let event = match state.store.get_event(&id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                views::problem("There is no such event (it may have been pruned by --retention)."),
            )
        }
        Err(e) => return store_failed(e),
    };
    let query = DeliveryQuery {
        event_id: Some(event.id.clone()),
        page: Page {
            limit: DELIVERIES_SHOWN,
            offset: 0,
        },
        ..Default::default()
    };
    let (deliveries, total) = match state.store.list_deliveries(&query).await {
        Ok(found) => found,
        Err(e) => return store_failed(e),
    };
    let hooks = match state.store.list_hooks(None).await {
        Ok((hooks, _)) => hooks,
        Err(e) => return store_failed(e),
    };
    html(
        StatusCode::OK,
        views::event(&signed_in.session, &event, (&deliveries, total), &hooks),
    )
}

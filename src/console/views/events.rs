//! The events list and one event.

use super::{layout, when, Section};
use crate::console::session::Session;
use crate::domain::event::{EventKind, HookEvent};
use crate::domain::hook::Hook;
use crate::storage::deliveries::DeliveryInfo;
use crate::storage::events::{DeliveryCounts, PublishedEvent};
use maud::{html, Markup};

/// The events filter as the page holds it (its query string).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct EventFilter {
    /// An event name; empty: every event.
    #[serde(default)]
    pub event: Option<String>,
    /// From 1.
    #[serde(default)]
    pub page: Option<u64>,
}

impl EventFilter {
    /// The link to page `page` of this filter.
    fn link(&self, page: u64) -> String {
        let mut pairs = vec![("page", page.to_string())];
        if let Some(e) = self.event.as_deref().filter(|e| !e.is_empty()) {
            pairs.insert(0, ("event", e.to_owned()));
        }
        format!(
            "/console/events?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// Published events, newest first, a page at a time, each with where it went.
pub fn events(
    session: &Session,
    filter: &EventFilter,
    page: u64,
    list: &[PublishedEvent],
    older: bool,
) -> Markup {
    // Blocking events are answered in their interaction, not published.
    let names: Vec<HookEvent> = HookEvent::all()
        .filter(|e| !matches!(e.kind(), EventKind::Blocking))
        .collect();
    layout(
        "Events",
        Some((session, Section::Events)),
        html! {
            h1 { "Events" }
            form.filters method="get" action="/console/events" {
                label for="event" { "Event" }
                select #event name="event" {
                    option value="" { "Every event" }
                    @for e in &names {
                        option value=(e.name()) selected[filter.event.as_deref() == Some(e.name())] { (e.name()) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if list.is_empty() {
                p.empty {
                    @if page > 1 { "No older events." }
                    @else if filter.event.as_deref().is_some_and(|e| !e.is_empty()) { "No events of this name." }
                    @else { "No events yet. Events appear here as the identity core and " code { "POST /api/events" } " publish them." }
                }
            } @else {
                div.scroll {
                    table {
                        caption { "Published events, newest first (page " (page) ")" }
                        thead {
                            tr {
                                th scope="col" { "Event" }
                                th scope="col" { "Published" }
                                th scope="col" { "Delivered to" }
                            }
                        }
                        tbody {
                            @for e in list {
                                tr {
                                    td { a href={ "/console/events/" (e.id) } { (e.name) } br; small.muted { (e.id) } }
                                    td { (when(e.created_at)) }
                                    td { (counts(&e.deliveries)) }
                                }
                            }
                        }
                    }
                }
            }
            nav.row aria-label="Pages" {
                @if page > 1 { a.button href=(filter.link(page - 1)) { "Newer" } }
                @if older { a.button href=(filter.link(page + 1)) { "Older" } }
            }
        },
    )
}

/// Where an event went, in words: "2 hooks: 1 succeeded, 1 failed".
fn counts(c: &DeliveryCounts) -> Markup {
    let parts: Vec<String> = [
        (c.succeeded, "succeeded"),
        (c.failed, "failed"),
        (c.queued, "queued"),
        (c.skipped, "skipped"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let total = c.total();
    html! {
        @if total == 0 { span.muted { "no hook" } }
        @else { (total) " hook" @if total != 1 { "s" } ": " (parts.join(", ")) }
    }
}

/// One event: its payload, and each delivery of it (`deliveries`: the first ones listed and
/// how many there are).
pub fn event(
    session: &Session,
    e: &PublishedEvent,
    (deliveries, total): (&[DeliveryInfo], u64),
    hooks: &[Hook],
) -> Markup {
    let caption = if total > deliveries.len() as u64 {
        format!(
            "The newest {} of its {total} deliveries (GET /api/deliveries?eventId= lists them all)",
            deliveries.len()
        )
    } else {
        "Each hook the event was delivered to".to_owned()
    };
    let payload = serde_json::from_str::<serde_json::Value>(&e.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| e.payload.clone());
    layout(
        "Event",
        Some((session, Section::Events)),
        html! {
            h1 { (e.name) " " small.muted { code { (e.id) } } }
            dl.facts {
                dt { "Published" } dd { (when(e.created_at)) }
                dt { "Delivered to" } dd { (counts(&e.deliveries)) }
            }
            h2 { "Deliveries" }
            div.scroll { (super::delivery_table(&caption, deliveries, hooks)) }
            h2 { "Payload" }
            p.muted { "As stored; each delivery adds its hook's " code { "hookId" } "." }
            pre { (payload) }
        },
    )
}

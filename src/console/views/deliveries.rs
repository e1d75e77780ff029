//! The deliveries list and its live rows, and one delivery.

use super::{layout, when};
use crate::console::session::Session;
use crate::domain::hook::Hook;
use crate::storage::deliveries::{DeliveryDetail, DeliveryInfo, DeliveryStatus};
use maud::{html, Markup};

/// The deliveries filter as the page holds it.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct DeliveryFilter {
    #[serde(rename = "hookId", default)]
    pub hook_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl DeliveryFilter {
    /// The query string that repeats this filter (`hookId=…&status=…`), escaped.
    pub fn query(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(h) = self.hook_id.as_deref().filter(|h| !h.is_empty()) {
            pairs.push(("hookId", h));
        }
        if let Some(s) = self.status.as_deref().filter(|s| !s.is_empty()) {
            pairs.push(("status", s));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// The deliveries, newest first, with their filter; the table body refreshes itself.
pub fn deliveries(
    session: &Session,
    filter: &DeliveryFilter,
    hooks: &[Hook],
    list: &[DeliveryInfo],
    total: u64,
) -> Markup {
    let statuses = [
        DeliveryStatus::Queued,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Skipped,
    ];
    let live = format!("/console/deliveries/rows?{}", filter.query());
    layout(
        "Deliveries",
        Some(session),
        html! {
            h1 { "Deliveries" }
            form.filters method="get" action="/console/deliveries" {
                label for="hook" { "Hook" }
                select #hook name="hookId" {
                    option value="" { "All hooks" }
                    @for h in hooks {
                        option value=(h.id) selected[filter.hook_id.as_deref() == Some(h.id.as_str())] {
                            @if h.name.is_empty() { (h.id) } @else { (h.name) }
                        }
                    }
                }
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in statuses {
                        option value=(s.as_str()) selected[filter.status.as_deref() == Some(s.as_str())] { (s.as_str()) }
                    }
                }
                button type="submit" { "Filter" }
            }
            div.scroll {
                table {
                    caption { (total) " deliveries match; the newest 50 are shown, and new ones appear as they come" }
                    thead {
                        tr {
                            th scope="col" { "Status" }
                            th scope="col" { "Event" }
                            th scope="col" { "Hook" }
                            th scope="col" { "Attempts" }
                            th scope="col" { "Created" }
                            th scope="col" { "Next attempt" }
                        }
                    }
                    tbody data-live=(live) { (delivery_rows(list, hooks)) }
                }
            }
        },
    )
}

/// The rows of the deliveries table (also served alone, for the live refresh).
pub fn delivery_rows(list: &[DeliveryInfo], hooks: &[Hook]) -> Markup {
    html! {
        @if list.is_empty() {
            tr { td colspan="6" { span.muted { "No deliveries yet." } } }
        }
        @for d in list {
            @let hook = hooks.iter().find(|h| h.id == d.hook_id);
            tr {
                td { a href={ "/console/deliveries/" (d.id) } { (status_badge(d.status)) } }
                td { a href={ "/console/deliveries/" (d.id) } { (d.event_name) } }
                td { @match hook { Some(h) if !h.name.is_empty() => (h.name), _ => (d.hook_id) } }
                td.num { (d.attempts) }
                td { (when(d.created_at)) }
                td { @match d.next_attempt_at { Some(t) => (when(t)), None => span.muted { "–" } } }
            }
        }
    }
}

fn status_badge(s: DeliveryStatus) -> Markup {
    let class = match s {
        DeliveryStatus::Succeeded => "ok",
        DeliveryStatus::Failed => "bad",
        _ => "muted",
    };
    html! { span class=(class) { (s.as_str()) } }
}

/// One delivery: what it sends, every attempt, and a retry button.
pub fn delivery(
    session: &Session,
    d: &DeliveryDetail,
    hook: Option<&Hook>,
    notice: Option<&str>,
) -> Markup {
    let info = &d.delivery;
    layout(
        "Delivery",
        Some(session),
        html! {
            h1 { "Delivery " code { (info.id) } }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            dl.facts {
                dt { "Status" } dd { (status_badge(info.status)) }
                dt { "Event" } dd { (info.event_name) " " small.muted { (info.event_id) } }
                dt { "Hook" } dd { @match hook { Some(h) => { (h.name) " " small.muted { (h.id) } }, None => (info.hook_id) } }
                dt { "Attempts" } dd { (info.attempts) }
                dt { "Created" } dd { (when(info.created_at)) }
                @if let Some(t) = info.next_attempt_at { dt { "Next attempt" } dd { (when(t)) } }
            }
            form method="post" action={ "/console/deliveries/" (info.id) "/retry" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" { "Retry now" }
            }
            h2 { "Request body" }
            pre { (d.request_body.as_deref().unwrap_or("(the event is gone)")) }
            @if let Some(h) = &d.request_headers { h2 { "Headers the transform chose" } pre { (h) } }
            h2 { "Attempts" }
            @if d.attempts.is_empty() { p.muted { "No attempt yet." } }
            @for a in &d.attempts {
                section.attempt aria-label={ "Attempt " (a.attempt) } {
                    h3 { "Attempt " (a.attempt) ": "
                        @if a.success { span.ok { "success" } } @else { span.bad { "failure" } } }
                    p {
                        @if let Some(s) = a.response_status { "Status " strong { (s) } ", " }
                        (a.duration_ms) " ms, " (when(a.created_at))
                    }
                    @if let Some(e) = &a.error { p.error { (e) } }
                    @if let Some(b) = &a.response_body { details { summary { "Response body" } pre { (b) } } }
                    @if let Some(s) = &a.script { details { summary { "Script run" } pre { (s) } } }
                }
            }
        },
    )
}

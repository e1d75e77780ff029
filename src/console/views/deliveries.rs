//! The deliveries list and its live rows, and one delivery.

use super::{hook_name, layout, when, Section};
use crate::console::session::Session;
use crate::domain::hook::Hook;
use crate::storage::deliveries::{DeliveryDetail, DeliveryInfo, DeliveryStatus};
use maud::{html, Markup};

/// The deliveries filter as the page holds it (its query string), with what the last
/// recovery or replay did (`done`, `queued`: shown once, not repeated by [`Self::query`]).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct DeliveryFilter {
    #[serde(rename = "hookId", default)]
    pub hook_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// Created at or after, as typed (see [`Self::times`]).
    #[serde(default)]
    pub since: Option<String>,
    /// Created at or before, as typed.
    #[serde(default)]
    pub until: Option<String>,
    /// From 1, 50 a page.
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub done: Option<String>,
    #[serde(default)]
    pub queued: Option<u64>,
}

impl DeliveryFilter {
    /// The query string that repeats this filter (`hookId=…&status=…&since=…&until=…`),
    /// escaped.
    pub fn query(&self) -> String {
        let mut pairs = Vec::new();
        for (key, value) in [
            ("hookId", &self.hook_id),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                pairs.push((key, v));
            }
        }
        let page = self.page.filter(|p| *p > 1).map(|p| p.to_string());
        if let Some(p) = page.as_deref() {
            pairs.push(("page", p));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// `since` and `until` in epoch ms, both inclusive, each `None` when empty. A time is
    /// what a `datetime-local` field sends, `YYYY-MM-DDTHH:MM[:SS]`, read in UTC (the console
    /// shows every time in UTC), or epoch ms, or RFC 3339. A `datetime-local` "To" covers its
    /// whole second (or minute, without seconds). The error says which field is wrong.
    pub fn times(&self) -> Result<(Option<i64>, Option<i64>), String> {
        Ok((
            parse_time(self.since.as_deref(), "From", false)?,
            parse_time(self.until.as_deref(), "To", true)?,
        ))
    }
}

/// A filter's time (see [`DeliveryFilter::times`]); `to_end`: the end of the second or minute
/// a `datetime-local` value names.
fn parse_time(raw: Option<&str>, field: &str, to_end: bool) -> Result<Option<i64>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Some(ms) = crate::routes::deliveries::parse_time(raw) {
        return Ok(Some(ms));
    }
    [
        (
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            999,
        ),
        (
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
            59_999,
        ),
    ]
    .iter()
    .find_map(|(f, last)| {
        let t = time::PrimitiveDateTime::parse(raw, f).ok()?;
        let ms = i64::try_from(t.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()?;
        Some(if to_end { ms + last } else { ms })
    })
    .filter(|ms| *ms >= 0)
    .map(Some)
    .ok_or_else(|| format!("“{field}” is not a time: use YYYY-MM-DDTHH:MM, in UTC."))
}

/// A time as a `datetime-local` field's value, in UTC to the second (empty if not a time).
fn field_time(ms: Option<i64>) -> String {
    ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// What the deliveries page shows.
pub struct DeliveriesPage<'a> {
    pub filter: &'a DeliveryFilter,
    pub hooks: &'a [Hook],
    /// The newest 50 matches.
    pub list: &'a [DeliveryInfo],
    /// How many match.
    pub total: u64,
    /// Deliveries a page.
    pub page_size: u64,
    /// What a recovery or replay did.
    pub notice: Option<&'a str>,
    /// Why one was refused.
    pub error: Option<&'a str>,
}

/// The deliveries, newest first, with their filter; the table body refreshes itself. With
/// one hook chosen, its window's failed deliveries can be recovered and its events replayed.
pub fn deliveries(session: &Session, page: &DeliveriesPage) -> Markup {
    let DeliveriesPage {
        filter,
        hooks,
        list,
        total,
        page_size,
        notice,
        error,
    } = *page;
    let number = filter.page.unwrap_or(1).max(1);
    let link = |n: u64| {
        let f = DeliveryFilter {
            page: Some(n),
            ..filter.clone()
        };
        format!("/console/deliveries?{}", f.query())
    };
    let (since, until) = filter.times().unwrap_or_default();
    let hook = filter
        .hook_id
        .as_deref()
        .and_then(|id| hooks.iter().find(|h| h.id == id));
    let statuses = [
        DeliveryStatus::Queued,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Skipped,
    ];
    let live = format!("/console/deliveries/live?{}", filter.query());
    layout(
        "Deliveries",
        Some((session, Section::Deliveries)),
        html! {
            h1 { "Deliveries" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.filters method="get" action="/console/deliveries" {
                label for="hook" { "Hook" }
                select #hook name="hookId" {
                    option value="" { "All hooks" }
                    @for h in hooks {
                        option value=(h.id) selected[filter.hook_id.as_deref() == Some(h.id.as_str())] {
                            (hook_name(h))
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
                label for="since" { "From (UTC)" }
                input #since type="datetime-local" step="1" name="since" value=(field_time(since));
                label for="until" { "To (UTC)" }
                input #until type="datetime-local" step="1" name="until" value=(field_time(until));
                button type="submit" { "Filter" }
            }
            @if let Some(h) = hook {
                details.card.wide open[since.is_some()] {
                    summary { "Recover or replay this window for " (hook_name(h)) }
                    @if since.is_none() {
                        p.muted { "Set “From” above and filter first: both act on the window shown." }
                    } @else {
                        p { "Window: " (when(since.unwrap_or_default())) " to " (until.map(when).unwrap_or_else(|| "now".into())) "." }
                        form method="post" action="/console/deliveries/recover" {
                            (window_fields(session, filter))
                            button type="submit" { "Recover failed deliveries" }
                            " " small.muted { "Each failed delivery of the window is queued again with a fresh schedule (same webhook-id and body)." }
                        }
                        form method="post" action="/console/deliveries/replay" {
                            (window_fields(session, filter))
                            button type="submit" { "Replay events" }
                            " " small.muted { "Each event of the window the hook subscribes to and has no delivery of gets one." }
                        }
                    }
                }
            }
            div.scroll data-live=(live) { (delivery_table(&matches(total), list, hooks)) }
            nav.row aria-label="Pages" {
                @if number > 1 { a.button href=(link(number - 1)) { "Newer" } }
                @if number.saturating_mul(page_size) < total { a.button href=(link(number + 1)) { "Older" } }
            }
        },
    )
}

/// The deliveries list's caption: how many match.
pub fn matches(total: u64) -> String {
    format!(
        "{total} {}, newest first, 50 a page; new ones appear as they come",
        if total == 1 {
            "delivery matches"
        } else {
            "deliveries match"
        }
    )
}

/// A table of deliveries under `caption` (the deliveries list's is also served alone, for
/// its live refresh).
pub fn delivery_table(caption: &str, list: &[DeliveryInfo], hooks: &[Hook]) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead {
                tr {
                    th scope="col" { "Status" }
                    th scope="col" { "Event" }
                    th scope="col" { "Hook" }
                    th scope="col" { "Attempts" }
                    th scope="col" { "Last response" }
                    th scope="col" { "Created" }
                    th scope="col" { "Next attempt" }
                }
            }
            tbody { (delivery_rows(list, hooks)) }
        }
    }
}

/// A table's rows, one a delivery.
fn delivery_rows(list: &[DeliveryInfo], hooks: &[Hook]) -> Markup {
    html! {
        @if list.is_empty() {
            tr { td colspan="7" { span.muted { "No deliveries match." } } }
        }
        @for d in list {
            @let hook = hooks.iter().find(|h| h.id == d.hook_id);
            tr {
                td { a href={ "/console/deliveries/" (d.id) } { (status_badge(d.status)) } }
                td { a href={ "/console/deliveries/" (d.id) } { (d.event_name) } }
                td { a href={ "/console/hooks/" (d.hook_id) } { (hook.map_or(d.hook_id.as_str(), hook_name)) } }
                td.num { (d.attempts) }
                td.num {
                    @match (d.last_response_status, d.last_duration_ms) {
                        (Some(s), Some(ms)) => { (s) " · " (ms) " ms" },
                        (None, Some(ms)) => { span.muted { "no response" } " · " (ms) " ms" },
                        _ => span.muted { "–" },
                    }
                }
                td { (when(d.created_at)) }
                td { @match d.next_attempt_at { Some(t) => (when(t)), None => span.muted { "–" } } }
            }
        }
    }
}

/// The hidden fields of a recovery or replay: the CSRF token and the filter.
fn window_fields(session: &Session, filter: &DeliveryFilter) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="hookId" value=(filter.hook_id.as_deref().unwrap_or_default());
        input type="hidden" name="status" value=(filter.status.as_deref().unwrap_or_default());
        input type="hidden" name="since" value=(filter.since.as_deref().unwrap_or_default());
        input type="hidden" name="until" value=(filter.until.as_deref().unwrap_or_default());
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
    let blocking = crate::domain::event::HookEvent::parse(&info.event_name)
        .is_ok_and(|e| e.kind() == crate::domain::event::EventKind::Blocking);
    layout(
        "Delivery",
        Some((session, Section::Deliveries)),
        html! {
            h1 { "Delivery " code { (info.id) } }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            dl.facts {
                dt { "Status" } dd { (status_badge(info.status)) }
                dt { "Event" } dd { a href={ "/console/events/" (info.event_id) } { (info.event_name) } " " small.muted { (info.event_id) } }
                dt { "Hook" } dd { @match hook { Some(h) => { a href={ "/console/hooks/" (h.id) } { (hook_name(h)) } " " small.muted { (h.id) } }, None => (info.hook_id) } }
                dt { "Attempts" } dd { (info.attempts) }
                dt { "Created" } dd { (when(info.created_at)) }
                @if let Some(t) = info.next_attempt_at { dt { "Next attempt" } dd { (when(t)) } }
            }
            @if blocking {
                p.muted { "The logged call of a blocking hook: it was answered inside its interaction and is never sent again." }
            } @else {
                form method="post" action={ "/console/deliveries/" (info.id) "/retry" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Retry now" }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_times_are_read_in_utc_and_shown_back_as_typed() {
        let filter = DeliveryFilter {
            since: Some("2026-12-01T10:30".into()),
            until: Some("2026-12-01T10:30:15".into()),
            ..Default::default()
        };
        let (since, until) = filter.times().unwrap();
        assert_eq!(since, Some(1_796_121_000_000));
        assert_eq!(until, Some(1_796_121_015_999), "To covers its whole second");
        assert_eq!(field_time(since), "2026-12-01T10:30:00");
        let rfc = DeliveryFilter {
            since: Some("2026-12-01T11:30:00+01:00".into()),
            until: Some(" 1796121000000 ".into()),
            ..Default::default()
        };
        assert_eq!(rfc.times().unwrap(), (since, since));
        let minute = DeliveryFilter {
            until: Some("2026-12-01T10:30".into()),
            ..Default::default()
        };
        assert_eq!(minute.times().unwrap().1, Some(1_796_121_059_999));
        let bad = DeliveryFilter {
            until: Some("tomorrow".into()),
            ..Default::default()
        };
        assert!(bad.times().unwrap_err().contains("“To”"));
        assert_eq!(DeliveryFilter::default().times().unwrap(), (None, None));
        assert_eq!(
            DeliveryFilter {
                hook_id: Some("h&1".into()),
                since: Some(" ".into()),
                done: Some("recovered".into()),
                ..Default::default()
            }
            .query(),
            "hookId=h%261"
        );
    }
}

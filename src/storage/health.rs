//! Hook health (issue 15), written once for both backends: where a hook's failing streak
//! stands after a batch of attempt records, which hooks a batch disables (410 Gone), and
//! hookline's operational events (`Delivery.Exhausted`, `Hook.Disabled`), which commit with
//! the change that fires them.

use super::ordering::HELD_MS;
use super::{AttemptRecord, NewEvent, NextStep};
use crate::domain::event::{EventKind, HookEvent};
use crate::domain::id::new_id;
use crate::domain::payload::{
    delivery_exhausted_payload, hook_disabled_payload, iso_timestamp, DisabledReason, Exhausted,
};

/// Added to the `due_at` of a disabled hook's queued deliveries (about 35,700 years in ms),
/// and taken off again when it is enabled: *parked* so, they leave the head of the queue,
/// where claims would otherwise walk past them on every round (SQLite's claim gives up
/// after a few thousand, and would stall behind a large backlog), and they keep their place.
pub const PARK_MS: i64 = 1 << 50;

/// Parks (`enabled` false) or unparks a hook's queued deliveries; `{hook}` is the hook's
/// parameter mark. Both are no-ops when already done.
pub(crate) fn park_sql(enabled: bool, hook: &str) -> String {
    if enabled {
        format!(
            "UPDATE deliveries SET due_at = due_at - {PARK_MS} \
             WHERE state = 0 AND hook_id = {hook} AND due_at >= {PARK_MS} AND due_at < {HELD_MS}"
        )
    } else {
        format!(
            "UPDATE deliveries SET due_at = due_at + {PARK_MS} \
             WHERE state = 0 AND hook_id = {hook} AND due_at < {PARK_MS}"
        )
    }
}

/// Per hook in `records`, where its failing streak stands after its last one: `None` when
/// that attempt succeeded, `Some(at)` (its time) when it failed. In first-seen order. A
/// skipped delivery (its transform answered `null`) says nothing about the endpoint.
pub(crate) fn latest_outcomes(records: &[AttemptRecord]) -> Vec<(&str, Option<i64>)> {
    let mut out: Vec<(&str, Option<i64>)> = Vec::new();
    for r in records.iter().filter(|r| r.next != NextStep::Skipped) {
        let latest = (r.next != NextStep::Succeeded).then_some(r.at);
        match out.iter_mut().find(|(h, _)| *h == r.hook_id) {
            Some(entry) => entry.1 = latest,
            None => out.push((&r.hook_id, latest)),
        }
    }
    out
}

/// A streak's start after an outcome: a success ends it, a failure starts it or goes on.
pub(crate) fn next_failing_since(current: Option<i64>, latest: Option<i64>) -> Option<i64> {
    latest.map(|at| current.unwrap_or(at))
}

/// The hooks whose endpoint answered `410 Gone` in `records`, once each.
pub(crate) fn gone_hooks(records: &[AttemptRecord]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in records {
        if r.next == NextStep::Gone && !out.contains(&r.hook_id.as_str()) {
            out.push(&r.hook_id);
        }
    }
    out
}

fn created_at(now_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    iso_timestamp(at)
}

/// One `Delivery.Exhausted` per record that ended its delivery's schedule, except for
/// deliveries of operational events: a monitoring hook that fails must not feed itself.
pub(crate) fn exhausted_events(records: &[AttemptRecord], now_ms: i64) -> Vec<NewEvent> {
    records
        .iter()
        .filter(|r| matches!(r.next, NextStep::GaveUp | NextStep::Gone))
        .filter(|r| {
            HookEvent::parse(&r.event_name).map_or(true, |e| e.kind() != EventKind::Operational)
        })
        .map(|r| NewEvent {
            id: new_id(),
            event: HookEvent::DELIVERY_EXHAUSTED,
            payload: delivery_exhausted_payload(
                &Exhausted {
                    delivery_id: &r.delivery_id,
                    event_id: &r.event_id,
                    event_name: &r.event_name,
                    hook_id: &r.hook_id,
                    attempts: r.attempt,
                    response_status: r.response_status,
                    error: r.error.as_deref(),
                },
                &created_at(now_ms),
            ),
            created_at: now_ms,
        })
        .collect()
}

/// The `Hook.Disabled` event of one hook.
pub(crate) fn disabled_event(
    hook_id: &str,
    name: &str,
    reason: DisabledReason,
    failing_since: Option<i64>,
    now_ms: i64,
) -> NewEvent {
    NewEvent {
        id: new_id(),
        event: HookEvent::HOOK_DISABLED,
        payload: hook_disabled_payload(hook_id, name, reason, failing_since, &created_at(now_ms)),
        created_at: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hook: &str, next: NextStep, at: i64, event: &str) -> AttemptRecord {
        AttemptRecord {
            id: new_id(),
            delivery_id: format!("d{at}"),
            delivery_row: 0,
            event_id: "e".into(),
            ordering_key: None,
            hook_id: hook.into(),
            event_name: event.into(),
            attempt: 3,
            next,
            response_status: Some(500),
            response_body: None,
            error: None,
            duration_ms: 1,
            at,
            transformed: None,
            script: None,
        }
    }

    #[test]
    fn the_park_offset_is_the_one_sqlites_record_statement_spells_out() {
        // `sqlite/queue.rs` writes it literally (its statement is a `&'static str`).
        assert_eq!(PARK_MS, 1_125_899_906_842_624);
        assert!(park_sql(false, "?1").contains("1125899906842624"));
    }

    #[test]
    fn streaks_follow_each_hooks_last_outcome() {
        let records = [
            record("a", NextStep::RetryAt(9), 1, "User.Created"),
            record("b", NextStep::GaveUp, 2, "User.Created"),
            record("a", NextStep::Succeeded, 3, "User.Created"),
            record("b", NextStep::Gone, 4, "User.Created"),
            // A skip says nothing about the endpoint: b's streak stands, c has none.
            record("b", NextStep::Skipped, 5, "User.Created"),
            record("c", NextStep::Skipped, 6, "User.Created"),
        ];
        assert_eq!(latest_outcomes(&records), [("a", None), ("b", Some(4))]);
        assert_eq!(next_failing_since(None, Some(4)), Some(4));
        assert_eq!(next_failing_since(Some(1), Some(4)), Some(1));
        assert_eq!(next_failing_since(Some(1), None), None);
        assert_eq!(gone_hooks(&records), ["b"]);
    }

    #[test]
    fn exhausted_deliveries_fire_an_event_unless_they_carried_one_of_ours() {
        let records = [
            record("a", NextStep::GaveUp, 1, "User.Created"),
            record("a", NextStep::RetryAt(9), 2, "User.Created"),
            record("a", NextStep::GaveUp, 3, "Delivery.Exhausted"),
            record("a", NextStep::Gone, 4, "PostSignIn"),
        ];
        let events = exhausted_events(&records, 1_764_565_200_000);
        assert_eq!(events.len(), 2);
        let p = &events[0].payload;
        assert_eq!(p["event"], "Delivery.Exhausted");
        assert_eq!(p["createdAt"], "2025-12-01T05:00:00.000Z");
        assert_eq!(p["data"]["deliveryId"], "d1");
        assert_eq!(p["data"]["hookId"], "a");
        assert_eq!(p["data"]["attempts"], 3);
        assert!(
            p.get("hookId").is_none(),
            "the receiving hook's id is added per delivery"
        );
    }
}

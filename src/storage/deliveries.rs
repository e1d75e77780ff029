//! Deliveries as objects for operators (`GET /api/deliveries`, issue 15): the row types, and
//! the queries both backends run, written once with the backend's parameter marks.
//!
//! The lookups must not cost the queue: on PostgreSQL every update of a delivery (a claim
//! moves `due_at`) writes a new entry into each of its indexes, and on SQLite the writer
//! thread is where the sustainable rate stops (BENCHMARKS.md). So the indexes that serve these
//! reads (by time, by hook, by event) are partial, over *finished* deliveries only
//! (`state <> 0`): a delivery enters them once, when its result is recorded. Queued rows are
//! found through the queue index, which holds only the backlog. Every query is therefore two
//! branches, queued and finished, each able to use its index, merged and paginated.

use super::schema::Marks;
use super::AttemptLog;

/// Where a delivery is: the `state` column (0, 1, 2, 3 in both schemas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting to be sent, being sent, or waiting for a retry.
    Queued,
    Succeeded,
    /// Its retry schedule ran out; kept for the log (and for `recover`).
    Failed,
    /// Its hook's transform answered `null`: nothing was sent (issue 16).
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(DeliveryStatus::Queued),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            "skipped" => Some(DeliveryStatus::Skipped),
            _ => None,
        }
    }

    pub(crate) fn state(self) -> i64 {
        match self {
            DeliveryStatus::Queued => 0,
            DeliveryStatus::Succeeded => 1,
            DeliveryStatus::Failed => 2,
            DeliveryStatus::Skipped => 3,
        }
    }

    pub(crate) fn from_state(state: i64) -> Option<Self> {
        match state {
            0 => Some(DeliveryStatus::Queued),
            1 => Some(DeliveryStatus::Succeeded),
            2 => Some(DeliveryStatus::Failed),
            3 => Some(DeliveryStatus::Skipped),
            _ => None,
        }
    }
}

/// Which deliveries to list; every filter given must hold. Times are epoch milliseconds of the
/// delivery's creation, both bounds inclusive.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub hook_id: Option<String>,
    pub event_id: Option<String>,
    /// An event name (`User.Created`).
    pub event_name: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub page: super::Page,
}

/// One delivery: an (event, hook) pair and where it is.
#[derive(Debug, Clone)]
pub struct DeliveryInfo {
    /// Also its `webhook-id`.
    pub id: String,
    pub event_id: String,
    pub hook_id: String,
    pub event_name: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// For a queued delivery, when it is due next (epoch ms). While an attempt is in flight on
    /// PostgreSQL this is the claim's lease end, when it would be tried again if the node died;
    /// `None` while its hook is disabled (the delivery is parked).
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The latest attempt's response status (`None` before the first attempt, for one that
    /// got no response: a timeout, a refused connection, a failed transform, and for
    /// deliveries recorded before hookline kept it).
    pub last_response_status: Option<u16>,
    /// The latest attempt's duration in ms (`None` before the first attempt, and for
    /// deliveries recorded before hookline kept it).
    pub last_duration_ms: Option<i64>,
}

/// One delivery with what it sends and every attempt, oldest first.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: DeliveryInfo,
    /// The body every attempt sends: what its transform made, once stored, else the event's
    /// payload with `hookId`; `None` if the event row is gone.
    pub request_body: Option<String>,
    /// The custom headers its transform chose, if it did (a JSON object).
    pub request_headers: Option<String>,
    pub attempts: Vec<AttemptLog>,
}

/// A creation-time window, both ends inclusive (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: i64,
    pub until: i64,
}

/// Which failed deliveries a recovery re-queues: those of `hook_id` created in `window` whose
/// last change was at or before `before` (the request's time), so that one which fails again
/// while the recovery goes on is not taken a second time.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub hook_id: String,
    pub window: Window,
    pub before: i64,
}

/// Which events a replay delivers to `hook_id`: those created in `window`, named in
/// `events` (the hook's subscriptions), that have no delivery to the hook.
#[derive(Debug, Clone)]
pub struct Replay {
    pub hook_id: String,
    pub events: Vec<String>,
    pub window: Window,
    /// The hook orders deliveries per user (`config.ordering`): what the replay creates joins
    /// each user's line ([`super::ordering`]).
    pub per_user: bool,
}

/// Where a replay stopped: the last event it looked at, in (creation time, id) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayCursor {
    pub created_at: i64,
    pub event_id: String,
}

/// What one step of a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayStep {
    /// Deliveries created.
    pub created: u64,
    /// Where the next step starts; `None` once the window is done.
    pub next: Option<ReplayCursor>,
}

/// The filter of `r`'s events over `events e` (arguments: since, until, the names as
/// `names` renders the third, hook). Whether a delivery exists is asked of the finished and
/// the queued rows apart, so that each can use its index.
pub(crate) fn replay_filter(marks: Marks, names: &str) -> String {
    let hook = marks.at(4);
    format!(
        "e.created_at >= {} AND e.created_at <= {} AND {names} \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state <> 0 AND d.event_id = e.id \
           AND d.hook_id = {hook}) \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state = 0 AND d.event_id = e.id \
           AND d.hook_id = {hook})",
        marks.at(1),
        marks.at(2),
    )
}

/// The filter of a recovery's deliveries (arguments: hook, since, until, before): failed ones,
/// never the logged calls of blocking hooks (those are answered in their interaction and
/// cannot be sent again).
pub(crate) fn recovery_filter(marks: Marks) -> String {
    format!(
        "state <> 0 AND state = 2 AND hook_id = {} AND created_at >= {} AND created_at <= {} \
         AND updated_at <= {} AND event_name NOT IN ('PreRegister', 'PreSignIn', 'PreResetPassword')",
        marks.at(1),
        marks.at(2),
        marks.at(3),
        marks.at(4)
    )
}

/// What a retention step may delete (`--retention`): rows created before these times (epoch
/// ms). Queued deliveries are never deleted, nor an event any delivery still refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    /// Finished deliveries, and events no delivery refers to.
    pub deliveries_and_events: i64,
    /// Attempts: never later than 24 h ago, so recent-logs and the hooks' stats keep their
    /// day whatever the retention.
    pub attempts: i64,
}

/// Rows one retention step deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub events: u64,
    pub attempts: u64,
}

impl Pruned {
    /// Whether a table had `limit` rows deleted, so more may be left.
    pub fn maybe_more(&self, limit: u32) -> bool {
        let limit = u64::from(limit);
        self.deliveries >= limit || self.events >= limit || self.attempts >= limit
    }
}

/// A bound value of a built query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The columns every listing selects; `tie` is the backend's insertion order (`rowid`,
/// `seq`), which breaks ties in `created_at`.
fn columns(tie: &str) -> String {
    format!(
        "id, event_id, hook_id, event_name, state, attempts, due_at, created_at, updated_at, \
         last_status, last_duration_ms, {tie} AS tie"
    )
}

/// The count and page queries of `q`, and their arguments (the page query takes two more
/// after them: the rows to take and to skip).
pub(crate) fn list_sql(q: &DeliveryQuery, marks: Marks, tie: &str) -> (String, String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut filters = Vec::new();
    let mut add = |filter: &str, arg: Arg, args: &mut Vec<Arg>| {
        args.push(arg);
        filters.push(format!("{filter} {}", marks.at(args.len())));
    };
    if let Some(h) = &q.hook_id {
        add("hook_id =", Arg::Text(h.clone()), &mut args);
    }
    if let Some(e) = &q.event_id {
        add("event_id =", Arg::Text(e.clone()), &mut args);
    }
    if let Some(n) = &q.event_name {
        add("event_name =", Arg::Text(n.clone()), &mut args);
    }
    if let Some(s) = q.since {
        add("created_at >=", Arg::Int(s), &mut args);
    }
    if let Some(u) = q.until {
        add("created_at <=", Arg::Int(u), &mut args);
    }
    // The finished branch names `state <> 0` literally, so that both planners see it implies
    // the partial indexes' predicate.
    let finished = match q.status {
        Some(DeliveryStatus::Queued) => None,
        Some(s) => Some(format!("state <> 0 AND state = {}", s.state())),
        None => Some("state <> 0".to_owned()),
    };
    let queued = match q.status {
        None | Some(DeliveryStatus::Queued) => Some("state = 0".to_owned()),
        Some(_) => None,
    };
    let where_ = |state: &str| {
        let mut all = vec![state.to_owned()];
        all.extend(filters.iter().cloned());
        all.join(" AND ")
    };
    let branches: Vec<String> = finished
        .into_iter()
        .chain(queued)
        .map(|s| where_(&s))
        .collect();
    let count = branches
        .iter()
        .map(|w| format!("(SELECT COUNT(*) FROM deliveries WHERE {w})"))
        .collect::<Vec<_>>()
        .join(" + ");
    let take = marks.at(args.len() + 1);
    let skip = marks.at(args.len() + 2);
    let cols = columns(tie);
    let page = branches
        .iter()
        .map(|w| {
            format!(
                "SELECT * FROM (SELECT {cols} FROM deliveries WHERE {w} \
                 ORDER BY created_at DESC, {tie} DESC LIMIT {take} + {skip}) b"
            )
        })
        .collect::<Vec<_>>();
    // Each branch is aliased differently (PostgreSQL wants every subquery named).
    let page = page
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{s}{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let page = format!(
        "SELECT * FROM ({page}) d ORDER BY created_at DESC, tie DESC LIMIT {take} OFFSET {skip}"
    );
    (format!("SELECT {count}"), page, args)
}

/// One delivery by id, with its event's payload.
pub(crate) fn get_sql(marks: Marks, tie: &str) -> String {
    format!(
        "SELECT {}, e.payload, d.request_body, d.request_headers \
         FROM deliveries d LEFT JOIN events e ON e.id = d.event_id WHERE d.id = {}",
        columns(tie)
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        marks.at(1)
    )
}

/// A delivery's attempts, oldest first: through the attempt log's `(hook_id, created_at)`
/// index, bounded by the delivery's creation and last change, since attempts are not indexed
/// by delivery (one b-tree fewer to write per attempt). Arguments: hook, delivery id, from,
/// to.
pub(crate) fn attempts_sql(marks: Marks, tie: &str) -> String {
    format!(
        "SELECT * FROM attempts WHERE hook_id = {} AND delivery_id = {} \
         AND created_at >= {} AND created_at <= {} ORDER BY created_at, {tie}",
        marks.at(1),
        marks.at(2),
        marks.at(3),
        marks.at(4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_filter_keeps_only_its_branch() {
        let q = DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            hook_id: Some("h".into()),
            ..Default::default()
        };
        let (count, page, args) = list_sql(&q, Marks::Dollar, "seq");
        assert_eq!(
            count,
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state <> 0 AND state = 2 AND hook_id = $1)"
        );
        assert!(!page.contains("state = 0"));
        assert!(page.contains("LIMIT $2 + $3"));
        assert_eq!(args.len(), 1);

        let q = DeliveryQuery {
            status: Some(DeliveryStatus::Queued),
            ..Default::default()
        };
        let (count, page, _) = list_sql(&q, Marks::Question, "rowid");
        assert_eq!(
            count,
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 0)"
        );
        assert!(!page.contains("state <> 0"));
    }

    #[test]
    fn without_a_status_both_branches_are_merged_with_every_filter() {
        let q = DeliveryQuery {
            event_id: Some("e".into()),
            since: Some(5),
            until: Some(9),
            ..Default::default()
        };
        let (count, page, args) = list_sql(&q, Marks::Question, "rowid");
        assert_eq!(args.len(), 3);
        assert_eq!(
            count
                .matches("event_id = ?1 AND created_at >= ?2 AND created_at <= ?3")
                .count(),
            2
        );
        assert!(page.contains("UNION ALL"));
        assert!(page.ends_with("LIMIT ?4 OFFSET ?5"));
    }

    #[test]
    fn a_recovery_leaves_every_blocking_event_alone() {
        use crate::domain::event::{EventKind, HookEvent};
        let filter = recovery_filter(Marks::Dollar);
        for e in HookEvent::all() {
            let named = filter.contains(&format!("'{}'", e.name()));
            assert_eq!(named, e.kind() == EventKind::Blocking, "{}", e.name());
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            DeliveryStatus::Queued,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
            DeliveryStatus::Skipped,
        ] {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
            assert_eq!(DeliveryStatus::from_state(s.state()), Some(s));
        }
        assert_eq!(DeliveryStatus::parse("Queued"), None);
    }
}

//! The storage conformance suite: the same cases against every `Store` implementation, through
//! the trait alone. Each case runs as `sqlite::<case>` and `postgres::<case>`; the PostgreSQL
//! ones need `HOOKLINE_TEST_POSTGRES_URL` (set by `scripts/with-postgres`, which the README's
//! test command runs) and make a database of their own.

use hookline::domain::event::HookEvent;
use hookline::domain::hook::{Hook, HookConfig, Ordering};
use hookline::domain::id::new_id;
use hookline::storage::deliveries::{
    DeliveryQuery, DeliveryStatus, PruneCutoffs, Pruned, Recovery, Replay, Window,
};
use hookline::storage::identity::{transact, Doc, IdentityError, Key, Kind, StateSpace};
use hookline::storage::{
    connect, AttemptRecord, ClaimRequest, ClaimedDelivery, ConnectOptions, Lease, LogQuery,
    NewEvent, NextStep, Page, Store, TransformedRequest,
};
use serde_json::{json, Map};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One database, and how to open more stores ("nodes") on it.
struct Db {
    url: String,
    _dir: TempDir,
}

impl Db {
    async fn new(backend: Backend) -> Db {
        let dir = TempDir::new().unwrap();
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("h.db").display()),
            Backend::Postgres => new_postgres_database().await,
        };
        Db { url, _dir: dir }
    }

    async fn open(&self) -> Arc<dyn Store> {
        connect(
            &self.url,
            ConnectOptions {
                pool_size: 8,
                ..Default::default()
            },
        )
        .await
        .expect("the store opens")
    }

    /// A second node on the same database (PostgreSQL); SQLite allows one process per file,
    /// so there the one store plays both parts.
    async fn second(&self, first: &Arc<dyn Store>) -> Arc<dyn Store> {
        if self.url.starts_with("sqlite:") {
            first.clone()
        } else {
            self.open().await
        }
    }
}

async fn new_postgres_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("HOOKLINE_TEST_POSTGRES_URL").expect(
        "HOOKLINE_TEST_POSTGRES_URL is not set: run the tests through scripts/test (see the README)",
    );
    let name = format!("s_{}", new_id());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await
                }
            )*
        }
    };
}

cases!(
    an_enqueue_leases_what_it_is_allowed_and_queues_the_rest,
    claims_keep_the_per_hook_cap_and_skip_busy_and_disabled_hooks,
    a_claim_says_whether_it_left_due_work_behind,
    concurrent_claimers_never_take_the_same_delivery,
    a_lease_hides_a_delivery_until_it_ends,
    rows_put_back_behind_claimed_ones_are_claimed_again,
    records_move_deliveries_on_and_are_logged,
    a_transformed_request_is_kept_for_retries_and_a_skip_finishes,
    a_release_makes_deliveries_due_and_wakes_the_dispatcher,
    a_commit_that_queues_deliveries_wakes_every_node,
    concurrent_publishes_each_get_their_own_deliveries_and_fail_alone,
    a_record_after_the_lease_ran_out_does_not_undo_a_takeover,
    deleting_a_hook_drops_its_queued_deliveries,
    retried_and_recovered_deliveries_are_due_again_with_a_fresh_schedule,
    a_replay_creates_each_missing_delivery_once,
    pruning_deletes_only_what_retention_lets_go,
    failing_streaks_disable_a_hook_once_and_a_success_or_enabling_ends_them,
    a_disabled_hooks_backlog_is_parked_out_of_the_claims_way,
    a_users_deliveries_to_an_ordering_hook_go_one_at_a_time_in_order,
    concurrent_publishes_and_records_keep_one_head_per_user,
    recovered_and_replayed_deliveries_rejoin_their_users_line,
    a_paused_hooks_backlog_waits_out_of_the_claims_way,
    an_identity_change_and_its_events_commit_together_or_not_at_all,
    concurrent_changes_of_interaction_state_all_count,
    settings_are_set_once,
);

const USER_CREATED: &str = "User.Created";

fn hook(events: &[&str]) -> Hook {
    Hook {
        id: new_id(),
        name: "h".into(),
        event: None,
        events: events
            .iter()
            .map(|e| HookEvent::parse(e).unwrap())
            .collect(),
        config: HookConfig {
            url: Some("http://127.0.0.1:9/hook".into()),
            headers: None,
            retries: None,
            timeout_ms: None,
            failure_policy: None,
            max_in_flight: None,
            rate_limit: None,
            ordering: None,
            transform: None,
            script: None,
        },
        signing_key: "key".into(),
        previous_signing_key: None,
        disabled_reason: None,
        enabled: true,
        created_at: hookline::clock::now_ms(),
    }
}

fn event(name: &str, at: i64) -> NewEvent {
    let mut payload = Map::new();
    payload.insert("event".into(), json!(name));
    NewEvent {
        id: new_id(),
        event: HookEvent::parse(name).unwrap(),
        payload,
        created_at: at,
    }
}

/// Queues `n` `User.Created` events, a millisecond apart from `now`, none leased.
async fn queue_user_created(store: &dyn Store, now: i64, n: i64) {
    for i in 0..n {
        store
            .enqueue_event(&event(USER_CREATED, now + i), Lease::default())
            .await
            .unwrap();
    }
}

fn claim(now: i64, limit: u32) -> ClaimRequest {
    ClaimRequest {
        now,
        limit,
        per_hook: 100,
        busy_hooks: Vec::new(),
        lease_ms: 60_000,
    }
}

fn record(d: &ClaimedDelivery, next: NextStep, at: i64) -> AttemptRecord {
    AttemptRecord {
        id: new_id(),
        delivery_id: d.id.clone(),
        delivery_row: d.row,
        event_id: d.event_id.clone(),
        hook_id: d.hook_id.clone(),
        event_name: d.event_name.clone(),
        ordering_key: d.ordering_key.clone(),
        attempt: d.attempts + 1,
        next,
        response_status: Some(if next == NextStep::Succeeded {
            200
        } else {
            500
        }),
        response_body: Some("answer".into()),
        error: None,
        duration_ms: 3,
        at,
        transformed: None,
        script: None,
    }
}

async fn an_enqueue_leases_what_it_is_allowed_and_queues_the_rest(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    for _ in 0..3 {
        store.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    }
    store.insert_hook(&hook(&["Role.Created"])).await.unwrap();
    let now = hookline::clock::now_ms();
    let lease = Lease {
        up_to: 2,
        lease_ms: 60_000,
    };
    let e = event(USER_CREATED, now);
    let enqueued = store.enqueue_event(&e, lease).await.unwrap();
    assert_eq!(enqueued.deliveries, 3, "one per subscribed hook");
    assert_eq!(enqueued.leased.len(), 2);
    let leased = &enqueued.leased[0];
    assert_eq!(leased.event_id, e.id);
    assert!(
        leased
            .body
            .contains(&format!("\"hookId\":\"{}\"", leased.hook_id)),
        "{}",
        leased.body
    );
    // Only the one left due is claimed; the leased ones are hidden.
    let claimed = store.claim_due(&claim(now, 10)).await.unwrap().deliveries;
    assert_eq!(claimed.len(), 1);
    let ids: HashSet<_> = enqueued.leased.iter().map(|d| &d.id).collect();
    assert!(!ids.contains(&claimed[0].id));
    assert!(store
        .claim_due(&claim(now, 10))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    // Nothing subscribed: the event is stored, with no delivery.
    let none = store
        .enqueue_event(&event("Organization.Created", now), lease)
        .await
        .unwrap();
    assert_eq!((none.deliveries, none.leased.len()), (0, 0));
}

async fn claims_keep_the_per_hook_cap_and_skip_busy_and_disabled_hooks(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let (a, busy, mut off) = (
        hook(&[USER_CREATED]),
        hook(&[USER_CREATED]),
        hook(&[USER_CREATED]),
    );
    for h in [&a, &busy, &off] {
        store.insert_hook(h).await.unwrap();
    }
    let now = hookline::clock::now_ms();
    queue_user_created(&*store, now, 5).await;
    off.enabled = false;
    assert!(store.update_hook(&off).await.unwrap());
    let mut req = claim(now + 10, 100);
    req.per_hook = 2;
    req.busy_hooks = vec![busy.id.clone()];
    let claimed = store.claim_due(&req).await.unwrap().deliveries;
    assert_eq!(claimed.len(), 2, "two of the one eligible hook");
    assert!(claimed.iter().all(|d| d.hook_id == a.id));
    // In due order.
    assert!(claimed[0].created_at <= claimed[1].created_at);
    // Re-enabled, its deliveries are claimed again.
    off.enabled = true;
    assert!(store.update_hook(&off).await.unwrap());
    let claimed = store
        .claim_due(&claim(now + 10, 100))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), 3 + 5 + 5, "a's rest, busy's and off's");
    // Nothing is due before the leases end (PostgreSQL answers their end, where a dead
    // node's deliveries come back; SQLite, whose leases die with the process, none).
    let next = store.next_due_at().await.unwrap();
    assert!(next.is_none_or(|t| t >= now + 10 + 60_000), "{next:?}");
}

async fn a_claim_says_whether_it_left_due_work_behind(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let (a, busy) = (hook(&[USER_CREATED]), hook(&[USER_CREATED]));
    for h in [&a, &busy] {
        store.insert_hook(h).await.unwrap();
    }
    let now = hookline::clock::now_ms();
    queue_user_created(&*store, now, 5).await;
    let mut req = claim(now + 10, 3);
    req.busy_hooks = vec![busy.id.clone()];
    // Three of a's five: two are left that more room would have taken.
    let first = store.claim_due(&req).await.unwrap();
    assert_eq!(first.deliveries.len(), 3);
    assert!(first.more, "a's last two are still due");
    // The rest of a's: caught up. What is left belongs to the busy hook, which the claimer
    // holds back itself.
    req.limit = 10;
    let second = store.claim_due(&req).await.unwrap();
    assert_eq!(second.deliveries.len(), 2);
    assert!(!second.more, "nothing left this claim could have taken");
    // With a per-hook cap, a hook given its most leaves nothing the claimer is not told of by
    // the cap itself.
    req.busy_hooks.clear();
    req.per_hook = 2;
    let third = store.claim_due(&req).await.unwrap();
    assert_eq!(third.deliveries.len(), 2);
    assert!(third.deliveries.iter().all(|d| d.hook_id == busy.id));
    assert!(!third.more, "only the capped hook's rows are left");
}

async fn concurrent_claimers_never_take_the_same_delivery(b: Backend) {
    let db = Db::new(b).await;
    let first = db.open().await;
    let second = db.second(&first).await;
    for _ in 0..4 {
        first.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    }
    let now = hookline::clock::now_ms();
    for i in 0..100 {
        first
            .enqueue_event(&event(USER_CREATED, now + i % 7), Lease::default())
            .await
            .unwrap();
    }
    // Four claimers at once, two per node, until the queue is empty.
    let mut tasks = Vec::new();
    for store in [&first, &second, &first, &second] {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_due(&claim(now + 100, 16))
                    .await
                    .unwrap()
                    .deliveries;
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|d| d.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 400, "every delivery claimed");
    assert_eq!(unique.len(), 400, "none claimed twice");
}

async fn a_lease_hides_a_delivery_until_it_ends(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    store.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    let now = hookline::clock::now_ms();
    store
        .enqueue_event(&event(USER_CREATED, now), Lease::default())
        .await
        .unwrap();
    let mut req = claim(now, 10);
    req.lease_ms = 5_000;
    let first = store.claim_due(&req).await.unwrap().deliveries;
    assert_eq!(first.len(), 1);
    req.now = now + 4_999;
    assert!(
        store.claim_due(&req).await.unwrap().deliveries.is_empty(),
        "leased"
    );
    let due = store.next_due_at().await.unwrap();
    assert!(due.is_none_or(|t| t >= now + 5_000), "{due:?}");
    // The claimer died: at the lease's end another claim takes it over.
    req.now = now + 5_000;
    let again = store.claim_due(&req).await.unwrap().deliveries;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
}

/// Claims on SQLite start past the leased rows at the head of the queue (the claim floor):
/// every way a row can come back behind rows already claimed must still be claimed. (On
/// PostgreSQL the leases are in the rows; the same sequence must hold there too.)
async fn rows_put_back_behind_claimed_ones_are_claimed_again(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    store.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    let now = hookline::clock::now_ms();
    queue_user_created(&*store, now, 3).await;
    // The deliveries a claim at `t` takes, leasing them for `lease_ms`.
    let at = |t: i64, limit: u32, lease_ms: i64| {
        let store = store.clone();
        async move {
            let req = ClaimRequest {
                lease_ms,
                ..claim(t, limit)
            };
            store.claim_due(&req).await.unwrap().deliveries
        }
    };
    // The first with a short lease, the others after it with long ones. (Every step is
    // within a second of the first claim: SQLite's floor also goes back to the start once a
    // second, which would hide a mistake here.)
    let short = at(now + 10, 1, 500).await;
    let long = at(now + 10, 2, 60_000).await;
    assert_eq!((short.len(), long.len()), (1, 2));
    assert!(at(now + 20, 10, 60_000).await.is_empty());
    // A lease that ran out: its row is due again, ahead of the ones still leased.
    let again = at(now + 510, 10, 60_000).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, short[0].id);
    // An event stored with a time before the rows already claimed.
    let early = event(USER_CREATED, now - 5);
    store.enqueue_event(&early, Lease::default()).await.unwrap();
    let got = at(now + 520, 10, 60_000).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id, early.id);
    // A release, and a retry due before the rows still leased (the third, due at now + 2:
    // a short backoff recorded late can fall there).
    store
        .release(&[long[0].id.clone()], now + 530)
        .await
        .unwrap();
    let released = at(now + 540, 10, 60_000).await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].id, long[0].id);
    store
        .record_attempts(&[record(&got[0], NextStep::RetryAt(now + 1), now + 545)])
        .await
        .unwrap();
    let retried = at(now + 560, 10, 60_000).await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].id, got[0].id);
}

async fn records_move_deliveries_on_and_are_logged(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let h = hook(&[USER_CREATED]);
    store.insert_hook(&h).await.unwrap();
    let now = hookline::clock::now_ms();
    for i in 0..3 {
        store
            .enqueue_event(&event(USER_CREATED, now + i), Lease::default())
            .await
            .unwrap();
    }
    let claimed = store
        .claim_due(&claim(now + 10, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), 3);
    let records = [
        record(&claimed[0], NextStep::Succeeded, now + 20),
        record(&claimed[1], NextStep::RetryAt(now + 1_000), now + 21),
        record(&claimed[2], NextStep::GaveUp, now + 22),
    ];
    store.record_attempts(&records).await.unwrap();
    // Only the retry comes back, and only when due, with its attempt counted.
    assert!(store
        .claim_due(&claim(now + 999, 10))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), Some(now + 1_000));
    let retry = store
        .claim_due(&claim(now + 1_000, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (retry[0].id.as_str(), retry[0].attempts),
        (claimed[1].id.as_str(), 1)
    );
    assert_eq!(retry[0].body, claimed[1].body, "the same bytes every time");

    let (logs, total) = store
        .recent_logs(&LogQuery {
            hook_id: h.id.clone(),
            event_name: None,
            start: now,
            end: now + 100,
            page: Page {
                limit: 10,
                offset: 0,
            },
        })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(logs[0].created_at, now + 22, "newest first");
    assert_eq!(
        logs.iter().map(|l| l.success).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(
        logs[2].request_body.as_deref(),
        Some(claimed[0].body.as_str())
    );
    assert_eq!(logs[2].response_status, Some(200));
    let stats = store
        .execution_stats(std::slice::from_ref(&h.id), now)
        .await
        .unwrap();
    let s = stats[&h.id];
    assert_eq!((s.request_count, s.success_count), (3, 1));
    let q = store.queue_stats(now + 1_000).await.unwrap();
    assert_eq!((q.due, q.scheduled), (0, 1), "the retry is in flight");
    assert_eq!(q.failing_hooks, 1, "its latest attempt failed");
}

/// Transforms (issue 16): what a transform made is stored with the attempt that ran it, and
/// every later claim sends it (not the event's payload); a skip finishes the delivery as
/// skipped, logged as a success, without touching the hook's failing streak.
async fn a_transformed_request_is_kept_for_retries_and_a_skip_finishes(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let h = hook(&[USER_CREATED]);
    store.insert_hook(&h).await.unwrap();
    let now = hookline::clock::now_ms();
    for i in 0..3 {
        store
            .enqueue_event(&event(USER_CREATED, now + i), Lease::default())
            .await
            .unwrap();
    }
    let claimed = store
        .claim_due(&claim(now + 10, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|d| !d.transformed));
    let made = TransformedRequest {
        body: r#"{"text":"made by the transform"}"#.into(),
        headers: Some(r#"{"x-tenant":"t1"}"#.into()),
    };
    let mut transformed = record(&claimed[0], NextStep::RetryAt(now + 1_000), now + 20);
    transformed.transformed = Some(made.clone());
    transformed.script = Some(r#"{"durationMs":1,"logs":["ran"]}"#.into());
    let mut skipped = record(&claimed[1], NextStep::Skipped, now + 22);
    skipped.response_status = None;
    skipped.script = Some(r#"{"durationMs":1,"logs":[],"skipped":true}"#.into());
    // A transform that failed stores nothing: the next attempt runs it again.
    let mut failed = record(&claimed[2], NextStep::RetryAt(now + 1_000), now + 21);
    failed.response_status = None;
    failed.error = Some("transform: boom".into());
    store
        .record_attempts(&[transformed, failed, skipped])
        .await
        .unwrap();
    // The hook's streak stands on the failed attempts; the skip after them says nothing.
    let q = store.queue_stats(now + 30).await.unwrap();
    assert_eq!(q.failing_hooks, 1);

    let mut again = store
        .claim_due(&claim(now + 1_000, 10))
        .await
        .unwrap()
        .deliveries;
    again.sort_by_key(|d| d.id != claimed[0].id);
    assert_eq!(again.len(), 2, "the skipped delivery is finished");
    assert_eq!(again[0].id, claimed[0].id);
    assert!(again[0].transformed);
    assert_eq!(
        again[0].body, made.body,
        "the transform's bytes, not the event's"
    );
    assert_eq!(again[0].request_headers, made.headers);
    assert_eq!(again[1].id, claimed[2].id);
    assert!(!again[1].transformed);
    assert_eq!(again[1].body, claimed[2].body);
    assert_eq!(again[1].request_headers, None);
    // A later record without one keeps what is stored.
    store
        .record_attempts(&[record(&again[0], NextStep::Succeeded, now + 1_001)])
        .await
        .unwrap();

    let detail = store.get_delivery(&claimed[0].id).await.unwrap().unwrap();
    assert_eq!(detail.request_body.as_deref(), Some(made.body.as_str()));
    assert_eq!(detail.request_headers, made.headers);
    assert_eq!(detail.attempts.len(), 2);
    assert_eq!(
        detail.attempts[0].script.as_deref(),
        Some(r#"{"durationMs":1,"logs":["ran"]}"#)
    );
    assert_eq!(detail.attempts[1].script, None);
    let detail = store.get_delivery(&claimed[1].id).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Skipped);
    assert!(detail.attempts[0].success);
    assert_eq!(
        detail.request_body.as_deref(),
        Some(claimed[1].body.as_str())
    );
    let (listed, total) = store
        .list_deliveries(&DeliveryQuery {
            hook_id: Some(h.id.clone()),
            status: Some(DeliveryStatus::Skipped),
            page: Page {
                limit: 10,
                offset: 0,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(listed[0].id, claimed[1].id);
    let (logs, _) = store
        .recent_logs(&LogQuery {
            hook_id: h.id.clone(),
            event_name: None,
            start: now,
            end: now + 2_000,
            page: Page {
                limit: 10,
                offset: 0,
            },
        })
        .await
        .unwrap();
    let first = logs
        .iter()
        .find(|l| l.delivery_id == claimed[0].id)
        .unwrap();
    assert_eq!(first.request_body.as_deref(), Some(made.body.as_str()));
    let skip = logs
        .iter()
        .find(|l| l.delivery_id == claimed[1].id)
        .unwrap();
    assert!(skip.script.as_deref().unwrap().contains("skipped"));
}

async fn a_release_makes_deliveries_due_and_wakes_the_dispatcher(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let other = db.second(&store).await;
    store.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    let now = hookline::clock::now_ms();
    let enqueued = store
        .enqueue_event(
            &event(USER_CREATED, now),
            Lease {
                up_to: 1,
                lease_ms: 60_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(enqueued.leased.len(), 1);
    let wakeups = other.wakeups();
    let woken = wakeups.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let ids: Vec<String> = enqueued.leased.iter().map(|d| d.id.clone()).collect();
    store.release(&ids, now).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("the (other) node is woken");
    let claimed = other.claim_due(&claim(now, 10)).await.unwrap().deliveries;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0]);
}

async fn deleting_a_hook_drops_its_queued_deliveries(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let (gone, kept) = (hook(&[USER_CREATED]), hook(&[USER_CREATED]));
    store.insert_hook(&gone).await.unwrap();
    store.insert_hook(&kept).await.unwrap();
    let now = hookline::clock::now_ms();
    store
        .enqueue_event(&event(USER_CREATED, now), Lease::default())
        .await
        .unwrap();
    assert!(store.delete_hook(&gone.id).await.unwrap());
    assert!(!store.delete_hook(&gone.id).await.unwrap());
    assert!(store.get_hook(&gone.id).await.unwrap().is_none());
    let claimed = store.claim_due(&claim(now, 10)).await.unwrap().deliveries;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].hook_id, kept.id);
    let (hooks, total) = store.list_hooks(None).await.unwrap();
    assert_eq!((hooks.len(), total), (1, 1));
}

async fn retried_and_recovered_deliveries_are_due_again_with_a_fresh_schedule(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let h = hook(&[USER_CREATED]);
    store.insert_hook(&h).await.unwrap();
    let now = hookline::clock::now_ms();
    // Four deliveries due at now + 50…53, all claimed at now + 100 with long leases.
    queue_user_created(&*store, now + 50, 4).await;
    let claimed = store
        .claim_due(&claim(now + 100, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), 4);
    store
        .record_attempts(&[
            record(&claimed[0], NextStep::GaveUp, now + 110),
            record(&claimed[1], NextStep::GaveUp, now + 111),
            record(&claimed[2], NextStep::Succeeded, now + 112),
        ])
        .await
        .unwrap();
    let r = Recovery {
        hook_id: h.id.clone(),
        window: Window {
            since: 0,
            until: i64::MAX,
        },
        before: now + 200,
    };
    assert_eq!(store.count_recoverable(&r).await.unwrap(), 2);
    // Steps of one; the failed ones only; then nothing is left.
    assert_eq!(store.recover(&r, 1, now + 120).await.unwrap(), 1);
    assert_eq!(store.recover(&r, 10, now + 121).await.unwrap(), 1);
    assert_eq!(store.recover(&r, 10, now + 122).await.unwrap(), 0);
    assert_eq!(store.count_recoverable(&r).await.unwrap(), 0);
    let back = store
        .claim_due(&claim(now + 130, 10))
        .await
        .unwrap()
        .deliveries;
    let ids: HashSet<&str> = back.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        HashSet::from([claimed[0].id.as_str(), claimed[1].id.as_str()])
    );
    for d in &back {
        assert_eq!(
            (d.attempts, d.schedule_start),
            (1, 1),
            "a fresh schedule, numbers going on"
        );
    }
    // A retry of the succeeded one, due at a time before the rows still leased (the fourth,
    // due at now + 53): it is claimed again, past them.
    assert!(store.retry_delivery(&claimed[2].id, now + 5).await.unwrap());
    assert!(!store.retry_delivery("nope", now + 5).await.unwrap());
    let again = store
        .claim_due(&claim(now + 140, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[2].id);
    assert_eq!((again[0].attempts, again[0].schedule_start), (1, 1));
    // A failed one recovered after the request's time is not taken again.
    store
        .record_attempts(&[record(&back[0], NextStep::GaveUp, now + 300)])
        .await
        .unwrap();
    assert_eq!(store.count_recoverable(&r).await.unwrap(), 0);
    assert_eq!(store.recover(&r, 10, now + 310).await.unwrap(), 0);
}

async fn a_replay_creates_each_missing_delivery_once(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let early = hook(&[USER_CREATED]);
    store.insert_hook(&early).await.unwrap();
    let now = hookline::clock::now_ms();
    queue_user_created(&*store, now, 5).await;
    store
        .enqueue_event(&event("Role.Created", now + 2), Lease::default())
        .await
        .unwrap();
    let late = hook(&[USER_CREATED]);
    store.insert_hook(&late).await.unwrap();
    // The last event is delivered to the late hook the usual way.
    let last = event(USER_CREATED, now + 10);
    store.enqueue_event(&last, Lease::default()).await.unwrap();
    let r = Replay {
        hook_id: late.id.clone(),
        per_user: false,
        events: vec![USER_CREATED.into()],
        window: Window {
            since: now + 1,
            until: now + 100,
        },
    };
    // now + 1 … now + 4: four events in the window without a delivery to the late hook.
    assert_eq!(store.count_replayable(&r).await.unwrap(), 4);
    let (mut created, mut after, mut steps) = (0, None, 0);
    loop {
        let step = store
            .replay(&r, after.as_ref(), 2, now + 200)
            .await
            .unwrap();
        created += step.created;
        steps += 1;
        after = step.next;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(created, 4);
    assert!(
        steps >= 3,
        "two events a step over six in the window: {steps}"
    );
    assert_eq!(store.count_replayable(&r).await.unwrap(), 0);
    assert_eq!(
        store
            .replay(&r, None, 100, now + 201)
            .await
            .unwrap()
            .created,
        0
    );
    let claimed = store
        .claim_due(&claim(now + 300, 100))
        .await
        .unwrap()
        .deliveries;
    let to_late: Vec<&ClaimedDelivery> = claimed.iter().filter(|d| d.hook_id == late.id).collect();
    assert_eq!(to_late.len(), 5, "four replayed and the usual one");
    let events: HashSet<&str> = to_late.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(events.len(), 5);
    assert_eq!(claimed.len(), 11, "the early hook's six are untouched");
    // A hook deleted meanwhile (with its deliveries) ends a replay: nothing is created for it.
    assert!(store.delete_hook(&late.id).await.unwrap());
    assert_eq!(
        store
            .replay(&r, None, 100, now + 400)
            .await
            .unwrap()
            .created,
        0
    );
}

async fn pruning_deletes_only_what_retention_lets_go(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let h = hook(&[USER_CREATED]);
    store.insert_hook(&h).await.unwrap();
    let now = hookline::clock::now_ms();
    // Old: three events; two of their deliveries finish (with old attempts), one stays queued
    // (a retry far ahead).
    queue_user_created(&*store, now - 10_000, 3).await;
    let old = store
        .claim_due(&claim(now - 9_000, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(old.len(), 3);
    store
        .record_attempts(&[
            record(&old[0], NextStep::Succeeded, now - 8_000),
            record(&old[1], NextStep::GaveUp, now - 8_000),
            record(&old[2], NextStep::RetryAt(now + 60_000), now - 8_000),
        ])
        .await
        .unwrap();
    // New: one event, delivered now.
    queue_user_created(&*store, now, 1).await;
    let new = store.claim_due(&claim(now, 10)).await.unwrap().deliveries;
    store
        .record_attempts(&[record(&new[0], NextStep::Succeeded, now)])
        .await
        .unwrap();
    let cut = PruneCutoffs {
        deliveries_and_events: now - 5_000,
        attempts: now - 5_000,
    };
    // A step of one row a table, then the rest; then nothing.
    let first = store.prune(&cut, 1).await.unwrap();
    assert_eq!((first.deliveries, first.attempts), (1, 1));
    let rest = store.prune(&cut, 100).await.unwrap();
    assert_eq!(
        (
            first.deliveries + rest.deliveries,
            first.events + rest.events,
            first.attempts + rest.attempts
        ),
        (2, 2, 3),
        "the two finished old deliveries, their events, every old attempt"
    );
    assert_eq!(store.prune(&cut, 100).await.unwrap(), Pruned::default());
    // The queued one and its event stay, and it is still sent with its body; the new one
    // stays with its attempt.
    let queued = store
        .get_delivery(&old[2].id)
        .await
        .unwrap()
        .expect("a queued delivery is never pruned");
    assert!(queued.request_body.is_some());
    assert!(store.get_delivery(&old[0].id).await.unwrap().is_none());
    let kept = store.get_delivery(&new[0].id).await.unwrap().unwrap();
    assert_eq!(kept.attempts.len(), 1);
    let back = store
        .claim_due(&claim(now + 60_000, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, old[2].id);
}

async fn failing_streaks_disable_a_hook_once_and_a_success_or_enabling_ends_them(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let (failing, recovering) = (hook(&[USER_CREATED]), hook(&[USER_CREATED]));
    store.insert_hook(&failing).await.unwrap();
    store.insert_hook(&recovering).await.unwrap();
    let now = hookline::clock::now_ms();
    queue_user_created(&*store, now, 1).await;
    let claimed = store.claim_due(&claim(now, 10)).await.unwrap().deliveries;
    assert_eq!(claimed.len(), 2);
    let of = |h: &Hook| claimed.iter().find(|d| d.hook_id == h.id).unwrap();
    store
        .record_attempts(&[
            record(of(&failing), NextStep::RetryAt(now + 100), now + 10),
            record(of(&recovering), NextStep::RetryAt(now + 100), now + 10),
        ])
        .await
        .unwrap();
    // The recovering hook's retry succeeds; the failing one's fails again (the streak keeps
    // its start).
    let again = store
        .claim_due(&claim(now + 100, 10))
        .await
        .unwrap()
        .deliveries;
    let of = |h: &Hook| again.iter().find(|d| d.hook_id == h.id).unwrap();
    store
        .record_attempts(&[
            record(of(&failing), NextStep::RetryAt(now + 200), now + 110),
            record(of(&recovering), NextStep::Succeeded, now + 110),
        ])
        .await
        .unwrap();
    assert!(store
        .disable_failing_hooks(now + 9, now + 300)
        .await
        .unwrap()
        .is_empty());
    let disabled = store
        .disable_failing_hooks(now + 10, now + 300)
        .await
        .unwrap();
    assert_eq!(disabled, std::slice::from_ref(&failing.id));
    assert!(store
        .disable_failing_hooks(now + 10, now + 301)
        .await
        .unwrap()
        .is_empty());
    let shown = store.get_hook(&failing.id).await.unwrap().unwrap();
    assert!(!shown.enabled);
    assert!(shown.disabled_reason.is_some());
    assert!(
        store
            .get_hook(&recovering.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    // Enabled again: the streak starts afresh.
    let mut enabled = shown;
    enabled.enabled = true;
    enabled.disabled_reason = None;
    assert!(store.update_hook(&enabled).await.unwrap());
    assert!(store
        .disable_failing_hooks(now + 1_000_000, now + 400)
        .await
        .unwrap()
        .is_empty());
}

async fn a_disabled_hooks_backlog_is_parked_out_of_the_claims_way(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let mut big = hook(&[USER_CREATED]);
    store.insert_hook(&big).await.unwrap();
    let now = hookline::clock::now_ms();
    // More due rows of one hook than a claim passes over (SQLite's skip budget is 4,096).
    let publishes = (0..5_000).map(|i| {
        let store = store.clone();
        async move {
            store
                .enqueue_event(&event(USER_CREATED, now + i / 1_000), Lease::default())
                .await
                .unwrap()
        }
    });
    futures_util::future::join_all(publishes).await;
    big.enabled = false;
    assert!(store.update_hook(&big).await.unwrap());
    // Another hook's delivery, due after all of them, is claimed at once.
    let other = hook(&["Role.Created"]);
    store.insert_hook(&other).await.unwrap();
    store
        .enqueue_event(&event("Role.Created", now + 10), Lease::default())
        .await
        .unwrap();
    let got = store
        .claim_due(&claim(now + 20, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].hook_id, other.id);
    // Enabled again, its deliveries are due where they were, first in line.
    big.enabled = true;
    assert!(store.update_hook(&big).await.unwrap());
    let got = store
        .claim_due(&claim(now + 20, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|d| d.hook_id == big.id));
}

fn role(name: &str) -> Doc {
    let id = new_id();
    Doc {
        json: json!({"id": id, "name": name}).to_string(),
        id,
        keys: vec![(Key::Name, Some(name.to_owned()))],
        parent: None,
        created_at: hookline::clock::now_ms(),
    }
}

async fn an_identity_change_and_its_events_commit_together_or_not_at_all(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    store.insert_hook(&hook(&["Role.Created"])).await.unwrap();
    let now = hookline::clock::now_ms();
    let kept = role("kept");
    let (doc, ev) = (kept.clone(), event("Role.Created", now));
    transact(&*store, move |tx| {
        tx.insert(Kind::Role, &doc)?;
        tx.emit(std::slice::from_ref(&ev))?;
        Ok(())
    })
    .await
    .unwrap();
    let lost = role("lost");
    let (doc, ev) = (lost.clone(), event("Role.Created", now));
    let refused = transact(&*store, move |tx| -> Result<(), IdentityError> {
        tx.insert(Kind::Role, &doc)?;
        tx.emit(std::slice::from_ref(&ev))?;
        Err(IdentityError::Refused {
            status: 422,
            code: "test.refused",
            message: "no".into(),
        })
    })
    .await;
    assert!(matches!(
        refused,
        Err(IdentityError::Refused {
            code: "test.refused",
            ..
        })
    ));
    assert!(store.get_doc(Kind::Role, &kept.id).await.unwrap().is_some());
    assert!(store.get_doc(Kind::Role, &lost.id).await.unwrap().is_none());
    let claimed = store.claim_due(&claim(now, 10)).await.unwrap().deliveries;
    assert_eq!(claimed.len(), 1, "only the committed change's event");
    // A unique key taken by a committed document is found by the next change.
    let found = transact(&*store, |tx| {
        tx.find(Kind::Role, Key::Name, "kept", None)
            .map_err(Into::into)
    })
    .await
    .unwrap();
    assert_eq!(found.as_deref(), Some(kept.id.as_str()));
}

async fn concurrent_changes_of_interaction_state_all_count(b: Backend) {
    let db = Db::new(b).await;
    let first = db.open().await;
    let second = db.second(&first).await;
    // 40 changes at once over two nodes, each reading the counter and writing it plus one:
    // none may be lost (a lockout counted over several nodes).
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            transact(&*store, |tx| {
                let now = hookline::clock::now_ms();
                let n = tx
                    .state_get(StateSpace::SignInFailures, "ann", now)?
                    .and_then(|v| v["n"].as_u64())
                    .unwrap_or(0);
                tx.state_put(
                    StateSpace::SignInFailures,
                    "ann",
                    &json!({"n": n + 1}),
                    now + 60_000,
                )?;
                Ok(())
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let state = first
        .state(StateSpace::SignInFailures, "ann", hookline::clock::now_ms())
        .await
        .unwrap();
    assert_eq!(state, Some(json!({"n": 40})));
}

async fn settings_are_set_once(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    assert_eq!(store.setting("k").await.unwrap(), None);
    assert!(store.set_setting_if_absent("k", "one").await.unwrap());
    assert!(!store.set_setting_if_absent("k", "two").await.unwrap());
    let other = db.second(&store).await;
    assert_eq!(other.setting("k").await.unwrap().as_deref(), Some("one"));
    store.ping().await.unwrap();
}

async fn a_commit_that_queues_deliveries_wakes_every_node(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let other = db.second(&store).await;
    store.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    let now = hookline::clock::now_ms();
    for (i, node) in [&store, &other].into_iter().enumerate() {
        let wakeups = node.wakeups();
        drain(&wakeups).await;
        let woken = wakeups.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Committed through the first node, left due: whichever node has room is told.
        store
            .enqueue_event(&event(USER_CREATED, now + i as i64), Lease::default())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .expect("the node is woken");
    }
    // An identity change's events wake the nodes too.
    let wakeups = other.wakeups();
    drain(&wakeups).await;
    let woken = wakeups.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let ev = event(USER_CREATED, now);
    transact(&*store, move |tx| {
        tx.emit(std::slice::from_ref(&ev)).map_err(Into::into)
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("woken by an identity change");
}

async fn concurrent_publishes_each_get_their_own_deliveries_and_fail_alone(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    for _ in 0..3 {
        store.insert_hook(&hook(&[USER_CREATED])).await.unwrap();
    }
    store.insert_hook(&hook(&["Role.Created"])).await.unwrap();
    let now = hookline::clock::now_ms();
    let taken = event(USER_CREATED, now);
    store.enqueue_event(&taken, Lease::default()).await.unwrap();
    // 100 publishes at once (batched together where the store batches), each asking for a
    // different number of leases, one of them reusing a stored event's id.
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let store = store.clone();
        let e = if i == 50 {
            taken.clone()
        } else if i % 2 == 0 {
            event(USER_CREATED, now + 1)
        } else {
            event("Role.Created", now + 1)
        };
        tasks.push(tokio::spawn(async move {
            let lease = Lease {
                up_to: i % 4,
                lease_ms: 60_000,
            };
            (i, e.id.clone(), store.enqueue_event(&e, lease).await)
        }));
    }
    let mut leased_ids = HashSet::new();
    let mut queued = 0;
    for t in tasks {
        let (i, event_id, result) = t.await.unwrap();
        if i == 50 {
            assert!(
                result.is_err(),
                "a second event with a stored id is refused"
            );
            continue;
        }
        let enqueued = result.unwrap();
        let subscribers = if i % 2 == 0 { 3 } else { 1 };
        assert_eq!(enqueued.deliveries, subscribers, "event {i}");
        assert_eq!(enqueued.leased.len(), (i % 4).min(subscribers), "event {i}");
        for d in &enqueued.leased {
            assert_eq!(d.event_id, event_id, "event {i}'s own deliveries");
            assert!(leased_ids.insert(d.id.clone()));
        }
        queued += subscribers - enqueued.leased.len();
    }
    // What was not leased is in the queue, next to the first event's three.
    let claimed = store
        .claim_due(&claim(now + 1, 1_000))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), queued + 3);
    assert!(claimed.iter().all(|d| !leased_ids.contains(&d.id)));
}

async fn a_record_after_the_lease_ran_out_does_not_undo_a_takeover(b: Backend) {
    if matches!(b, Backend::Sqlite) {
        // One process per file: its claims and records come from one dispatcher, whose
        // leases end only when their records commit.
        return;
    }
    let db = Db::new(b).await;
    let (a, other) = (db.open().await, db.open().await);
    let h = hook(&[USER_CREATED]);
    a.insert_hook(&h).await.unwrap();
    let now = hookline::clock::now_ms();
    a.enqueue_event(&event(USER_CREATED, now), Lease::default())
        .await
        .unwrap();
    let mut req = claim(now, 10);
    req.lease_ms = 1_000;
    let first = a.claim_due(&req).await.unwrap().deliveries;
    // A's lease runs out; B takes the delivery over.
    req.now = now + 1_000;
    let taken = other.claim_due(&req).await.unwrap().deliveries;
    assert_eq!(taken.len(), 1);
    // A's late result is logged but does not move the delivery: B holds it.
    a.record_attempts(&[record(
        &first[0],
        NextStep::RetryAt(now + 1_001),
        now + 1_001,
    )])
    .await
    .unwrap();
    req.now = now + 1_500;
    assert!(
        a.claim_due(&req).await.unwrap().deliveries.is_empty(),
        "still B's"
    );
    other
        .record_attempts(&[record(&taken[0], NextStep::Succeeded, now + 1_600)])
        .await
        .unwrap();
    req.now = now + 100_000;
    assert!(
        a.claim_due(&req).await.unwrap().deliveries.is_empty(),
        "finished by B"
    );
    let (logs, total) = a
        .recent_logs(&LogQuery {
            hook_id: h.id.clone(),
            event_name: None,
            start: now,
            end: now + 2_000,
            page: Page {
                limit: 10,
                offset: 0,
            },
        })
        .await
        .unwrap();
    assert_eq!(total, 2, "both attempts are logged");
    assert!(logs[0].success);
}

/// Consumes a wake-up left over from earlier commits, so that the next wait sees only new ones.
async fn drain(wakeups: &tokio::sync::Notify) {
    while tokio::time::timeout(Duration::from_millis(100), wakeups.notified())
        .await
        .is_ok()
    {}
}

/// A hook that orders its deliveries per user.
fn ordered_hook(events: &[&str]) -> Hook {
    let mut h = hook(events);
    h.config.ordering = Some(Ordering::PerUser);
    h
}

/// A `PostSignIn` event of `user` at `at`.
fn sign_in(user: &str, at: i64) -> NewEvent {
    let mut e = event("PostSignIn", at);
    e.payload.insert("userId".into(), json!(user));
    e
}

fn lease(up_to: usize) -> Lease {
    Lease {
        up_to,
        lease_ms: 60_000,
    }
}

/// The claimed deliveries of `hook`, by event id.
fn of<'a>(claimed: &'a [ClaimedDelivery], hook: &Hook) -> Vec<&'a ClaimedDelivery> {
    claimed.iter().filter(|d| d.hook_id == hook.id).collect()
}

async fn a_users_deliveries_to_an_ordering_hook_go_one_at_a_time_in_order(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let ordered = ordered_hook(&["PostSignIn"]);
    let plain = hook(&["PostSignIn"]);
    store.insert_hook(&ordered).await.unwrap();
    store.insert_hook(&plain).await.unwrap();
    let now = hookline::clock::now_ms();
    // Three of u1's and one of u2's, each enqueue asking to lease all it can.
    let events = [
        sign_in("u1", now),
        sign_in("u1", now + 1),
        sign_in("u1", now + 2),
        sign_in("u2", now + 3),
    ];
    let mut leased = Vec::new();
    let mut waiting = 0;
    for e in &events {
        let enqueued = store.enqueue_event(e, lease(10)).await.unwrap();
        leased.extend(enqueued.leased);
        waiting += enqueued.waiting;
    }
    assert_eq!(waiting, 2, "u1's second and third are held, not due");
    let heads: Vec<&str> = of(&leased, &ordered)
        .iter()
        .map(|d| d.event_id.as_str())
        .collect();
    assert_eq!(
        heads,
        [&events[0].id, &events[3].id],
        "u1's first and u2's: the heads"
    );
    assert_eq!(
        of(&leased, &plain).len(),
        4,
        "a hook that does not order gets each at once"
    );
    let u1_first = of(&leased, &ordered)[0].clone();
    assert_eq!(u1_first.ordering_key.as_deref(), Some("u1"));
    // u1's others are held while the head is out, and while it waits for its retry.
    assert!(store
        .claim_due(&claim(now + 10, 10))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    store
        .record_attempts(&[record(&u1_first, NextStep::RetryAt(now + 20), now + 11)])
        .await
        .unwrap();
    assert!(store
        .claim_due(&claim(now + 15, 10))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    let retried = store
        .claim_due(&claim(now + 25, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(retried.len(), 1);
    assert_eq!(
        retried[0].id, u1_first.id,
        "the head again, nothing of u1's past it"
    );
    // The head succeeds: the next of u1's goes, alone.
    store
        .record_attempts(&[record(&retried[0], NextStep::Succeeded, now + 30)])
        .await
        .unwrap();
    let second = store
        .claim_due(&claim(now + 31, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].event_id, events[1].id);
    // A head that fails for good lets the next go too.
    store
        .record_attempts(&[record(&second[0], NextStep::GaveUp, now + 40)])
        .await
        .unwrap();
    let third = store
        .claim_due(&claim(now + 41, 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].event_id, events[2].id);
    store
        .record_attempts(&[record(&third[0], NextStep::Succeeded, now + 50)])
        .await
        .unwrap();
    assert!(store
        .claim_due(&claim(now + 51, 10))
        .await
        .unwrap()
        .deliveries
        .is_empty());
    // A line's order is commit order, whatever the events' own times: an event stamped
    // earlier but committed later (a slow request) goes later.
    let head = sign_in("u3", now + 50);
    let first = sign_in("u3", now + 55);
    let second = sign_in("u3", now + 52);
    for e in [&head, &first, &second] {
        store.enqueue_event(e, lease(0)).await.unwrap();
    }
    let mut order = Vec::new();
    for i in 0..3 {
        let d = store
            .claim_due(&claim(now + 56 + i, 10))
            .await
            .unwrap()
            .deliveries;
        let d: Vec<&ClaimedDelivery> = of(&d, &ordered);
        assert_eq!(d.len(), 1);
        order.push(d[0].event_id.clone());
        store
            .record_attempts(&[record(d[0], NextStep::Succeeded, now + 56 + i)])
            .await
            .unwrap();
    }
    assert_eq!(
        order,
        [head.id.clone(), first.id.clone(), second.id.clone()]
    );
    // A head that ends while its hook is paused lets the next go when the pause ends.
    let head = sign_in("u4", now + 57);
    let next = sign_in("u4", now + 58);
    let head_d = store.enqueue_event(&head, lease(10)).await.unwrap();
    let head_d = of(&head_d.leased, &ordered)[0].clone();
    store.enqueue_event(&next, lease(10)).await.unwrap();
    store
        .pause_hook(&ordered.id, now + 1_000, now + 58)
        .await
        .unwrap();
    store
        .record_attempts(&[record(&head_d, NextStep::Succeeded, now + 59)])
        .await
        .unwrap();
    let d = store
        .claim_due(&claim(now + 500, 10))
        .await
        .unwrap()
        .deliveries;
    assert!(of(&d, &ordered).is_empty(), "paused");
    let d = store
        .claim_due(&claim(now + 1_000, 10))
        .await
        .unwrap()
        .deliveries;
    let d = of(&d, &ordered);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].event_id, next.id);
    store
        .record_attempts(&[record(d[0], NextStep::Succeeded, now + 1_001)])
        .await
        .unwrap();
    // u1's line is empty again: the next is its head at once.
    let later = sign_in("u1", now + 1_060);
    let e = store.enqueue_event(&later, lease(10)).await.unwrap();
    assert_eq!(of(&e.leased, &ordered).len(), 1);
    // Disabled and enabled again with a line held: the line goes on where it was.
    let held = sign_in("u1", now + 1_061);
    store.enqueue_event(&held, lease(0)).await.unwrap();
    let mut off = ordered.clone();
    off.enabled = false;
    assert!(store.update_hook(&off).await.unwrap());
    store
        .record_attempts(&[record(
            of(&e.leased, &ordered)[0],
            NextStep::Succeeded,
            now + 1_070,
        )])
        .await
        .unwrap();
    let claimed = store
        .claim_due(&claim(now + 1_071, 10))
        .await
        .unwrap()
        .deliveries;
    assert!(of(&claimed, &ordered).is_empty(), "its hook is disabled");
    off.enabled = true;
    assert!(store.update_hook(&off).await.unwrap());
    let next = store
        .claim_due(&claim(now + 1_072, 10))
        .await
        .unwrap()
        .deliveries;
    let next: Vec<&str> = of(&next, &ordered)
        .iter()
        .map(|d| d.event_id.as_str())
        .collect();
    assert_eq!(next, [held.id.as_str()]);
}

async fn concurrent_publishes_and_records_keep_one_head_per_user(b: Backend) {
    let db = Db::new(b).await;
    let first = db.open().await;
    let second = db.second(&first).await;
    let ordered = ordered_hook(&["PostSignIn"]);
    first.insert_hook(&ordered).await.unwrap();
    let now = hookline::clock::now_ms();
    const N: usize = 40;
    // Publishes from two nodes at once, while the heads are recorded as they come.
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let e = sign_in("u", now + i as i64);
            store.enqueue_event(&e, lease(1)).await.unwrap().leased
        }));
    }
    let mut out: Vec<ClaimedDelivery> = Vec::new();
    let mut delivered = HashSet::new();
    let mut round = 0;
    while delivered.len() < N {
        round += 1;
        assert!(
            round < 10 * N,
            "the line stalled after {} of {N}",
            delivered.len()
        );
        for t in std::mem::take(&mut tasks) {
            if t.is_finished() {
                out.extend(t.await.unwrap());
            } else {
                tasks.push(t);
            }
        }
        let store = if round % 2 == 0 { &first } else { &second };
        out.extend(
            store
                .claim_due(&claim(now + N as i64, 10))
                .await
                .unwrap()
                .deliveries,
        );
        assert!(
            out.len() <= 1,
            "{} of the user's deliveries out at once",
            out.len()
        );
        if let Some(d) = out.pop() {
            assert!(delivered.insert(d.id.clone()), "one delivery twice");
            store
                .record_attempts(&[record(&d, NextStep::Succeeded, now + N as i64)])
                .await
                .unwrap();
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn recovered_and_replayed_deliveries_rejoin_their_users_line(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let ordered = ordered_hook(&["PostSignIn"]);
    store.insert_hook(&ordered).await.unwrap();
    let now = hookline::clock::now_ms();
    let events: Vec<NewEvent> = (0..3).map(|i| sign_in("u", now + i)).collect();
    for e in &events {
        store.enqueue_event(e, lease(0)).await.unwrap();
    }
    // All three fail for good, one after the other.
    for i in 0..3 {
        let d = store
            .claim_due(&claim(now + 10 + i, 10))
            .await
            .unwrap()
            .deliveries;
        assert_eq!(d.len(), 1);
        store
            .record_attempts(&[record(&d[0], NextStep::GaveUp, now + 10 + i)])
            .await
            .unwrap();
    }
    let r = Recovery {
        hook_id: ordered.id.clone(),
        window: Window {
            since: 0,
            until: i64::MAX,
        },
        before: now + 100,
    };
    assert_eq!(store.recover(&r, 10, now + 50).await.unwrap(), 3);
    // Back one at a time, in event order.
    for (i, e) in events.iter().enumerate() {
        let d = store
            .claim_due(&claim(now + 60 + i as i64, 10))
            .await
            .unwrap()
            .deliveries;
        assert_eq!(d.len(), 1, "recovered, step {i}");
        assert_eq!(d[0].event_id, e.id);
        store
            .record_attempts(&[record(&d[0], NextStep::Succeeded, now + 60 + i as i64)])
            .await
            .unwrap();
    }
    // A hook added late, back-filled: the same.
    let late = ordered_hook(&["PostSignIn"]);
    store.insert_hook(&late).await.unwrap();
    let replay = Replay {
        hook_id: late.id.clone(),
        per_user: true,
        events: vec!["PostSignIn".into()],
        window: Window {
            since: now,
            until: now + 10,
        },
    };
    let step = store.replay(&replay, None, 100, now + 100).await.unwrap();
    assert_eq!(step.created, 3);
    for (i, e) in events.iter().enumerate() {
        let d = store
            .claim_due(&claim(now + 110 + i as i64, 10))
            .await
            .unwrap()
            .deliveries;
        assert_eq!(d.len(), 1, "replayed, step {i}");
        assert_eq!(d[0].event_id, e.id);
        store
            .record_attempts(&[record(&d[0], NextStep::Succeeded, now + 110 + i as i64)])
            .await
            .unwrap();
    }
}

async fn a_paused_hooks_backlog_waits_out_of_the_claims_way(b: Backend) {
    let db = Db::new(b).await;
    let store = db.open().await;
    let paused = hook(&[USER_CREATED]);
    store.insert_hook(&paused).await.unwrap();
    let now = hookline::clock::now_ms();
    // More due rows of the paused hook than a SQLite claim passes over (4,096), half of them
    // queued before the pause and half during it, then one of another hook.
    let events: Vec<NewEvent> = (0..2_500).map(|i| event(USER_CREATED, now + i)).collect();
    enqueue_all(&store, &events, Lease::default()).await;
    let until = now + 60_000;
    store
        .pause_hook(&paused.id, until, now + 5_000)
        .await
        .unwrap();
    let during: Vec<NewEvent> = (0..2_500)
        .map(|i| event(USER_CREATED, now + 2_500 + i))
        .collect();
    let leased = enqueue_all(&store, &during, lease(10)).await;
    assert_eq!(leased, 0, "nothing leased for a paused hook");
    let other = hook(&["Role.Created"]);
    store.insert_hook(&other).await.unwrap();
    store
        .enqueue_event(&event("Role.Created", now + 5_001), Lease::default())
        .await
        .unwrap();
    let mut req = claim(now + 5_002, 10);
    req.busy_hooks = vec![paused.id.clone()];
    let claimed = store.claim_due(&req).await.unwrap();
    assert_eq!(
        claimed.deliveries.len(),
        1,
        "the other hook's delivery is not stalled"
    );
    assert_eq!(claimed.deliveries[0].hook_id, other.id);
    // When the pause ends, the paused hook's deliveries are due, the older first.
    let at_end = store
        .claim_due(&claim(until, 100))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(at_end.len(), 100);
    assert!(at_end.iter().all(|d| d.hook_id == paused.id));
    let before: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert!(
        at_end.iter().all(|d| before.contains(d.event_id.as_str())),
        "what was queued before the pause goes first"
    );
}

/// Enqueues `events` 50 at a time (as concurrent publishes); returns how many deliveries were
/// leased.
async fn enqueue_all(store: &Arc<dyn Store>, events: &[NewEvent], lease: Lease) -> usize {
    let mut leased = 0;
    for chunk in events.chunks(50) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|e| {
                let store = store.clone();
                tokio::spawn(async move { store.enqueue_event(&e, lease).await.unwrap() })
            })
            .collect();
        for t in tasks {
            leased += t.await.unwrap().leased.len();
        }
    }
    leased
}

//! The dispatcher's rules with plain values: ids and hook names, a budget, no store.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct D(String, &'static str);

impl Work for D {
    fn id(&self) -> &str {
        &self.0
    }
    fn hook(&self) -> &str {
        self.1
    }
    fn max_in_flight(&self) -> Option<usize> {
        // Hook "one" sets `maxInFlight: 1`, hook "many" 50 (above the global limit).
        match self.1 {
            "one" => Some(1),
            "many" => Some(50),
            _ => None,
        }
    }
    fn rate_limit(&self) -> Option<u32> {
        // Hook "paced" sets `rateLimit: 5` (one every 200 ms, no burst).
        (self.1 == "paced").then_some(5)
    }
}

#[test]
fn a_hook_of_its_own_limit_keeps_to_it() {
    let (mut s, budget) = schedule(4, 2);
    let released = hand_over(
        &mut s,
        &budget,
        vec![d(1, "one"), d(2, "one"), d(3, "a"), d(4, "a"), d(5, "a")],
    );
    assert!(released.is_empty());
    // One of "one" at a time; two of "a", the default.
    assert_eq!(starts(&mut s), ["d1", "d3", "d4"]);
    s.finished("one", "d1", None);
    assert_eq!(starts(&mut s), ["d2"]);
    // A limit above the global one is held to the global one.
    let (mut s, budget) = schedule(3, 1);
    hand_over(
        &mut s,
        &budget,
        vec![d(1, "many"), d(2, "many"), d(3, "many"), d(4, "many")],
    );
    assert_eq!(starts(&mut s), ["d1", "d2", "d3"]);
}

fn d(id: usize, hook: &'static str) -> D {
    D(format!("d{id}"), hook)
}

/// A schedule with these limits over an open budget of twice the slots (as the engine makes
/// it).
fn schedule(max_in_flight: usize, per_hook: usize) -> (Schedule<D>, Arc<LeaseBudget>) {
    let budget = Arc::new(LeaseBudget::new(2 * max_in_flight, 1_000));
    assert!(budget.open_unless_closed_since(budget.epoch()));
    let s = Schedule::new(
        Limits {
            max_in_flight,
            per_hook,
            hold_ms: 10_000,
        },
        budget.clone(),
    );
    (s, budget)
}

fn starts(s: &mut Schedule<D>) -> Vec<String> {
    starts_at(s, 0)
}

fn starts_at(s: &mut Schedule<D>, now: i64) -> Vec<String> {
    std::iter::from_fn(|| s.next_to_start(now))
        .map(|w| w.0)
        .collect()
}

/// Hands over `batch` as the API does: it takes the room first.
fn hand_over(s: &mut Schedule<D>, budget: &LeaseBudget, batch: Vec<D>) -> Vec<String> {
    assert_eq!(budget.take(batch.len()), batch.len(), "room for the batch");
    s.handed_over(batch).into_iter().map(|w| w.0).collect()
}

#[test]
fn sends_start_within_the_global_and_the_per_hook_limits() {
    let (mut s, budget) = schedule(3, 2);
    let released = hand_over(
        &mut s,
        &budget,
        vec![d(1, "a"), d(2, "a"), d(3, "a"), d(4, "b"), d(5, "b")],
    );
    assert!(released.is_empty());
    // Two of hook a (its limit), then b; the third of a waits; the global limit of 3 stops b.
    assert_eq!(starts(&mut s), ["d1", "d2", "d4"]);
    assert_eq!(s.running_total(), 3);
    // A finished send of hook a frees a slot for a's waiting delivery, ahead of b's.
    s.finished("a", "d1", None);
    assert_eq!(starts(&mut s), ["d3"]);
    s.finished("b", "d4", None);
    assert_eq!(starts(&mut s), ["d5"]);
    for (hook, id) in [("a", "d2"), ("a", "d3"), ("b", "d5")] {
        s.finished(hook, id, None);
    }
    assert_eq!(s.running_total(), 0);
    assert_eq!(
        budget.available(),
        6,
        "every finished delivery gave its unit back"
    );
}

#[test]
fn a_busy_hook_gets_nothing_more_in_memory_and_is_claimed_back_when_its_line_runs_dry() {
    let (mut s, budget) = schedule(100, 2);
    // Four for hook a: two running, two waiting: twice its limit, so it is busy.
    assert!(hand_over(&mut s, &budget, (1..=4).map(|i| d(i, "a")).collect()).is_empty());
    assert_eq!(starts(&mut s), ["d1", "d2"]);
    let before = budget.available();
    let released = hand_over(&mut s, &budget, vec![d(5, "a"), d(6, "b")]);
    assert_eq!(
        released,
        ["d5"],
        "the busy hook's delivery goes back to the queue"
    );
    assert_eq!(budget.available(), before - 1, "its unit was given back");
    assert_eq!(starts(&mut s), ["d6"]);
    // Capped now: the next delivery handed over for a goes back too, even with room.
    s.finished("a", "d1", None);
    assert_eq!(starts(&mut s), ["d3"]);
    assert!(s.take_claim_call(), "a new schedule claims once at start");
    assert_eq!(hand_over(&mut s, &budget, vec![d(7, "a")]), ["d7"]);
    // Its waiting line still holds d4: no claim yet.
    s.finished("a", "d2", None);
    assert_eq!(starts(&mut s), ["d4"]);
    assert!(!s.take_claim_call());
    // Its line is dry: claim what went back to the queue.
    s.finished("a", "d3", None);
    assert!(s.take_claim_call());
    // Another hook's finished send calls for nothing.
    s.finished("b", "d6", None);
    assert!(!s.take_claim_call());
}

#[test]
fn a_claim_takes_its_room_first_and_gives_back_what_it_did_not_use() {
    let (mut s, budget) = schedule(200, 16);
    let plan = s.plan_claim().expect("room");
    assert_eq!(plan.limit, CLAIM_BATCH, "at most a batch");
    assert_eq!(budget.available(), 400 - CLAIM_BATCH);
    let after = s.claimed(&plan, (0..10).map(|i| d(i, "a")).collect(), false);
    assert_eq!(after, AfterClaim::Sleep, "short: the queue is caught up");
    assert_eq!(budget.available(), 390);
    assert!(budget.is_open());
    // A failed claim gives its room back.
    let plan = s.plan_claim().expect("room");
    s.claim_failed(&plan);
    assert_eq!(budget.available(), 390);
}

#[test]
fn a_full_claim_closes_the_budget_and_claims_again() {
    let (mut s, budget) = schedule(200, 1_000);
    let plan = s.plan_claim().expect("room");
    let after = s.claimed(&plan, (0..plan.limit).map(|i| d(i, "a")).collect(), true);
    assert_eq!(after, AfterClaim::ClaimAgain);
    assert!(!budget.is_open(), "new events queue behind what is left");
    assert_eq!(budget.take_for_new(1), 0);
    // A short claim that caught up reopens it.
    let plan = s.plan_claim().expect("room");
    assert_eq!(s.claimed(&plan, vec![], false), AfterClaim::Sleep);
    assert!(budget.is_open());
}

#[test]
fn a_claim_that_filled_a_small_limit_and_caught_up_opens_the_budget() {
    // The budget was nearly used up, so the claim asked for only 3, and those were all that
    // was due: new events may skip the queue again (before, a claim that filled its limit
    // always closed it, and under load the budget stayed closed).
    let (mut s, budget) = schedule(4, 4);
    budget.close();
    assert_eq!(budget.take(5), 5);
    let plan = s.plan_claim().expect("room");
    assert_eq!(plan.limit, 3);
    let after = s.claimed(&plan, (0..3).map(|i| d(i, "a")).collect(), false);
    assert_eq!(after, AfterClaim::Sleep);
    assert!(budget.is_open());
}

#[test]
fn work_left_only_for_capped_hooks_waits_for_their_sends_instead_of_claiming_again() {
    let (mut s, budget) = schedule(100, 2);
    let plan = s.plan_claim().expect("room");
    // Hook a got its most and more of it is due: short of the limit, but not caught up.
    let after = s.claimed(&plan, vec![d(1, "a"), d(2, "a")], true);
    assert_eq!(after, AfterClaim::WaitForSends);
    assert!(!budget.is_open(), "new events queue behind a's");
    starts(&mut s);
    s.take_claim_call();
    s.finished("a", "d1", None);
    assert!(s.take_claim_call(), "a's finished send claims the rest");
}

#[test]
fn a_close_during_a_claim_wins_over_the_claim_coming_back_short() {
    let (mut s, budget) = schedule(10, 5);
    let plan = s.plan_claim().expect("room");
    // An enqueue left deliveries in the queue while the claim ran: its snapshot missed them.
    budget.close();
    assert_eq!(s.claimed(&plan, vec![d(1, "a")], false), AfterClaim::Sleep);
    assert!(
        !budget.is_open(),
        "only a claim begun after the close may open it"
    );
    let plan = s.plan_claim().expect("room");
    s.claimed(&plan, vec![], false);
    assert!(budget.is_open());
}

#[test]
fn a_hook_that_got_its_most_from_a_claim_is_capped_and_busy_hooks_are_skipped() {
    let (mut s, budget) = schedule(100, 2);
    // Hook c busy: 2 running, 2 waiting.
    hand_over(&mut s, &budget, (1..=4).map(|i| d(i, "c")).collect());
    starts(&mut s);
    let plan = s.plan_claim().expect("room");
    assert_eq!(plan.busy_hooks, ["c"]);
    // The claim gave hook a its most (2) and hook b one.
    s.claimed(&plan, vec![d(10, "a"), d(11, "a"), d(12, "b")], true);
    // a (capped by the claim) and c (skipped) may have more queued: their handoffs go back.
    let released = hand_over(&mut s, &budget, vec![d(20, "a"), d(21, "b"), d(22, "c")]);
    assert_eq!(released, ["d20", "d22"]);
}

#[test]
fn with_the_budget_used_up_a_claim_waits_for_a_free_round_of_slots() {
    let (mut s, budget) = schedule(2, 2);
    assert!(s.take_claim_call());
    // The API took all four units.
    hand_over(&mut s, &budget, (1..=4).map(|i| d(i, "a")).collect());
    assert_eq!(s.plan_claim(), None, "nothing to claim with");
    starts(&mut s);
    s.finished("a", "d1", None);
    assert!(!s.take_claim_call(), "one free unit is not a round");
    s.finished("a", "d2", None);
    assert!(s.take_claim_call(), "a full round of slots is free");
}

#[test]
fn it_sleeps_until_the_next_due_delivery_or_the_poll_interval() {
    let (mut s, _budget) = schedule(10, 5);
    let plan = s.plan_claim().expect("room");
    assert_eq!(
        s.sleep_until_due(&plan, Some(1_250), 1_000),
        Duration::from_millis(250)
    );
    assert_eq!(s.sleep_until_due(&plan, None, 1_000), POLL_INTERVAL);
    assert_eq!(s.sleep_until_due(&plan, Some(99_000), 1_000), POLL_INTERVAL);
    assert_eq!(s.sleep_until_due(&plan, Some(900), 1_000), Duration::ZERO);
    // Due work held back by busy hooks waits for a finished send instead of spinning.
    let busy = ClaimPlan {
        busy_hooks: vec!["a".into()],
        ..plan
    };
    assert_eq!(s.sleep_until_due(&busy, Some(900), 1_000), POLL_INTERVAL);
}

#[test]
fn the_earliest_retry_of_finished_sends_sets_the_next_wake_up() {
    let (mut s, budget) = schedule(10, 5);
    hand_over(&mut s, &budget, vec![d(1, "a"), d(2, "b")]);
    starts(&mut s);
    s.finished("a", "d1", Some(5_000));
    s.finished("b", "d2", Some(3_000));
    assert_eq!(s.take_retry_wait(1_000), Some(Duration::from_millis(2_000)));
    assert_eq!(s.take_retry_wait(1_000), None, "taken");
}

#[test]
fn at_shutdown_what_never_started_and_what_was_cut_off_is_released() {
    let (mut s, budget) = schedule(2, 2);
    hand_over(&mut s, &budget, (1..=4).map(|i| d(i, "a")).collect());
    assert_eq!(starts(&mut s), ["d1", "d2"]);
    s.stop_starting();
    assert_eq!(
        starts(&mut s),
        Vec::<String>::new(),
        "nothing starts any more"
    );
    // d1 finished in the grace period, d2 completed as it was aborted.
    s.finished("a", "d1", None);
    s.forget("d2");
    let mut left: Vec<String> = s.take_held().into_iter().collect();
    left.sort();
    assert_eq!(left, ["d3", "d4"]);
}

#[test]
fn a_paused_hook_turns_its_work_away_and_is_skipped_until_the_pause_ends() {
    let (mut s, budget) = schedule(4, 1);
    let full = budget.available();
    assert!(hand_over(&mut s, &budget, vec![d(1, "a"), d(2, "a"), d(3, "b")]).is_empty());
    // Hook a's limit is 1: d2 waits behind d1.
    assert_eq!(starts(&mut s), ["d1", "d3"]);
    // d1's endpoint answers 429 with Retry-After: the hook pauses, and d2, which would have
    // started next, is turned away with its budget unit.
    s.finished("a", "d1", Some(2_000));
    s.pause("a", 1_000);
    let away: Vec<String> = s.take_released().into_iter().map(|w| w.0).collect();
    assert_eq!(away, ["d2"]);
    assert!(starts(&mut s).is_empty());
    // While paused: handed-over deliveries of a go back, claims skip a, and a claim that
    // raced the pause has a's share turned away.
    assert_eq!(
        hand_over(&mut s, &budget, vec![d(4, "a"), d(5, "c")]),
        ["d4"]
    );
    assert_eq!(starts(&mut s), ["d5"]);
    let plan = s.plan_claim().unwrap();
    assert!(plan.busy_hooks.contains(&"a".to_owned()));
    s.claimed(&plan, vec![d(6, "a"), d(7, "c")], false);
    let away: Vec<String> = s.take_released().into_iter().map(|w| w.0).collect();
    assert_eq!(away, ["d6"]);
    // The dispatcher wakes at the pause's end (before d1's retry) and claims a again.
    assert_eq!(s.take_retry_wait(0), Some(Duration::from_millis(1_000)));
    s.end_pauses(999);
    let plan = s.plan_claim().unwrap();
    assert!(plan.busy_hooks.contains(&"a".to_owned()));
    s.claim_failed(&plan);
    s.end_pauses(1_000);
    let plan = s.plan_claim().unwrap();
    assert!(!plan.busy_hooks.contains(&"a".to_owned()));
    s.claim_failed(&plan);
    // Every unit comes back once the sends end.
    s.finished("b", "d3", None);
    s.finished("c", "d5", None);
    assert_eq!(starts(&mut s), ["d7"]);
    s.finished("c", "d7", None);
    assert_eq!(budget.available(), full);
}

#[test]
fn a_claim_keeps_twice_a_hooks_own_limit_and_turns_the_rest_away() {
    let (mut s, budget) = schedule(8, 8);
    let full = budget.available();
    let plan = s.plan_claim().unwrap();
    let claimed = (1..=5).map(|i| d(i, "one")).chain([d(6, "a")]).collect();
    s.claimed(&plan, claimed, false);
    let away: Vec<String> = s.take_released().into_iter().map(|w| w.0).collect();
    assert_eq!(away, ["d3", "d4", "d5"]);
    assert_eq!(starts(&mut s), ["d1", "d6"]);
    s.finished("one", "d1", None);
    assert_eq!(starts(&mut s), ["d2"]);
    s.finished("one", "d2", None);
    s.finished("a", "d6", None);
    assert_eq!(budget.available(), full);
}

#[test]
fn a_rate_limited_hook_starts_at_its_pace_in_order_and_others_are_not_held_back() {
    let (mut s, budget) = schedule(100, 10);
    let batch = vec![
        d(1, "paced"),
        d(2, "paced"),
        d(3, "a"),
        d(4, "paced"),
        d(5, "a"),
    ];
    assert!(hand_over(&mut s, &budget, batch).is_empty());
    // One of "paced" now; "a" is not held back.
    assert_eq!(starts_at(&mut s, 1_000), ["d1", "d3", "d5"]);
    // Its next is due 200 ms later: the dispatcher sleeps until then, no longer.
    assert_eq!(s.next_paced_start(1_000), Some(1_200));
    assert!(starts_at(&mut s, 1_199).is_empty());
    // A send that finishes early does not let the next one start before its time.
    s.finished("paced", "d1", None);
    assert!(starts_at(&mut s, 1_100).is_empty());
    // A delivery handed over meanwhile joins the end of the line.
    assert!(hand_over(&mut s, &budget, vec![d(6, "paced")]).is_empty());
    assert_eq!(starts_at(&mut s, 1_200), ["d2"]);
    assert_eq!(starts_at(&mut s, 1_400), ["d4"]);
    assert_eq!(starts_at(&mut s, 1_600), ["d6"]);
    assert_eq!(
        s.next_paced_start(1_600),
        None,
        "nothing waits for the pace"
    );
}

#[test]
fn a_rate_limited_hook_holds_no_more_than_it_sends_within_the_hold() {
    // 5 a second for 10 s of hold: 50 in memory (below twice its in-flight limit of 64).
    let (mut s, _budget) = schedule(100, 32);
    let plan = s.plan_claim().unwrap();
    s.claimed(&plan, (1..=60).map(|i| d(i, "paced")).collect(), false);
    let away: Vec<String> = s.take_released().into_iter().map(|w| w.0).collect();
    assert_eq!(away, (51..=60).map(|i| format!("d{i}")).collect::<Vec<_>>());
    assert_eq!(starts_at(&mut s, 0), ["d1"]);
    // Busy with 49 waiting and one running: the next claim skips it.
    let plan = s.plan_claim().unwrap();
    assert_eq!(plan.busy_hooks, ["paced"]);
    s.claimed(&plan, vec![], false);
    s.finished("paced", "d1", None);
    // 49 waiting, none running: below its hold, so a claim may bring one more.
    assert!(s.plan_claim().unwrap().busy_hooks.is_empty());
}

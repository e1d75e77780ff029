//! Auto-disable (`--disable-after`, issue 15): a hook whose attempts have all failed for that
//! long is disabled, with its reason and a `Hook.Disabled` event (`Store::disable_failing_hooks`).
//! The failing streak itself is kept as attempts are recorded; this pass only compares it
//! with the clock, every tenth of the window (between 1 s and 1 min). A `410 Gone` disables
//! a hook at once, when its attempt is recorded.

use crate::clock::now_ms;
use crate::storage::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs passes until `stop` is cancelled.
pub async fn run(store: Arc<dyn Store>, disable_after: Duration, stop: CancellationToken) {
    let interval = crate::retention::pass_interval(disable_after);
    let window = i64::try_from(disable_after.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let now = now_ms();
        if let Err(e) = store
            .disable_failing_hooks(now.saturating_sub(window), now)
            .await
        {
            tracing::warn!(error = %e, "auto-disable: the pass failed; the next one tries again");
        }
    }
}

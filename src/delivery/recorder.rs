//! Writes attempt records in batches: whatever has piled up while the previous transaction
//! was committing, or arrives within [`LINGER`] of the first record, goes into the next one.
//! Under load this turns thousands of small writes per second into a few hundred
//! transactions. The wait costs no delivery latency (the request was sent already); it only
//! delays the log entry and the queue row's final state by a few milliseconds, and the
//! delivery stays leased meanwhile, so nothing sends it twice.

use crate::storage::{AttemptRecord, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const MAX_BATCH: usize = 1024;
const LINGER: Duration = Duration::from_millis(3);
const WRITE_TRIES: u32 = 5;

/// Runs until every sender is gone and the channel is drained.
pub async fn run(store: Arc<dyn Store>, mut rx: UnboundedReceiver<AttemptRecord>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // One timer instead of a wake-up per arriving record.
        tokio::time::sleep(LINGER).await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        write(&*store, &batch).await;
        batch.clear();
    }
}

async fn write(store: &dyn Store, batch: &[AttemptRecord]) {
    for attempt in 1..=WRITE_TRIES {
        match store.record_attempts(batch).await {
            Ok(()) => return,
            Err(e) if attempt < WRITE_TRIES => {
                tracing::warn!(error = %e, records = batch.len(), attempt, "recording attempts failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => {
                // The deliveries stay claimed until their lease ends and are then sent again:
                // at least once still holds, only the log of these attempts is lost.
                tracing::error!(error = %e, records = batch.len(), "recording attempts failed; the deliveries will be retried after their lease");
            }
        }
    }
}

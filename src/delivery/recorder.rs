//! Writes attempt records in batches: whatever has piled up while the previous transaction
//! was committing goes into the next one. Under load this turns thousands of small writes per
//! second into a few dozen transactions; at rest a record is written as soon as it arrives.

use crate::storage::{AttemptRecord, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const MAX_BATCH: usize = 1024;
const WRITE_TRIES: u32 = 5;

/// Runs until every sender is gone and the channel is drained.
pub async fn run(store: Arc<dyn Store>, mut rx: UnboundedReceiver<AttemptRecord>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
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

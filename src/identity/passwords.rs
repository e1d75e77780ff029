//! Password hashing and checking: argon2id (and imported digests) on the blocking pool, a
//! bounded number at once.
//!
//! One argon2id hash with the crate's defaults (OWASP's parameters) takes 19 MiB and tens of
//! milliseconds of CPU by design; an imported argon2 digest may take up to
//! `domain::identity::password::MAX_ARGON2_MEMORY_KIB` (64 MiB). Unbounded, 256 concurrent
//! sign-ins took the process past 2.2 GB and the admin API's latency to 3.4 s (issue 13). So
//! at most `--password-hash-concurrency` run at once (default: the number of cores, which is
//! all the CPU they could use anyway): memory for them is bounded by that many times 19 MiB
//! (64 MiB for imported digests). A request that waits longer than
//! `--password-hash-queue-timeout` for its turn is answered 503 `server.busy` with
//! `Retry-After`, instead of queueing without end.

use super::interactions::{InteractionError, InteractionResult};
use crate::storage::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The bounded password hasher an app shares (cloning shares the bound).
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl PasswordHasher {
    /// At most `concurrency` (at least 1) hashes or checks at once; a caller waits at most
    /// `queue_timeout` for its turn.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
        }
    }

    /// An argon2id PHC string of `password`, with a new salt.
    pub async fn hash(&self, password: String) -> InteractionResult<String> {
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches the stored `hash`; without a hash, it is checked against a
    /// fixed one (and `false` returned), so an unknown identifier costs the same time as a
    /// wrong password.
    pub async fn matches(&self, password: String, hash: Option<String>) -> InteractionResult<bool> {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h,
            None => match DUMMY.get() {
                Some(d) => d.clone(),
                None => {
                    let d = self.hash("hookline-no-such-user".into()).await?;
                    DUMMY.get_or_init(|| d).clone()
                }
            },
        };
        let ok = self
            .run(move || crate::domain::identity::password::verify(&password, &hash))
            .await?;
        Ok(ok && known)
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> InteractionResult<T> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| InteractionError::Busy)?
            .map_err(|_| InteractionError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("password hashing: {e}")).into())
    }
}

fn hash_now(password: &str) -> InteractionResult<String> {
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Unavailable(format!("password hashing: {e}")).into())
}

//! A worker's hold on a claimed deployment, kept alive while it runs: the renewer
//! extends the lease in the database and moves the local deadline; the fence that apply
//! asks before every cluster write fails once the lease was lost or could have run out.
//!
//! The local deadline is the moment the last successful renewal was *sent* plus the
//! lease: the database can only hand the deployment to another worker after its own
//! expiry, which is later than that, so a worker within its deadline is still the only
//! one writing (as long as clocks run at about the same rate).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;

use loco_apply::Fence;
use loco_db::queue::{self, Lease};

/// The shared state of a held lease.
#[derive(Debug)]
pub struct Held {
    lease: Lease,
    /// `None` once the lease is known lost.
    valid_until: Mutex<Option<Instant>>,
}

impl Held {
    /// A lease claimed just now for `duration`; `claimed_at` is when the claim was sent.
    pub fn new(lease: Lease, claimed_at: Instant, duration: Duration) -> Arc<Self> {
        Arc::new(Held {
            lease,
            valid_until: Mutex::new(Some(claimed_at + duration)),
        })
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.valid_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lost(&self) {
        *self.state() = None;
    }

    fn renewed(&self, sent_at: Instant, duration: Duration) {
        let mut s = self.state();
        if s.is_some() {
            *s = Some(sent_at + duration);
        }
    }
}

impl Fence for Held {
    fn check(&self) -> Result<(), String> {
        match *self.state() {
            None => Err(format!(
                "this worker lost its lease on deployment {} (another worker took it over)",
                self.lease.deployment_id
            )),
            Some(until) if Instant::now() >= until => Err(format!(
                "this worker's lease on deployment {} ran out before it could renew it",
                self.lease.deployment_id
            )),
            Some(_) => Ok(()),
        }
    }
}

/// Renews `held` every third of the lease until dropped (aborted on drop, so a panic in
/// the deployment stops the renewals too).
pub struct Renewer(tokio::task::JoinHandle<()>);

impl Renewer {
    pub fn start(db: PgPool, held: Arc<Held>, duration: Duration) -> Self {
        Renewer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(duration / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let sent_at = Instant::now();
                match queue::renew(&db, held.lease(), duration).await {
                    Ok(true) => held.renewed(sent_at, duration),
                    Ok(false) => {
                        held.lost();
                        break;
                    }
                    Err(e) => tracing::warn!(
                        deployment_id = held.lease().deployment_id,
                        error = %e,
                        "lease renewal failed; retrying"
                    ),
                }
            }
        }))
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Aborts a task when dropped.
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            deployment_id: 7,
            epoch: 2,
        }
    }

    #[test]
    fn the_fence_fails_once_lost_or_run_out() {
        let held = Held::new(lease(), Instant::now(), Duration::from_secs(60));
        assert!(held.check().is_ok());
        held.lost();
        assert!(held.check().unwrap_err().contains("lost its lease"));
        held.renewed(Instant::now(), Duration::from_secs(60));
        assert!(
            held.check().is_err(),
            "a lost lease is never renewed locally"
        );

        let past = Held::new(lease(), Instant::now(), Duration::ZERO);
        assert!(past.check().unwrap_err().contains("ran out"));
    }
}

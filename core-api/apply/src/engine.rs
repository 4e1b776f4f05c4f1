//! Apply proper: read, decide, then write phase by phase with bounded concurrency.

use futures::{StreamExt as _, stream};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedSender;

use super::error::ApplyError;
use super::live::{self, LiveIndex};
use super::plan::{self, Action, Prepared};
use super::progress::Progress;
use super::{Applier, ApplyReport};
use loco_render::Rendered;

type Sender = UnboundedSender<Progress>;

/// The live metadata of a batch of apps' objects, from [`Applier::read_live`].
#[derive(Debug, Clone)]
pub struct LiveRead(LiveIndex);

/// How one object's write went.
enum Outcome {
    Written { created: bool },
    Unchanged,
}

impl Applier {
    /// Applies one app phase by phase ([`Phase`] order; a phase finishes before the next
    /// starts; bounded concurrency within a phase). No prune, no wait.
    pub async fn apply(&self, desired: &Rendered) -> Result<ApplyReport, ApplyError> {
        let mut report = ApplyReport::default();
        self.apply_into(desired, None, &mut report).await?;
        Ok(report)
    }

    /// Many apps at once (the resurrector's rebuild, the benchmark): apps concurrently,
    /// each app's phases in order, one cluster-wide metadata LIST per kind instead of
    /// per-object reads (Secrets excepted: they are never read, see `live`). Every app is
    /// attempted; if any failed, the error counts them and carries the first. [`Applier::apply_each`] gives the result of each app.
    pub async fn apply_many(&self, desired: &[Rendered]) -> Result<ApplyReport, ApplyError> {
        let mut report = ApplyReport::default();
        let mut errors = Vec::new();
        for (r, e) in self.apply_each(desired).await {
            report.absorb(r);
            if let Some(e) = e {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(report),
            1 if desired.len() == 1 => Err(errors.remove(0)),
            failed => Err(ApplyError::SomeAppsFailed {
                failed,
                total: desired.len(),
                first: Box::new(errors.remove(0)),
            }),
        }
    }

    /// Like [`Applier::apply_many`], with each app's report and error (in input order).
    /// A failed app does not stop the others; its report says what it wrote before failing.
    pub async fn apply_each(&self, desired: &[Rendered]) -> Vec<(ApplyReport, Option<ApplyError>)> {
        let read = self.read_live(desired).await;
        self.apply_each_read(desired, read).await
    }

    /// What the cluster holds of `desired`'s objects (the read of [`Applier::apply_each`]),
    /// so that a caller can read its next batch while this one writes.
    pub async fn read_live(&self, desired: &[Rendered]) -> Result<LiveRead, ApplyError> {
        let prepared: Vec<Result<Vec<Prepared>, ApplyError>> =
            desired.iter().map(plan::prepare).collect();
        let index =
            live::read_many(&self.client, desired, &prepared, self.config.concurrency).await?;
        Ok(LiveRead(index))
    }

    /// [`Applier::apply_each`] on a read made earlier by [`Applier::read_live`] of these
    /// apps or of more (a superset: e.g. a whole wave, of which preflight admitted some).
    /// A read made before others changed the cluster only matters to the create/update
    /// count and the ownership check, which the API server repeats (SSA conflicts, the
    /// admission policy).
    pub async fn apply_each_read(
        &self,
        desired: &[Rendered],
        read: Result<LiveRead, ApplyError>,
    ) -> Vec<(ApplyReport, Option<ApplyError>)> {
        let prepared: Vec<Result<Vec<Prepared>, ApplyError>> =
            desired.iter().map(plan::prepare).collect();
        let c = self.config.concurrency;
        let live = match read {
            Ok(LiveRead(l)) => l,
            Err(e) => return fail_all(desired.len(), &e),
        };
        // Writes of all apps share one bound; more apps than permits are in flight so
        // that an app waiting between its phases leaves no permit idle.
        let permits = Semaphore::new(c);
        let apps: Vec<_> = desired
            .iter()
            .zip(prepared)
            .enumerate()
            .map(|(i, (rendered, objects))| {
                let (live, permits) = (&live, &permits);
                async move {
                    let mut report = ApplyReport::default();
                    let result = match objects {
                        Ok(objects) => {
                            self.write_app(rendered, &objects, live, permits, None, &mut report)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    (i, (report, result.err()))
                }
            })
            .collect();
        // Unordered: a slow app at the head must not hold back the start of the next
        // ones (`buffered` counts finished-but-unyielded apps against its bound).
        let mut done: Vec<(usize, (ApplyReport, Option<ApplyError>))> = stream::iter(apps)
            .buffer_unordered(c.saturating_mul(4))
            .collect()
            .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }

    /// [`Applier::apply`] that records into `report` as it goes (a failed apply still
    /// says what it wrote, which revert needs) and reports each phase to `progress`.
    pub(crate) async fn apply_into(
        &self,
        desired: &Rendered,
        progress: Option<&Sender>,
        report: &mut ApplyReport,
    ) -> Result<(), ApplyError> {
        let objects = plan::prepare(desired)?;
        let c = self.config.concurrency;
        // Read even under `force`: ownership is checked whatever the hashes say.
        let live = live::read_app(&self.client, &desired.namespace, &objects, c).await?;
        let permits = Semaphore::new(c);
        self.write_app(desired, &objects, &live, &permits, progress, report)
            .await
    }

    /// Decides every object first (a refusal stops the app before any write), then writes
    /// phase by phase.
    async fn write_app(
        &self,
        desired: &Rendered,
        objects: &[Prepared],
        live: &LiveIndex,
        permits: &Semaphore,
        progress: Option<&Sender>,
        report: &mut ApplyReport,
    ) -> Result<(), ApplyError> {
        let actions = plan::decide_all(objects, live, self.config.force)?;
        let work: Vec<(&Prepared, Action)> = objects.iter().zip(actions).collect();
        for phase in work.chunk_by(|a, b| a.0.phase == b.0.phase) {
            let Some(current) = phase.first().map(|(p, _)| p.phase) else {
                continue;
            };
            // Futures first, then the stream: see live::read_app on `Send`.
            let writes: Vec<_> = phase
                .iter()
                .map(|(p, action)| async move { (*p, self.execute(p, *action, permits).await) })
                .collect();
            let outcomes: Vec<(&Prepared, Result<Outcome, ApplyError>)> = stream::iter(writes)
                .buffered(self.config.concurrency)
                .collect()
                .await;
            let (mut written, mut unchanged, mut first_error) = (0, 0, None);
            for (p, outcome) in outcomes {
                match outcome {
                    Ok(Outcome::Written { created }) => {
                        written += 1;
                        report.written.push(p.reference.clone());
                        if created {
                            report.created.push(p.reference.clone());
                        }
                    }
                    Ok(Outcome::Unchanged) => unchanged += 1,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            report.unchanged += unchanged;
            if let Some(e) = first_error {
                return Err(e);
            }
            emit(
                progress,
                Progress::PhaseApplied {
                    namespace: desired.namespace.clone(),
                    phase: current,
                    written,
                    unchanged,
                },
            );
        }
        Ok(())
    }

    async fn execute(
        &self,
        p: &Prepared,
        action: Action,
        permits: &Semaphore,
    ) -> Result<Outcome, ApplyError> {
        if action == Action::Skip {
            return Ok(Outcome::Unchanged);
        }
        // The semaphore is never closed; without a permit the bound of `buffered` holds.
        let _permit = permits.acquire().await.ok();
        self.write(p).await?;
        Ok(Outcome::Written {
            created: action == Action::Create,
        })
    }
}

fn fail_all(n: usize, e: &ApplyError) -> Vec<(ApplyReport, Option<ApplyError>)> {
    (0..n)
        .map(|_| (ApplyReport::default(), Some(e.clone())))
        .collect()
}

pub(crate) fn emit(progress: Option<&Sender>, event: Progress) {
    if let Some(tx) = progress {
        // A dropped receiver means nobody is listening any more; the deploy goes on.
        let _ = tx.send(event);
    }
}

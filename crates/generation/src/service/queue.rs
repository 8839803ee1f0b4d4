//! Queue places as they change: a job's place moves when jobs ahead of it start, which
//! is no event of its own. A watcher looks at the head of the queue periodically and
//! announces each job whose place changed.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use super::GenerationService;
use crate::events::GenerationEvent;
use crate::model::Generation;

/// The pending jobs watched: the head of the queue, where places move and matter.
pub const QUEUE_HEAD: i64 = 100;

/// After a claim in this process, the look waits this long for others to join it.
const CLAIM_COALESCE: Duration = Duration::from_millis(50);

impl GenerationService {
    /// Every `every`, and soon after this process claims jobs, the places of the first
    /// [`QUEUE_HEAD`] pending jobs; each job whose place changed since the last look is
    /// announced as `job:updated` (with its new `queue_position` and
    /// `estimated_start_at`) to this process's subscribers: the
    /// WebSocket streams and the scene media task, which passes it on to the players.
    /// Not to webhooks (a place is not worth a POST) nor to other nodes (each node
    /// watches for itself). Idle while nobody subscribes. Runs until `shutdown`.
    pub fn run_queue_places(
        &self,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let svc = self.clone();
        async move {
            let mut last: HashMap<Uuid, i64> = HashMap::new();
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    () = &mut shutdown => return,
                    _ = tick.tick() => {}
                    // A claim here: look soon (claims close together make one look).
                    () = svc.shared.queue_moved.notified() => {
                        tokio::time::sleep(CLAIM_COALESCE).await;
                    }
                }
                if svc.shared.events.receiver_count() == 0 {
                    last.clear();
                    continue;
                }
                match svc.queue_moves(&mut last).await {
                    Ok(moved) => {
                        for generation in moved {
                            svc.shared.emit_local(GenerationEvent::JobUpdated {
                                generation: Box::new(generation),
                            });
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "queue places: not read this time"),
                }
            }
        }
    }

    /// The head's jobs whose place differs from `last` (which becomes the new places).
    async fn queue_moves(
        &self,
        last: &mut HashMap<Uuid, i64>,
    ) -> Result<Vec<Generation>, crate::GenerationError> {
        let rows = store::generation::jobs::queue_head(&self.shared.pool, QUEUE_HEAD).await?;
        let mut head: Vec<Generation> = rows
            .into_iter()
            .map(Generation::try_from)
            .collect::<Result<_, _>>()?;
        self.place(&mut head).await?;
        let mut now = HashMap::with_capacity(head.len());
        let mut moved = Vec::new();
        for g in head {
            let Some(p) = g.queue_position else { continue };
            now.insert(g.id, p);
            // A job first seen here was announced with its place when it was created.
            if last.get(&g.id).is_some_and(|old| *old != p) {
                moved.push(g);
            }
        }
        *last = now;
        Ok(moved)
    }
}

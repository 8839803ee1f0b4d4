//! Group commit for the pipeline's per-job writes: requests that arrive while earlier
//! ones are being written go to the database together, in one statement.
//!
//! A dispatcher task takes the first waiting request, waits for one of `in_flight`
//! write slots, then takes every other request already waiting (at most `max_batch`)
//! and hands the batch to the writer on its own task. It never waits for more requests
//! to come: a lone request is written at once; under load, batches grow by themselves
//! while all slots are busy. Each caller gets its own result.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

type Item<T, R> = (T, oneshot::Sender<R>);

/// Why [`Batcher::call`] has no result.
#[derive(Debug)]
pub(crate) enum CallError<T> {
    /// Never handed to the writer.
    Unsent(T),
    /// Handed over, but no answer came back.
    Lost,
}

/// A running batcher (see the module docs).
pub(crate) struct Batcher<T, R> {
    tx: mpsc::Sender<Item<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the dispatcher on the current tokio runtime. `write` gets a non-empty
    /// batch and returns one result per request, in order.
    pub(crate) fn start<F, Fut>(max_batch: usize, in_flight: usize, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * in_flight.max(1) * 4);
        tokio::spawn(dispatch(
            rx,
            max_batch.max(1),
            in_flight.max(1),
            Arc::new(write),
        ));
        Batcher { tx }
    }

    /// Writes `item` with whatever else is waiting. `Err(Unsent(item))` when the
    /// batcher is gone (its runtime stopped): nothing was written, the caller may write
    /// alone. `Err(Lost)`: the writer went away mid-batch; the outcome is unknown.
    pub(crate) async fn call(&self, item: T) -> Result<R, CallError<T>> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((item, _))) = self.tx.send((item, reply)).await {
            return Err(CallError::Unsent(item));
        }
        rx.await.map_err(|_| CallError::Lost)
    }
}

async fn dispatch<T, R, F, Fut>(
    mut rx: mpsc::Receiver<Item<T, R>>,
    max_batch: usize,
    in_flight: usize,
    write: Arc<F>,
) where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<R>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let write = write.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (items, replies): (Vec<T>, Vec<oneshot::Sender<R>>) = batch.into_iter().unzip();
            let results = write(items).await;
            debug_assert_eq!(results.len(), replies.len());
            for (reply, r) in replies.into_iter().zip(results) {
                // A caller that went away does not mind.
                let _ = reply.send(r);
            }
        });
    }
}

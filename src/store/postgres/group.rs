//! Batching on PostgreSQL: what the polls of this instance write, and the claims they
//! make, wait for one another while a transaction is on its way, and the next one
//! carries all of them: one commit for the polls that finished together, as the
//! SQLite writer does, and one statement for the claims made together. No task of
//! its own: whichever waiting caller takes the turn runs everything queued by then,
//! and hands each its answer.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::Engine;
use super::items::{self, Write};
use super::shared::{self, Claim};
use crate::store::{PollClaim, StoreError};

/// At most this many jobs share a transaction, so that one never grows without bound
/// (nor holds its row locks long) while jobs keep coming.
const MAX_BATCH: usize = 256;

/// A job waiting for its batch, and where its answer goes.
type Queued<J, A> = (J, oneshot::Sender<Result<A, StoreError>>);

/// Jobs waiting for a batch, and the turn to run one.
#[derive(Debug)]
pub struct Batches<J, A> {
    waiting: Mutex<Vec<Queued<J, A>>>,
    turn: tokio::sync::Mutex<()>,
}

impl<J, A> Default for Batches<J, A> {
    fn default() -> Self {
        Batches {
            waiting: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<J, A> Batches<J, A> {
    /// Runs `job` in the next batch; `run` takes a batch's jobs and answers each, in
    /// order.
    pub async fn submit<F, R>(&self, job: J, run: F) -> Result<A, StoreError>
    where
        F: Fn(Vec<J>) -> R,
        R: Future<Output = Vec<Result<A, StoreError>>>,
    {
        let (answer, mut answered) = oneshot::channel();
        self.queue().push((job, answer));
        loop {
            tokio::select! {
                biased;
                result = &mut answered => {
                    return result.unwrap_or_else(|_| {
                        Err(StoreError::Commit("the batch was abandoned".into()))
                    });
                }
                _turn = self.turn.lock() => {
                    let (jobs, answers): (Vec<J>, Vec<_>) = {
                        let mut queue = self.queue();
                        let n = queue.len().min(MAX_BATCH);
                        queue.drain(..n).unzip()
                    };
                    if jobs.is_empty() {
                        continue;
                    }
                    for (answer, result) in answers.into_iter().zip(run(jobs).await) {
                        let _ = answer.send(result);
                    }
                }
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Queued<J, A>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Commits `writes` in one transaction; for a poll, the ids of the rows it queued to
/// send. When that fails, each is tried in a transaction of its own, so that one
/// write's failure is only its own.
pub async fn commit(engine: &Engine, writes: Vec<Write>) -> Vec<Result<Vec<i64>, StoreError>> {
    match items::write_all(engine, &writes).await {
        Ok(ids) => ids.into_iter().map(Ok).collect(),
        Err(e) if writes.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut results = Vec::with_capacity(writes.len());
            for write in &writes {
                let alone = items::write_all(engine, std::slice::from_ref(write)).await;
                results.push(alone.map(|mut ids| ids.pop().unwrap_or_default()));
            }
            results
        }
    }
}

/// Makes `claims` in one statement. When that fails, or a source comes twice (which
/// one instance does not do), the rest is claimed one at a time.
pub async fn claim(engine: &Engine, claims: Vec<Claim>) -> Vec<Result<PollClaim, StoreError>> {
    let mut distinct = std::collections::HashSet::new();
    let first: Vec<&Claim> = claims
        .iter()
        .filter(|c| distinct.insert(c.source.as_str()))
        .collect();
    let mut together = match first.len() {
        0 | 1 => None,
        _ => shared::claim_polls(engine, &first).await.ok(),
    };
    let mut results = Vec::with_capacity(claims.len());
    for claim in &claims {
        let answer = match together.as_mut().and_then(|a| a.remove(&claim.source)) {
            Some(answer) => Ok(answer),
            None => shared::claim_polls(engine, &[claim])
                .await
                .and_then(|mut a| {
                    a.remove(&claim.source)
                        .ok_or(StoreError::Commit("the claim got no answer".into()))
                }),
        };
        results.push(answer);
    }
    results
}

//! Background operations: a handle that follows an operation from the moment it is created.
//!
//! LXD forgets an operation 5 seconds after it ends, and `/wait` answers HTTP 200 both on
//! failure and on its own timeout. [`OperationHandle`] therefore starts a task the moment the
//! operation is created that long-polls `/1.0/operations/{id}/wait` in a loop until the status
//! code is final (>= 200) and keeps the result; [`OperationHandle::wait`] can be called at any
//! time afterwards, and a failed or cancelled operation is always an `Err`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::sync::watch;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::models::Operation;
use crate::request::{RequestSpec, seg};

/// Seconds one `/wait` long poll may last before it is renewed.
const WAIT_CHUNK_SECS: u64 = 30;

type Outcome = Option<Result<Operation, Arc<Error>>>;

/// A running (or finished) background operation.
///
/// Nothing waits for it unless you do: a start whose handle is dropped unwaited races the
/// next call, hence `#[must_use]`. [`OperationHandle::wait`] waits at most
/// [`OperationHandle::DEFAULT_TIMEOUT`]; [`OperationHandle::wait_for`] takes the limit.
/// Cheap to clone; the follower task stops when the last clone is dropped.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// use std::time::Duration;
/// client.instances().start("c1").await?.wait().await?;
///
/// let op = client.instances().stop("c1").await?;
/// match op.wait_for(Duration::from_secs(60)).await {
///     Ok(done) => println!("{} done", done.description),
///     Err(e) if e.is_operation_failure() => println!("failed: {}", e.message().unwrap_or("")),
///     Err(e) => return Err(e),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "the operation runs in the background: call .wait() to know when and how it ended"]
pub struct OperationHandle {
    client: Client,
    initial: Arc<Operation>,
    follower: Arc<Follower>,
}

struct Follower {
    rx: watch::Receiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for OperationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationHandle")
            .field("id", &self.initial.id)
            .field("description", &self.initial.description)
            .finish()
    }
}

impl OperationHandle {
    /// Starts following `op` at once.
    pub(crate) fn follow(client: Client, op: Operation) -> Self {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(follow_task(client.clone(), op.id.clone(), tx));
        OperationHandle {
            client,
            initial: Arc::new(op),
            follower: Arc::new(Follower { rx, task }),
        }
    }

    /// The operation id (UUID).
    pub fn id(&self) -> &str {
        &self.initial.id
    }

    /// The operation as returned when it was created (for exec: the websocket secrets).
    pub fn initial(&self) -> &Operation {
        &self.initial
    }

    /// The result if the operation has already ended, without waiting: `None` while it runs.
    ///
    /// # Errors
    /// As [`OperationHandle::wait_for`].
    pub fn try_result(&self) -> Option<Result<Operation>> {
        let current = self.follower.rx.borrow();
        current.as_ref().map(|r| self.finish(r.clone()))
    }

    /// How long [`OperationHandle::wait`] waits: 10 minutes, enough for LXD to unpack a
    /// large image on a slow disk, short enough that a wedged daemon ends in an error.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    /// Waits until the operation ends, at most [`OperationHandle::DEFAULT_TIMEOUT`], and
    /// returns the final operation (with its `metadata`) on success.
    ///
    /// # Errors
    /// As [`OperationHandle::wait_for`].
    pub async fn wait(&self) -> Result<Operation> {
        self.wait_for(Self::DEFAULT_TIMEOUT).await
    }

    /// Waits until the operation ends, at most `limit` (`Duration::MAX`: no limit).
    ///
    /// # Errors
    /// [`Error::OperationFailed`] when it failed or was cancelled (with the server's `err`
    /// text), [`Error::Timeout`] when `limit` passed first (the operation keeps going and
    /// can be waited for again), [`Error::OperationWait`] when following it failed.
    pub async fn wait_for(&self, limit: Duration) -> Result<Operation> {
        let op = self.wait_end(Some(limit)).await?;
        check_success(op)
    }

    /// Waits until the operation ends, at most `timeout` (`None`: no limit), and returns it
    /// whatever its final status, so the caller can read `metadata` of a failed operation
    /// (exec's `return`).
    ///
    /// # Errors
    /// [`Error::Timeout`] and [`Error::OperationWait`] as for [`OperationHandle::wait_for`].
    pub async fn wait_end(&self, timeout: Option<Duration>) -> Result<Operation> {
        let mut rx = self.follower.rx.clone();
        let waiting = rx.wait_for(Option::is_some);
        let result = match timeout {
            Some(limit) => match tokio::time::timeout(limit, waiting).await {
                Ok(r) => r.map(|v| v.clone()),
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!(
                            "LXD operation {} ({})",
                            self.initial.id, self.initial.description
                        ),
                        after: limit,
                    });
                }
            },
            None => waiting.await.map(|v| v.clone()),
        };
        match result {
            Ok(Some(outcome)) => outcome.map_err(|source| Error::OperationWait {
                id: self.initial.id.clone(),
                source,
            }),
            // The follower only stops early when aborted, which happens when the last handle
            // is dropped; `self` is a handle, so this is unreachable in practice.
            Ok(None) | Err(_) => Err(Error::UnexpectedResponse {
                method: "GET".into(),
                path: format!("/1.0/operations/{}/wait", self.initial.id),
                detail: "the operation follower stopped".into(),
            }),
        }
    }

    fn finish(&self, outcome: Result<Operation, Arc<Error>>) -> Result<Operation> {
        match outcome {
            Ok(op) => check_success(op),
            Err(source) => Err(Error::OperationWait {
                id: self.initial.id.clone(),
                source,
            }),
        }
    }

    /// `GET /1.0/operations/{id}`: the current state (progress is in `metadata`).
    ///
    /// # Errors
    /// API errors; 404 once the server forgot the operation (5 s after it ended).
    pub async fn get(&self) -> Result<Operation> {
        self.client.operations().get(&self.initial.id).await
    }

    /// `DELETE /1.0/operations/{id}`: cancels it (when `may_cancel`).
    ///
    /// # Errors
    /// API errors, e.g. when the operation cannot be cancelled.
    pub async fn cancel(&self) -> Result<()> {
        self.client.operations().cancel(&self.initial.id).await
    }
}

/// `Ok(op)` for success, [`Error::OperationFailed`] for anything else.
pub(crate) fn check_success(op: Operation) -> Result<Operation> {
    if op.status_code.is_success() {
        Ok(op)
    } else {
        Err(failure(op))
    }
}

/// The error for an operation that did not succeed.
pub(crate) fn failure(op: Operation) -> Error {
    Error::OperationFailed {
        id: op.id.clone(),
        description: op.description.clone(),
        status_code: op.status_code,
        message: if op.err.is_empty() {
            op.status.clone()
        } else {
            op.err.clone()
        },
        operation: Box::new(op),
    }
}

async fn follow_task(client: Client, id: String, tx: watch::Sender<Outcome>) {
    let spec = || {
        RequestSpec::get(format!("/1.0/operations/{}/wait", seg(&id)))
            .query("timeout", WAIT_CHUNK_SECS.to_string())
            .long_poll(Duration::from_secs(WAIT_CHUNK_SECS))
    };
    loop {
        match client.sync::<Operation>(spec()).await {
            Ok(op) if op.status_code.is_final() => {
                tracing::debug!(operation = %id, status = %op.status_code, "operation ended");
                let _ = tx.send(Some(Ok(op)));
                return;
            }
            Ok(op) => {
                tracing::trace!(operation = %id, status = %op.status_code, "operation still running");
            }
            // LXD 5.15 until canonical/lxd#18852 answered `/wait` on a failed operation with
            // a broken body (HTTP 200 already sent, then an error envelope). The operation
            // itself still holds the failure for 5 s: read it from there.
            Err(e @ Error::Decode { .. }) => {
                tracing::debug!(operation = %id, error = %e, "undecodable /wait answer; reading the operation");
                let outcome = match client.operations().get(&id).await {
                    Ok(op) if op.status_code.is_final() => Ok(op),
                    _ => Err(Arc::new(e)),
                };
                let _ = tx.send(Some(outcome));
                return;
            }
            Err(e) => {
                let _ = tx.send(Some(Err(Arc::new(e))));
                return;
            }
        }
    }
}

/// `/1.0/operations`: list, get, wait for and cancel operations by id.
#[derive(Debug, Clone)]
pub struct Operations {
    client: Client,
}

impl Operations {
    pub(crate) fn new(client: Client) -> Self {
        Operations { client }
    }

    /// `GET /1.0/operations?recursion=1`: operations by status (`running`, `success`, ...).
    ///
    /// # Errors
    /// API or decode errors.
    pub async fn list(&self) -> Result<HashMap<String, Vec<Operation>>> {
        self.client
            .sync(RequestSpec::get("/1.0/operations").query("recursion", "1"))
            .await
    }

    /// `GET /1.0/operations/{id}`.
    ///
    /// # Errors
    /// API errors; [`Error::is_not_found`] once the server forgot it.
    pub async fn get(&self, id: &str) -> Result<Operation> {
        self.client
            .sync(RequestSpec::get(format!("/1.0/operations/{}", seg(id))))
            .await
    }

    /// Follows an operation by id (for one created elsewhere); see [`OperationHandle`].
    ///
    /// # Errors
    /// API errors; [`Error::is_not_found`] when the id is unknown.
    pub async fn follow(&self, id: &str) -> Result<OperationHandle> {
        let op = self.get(id).await?;
        Ok(OperationHandle::follow(self.client.clone(), op))
    }

    /// `DELETE /1.0/operations/{id}`: cancels it.
    ///
    /// # Errors
    /// API errors.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.client
            .send_collect(RequestSpec::new(
                Method::DELETE,
                format!("/1.0/operations/{}", seg(id)),
            ))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn failure_is_an_error_with_server_text() {
        let failed = op(
            r#"{"id":"x","description":"Starting instance","status":"Failure","status_code":400,"err":"The instance is already running","metadata":null}"#,
        );
        let err = check_success(failed).unwrap_err();
        assert!(err.is_operation_failure());
        assert!(!err.is_cancelled());
        assert_eq!(err.message(), Some("The instance is already running"));
    }

    #[test]
    fn cancelled_is_distinguishable() {
        let cancelled =
            op(r#"{"id":"x","status":"Cancelled","status_code":401,"err":"","metadata":null}"#);
        let err = check_success(cancelled).unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.message(), Some("Cancelled"));
    }

    #[test]
    fn success_passes() {
        let ok = op(r#"{"id":"x","status":"Success","status_code":200,"metadata":{"return":0}}"#);
        assert_eq!(check_success(ok).unwrap().metadata.unwrap()["return"], 0);
    }
}

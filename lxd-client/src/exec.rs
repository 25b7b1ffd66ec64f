//! Running commands in an instance: collected output, streaming processes, record-output.
//!
//! Wire protocol (LXD's `POST /1.0/instances/{name}/exec`): the server answers with an
//! operation whose metadata holds one secret per websocket (`0`, `1`, `2`, `control`, or `0`
//! and `control` in interactive mode). The control socket is connected first (see
//! [`ExecBuilder::spawn`] for the daemon crash that avoids); the data websockets must then all
//! connect within 5 s, so they are connected concurrently. Data travels in binary messages; an empty text message marks
//! end of stream in both directions. The exit code is the operation's `metadata.return`.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::Method;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, WsStream};
use crate::error::{Error, Result};
use crate::models::Operation;
use crate::operations::{OperationHandle, failure};
use crate::request::{RequestSpec, seg};

/// `POST /1.0/instances/{name}/exec` body.
#[derive(Debug, Clone, Default, Serialize)]
struct ExecPost {
    command: Vec<String>,
    environment: HashMap<String, String>,
    #[serde(rename = "wait-for-websocket")]
    wait_for_websocket: bool,
    interactive: bool,
    #[serde(rename = "record-output")]
    record_output: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
}

/// How a command ended.
///
/// A non-zero exit code is not an error; neither is a command the server could not run
/// ("Command not found", code 127): that is `failure: Some(..)`, see
/// [`ExitStatus::is_command_not_found`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExitStatus {
    /// The exit code (`128 + N` when killed by signal N; 127 when not found).
    pub code: i32,
    /// The server's error text when the operation itself failed (e.g. `Command not found`).
    pub failure: Option<String>,
}

impl ExitStatus {
    /// Exit code 0 and no failure.
    pub fn success(&self) -> bool {
        self.code == 0 && self.failure.is_none()
    }

    /// The server could not find the command (operation failure with code 127).
    pub fn is_command_not_found(&self) -> bool {
        self.failure.is_some() && self.code == 127
    }

    /// From the final exec operation; `Err` when it failed without an exit code.
    pub(crate) fn from_operation(op: Operation) -> Result<ExitStatus> {
        let code = op
            .metadata
            .as_ref()
            .and_then(|m| m.get("return"))
            .and_then(serde_json::Value::as_i64)
            .and_then(|c| i32::try_from(c).ok());
        match (op.status_code.is_success(), code) {
            (true, Some(code)) => Ok(ExitStatus {
                code,
                failure: None,
            }),
            (false, Some(code)) => Ok(ExitStatus {
                code,
                failure: Some(op.err.clone()),
            }),
            (true, None) => Err(Error::UnexpectedResponse {
                method: "GET".into(),
                path: format!("/1.0/operations/{}", op.id),
                detail: "exec operation succeeded without metadata.return".into(),
            }),
            (false, None) => Err(failure(op)),
        }
    }
}

/// Collected result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (in interactive mode: the terminal output).
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr (empty in interactive mode).
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// stdout as text (invalid UTF-8 replaced by U+FFFD).
    pub fn stdout_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// stderr as text (invalid UTF-8 replaced by U+FFFD).
    pub fn stderr_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }
}

/// Builder for a command in an instance; from [`crate::Instances::exec`].
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let out = client
///     .instances()
///     .exec("c1", ["sh", "-c", "echo $GREETING; pwd"])
///     .env("GREETING", "hello")
///     .cwd("/tmp")
///     .output()
///     .await?;
/// assert!(out.status.success());
/// assert_eq!(out.stdout, b"hello\n/tmp\n");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "finish with .output(), .spawn() or .output_recorded()"]
pub struct ExecBuilder {
    client: Client,
    instance: String,
    body: ExecPost,
    stdin: Option<Bytes>,
}

impl ExecBuilder {
    pub(crate) fn new(client: Client, instance: String, command: Vec<String>) -> Self {
        ExecBuilder {
            client,
            instance,
            body: ExecPost {
                command,
                ..Default::default()
            },
            stdin: None,
        }
    }

    /// Sets an environment variable (on top of the server's PATH, HOME, USER, LANG).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.body.environment.insert(key.into(), value.into());
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in vars {
            self.body.environment.insert(k.into(), v.into());
        }
        self
    }

    /// Working directory.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.body.cwd = Some(dir.into());
        self
    }

    /// User id to run as.
    pub fn user(mut self, uid: u32) -> Self {
        self.body.user = Some(uid);
        self
    }

    /// Group id to run as.
    pub fn group(mut self, gid: u32) -> Self {
        self.body.group = Some(gid);
        self
    }

    /// Runs under a pseudo-terminal (stdout and stderr merged, window size settable).
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.body.interactive = interactive;
        self
    }

    /// Initial terminal size (interactive mode).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.body.width = Some(width);
        self.body.height = Some(height);
        self
    }

    /// Bytes to feed to stdin before end-of-file (for [`ExecBuilder::output`]).
    pub fn stdin(mut self, data: impl Into<Bytes>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    fn request(&self) -> RequestSpec {
        RequestSpec::new(
            Method::POST,
            format!("/1.0/instances/{}/exec", seg(&self.instance)),
        )
        .json(&self.body)
    }

    /// Runs the command over websockets and collects its output and exit status.
    ///
    /// # Errors
    /// API errors (missing instance, stopped instance), websocket errors. A non-zero exit or
    /// a missing command is *not* an error: see [`ExitStatus`].
    pub async fn output(self) -> Result<ExecOutput> {
        let stdin = self.stdin.clone();
        let mut process = self.spawn().await?;
        if let Some(mut writer) = process.take_stdin() {
            if let Some(data) = stdin {
                // The command may exit without reading its input; that is not an error.
                let _ = writer.write(data).await;
            }
            writer.close();
        }
        let stdout = process.take_stdout();
        let stderr = process.take_stderr();
        let (out, err) = tokio::join!(collect(stdout), collect(stderr));
        let status = process.wait().await?;
        Ok(ExecOutput {
            status,
            stdout: out?,
            stderr: err?,
        })
    }

    /// Starts the command and returns a handle with its stdin, stdout, stderr and control
    /// channel. Output is delivered as it arrives.
    ///
    /// # Errors
    /// API errors; websocket errors when the streams cannot be connected.
    pub async fn spawn(mut self) -> Result<ExecProcess> {
        self.body.wait_for_websocket = true;
        self.body.record_output = false;
        let interactive = self.body.interactive;
        let op = self.client.operation(self.request()).await?;
        let fds = fds_of(op.initial())?;
        let connect = |key: &'static str| {
            let secret = fds.get(key).cloned();
            let client = self.client.clone();
            let id = op.id().to_string();
            async move {
                let secret = secret.ok_or_else(|| Error::UnexpectedResponse {
                    method: "POST".into(),
                    path: format!("/1.0/operations/{id}"),
                    detail: format!("exec operation has no websocket secret for fd {key}"),
                })?;
                client
                    .websocket(
                        RequestSpec::get(format!("/1.0/operations/{}/websocket", seg(&id)))
                            .query("secret", secret),
                    )
                    .await
            }
        };
        // The control socket connects first, while the command is certainly still waiting
        // for its data sockets. Connected last (or concurrently), it can reach an operation
        // that a fast command has just finished, and LXD 5.0.2 then dereferences the
        // operation's cleared connect handler and the whole daemon panics
        // (lxd/operations/operations.go:427, seen here under 50 concurrent execs).
        let control = connect("control").await;
        let (ws0, ws1, ws2) = if interactive {
            (connect("0").await?, None, None)
        } else {
            let (ws0, ws1, ws2) = tokio::join!(connect("0"), connect("1"), connect("2"));
            (ws0?, Some(ws1?), Some(ws2?))
        };
        let control = match control {
            Ok(ws) => Some(Arc::new(Mutex::new(ws))),
            Err(e) => {
                tracing::debug!(operation = %op.id(), error = %e, "exec control websocket not connected");
                None
            }
        };

        let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(8);
        let (fd0_out_tx, fd0_out_rx) = mpsc::channel(32);
        let (ws0_sink, ws0_stream) = ws0.split();
        let (reader_done_tx, reader_done_rx) = oneshot::channel();
        tokio::spawn(pump_output(ws0_stream, fd0_out_tx, Some(reader_done_tx)));
        tokio::spawn(pump_stdin(ws0_sink, stdin_rx, reader_done_rx, interactive));

        let (stdout, stderr) = if interactive {
            (OutputStream { rx: fd0_out_rx }, None)
        } else {
            // Non-interactive fd 0 carries no output; drain it so close frames are handled.
            drop(fd0_out_rx);
            let (out_tx, out_rx) = mpsc::channel(32);
            let (err_tx, err_rx) = mpsc::channel(32);
            if let Some(ws) = ws1 {
                tokio::spawn(pump_output(ws.split().1, out_tx, None));
            }
            if let Some(ws) = ws2 {
                tokio::spawn(pump_output(ws.split().1, err_tx, None));
            }
            (
                OutputStream { rx: out_rx },
                Some(OutputStream { rx: err_rx }),
            )
        };

        Ok(ExecProcess {
            op,
            stdin: Some(ExecStdin { tx: stdin_tx }),
            stdout: Some(stdout),
            stderr,
            control,
        })
    }

    /// Runs the command with `record-output`: no websockets; the server writes stdout and
    /// stderr to log files, which are fetched and then deleted. Stdin is empty.
    ///
    /// # Errors
    /// API errors; a missing command is not an error (see [`ExitStatus`]).
    pub async fn output_recorded(mut self) -> Result<ExecOutput> {
        self.body.wait_for_websocket = false;
        self.body.record_output = true;
        self.body.interactive = false;
        let op = self.client.operation(self.request()).await?;
        let done = op.wait_end(None).await?;
        let urls: HashMap<String, String> = done
            .metadata
            .as_ref()
            .and_then(|m| m.get("output"))
            .and_then(|o| serde_json::from_value(o.clone()).ok())
            .unwrap_or_default();
        let status = ExitStatus::from_operation(done)?;
        let fetch = async |fd: &str| -> Result<Vec<u8>> {
            let Some(url) = urls.get(fd) else {
                return Ok(Vec::new());
            };
            let (_, body) = self
                .client
                .send_collect(RequestSpec::get(url.clone()))
                .await?;
            if let Err(e) = self
                .client
                .send_collect(RequestSpec::new(Method::DELETE, url.clone()))
                .await
            {
                tracing::warn!(log = %url, error = %e, "could not delete exec output log");
            }
            Ok(body.to_vec())
        };
        let stdout = fetch("1").await?;
        let stderr = fetch("2").await?;
        Ok(ExecOutput {
            status,
            stdout,
            stderr,
        })
    }
}

/// The websocket secrets of an exec operation.
fn fds_of(op: &Operation) -> Result<HashMap<String, String>> {
    op.metadata
        .as_ref()
        .and_then(|m| m.get("fds"))
        .and_then(|f| serde_json::from_value(f.clone()).ok())
        .ok_or_else(|| Error::UnexpectedResponse {
            method: "POST".into(),
            path: format!("/1.0/operations/{}", op.id),
            detail: "exec operation metadata has no `fds`".into(),
        })
}

async fn collect(stream: Option<OutputStream>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(mut s) = stream {
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
    }
    Ok(out)
}

/// Reads data messages from a websocket into `tx` until end of stream. Keeps draining when
/// the receiver is gone so the server is never blocked.
async fn pump_output(
    mut stream: futures::stream::SplitStream<WsStream>,
    tx: mpsc::Sender<Result<Bytes>>,
    done: Option<oneshot::Sender<()>>,
) {
    let mut receiver_alive = true;
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Binary(data)) => {
                if receiver_alive && tx.send(Ok(data)).await.is_err() {
                    receiver_alive = false;
                }
            }
            // An (empty) text message is the end-of-stream barrier; close ends it too.
            Ok(Message::Text(_)) | Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(e) if is_hangup(&e) => {
                // LXD closes the socket right after its close frame; tungstenite's reply
                // then fails. The stream is over either way.
                tracing::debug!(error = %e, "exec websocket hung up");
                break;
            }
            Err(e) => {
                if receiver_alive {
                    let _ = tx
                        .send(Err(Error::Websocket {
                            what: "exec output".into(),
                            source: e.into(),
                        }))
                        .await;
                }
                break;
            }
        }
    }
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// True for errors that only mean the peer closed the connection.
fn is_hangup(e: &tokio_tungstenite::tungstenite::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => true,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        WsError::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Forwards stdin chunks to fd 0; sends the end-of-file barrier when the writer is closed.
/// In interactive mode closes fd 0 once the output side ended (the server waits for that).
async fn pump_stdin(
    mut sink: futures::stream::SplitSink<WsStream, Message>,
    mut rx: mpsc::Receiver<Bytes>,
    mut reader_done: oneshot::Receiver<()>,
    interactive: bool,
) {
    let mut eof_sent = false;
    loop {
        tokio::select! {
            chunk = rx.recv(), if !eof_sent => match chunk {
                Some(data) => {
                    if let Err(e) = sink.send(Message::Binary(data)).await {
                        // The command may have ended and the server closed fd 0 already.
                        tracing::debug!(error = %e, "exec stdin closed by the server");
                        return;
                    }
                }
                None => {
                    eof_sent = true;
                    if sink.send(Message::text("")).await.is_err() {
                        return;
                    }
                }
            },
            _ = &mut reader_done => {
                if interactive {
                    let _ = sink.send(Message::Close(None)).await;
                }
                return;
            }
        }
    }
}

/// A running command: its streams, control channel and exit status.
///
/// Take the streams with [`ExecProcess::take_stdin`], [`ExecProcess::take_stdout`] and
/// [`ExecProcess::take_stderr`]; streams not taken are drained and dropped. Dropping the
/// process before the command ended closes the control channel, which makes LXD kill it.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// use futures::StreamExt;
/// let mut p = client.instances().exec("c1", ["cat"]).spawn().await?;
/// let mut stdin = p.take_stdin().unwrap();
/// let mut stdout = p.take_stdout().unwrap();
/// stdin.write("hello\n").await?;
/// let first = stdout.next().await.unwrap()?;
/// assert_eq!(&first[..], b"hello\n");
/// stdin.close();
/// let status = p.wait().await?;
/// assert!(status.success());
/// # Ok(())
/// # }
/// ```
pub struct ExecProcess {
    op: OperationHandle,
    stdin: Option<ExecStdin>,
    stdout: Option<OutputStream>,
    stderr: Option<OutputStream>,
    control: Option<Arc<Mutex<WsStream>>>,
}

impl std::fmt::Debug for ExecProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess")
            .field("operation", &self.op.id())
            .finish()
    }
}

impl ExecProcess {
    /// The exec operation.
    pub fn operation(&self) -> &OperationHandle {
        &self.op
    }

    /// The stdin writer (once).
    pub fn take_stdin(&mut self) -> Option<ExecStdin> {
        self.stdin.take()
    }

    /// The stdout stream (once); in interactive mode the terminal output.
    pub fn take_stdout(&mut self) -> Option<OutputStream> {
        self.stdout.take()
    }

    /// The stderr stream (once); `None` in interactive mode.
    pub fn take_stderr(&mut self) -> Option<OutputStream> {
        self.stderr.take()
    }

    async fn control(&self, message: serde_json::Value) -> Result<()> {
        let control = self.control.as_ref().ok_or_else(|| Error::Websocket {
            what: "exec control".into(),
            source: "the control websocket is not connected".into(),
        })?;
        control
            .lock()
            .await
            .send(Message::text(message.to_string()))
            .await
            .map_err(|e| Error::Websocket {
                what: "exec control".into(),
                source: e.into(),
            })
    }

    /// Sends signal `signal` (e.g. 15 for SIGTERM) to the command.
    ///
    /// # Errors
    /// Websocket errors (e.g. the command already ended).
    pub async fn signal(&self, signal: i32) -> Result<()> {
        self.control(serde_json::json!({"command": "signal", "signal": signal}))
            .await
    }

    /// Resizes the terminal (interactive mode).
    ///
    /// # Errors
    /// Websocket errors.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        // LXD wants the numbers as strings.
        self.control(serde_json::json!({
            "command": "window-resize",
            "args": {"width": width.to_string(), "height": height.to_string()}
        }))
        .await
    }

    /// Waits for the command to end, however long it runs (as `std::process::Child::wait`:
    /// a command has no natural limit; bound it with [`ExecProcess::wait_for`]).
    ///
    /// # Errors
    /// [`Error::OperationFailed`] when the operation failed without an exit code (e.g.
    /// websockets not connected in time). A missing command is an `Ok` status.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let op = self.op.wait_end(None).await?;
        ExitStatus::from_operation(op)
    }

    /// Waits for the command to end, at most `limit`; the command keeps running after an
    /// [`Error::Timeout`] (kill it with [`ExecProcess::signal`]).
    ///
    /// # Errors
    /// [`Error::Timeout`]; otherwise as [`ExecProcess::wait`].
    pub async fn wait_for(&self, limit: Duration) -> Result<ExitStatus> {
        let op = self.op.wait_end(Some(limit)).await?;
        ExitStatus::from_operation(op)
    }
}

/// Writes to a command's stdin. Dropping it (or [`ExecStdin::close`]) sends end-of-file.
#[derive(Debug)]
pub struct ExecStdin {
    tx: mpsc::Sender<Bytes>,
}

impl ExecStdin {
    /// Sends `data`.
    ///
    /// # Errors
    /// [`Error::Websocket`] when the stream is closed (the command ended).
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<()> {
        self.tx
            .send(data.into())
            .await
            .map_err(|_| Error::Websocket {
                what: "exec stdin".into(),
                source: "stdin is closed (the command ended)".into(),
            })
    }

    /// Copies `reader` to stdin until its end, then sends end-of-file.
    ///
    /// # Errors
    /// Local read errors; websocket errors when stdin closed early.
    pub async fn copy_from<R: AsyncRead + Unpin>(mut self, mut reader: R) -> Result<u64> {
        let mut total = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).await.map_err(|source| Error::Io {
                what: "cannot read stdin source".into(),
                path: "<reader>".into(),
                source,
            })?;
            if n == 0 {
                return Ok(total);
            }
            self.write(Bytes::copy_from_slice(&buf[..n])).await?;
            total += n as u64;
        }
    }

    /// Sends end-of-file.
    pub fn close(self) {}
}

/// Output of a command, chunk by chunk as it arrives; ends at the command's end-of-stream.
#[derive(Debug)]
pub struct OutputStream {
    rx: mpsc::Receiver<Result<Bytes>>,
}

impl futures::Stream for OutputStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl OutputStream {
    /// The stream as an [`AsyncRead`].
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.map(|r| r.map_err(io::Error::other)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_op(name: &str) -> Operation {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let env: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(env["metadata"].clone()).unwrap()
    }

    #[test]
    fn command_not_found_is_a_status() {
        let status = ExitStatus::from_operation(fixture_op("exec_not_found.json")).unwrap();
        assert_eq!(status.code, 127);
        assert!(status.is_command_not_found());
        assert!(!status.success());
    }

    #[test]
    fn non_zero_exit_is_success_status() {
        let status = ExitStatus::from_operation(fixture_op("exec_record_done.json")).unwrap();
        assert_eq!(status.code, 3);
        assert_eq!(status.failure, None);
    }

    #[test]
    fn failure_without_return_is_error() {
        let err = ExitStatus::from_operation(fixture_op("operation_failed.json")).unwrap_err();
        assert!(err.is_operation_failure());
    }

    #[test]
    fn websocket_secrets_are_read() {
        let fds = fds_of(&fixture_op_async("exec_websocket_async.json")).unwrap();
        for k in ["0", "1", "2", "control"] {
            assert_eq!(fds[k].len(), 64, "{k}");
        }
    }

    fn fixture_op_async(name: &str) -> Operation {
        fixture_op(name)
    }

    #[test]
    fn exec_body_uses_lxd_names() {
        let client = Client::with_socket("/nonexistent");
        let b = ExecBuilder::new(client, "c1".into(), vec!["ls".into()])
            .env("A", "1")
            .cwd("/tmp")
            .user(1000);
        let v = serde_json::to_value(&b.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"command":["ls"],"environment":{"A":"1"},"wait-for-websocket":false,
                "interactive":false,"record-output":false,"user":1000,"cwd":"/tmp"})
        );
        assert_eq!(b.request().path, "/1.0/instances/c1/exec");
    }
}

//! [`TtySession`]: an interactive program under a pseudo-terminal in an instance (`login`).

use crate::error::Result;

/// An interactive program running under a pseudo-terminal in an instance (`login`), driven
/// through channels: a task inside the driver moves bytes between them and the runtime.
#[derive(Debug)]
#[non_exhaustive]
pub struct TtySession {
    /// Keystrokes for the program (send raw bytes; dropping it sends end-of-file).
    pub input: tokio::sync::mpsc::Sender<Vec<u8>>,
    /// The terminal's output, chunk by chunk; closed when the program ends.
    pub output: tokio::sync::mpsc::Receiver<Vec<u8>>,
    /// New window sizes (columns, rows).
    pub resize: tokio::sync::mpsc::Sender<(u16, u16)>,
    /// The program's exit code, once it ended.
    pub exit: tokio::sync::oneshot::Receiver<Result<i64>>,
}

/// The channel ends a driver's session task works with (see [`TtySession`]).
#[derive(Debug)]
pub(crate) struct TtyEnds {
    pub(crate) input: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pub(crate) output: tokio::sync::mpsc::Sender<Vec<u8>>,
    pub(crate) resize: tokio::sync::mpsc::Receiver<(u16, u16)>,
    pub(crate) exit: tokio::sync::oneshot::Sender<Result<i64>>,
}

impl TtySession {
    /// A session and the ends its driver task serves.
    pub(crate) fn channels() -> (TtySession, TtyEnds) {
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(64);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(64);
        let (rz_tx, rz_rx) = tokio::sync::mpsc::channel(8);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        (
            TtySession {
                input: in_tx,
                output: out_rx,
                resize: rz_tx,
                exit: exit_rx,
            },
            TtyEnds {
                input: in_rx,
                output: out_tx,
                resize: rz_rx,
                exit: exit_tx,
            },
        )
    }
}

/// The runtime's side of a terminal session, as [`TtyEnds::pump`] drives it.
#[async_trait::async_trait]
pub(crate) trait TtyRuntime: Send {
    /// Writes keystrokes to the program; `false` once its input is closed.
    async fn write(&mut self, data: Vec<u8>) -> bool;
    /// Closes the program's input (end-of-file).
    async fn close_input(&mut self);
    /// Resizes the pseudo-terminal.
    async fn resize(&mut self, width: u16, height: u16);
}

impl TtyEnds {
    /// Moves bytes between the session's channels and the runtime until the program's
    /// `output` ends (`None` or an item of `None`): keystrokes to [`TtyRuntime::write`], window
    /// sizes to [`TtyRuntime::resize`], output chunks to the session. Returns the sender for
    /// the exit code, which the driver fills once the program is reaped. Both drivers'
    /// session tasks are this loop.
    pub(crate) async fn pump<S>(
        mut self,
        mut output: S,
        runtime: &mut dyn TtyRuntime,
    ) -> tokio::sync::oneshot::Sender<Result<i64>>
    where
        S: futures::Stream<Item = Option<Vec<u8>>> + Unpin + Send,
    {
        use futures::StreamExt;
        let mut input_open = true;
        loop {
            tokio::select! {
                data = self.input.recv(), if input_open => match data {
                    Some(d) => input_open = runtime.write(d).await,
                    None => {
                        runtime.close_input().await;
                        input_open = false;
                    }
                },
                Some((w, h)) = self.resize.recv() => runtime.resize(w, h).await,
                chunk = output.next() => match chunk {
                    Some(Some(bytes)) => {
                        if self.output.send(bytes).await.is_err() {
                            break;
                        }
                    }
                    _ => break,
                },
            }
        }
        self.exit
    }
}

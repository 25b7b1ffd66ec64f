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

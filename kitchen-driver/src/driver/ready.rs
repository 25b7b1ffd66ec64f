//! Waiting until a started instance answers, the same way on both runtimes.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::plugin::InstanceContext;
use crate::report::NullSink;
use crate::transport::{Connection, ExecRequest};

/// The readiness probe both drivers run until it prints `running` or `degraded`: where PID 1
/// is systemd (judged by `/proc/1/exe`, since its `comm` is still `init` for the first
/// moments of boot), `systemctl is-system-running`; elsewhere just `running`.
///
/// `--wait` makes systemctl answer the moment the boot ends instead of at the next poll (up
/// to 10 s per probe, so a boot that hangs is still reported by its state); a systemd too old
/// for `--wait` (before 240), or one not yet answering, gets the plain query.
pub(crate) const READINESS_PROBE: &str = "case \"$(readlink /proc/1/exe 2>/dev/null)\" in *systemd*) s=$(timeout 10 systemctl is-system-running --wait 2>/dev/null); [ -n \"$s\" ] || s=$(systemctl is-system-running 2>/dev/null); echo \"$s\" ;; *) echo running ;; esac";

/// Runs [`READINESS_PROBE`] through `conn` every `interval` until it answers `running` or
/// `degraded`, failing after `timeout`. Before each attempt `still_alive` may fail the wait
/// at once (Docker: the container stopped right after starting). `what` names the instance
/// in the error (`container kitchen-...`, `LXD instance kitchen-...`).
///
/// # Errors
/// [`Error::Runtime`] naming `what`, the last answer and `ready_timeout`; or the error of
/// `still_alive`.
pub(crate) async fn wait_until_ready<F, Fut>(
    conn: &dyn Connection,
    ctx: &InstanceContext,
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut still_alive: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let started = Instant::now();
    loop {
        still_alive().await?;
        // Each probe is bounded by the time left (at least one interval), so a probe that
        // hangs, e.g. an exec the runtime never answers, ends the wait on time too.
        let left = timeout.saturating_sub(started.elapsed()).max(interval);
        let probe = ExecRequest::shell(READINESS_PROBE);
        let last = match tokio::time::timeout(left, conn.exec(&probe, &NullSink)).await {
            Err(_) => format!(
                "the readiness probe did not answer within {}s",
                left.as_secs_f64()
            ),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(out)) => {
                let answer = out.stdout.trim();
                if answer == "running" || answer == "degraded" {
                    ctx.output.debug(&format!("{what} is {answer}"));
                    return Ok(());
                }
                format!(
                    "the readiness probe answered `{answer}` (exit {})",
                    out.exit_code
                )
            }
        };
        if started.elapsed() >= timeout {
            return Err(Error::Runtime {
                instance: ctx.instance.name.clone(),
                message: format!(
                    "{what} not ready after {}s: {last}; raise `ready_timeout` if it is slow",
                    timeout.as_secs()
                ),
            });
        }
        tokio::time::sleep(interval).await;
    }
}

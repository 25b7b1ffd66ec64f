//! Resource samples: what an instance uses while it converges and verifies, polled from the
//! runtime (Docker's stats API, LXD's instance state) and emitted as
//! [`Event::ResourceSample`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::events::{self, Event, InstanceOutput, ResourceSample};
use crate::lifecycle::Action;
use crate::transport::Connection;

/// How often a running step is sampled.
const EVERY: Duration = Duration::from_secs(1);

/// How long the end of a step waits for its last sample.
const LAST_SAMPLE_WAIT: Duration = Duration::from_millis(200);

/// How long the end of a step waits for its last sample when it has none yet: every sampled
/// step gets a sample. (A verify shorter than the runtime's answer under load used to end
/// with none: the first sample was aborted and the last cut off at [`LAST_SAMPLE_WAIT`].)
const ONLY_SAMPLE_WAIT: Duration = Duration::from_secs(3);

/// Samples one step until [`Sampler::finish`].
pub(super) struct Sampler {
    probe: Probe,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct Probe {
    conn: Arc<dyn Connection>,
    output: InstanceOutput,
    action: Action,
    /// The highest memory use seen in this step (0: none yet).
    peak: Arc<AtomicU64>,
    /// Whether the runtime has answered a sample of this step.
    answered: Arc<AtomicBool>,
}

impl Probe {
    /// Takes one sample and emits it (when the runtime reported anything). Returns false when
    /// the runtime cannot report usage or the instance cannot be asked: sampling stops, and
    /// never fails a step.
    async fn sample(&self) -> bool {
        let usage = match self.conn.resource_usage().await {
            Ok(Some(u)) => u,
            Ok(None) | Err(_) => return false,
        };
        self.answered.store(true, Ordering::SeqCst);
        if usage.memory_bytes.is_none()
            && usage.peak_memory_bytes.is_none()
            && usage.cpu_time.is_none()
        {
            // Docker's stats API answers with empty counters where it cannot read the
            // container's cgroup (as on this project's test host): nothing to report.
            return true;
        }
        let seen = usage.peak_memory_bytes.or(usage.memory_bytes).unwrap_or(0);
        let peak = self.peak.fetch_max(seen, Ordering::SeqCst).max(seen);
        self.output
            .bus()
            .emit(Event::ResourceSample(ResourceSample {
                at: events::now(),
                instance: self.output.id().clone(),
                action: self.action,
                peak_memory_bytes: (peak > 0).then_some(peak),
                cpu_time: usage.cpu_time,
            }));
        true
    }
}

impl Sampler {
    /// Starts sampling `conn` every second.
    pub(super) fn start(conn: Arc<dyn Connection>, output: InstanceOutput, action: Action) -> Self {
        let probe = Probe {
            conn,
            output,
            action,
            peak: Arc::default(),
            answered: Arc::default(),
        };
        let task = {
            let probe = probe.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(EVERY);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    if !probe.sample().await {
                        break;
                    }
                }
            })
        };
        Self { probe, task }
    }

    /// Stops sampling and takes a last sample (the step's end), waiting for it at most
    /// [`LAST_SAMPLE_WAIT`] (Docker's stats call can take most of a second, which every
    /// converge and verify would otherwise pay), or [`ONLY_SAMPLE_WAIT`] when the step has
    /// no sample yet.
    pub(super) async fn finish(self) {
        self.task.abort();
        let _ = self.task.await;
        let wait = if self.probe.answered.load(Ordering::SeqCst) {
            LAST_SAMPLE_WAIT
        } else {
            ONLY_SAMPLE_WAIT
        };
        let _ = tokio::time::timeout(wait, self.probe.sample()).await;
    }
}

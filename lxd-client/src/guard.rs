//! [`InstanceGuard`]: an instance that is deleted when the guard is dropped.

use crate::error::Result;
use crate::exec::ExecBuilder;
use crate::files::Files;
use crate::instances::{Instances, Snapshots};

/// Deletes an instance (killing it first if it runs, as [`Instances::delete_force`]) when
/// dropped, so an early return or a panic does not leave it behind. Get one from
/// [`crate::CreateBuilder::launch_guarded`] or [`Instances::guard`].
///
/// Prefer ending with [`InstanceGuard::delete`], which is async and reports errors;
/// [`InstanceGuard::keep`] disarms the guard.
///
/// # Dropping without `delete`
///
/// Rust has no async drop: `Drop::drop` cannot `.await`, and a task spawned from it may never
/// run (the runtime can be shutting down, as at the end of `#[tokio::main]` or of a test). So
/// the guard deletes the instance *synchronously*: `drop` starts a thread with its own small
/// runtime and its own connections to the same daemon and project (never the caller's pool,
/// whose connections belong to the caller's runtime, which is blocked meanwhile), and joins
/// it. On a multi-thread runtime it does so inside `tokio::task::block_in_place`, so the
/// other tasks keep running; on a current-thread runtime, or outside any runtime, the
/// dropping thread simply blocks. Either way the instance is gone when `drop` returns
/// (each step waits at most [`crate::OperationHandle::DEFAULT_TIMEOUT`]); a failure is
/// logged with `tracing`, as a library must not print.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// let instances = client.instances();
/// let c1 = instances.create("c1").image_alias("kitchen/busybox").launch_guarded().await?;
/// let out = c1.exec(["uname", "-a"]).output().await?; // `?` drops c1: deleted
/// c1.delete().await?; // the normal end: async, with its error
/// # Ok(())
/// # }
/// ```
#[must_use = "dropping the guard at once deletes the instance"]
pub struct InstanceGuard {
    instances: Instances,
    name: String,
    armed: bool,
}

impl std::fmt::Debug for InstanceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceGuard")
            .field("name", &self.name)
            .field("armed", &self.armed)
            .finish()
    }
}

impl InstanceGuard {
    pub(crate) fn new(instances: Instances, name: String) -> Self {
        InstanceGuard {
            instances,
            name,
            armed: true,
        }
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command to run in the instance, as [`Instances::exec`] with this name.
    pub fn exec<I, S>(&self, command: I) -> ExecBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.instances.exec(&self.name, command)
    }

    /// The instance's files, as [`Instances::files`].
    pub fn files(&self) -> Files {
        self.instances.files(&self.name)
    }

    /// The instance's snapshots, as [`Instances::snapshots`].
    pub fn snapshots(&self) -> Snapshots {
        self.instances.snapshots(&self.name)
    }

    /// Deletes the instance now (as [`Instances::delete_force`]) and disarms the guard.
    ///
    /// # Errors
    /// As [`Instances::delete_force`], except that an instance already gone is not an error.
    pub async fn delete(mut self) -> Result<()> {
        self.armed = false;
        match self.instances.delete_force(&self.name).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Disarms the guard: the instance stays. Returns its name.
    pub fn keep(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.name)
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let instances = self.instances.with_own_connections();
        let name = std::mem::take(&mut self.name);
        let cleanup = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(async {
                    match instances.delete_force(&name).await {
                        Err(e) if e.is_not_found() => Ok(()),
                        other => other,
                    }
                }),
                Err(e) => {
                    tracing::warn!(instance = %name, error = %e, "no runtime to delete the guarded instance");
                    return;
                }
            };
            match result {
                Ok(()) => tracing::debug!(instance = %name, "guard deleted the instance"),
                Err(e) => {
                    tracing::warn!(instance = %name, error = %e, "guard could not delete the instance")
                }
            }
        };
        let join = move || {
            if std::thread::spawn(cleanup).join().is_err() {
                tracing::warn!("the guard's clean-up thread panicked");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(join)
            }
            _ => join(),
        }
    }
}

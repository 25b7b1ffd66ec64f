//! Clean-up that survives nextest's timeout: a process-wide registry of live guards, drained
//! by a SIGTERM handler before the process exits.
//!
//! Drop guards do not run when a process is killed. nextest ends a test that passes its
//! `slow-timeout` with SIGTERM, then SIGKILL after a grace period (10 s by default, 30 s in
//! `.config/nextest.toml`). So every guard ([`crate::TestProject`], the private daemons in
//! [`crate::daemons`]) also registers its clean-up here; the first registration installs a
//! SIGTERM handler (a thread of its own with a small runtime) that runs every registered
//! clean-up, newest first, then exits with 143 (128 + SIGTERM), as the default action would
//! have ended the process. A guard that drops normally unregisters and cleans up itself.
//! SIGKILL still skips everything: only `destroy --orphans` or the daemon helper's own
//! prefix can find what such a run left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

type Cleanup = Arc<dyn Fn() + Send + Sync>;

/// The live guards' clean-ups, in registration order.
static LIVE: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());

/// The exit status after a SIGTERM-triggered clean-up: what a shell reports for SIGTERM.
pub const EXIT_AFTER_SIGTERM: i32 = 128 + 15;

/// A registered clean-up; dropping it unregisters (without running it).
#[derive(Debug)]
pub struct Registration(u64);

/// Registers `cleanup` to run if the process receives SIGTERM before the returned
/// [`Registration`] is dropped. `cleanup` must be idempotent: the guard's own `Drop` may run it
/// too, on another thread, while the handler drains.
pub fn register(cleanup: impl Fn() + Send + Sync + 'static) -> Registration {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    install_handler();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock().push((id, Arc::new(cleanup)));
    Registration(id)
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

/// The registry, usable even after a clean-up panicked while holding it.
fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Cleanup)>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the SIGTERM handler once per process.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The handler is registered before this returns, so a SIGTERM right after the first
        // guard exists is already caught.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-support-sigterm".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime for the SIGTERM handler");
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                    let _ = ready_tx.send(());
                    term.recv().await;
                });
                drain_and_exit();
            })
            .expect("SIGTERM handler thread");
        let _ = ready_rx.recv();
    });
}

/// Runs every live clean-up, newest first (a project before the daemon it runs on), then
/// exits.
fn drain_and_exit() -> ! {
    eprintln!("test-support: SIGTERM: removing what the live test guards created");
    let cleanups: Vec<Cleanup> = lock().iter().rev().map(|(_, c)| c.clone()).collect();
    for cleanup in cleanups {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cleanup()));
    }
    std::process::exit(EXIT_AFTER_SIGTERM);
}

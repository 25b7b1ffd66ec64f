//! Shared helpers for the workspace's end-to-end tests: unique names for what a test creates.

use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix every resource created by these tests carries, so cleanup touches nothing else.
pub const TEST_PREFIX: &str = "kdtest";

/// A name unique to this process and call, such as `kdtest-4242-0-busybox`.
///
/// LXD instance names must be valid hostnames, so only `[a-z0-9-]` is used.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEST_PREFIX}-{}-{n}-{label}", std::process::id())
}

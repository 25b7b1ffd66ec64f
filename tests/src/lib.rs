//! The workspace's end-to-end tests (`tests/`). Their shared helpers live in the
//! `test-support` crate; the unique-name helper is re-exported here for them.

pub use test_support::{TEST_PREFIX, unique_name};

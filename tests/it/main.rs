//! The library's integration tests, built into one binary (see ARCHITECTURE.md, "Tests"): the
//! public API as a user's service calls it. The `hotconf` binary's own tests are under
//! `crates/hotconf-cli/tests`, the gateway's under `crates/hotconf-gateway/tests`.

mod examples;
mod faultfs_store;
mod first_hour;
mod library;
mod live_drop;
mod support;

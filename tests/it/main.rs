//! Integration tests, built into one binary (see ARCHITECTURE.md, "Tests").

mod admin_http;
mod cli_ci;
mod cli_snapshot;
mod cli_validate;
mod components;
mod diagnostics;
mod examples;
mod faultfs_fs;
mod faultfs_hung_read;
mod faultfs_service;
mod faultfs_store;
mod faultfs_store_full_for_long;
mod library;
mod live_drop;
mod observability;
mod reload;
mod run;
mod run_defects;
mod run_recovery;
mod schema;
mod secrets;
mod service;
mod snapshot_store;
mod support;
mod validate;
mod watch;
#[cfg(unix)]
mod wedge_input;

//! The `hotconf` binary's integration tests, built into one test binary (see ARCHITECTURE.md, "Tests"):
//! the real binary on real files, admin HTTP, logs, the store on disk, FUSE faults.

mod admin_body;
mod admin_http;
mod cli_ci;
mod cli_env_file;
mod cli_schema_write;
mod cli_snapshot;
mod cli_validate;
mod diagnostics;
mod escaping;
mod faultfs_fs;
mod faultfs_hung_read;
mod faultfs_service;
mod faultfs_store_full_for_long;
mod health;
mod log_schema;
mod observability;
mod run;
mod run_defects;
mod run_recovery;
mod schema;
mod secrets;
mod secrets_deny;
mod service;
mod snapshot_store;
mod support;
#[cfg(unix)]
mod wedge_input;

//! Integration tests, built into one binary (see ARCHITECTURE.md, "Tests").

mod cli_snapshot;
mod cli_validate;
mod components;
mod faultfs_fs;
mod faultfs_service;
mod faultfs_store;
mod reload;
mod run;
mod service;
mod snapshot_store;
mod support;
mod validate;
mod watch;

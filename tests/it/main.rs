//! Integration tests, built into one binary (see ARCHITECTURE.md, "Tests").

mod cli_snapshot;
mod cli_validate;
mod components;
mod examples;
mod library;
mod reload;
mod run;
mod run_defects;
mod run_recovery;
mod secrets;
mod service;
mod snapshot_store;
mod support;
mod validate;
mod watch;
#[cfg(unix)]
mod wedge_input;

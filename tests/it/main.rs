//! Integration tests, built into one binary (see ARCHITECTURE.md, "Tests").

mod cli_validate;
mod support;
mod validate;
mod watch;

//! `hotconf restore` (formerly `rollback`, still accepted): validate a stored version against
//! today's environment, then write its files back into the config directory, each atomically, for
//! the running poller to pick up as one change. (A pin, `POST /pin/N`, changes what runs without
//! touching the files.)

use std::path::Path;

use hotconf::store::{restore_into, semantic_diff, AuditEvent};
use hotconf::Sources;
use hotconf::StoreError;

use crate::diff::{print_diff, validated_sources};
use crate::store::{chain, open_existing, open_writable, report};
pub use crate::wait::WaitFor;
use crate::{Exit, Format};

/// Whether to write the files or only show what would change.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Write the files.
    Apply,
    /// Write the files, then wait until the running service runs the version's content.
    ApplyAndWait(WaitFor),
    /// Print the diff only.
    DryRun,
}

pub fn run(version: u64, config: &Path, snapshots: &Path, mode: Mode) -> Exit {
    let store = match open_existing(snapshots) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let target = match store.read(version) {
        Ok(t) => t,
        Err(e) => {
            let exit = report(&e);
            eprintln!("error: refusing to restore version {version}; nothing written");
            return exit;
        }
    };
    if let Err(exit) = validated_sources(target.sources(), &format!("version {version}")) {
        eprintln!("error: version {version} no longer validates; refusing to restore it; nothing written");
        return exit;
    }
    let current = match Sources::read_dir(config, Sources::DEFAULT_MAX_FILE_BYTES) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return Exit::Failure;
        }
    };
    let diff = semantic_diff(&current, target.sources());
    let wait = match &mode {
        Mode::ApplyAndWait(w) => Some((w, w.baseline())),
        _ => None,
    };
    let then_wait = |exit: Exit| match (exit, &wait) {
        (Exit::Ok, Some((w, baseline))) => w.until_running(version, &target.manifest().bundle_hash, *baseline),
        (exit, _) => exit,
    };
    if current.bundle_hash().to_hex().as_str() == target.manifest().bundle_hash {
        println!("{} already holds version {version}; nothing written", config.display());
        return then_wait(Exit::Ok);
    }
    if matches!(mode, Mode::DryRun) {
        println!("dry run: restoring version {version} into {} would change:", config.display());
        print_diff(&diff, Format::Text);
        println!("nothing written");
        return Exit::Ok;
    }
    let store = match open_writable(store.dir()) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    // The intent goes first, so a service that sees the files stores the change as a restore.
    if let Err(e) = store.record_restore_intent(&target) {
        let exit = report(&e);
        eprintln!("error: nothing written");
        return exit;
    }
    let restored = match restore_into(config, &current, target.sources()) {
        Ok(r) => r,
        Err(e) => {
            let _ = store.clear_restore_intent();
            eprintln!("error: {}", chain(&e));
            if let StoreError::Io { source, .. } = &e {
                if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem
                    || source.kind() == std::io::ErrorKind::PermissionDenied
                {
                    eprintln!("  help: on a read-only config directory, pin the version in the service instead");
                }
            }
            eprintln!("error: the restore stopped part way; files already replaced are whole; run it again");
            return Exit::Failure;
        }
    };
    let event = AuditEvent::Restored {
        version,
        bundle_hash: target.manifest().bundle_hash.clone(),
        config_dir: config.display().to_string(),
        files: restored.files(),
        diff: diff.clone(),
    };
    if let Err(e) = store.record(event) {
        eprintln!("warning: the files are restored but the audit log could not be written: {}", chain(&e));
    }
    println!(
        "restored version {version} into {}: {} written{}",
        config.display(),
        list(&restored.written),
        if restored.removed.is_empty() { String::new() } else { format!(", {} removed", list(&restored.removed)) }
    );
    print_diff(&diff, Format::Text);
    then_wait(Exit::Ok)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no files".to_owned()
    } else {
        names.join(", ")
    }
}

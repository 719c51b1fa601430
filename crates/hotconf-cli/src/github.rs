//! `--format github`: GitHub Actions workflow commands, one `::error` line per diagnostic, so a
//! pull request shows each problem on its line. Escaping as GitHub documents it: `%`, CR and LF
//! in the message; those and `:` and `,` in property values.
//!
//! Hostile names: what a user wrote (the file's name, the YAML path, keys quoted in the message
//! and the help, a rule's code) first goes through [`visible`], so a newline in a key reads `\n`
//! instead of starting a line of the annotation; and every other control character left (ESC
//! above all) is made visible in any part of the command, so none reaches the runner's log.

use std::path::Path;

use crate::escape::visible;

/// One `::error file=…,line=…,col=…,title=…::message` line for a diagnostic, given as its JSON
/// form (`file`, `line`, `column`, `code`, `message`, `help`); `dir` is the config directory as
/// given on the command line, so `file=` is a path from where the job runs.
pub fn error_line(dir: &Path, diagnostic: &serde_json::Value) -> String {
    let mut props = Vec::new();
    if let Some(file) = diagnostic["file"].as_str() {
        props.push(format!("file={}", property(&visible(&dir.join(file).display().to_string()))));
    }
    for (json, name) in [("line", "line"), ("column", "col")] {
        if let Some(n) = diagnostic[json].as_u64() {
            props.push(format!("{name}={n}"));
        }
    }
    let title = match diagnostic["code"].as_str() {
        Some(code) => format!("hotconf: {}", visible(code)),
        None => "hotconf".to_owned(),
    };
    props.push(format!("title={}", property(&title)));
    let mut message = String::new();
    if let Some(path) = diagnostic["path"].as_str().filter(|p| !p.is_empty()) {
        message.push_str(&visible(path));
        message.push_str(": ");
    }
    message.push_str(&visible(diagnostic["message"].as_str().unwrap_or_default()));
    if let Some(help) = diagnostic["help"].as_str().filter(|h| !h.is_empty()) {
        message.push_str("\nhelp: ");
        message.push_str(&visible(help));
    }
    format!("::error {}::{}", props.join(","), data(&message))
}

/// A whole-run error with no file (an unreadable directory); a line break in it (from a path
/// given on the command line) is shown as an escape.
pub fn plain_error(message: &str) -> String {
    format!("::error title=hotconf::{}", data(&visible(message)))
}

/// The message part: GitHub's escapes, then any other control character made visible.
fn data(s: &str) -> String {
    visible(&s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")).into_owned()
}

/// A property value.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let d = serde_json::json!({
            "file": "rate_limits.yaml", "path": "groq.rpm", "line": 5, "column": 10,
            "code": "not-positive", "message": "100% wrong,\r\nreally: yes", "help": "use 1"
        });
        assert_eq!(
            error_line(Path::new("conf,ig:x"), &d),
            "::error file=conf%2Cig%3Ax/rate_limits.yaml,line=5,col=10,title=hotconf%3A not-positive\
             ::groq.rpm: 100%25 wrong,\\r\\nreally: yes%0Ahelp: use 1"
        );
        let whole = serde_json::json!({"file": "a.yaml", "message": "missing"});
        assert_eq!(error_line(Path::new("config"), &whole), "::error file=config/a.yaml,title=hotconf::missing");
        assert_eq!(plain_error("a\nb"), "::error title=hotconf::a\\nb");
    }

    #[test]
    fn what_a_user_wrote_never_starts_a_line_or_carries_a_control_character() {
        let d = serde_json::json!({
            "file": "evil\u{1b}]0;x\u{7}\r\nerror: forged.yaml", "path": "a.k\u{1b}[31m\nerror: forged",
            "line": 1, "column": 2, "code": "unknown-key", "message": "unknown key `k\u{9b}\t`", "help": "remove it"
        });
        assert_eq!(
            error_line(Path::new("config"), &d),
            "::error file=config/evil\\x1b]0;x\\x07\\r\\nerror%3A forged.yaml,line=1,col=2,title=hotconf%3A unknown-key\
             ::a.k\\x1b[31m\\nerror: forged: unknown key `k\\u{9b}\\t`%0Ahelp: remove it"
        );
        assert_eq!(data("%\u{1b}\r\n"), "%25\\x1b%0D%0A");
    }
}

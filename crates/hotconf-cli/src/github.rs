//! `--format github`: GitHub Actions workflow commands, one `::error` line per diagnostic, so a
//! pull request shows each problem on its line. Escaping as GitHub documents it: `%`, CR and LF
//! in the message; those and `:` and `,` in property values.

use std::path::Path;

/// One `::error file=…,line=…,col=…,title=…::message` line for a diagnostic, given as its JSON
/// form (`file`, `line`, `column`, `code`, `message`, `help`); `dir` is the config directory as
/// given on the command line, so `file=` is a path from where the job runs.
pub fn error_line(dir: &Path, diagnostic: &serde_json::Value) -> String {
    let mut props = Vec::new();
    if let Some(file) = diagnostic["file"].as_str() {
        props.push(format!("file={}", property(&dir.join(file).display().to_string())));
    }
    for (json, name) in [("line", "line"), ("column", "col")] {
        if let Some(n) = diagnostic[json].as_u64() {
            props.push(format!("{name}={n}"));
        }
    }
    let title = match diagnostic["code"].as_str() {
        Some(code) => format!("hotconf: {code}"),
        None => "hotconf".to_owned(),
    };
    props.push(format!("title={}", property(&title)));
    let mut message = String::new();
    if let Some(path) = diagnostic["path"].as_str().filter(|p| !p.is_empty()) {
        message.push_str(path);
        message.push_str(": ");
    }
    message.push_str(diagnostic["message"].as_str().unwrap_or_default());
    if let Some(help) = diagnostic["help"].as_str().filter(|h| !h.is_empty()) {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!("::error {}::{}", props.join(","), data(&message))
}

/// A whole-run error with no file (an unreadable directory).
pub fn plain_error(message: &str) -> String {
    format!("::error title=hotconf::{}", data(message))
}

/// The message part.
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
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
             ::groq.rpm: 100%25 wrong,%0D%0Areally: yes%0Ahelp: use 1"
        );
        let whole = serde_json::json!({"file": "a.yaml", "message": "missing"});
        assert_eq!(error_line(Path::new("config"), &whole), "::error file=config/a.yaml,title=hotconf::missing");
        assert_eq!(plain_error("a\nb"), "::error title=hotconf::a%0Ab");
    }
}

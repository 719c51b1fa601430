//! Text logs of `hotconf run` in logfmt: `ts=TIME level=LEVEL event=NAME message=… key=value …`,
//! one event a line, with the same fields under the same names as the JSON format
//! ([`crate::jsonlog`]). A value holding a space, `"`, `=`, `\` or a control character is quoted
//! and escaped, so no field (a config file name with a newline in it, an error text) can forge a
//! line or a field.

use std::fmt::{self, Write as _};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::escape::breaks_a_line_or_commands;
use crate::jsonlog::LogRecord;

/// The text event format: `ts`, `level`, `event`, `message`, then every other field as
/// `key=value` (a list of names as its items joined by commas, other structured values as their
/// JSON text).
#[derive(Debug, Default, Clone, Copy)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let record = LogRecord::of(event);
        let mut line = String::new();
        push_field(&mut line, "ts", &record.timestamp);
        push_field(&mut line, "level", record.level);
        push_field(&mut line, "event", &record.event);
        push_field(&mut line, "message", &record.message);
        for (name, value) in &record.fields {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) if *name == "files" => {
                    items.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(",")
                }
                other => other.to_string(),
            };
            push_field(&mut line, name, &text);
        }
        line.push('\n');
        writer.write_str(&line)
    }
}

fn push_field(line: &mut String, name: &str, value: &str) {
    if !line.is_empty() {
        line.push(' ');
    }
    line.push_str(name);
    line.push('=');
    push_value(line, value);
}

/// Appends `value`, bare when it is safe, else quoted with `\`, `"` and control characters escaped.
pub fn push_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && !value.chars().any(|c| matches!(c, ' ' | '"' | '=' | '\\') || breaks_a_line_or_commands(c));
    if bare {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if breaks_a_line_or_commands(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_value;

    #[test]
    fn values_are_quoted_and_escaped_when_needed() {
        let cases = [
            ("rate_limits.yaml", "rate_limits.yaml"),
            ("", r#""""#),
            ("two words", r#""two words""#),
            ("a=b", r#""a=b""#),
            ("say \"hi\"", r#""say \"hi\"""#),
            ("back\\slash", r#""back\\slash""#),
            (
                "x.yaml\n2026-01-01T00:00:00Z  INFO event=reload.applied",
                r#""x.yaml\n2026-01-01T00:00:00Z  INFO event=reload.applied""#,
            ),
            ("cr\rtab\tesc\u{1b}[31m", r#""cr\rtab\tesc\u{001b}[31m""#),
            ("nel\u{85}ls\u{2028}", r#""nel\u{0085}ls\u{2028}""#),
            ("ünïcode→ok", "ünïcode→ok"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            push_value(&mut out, value);
            assert_eq!(out, expected, "{value:?}");
            assert!(!out.contains('\n'));
        }
    }
}

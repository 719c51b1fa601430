//! JSON logs of `hotconf run`: one object a line, `timestamp`, `level`, `event`, `message`, then
//! every other field of the event in order, typed (numbers and booleans stay numbers and
//! booleans), and structured fields ([`JSON_FIELDS`], logged by the library as JSON text: `files`,
//! `diff`, `versions`) as real JSON. The text format ([`crate::logfmt`]) writes the same fields
//! under the same names; both read an event through [`LogRecord`].

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose value is logged as JSON text (`files`, a list of names; `diff`, a list of
/// changes; `versions`, a list of numbers).
pub const JSON_FIELDS: &[&str] = &["files", "diff", "versions"];

/// One log event's fields, in the order every line writes them: `event` and `message` first
/// (a line logged without a message gets the event's name), then the rest as logged.
pub struct LogRecord {
    /// When it was logged (RFC 3339, UTC, microseconds).
    pub timestamp: String,
    /// Its level (`INFO`).
    pub level: &'static str,
    /// The event's name (`reload.applied`); empty for a line logged without one.
    pub event: String,
    /// The message a person reads.
    pub message: String,
    /// Every other field, typed.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

impl LogRecord {
    /// Reads `event`'s fields, stamped with the time now.
    pub fn of(event: &Event<'_>) -> Self {
        let mut timestamp = String::new();
        // Writing to a String cannot fail.
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        let level = event.metadata().level().as_str();
        let mut record =
            LogRecord { timestamp, level, event: String::new(), message: String::new(), fields: Vec::new() };
        event.record(&mut record);
        if record.message.is_empty() {
            record.message = record.event.clone();
        }
        record
    }
}

impl Visit for LogRecord {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event" => self.event = value.to_owned(),
            "message" => self.message = value.to_owned(),
            name => {
                let parsed = JSON_FIELDS.contains(&name).then(|| serde_json::from_str(value).ok()).flatten();
                self.fields.push((name, parsed.unwrap_or_else(|| serde_json::Value::String(value.to_owned()))));
            }
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), value.into()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into);
        self.fields.push((field.name(), value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields and format-string messages arrive here too, as Debug forwarding to Display.
        self.record_str(field, &format!("{value:?}"));
    }
}

/// The JSON event format.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let record = LogRecord::of(event);
        let mut line = String::from("{");
        push_field(&mut line, "timestamp", &record.timestamp.into());
        push_field(&mut line, "level", &record.level.into());
        push_field(&mut line, "event", &record.event.into());
        push_field(&mut line, "message", &record.message.into());
        for (name, value) in &record.fields {
            push_field(&mut line, name, value);
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

fn push_field(line: &mut String, key: &str, value: &serde_json::Value) {
    if !line.ends_with('{') {
        line.push(',');
    }
    let _ = write!(line, "{}:{value}", serde_json::Value::String(key.to_owned()));
}

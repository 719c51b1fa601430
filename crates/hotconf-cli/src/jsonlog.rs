//! JSON logs of `hotconf run`: one object a line, `timestamp`, `level`, then every field of the
//! event in order, typed (numbers and booleans stay numbers and booleans), and list-valued fields
//! ([`LIST_FIELDS`], logged by the library as a JSON array's text) as real JSON arrays.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose value is a list, logged as the text of a JSON array of strings (`files`).
pub const LIST_FIELDS: &[&str] = &["files"];

/// The items of a list field's value, or `None` if `name` is not a list field or the value is not
/// a JSON array of strings.
pub fn list_items(name: &str, value: &str) -> Option<Vec<String>> {
    if !LIST_FIELDS.contains(&name) {
        return None;
    }
    serde_json::from_str(value).ok()
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
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut line = String::from("{");
        push_key(&mut line, "timestamp");
        push_json(&mut line, &serde_json::Value::String(time));
        push_key(&mut line, "level");
        push_json(&mut line, &serde_json::Value::String(event.metadata().level().as_str().to_owned()));
        event.record(&mut Fields { line: &mut line });
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

struct Fields<'a> {
    line: &'a mut String,
}

impl Fields<'_> {
    fn field(&mut self, field: &Field, value: serde_json::Value) {
        push_key(self.line, field.name());
        push_json(self.line, &value);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = match list_items(field.name(), value) {
            Some(items) => serde_json::json!(items),
            None => serde_json::Value::String(value.to_owned()),
        };
        self.field(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here too, as Debug forwarding to Display.
        self.record_str(field, &format!("{value:?}"));
    }
}

fn push_key(line: &mut String, key: &str) {
    if !line.ends_with('{') {
        line.push(',');
    }
    push_json(line, &serde_json::Value::String(key.to_owned()));
    line.push(':');
}

fn push_json(line: &mut String, value: &serde_json::Value) {
    let _ = write!(line, "{value}");
}

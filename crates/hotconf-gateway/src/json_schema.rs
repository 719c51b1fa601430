//! The gateway's files as JSON Schemas: the `JsonSchema` impls of the newtypes in `files.rs`,
//! stating in schema terms the rules their `Deserialize` enforces, and one schema document per
//! file. Derived from the types that validate; nothing here validates.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use super::files::{Chain, EnvName, Flag, Limits, Name, Positive, ProviderDoc, Retries, Seconds, Text, Url};
use super::{AGENT_CHAINS, PROVIDERS, RATE_LIMITS};

/// `is_valid_name` as a pattern.
const NAME_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";
/// `is_env_var_name` as a pattern.
const ENV_NAME_PATTERN: &str = "^[A-Z_][A-Z0-9_]{0,127}$";
/// The scheme and a host of `check_url` (credentials, spaces and secrets in the query are
/// refused by validation too, but not described here).
const URL_PATTERN: &str = "^https?://[^/?#:@\\s]";

macro_rules! schema_impl {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

schema_impl!(Name, "Name", {
    "description": "A provider or agent name: 1 to 64 letters, digits, `_`, `-` or `.`.",
    "type": "string",
    "pattern": NAME_PATTERN,
});
schema_impl!(Text, "Text", { "description": "A non-empty string.", "type": "string", "minLength": 1 });
schema_impl!(Flag, "Flag", { "type": "boolean", "default": true });
schema_impl!(Positive<u32>, "PositiveU32", {
    "description": "A whole number of 1 or more.",
    "type": "integer",
    "minimum": 1,
    "maximum": u32::MAX,
});
schema_impl!(Positive<u64>, "PositiveU64", {
    "description": "A whole number of 1 or more.",
    "type": "integer",
    "minimum": 1,
    "maximum": u64::MAX,
});
schema_impl!(Seconds, "Seconds", {
    "description": "A number of seconds, more than 0 and at most an hour.",
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": 3600,
});
schema_impl!(Retries, "Retries", {
    "description": "A whole number from 0 to 10.",
    "type": "integer",
    "minimum": 0,
    "maximum": 10,
});
schema_impl!(EnvName, "EnvName", {
    "description": "The name of an environment variable: upper-case letters, digits and `_`, not starting with a digit.",
    "type": "string",
    "pattern": ENV_NAME_PATTERN,
});
schema_impl!(Url, "Url", {
    "description": "`http://` or `https://` and a host, without credentials.",
    "type": "string",
    "pattern": URL_PATTERN,
});

/// One file: a mapping from names to `T`, titled with the file's name.
fn file<T: JsonSchema>(file_name: &str, description: &str) -> Value {
    let mut doc = hotconf::schema::for_type::<BTreeMap<Name, T>>();
    let object = doc.as_object_mut().expect("a root schema is an object");
    object.insert("title".into(), Value::from(file_name));
    object.insert("description".into(), Value::from(description));
    doc
}

/// Each of the gateway's files and its schema document, by file name.
pub(super) fn documents() -> BTreeMap<String, Value> {
    [
        (
            AGENT_CHAINS,
            file::<Chain>(
                "agent_chains.yaml",
                "The gateway's agents: per agent, the provider tried first, then the fallbacks in order.",
            ),
        ),
        (PROVIDERS, file::<ProviderDoc>("providers.yaml", "The providers the gateway can call, by name.")),
        (
            RATE_LIMITS,
            file::<Limits>(
                "rate_limits.yaml",
                "Per-provider rate limits, by provider name. A provider with no entry is not limited.",
            ),
        ),
    ]
    .into_iter()
    .map(|(stem, doc)| (format!("{stem}.yaml"), doc))
    .collect()
}

//! JSON Schemas (draft 2020-12) for config files, generated from the types that read them
//! (feature `schema`). It only turns types into schema documents: it never reads or writes a
//! file, and validation never consults a schema (serde and the rules stay the one authority).
//!
//! A type that derives [`schemars::JsonSchema`] next to `serde::Deserialize` gets a schema an
//! editor can check while one types: doc comments become `description`s, `deny_unknown_fields`
//! becomes `additionalProperties: false`, and a newtype with rules of its own writes them in a
//! manual `JsonSchema` impl (`minimum`, `pattern`, …). Save the document next to the config and
//! point the file at it with a [`modeline`]:
//!
//! ```
//! use hotconf::schema;
//!
//! /// The application's settings.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct App {
//!     /// Worker threads.
//!     workers: std::num::NonZeroU32,
//! }
//!
//! let doc = schema::for_type::<App>();
//! assert_eq!(doc["$schema"], "https://json-schema.org/draft/2020-12/schema");
//! assert_eq!(doc["additionalProperties"], false);
//! assert_eq!(doc["properties"]["workers"]["minimum"], 1);
//! assert_eq!(doc["properties"]["workers"]["description"], "Worker threads.");
//! // Written as `schemas/app.schema.json`, named on the first line of `config/app.yaml`:
//! assert_eq!(schema::modeline("../schemas/app.schema.json"), "# yaml-language-server: $schema=../schemas/app.schema.json");
//! let _file = schema::to_file_text(&doc);
//! ```

pub use schemars::JsonSchema;

/// The JSON Schema (draft 2020-12) of `T`, as read by serde (`Deserialize`), with `$schema`,
/// `title` and the definitions it uses under `$defs`.
#[must_use]
pub fn for_type<T: JsonSchema + ?Sized>() -> serde_json::Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// A schema document as a file's text: pretty-printed JSON (keys in a stable order) and a final
/// newline, so a file written from it and a file checked against it compare byte for byte.
#[must_use]
pub fn to_file_text(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// The first line of a YAML file that points the YAML language server (VS Code's YAML extension,
/// and other editors using it) at its schema: a path relative to the YAML file, or a URL.
#[must_use]
pub fn modeline(schema_path: &str) -> String {
    format!("# yaml-language-server: $schema={schema_path}")
}

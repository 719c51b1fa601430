//! Layering: environment variables under a prefix override values of the files, before serde
//! sees them, so a value from the environment is validated exactly as one written in a file.
//!
//! `APP__DB__URL=postgres://…` with prefix `APP` sets `db.url` (in a directory config the first
//! key is the file's stem: `APP__PROVIDERS__GROQ__RPM` is `groq.rpm` in `providers.yaml`). Keys
//! match the files' keys without regard to case; a key the file lacks is added in lowercase. The
//! text is read as a plain YAML scalar would be (`8080` a number, `true` a boolean, anything else
//! text), so it takes the same types and the same checks as the file's own value.
//!
//! The variables are read once, when the schema is built (at `start`): a process's environment
//! cannot change under it. A diagnostic about an overridden value names the variable instead of
//! a file and line, and never repeats the variable's value.

use yaml_serde::{Mapping, Number, Value};

use super::diagnostic::{Diagnostic, DiagnosticKind, Problem};
use super::yaml::YamlPath;
use crate::source::env::EnvLookup;

/// The separator between keys in a variable's name.
pub const SEPARATOR: &str = "__";

/// The overrides read from the environment, sorted by variable name.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvOverrides {
    prefix: String,
    vars: Vec<(String, String)>,
}

/// One variable applied: where it landed.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub path: YamlPath,
    pub var: String,
    pub value: String,
}

impl EnvOverrides {
    /// Reads every variable named `{prefix}__…` from `env`, once.
    pub(crate) fn read(prefix: &str, env: &dyn EnvLookup) -> Self {
        let full = format!("{prefix}{SEPARATOR}");
        let mut vars = env.vars_with_prefix(&full);
        vars.sort();
        Self { prefix: full, vars }
    }

    /// Sets each variable's value at its path in `root`; a variable that names no path (an
    /// empty key, a key under a value that is not a mapping) is a diagnostic at its name.
    pub(crate) fn apply(&self, root: &mut Value) -> (Vec<Applied>, Vec<Diagnostic>) {
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for (var, value) in &self.vars {
            let keys: Vec<String> = var[self.prefix.len()..].split(SEPARATOR).map(str::to_lowercase).collect();
            if keys.iter().any(String::is_empty) {
                refused.push(at_var(
                    var,
                    None,
                    Problem::new("env-override", "this variable names no key").with_help(format!(
                        "name a key path with `{SEPARATOR}` between keys, such as `{}DB{SEPARATOR}URL`",
                        self.prefix
                    )),
                ));
                continue;
            }
            match set(root, &keys, scalar(value)) {
                Ok(path) => applied.push(Applied { path, var: var.clone(), value: value.clone() }),
                Err(parent) => {
                    let problem =
                        Problem::new("env-override", format!("`{parent}` is not a mapping, so it has no keys"))
                            .with_help("override a key under a mapping, or the value itself");
                    refused.push(at_var(var, Some(parent), problem));
                }
            }
        }
        (applied, refused)
    }
}

/// Sets `value` at `keys` under `root`, adding mappings on the way; the path set, or the path
/// of a value on the way that is not a mapping.
fn set(root: &mut Value, keys: &[String], value: Value) -> Result<YamlPath, YamlPath> {
    let mut node = root;
    let mut path = YamlPath::root();
    for key in keys {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else { return Err(path) };
        let existing = map.keys().find(|k| k.as_str().is_some_and(|s| s.eq_ignore_ascii_case(key))).cloned();
        let name = existing.as_ref().and_then(Value::as_str).unwrap_or(key).to_owned();
        path = path.key(&name);
        let slot = existing.unwrap_or_else(|| Value::String(key.clone()));
        node = map.entry(slot).or_insert(Value::Null);
    }
    *node = value;
    Ok(path)
}

/// The text as a plain YAML scalar: a boolean, null, a number, or text.
fn scalar(text: &str) -> Value {
    match text {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        "null" | "Null" | "NULL" | "~" => return Value::Null,
        _ => {}
    }
    if let Ok(n) = text.parse::<u64>() {
        return Value::Number(Number::from(n));
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::Number(Number::from(n));
    }
    let float_like = text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(f) if float_like && f.is_finite() => Value::Number(Number::from(f)),
        _ => Value::String(text.to_owned()),
    }
}

fn at_var(var: &str, path: Option<YamlPath>, problem: Problem) -> Diagnostic {
    at_var_kind(var, path, DiagnosticKind::Custom(Box::new(problem)))
}

fn at_var_kind(var: &str, path: Option<YamlPath>, kind: DiagnosticKind) -> Diagnostic {
    let d = Diagnostic::file(format!("${var}"), kind);
    match path {
        Some(p) if !p.segments().is_empty() => d.at_path(p.to_string()),
        _ => d,
    }
}

/// The variable whose value is at `path` or above it, if any.
pub(crate) fn source_of<'a>(applied: &'a [Applied], path: &YamlPath) -> Option<&'a Applied> {
    applied.iter().rev().find(|a| path.segments().starts_with(a.path.segments()))
}

/// The diagnostic for a problem at `path`, which a variable set: at the variable's name, its
/// value replaced wherever the words would repeat it (values of 4 characters or more: a shorter
/// one is no credential, and replacing it would garble the words around it).
pub(crate) fn diagnostic(applied: &Applied, path: &YamlPath, kind: DiagnosticKind) -> Diagnostic {
    let value = applied.value.as_str();
    let message = kind.to_string();
    let help = kind.help();
    let repeats = value.len() >= 4 && (message.contains(value) || help.as_deref().is_some_and(|h| h.contains(value)));
    let kind = if repeats {
        let hide = |text: &str| text.replace(value, "(the variable's value)");
        let mut problem = Problem::new(kind.code().to_owned(), hide(&message));
        if let Some(help) = help {
            problem = problem.with_help(hide(&help));
        }
        if !kind.points_at_value() {
            problem = problem.at_key();
        }
        DiagnosticKind::Custom(Box::new(problem))
    } else {
        kind
    };
    at_var_kind(&applied.var, Some(path.clone()), kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::env::MapEnv;

    #[test]
    fn variables_land_at_their_paths_as_plain_scalars() {
        let env = MapEnv::new()
            .with("APP__SERVER__PORT", "8080")
            .with("APP__DB__URL", "postgres://x")
            .with("APP__FEATURES__BETA", "true")
            .with("APP__RATIO", "0.5")
            .with("APP__NAME", "x1")
            .with("OTHER__X", "1")
            .with("APP__", "1")
            .with("APP__GREETING__X", "1");
        let overrides = EnvOverrides::read("APP", &env);
        let mut root: Value = yaml_serde::from_str("Server: {port: 1}\ngreeting: hi\n").unwrap();
        let (applied, refused) = overrides.apply(&mut root);
        let expected: Value = yaml_serde::from_str(
            "Server: {port: 8080}\ngreeting: hi\ndb: {url: 'postgres://x'}\nfeatures: {beta: true}\nratio: 0.5\nname: x1\n",
        )
        .unwrap();
        assert_eq!(root, expected);
        let paths: Vec<String> = applied.iter().map(|a| format!("{}={}", a.var, a.path)).collect();
        assert_eq!(
            paths,
            [
                "APP__DB__URL=db.url",
                "APP__FEATURES__BETA=features.beta",
                "APP__NAME=name",
                "APP__RATIO=ratio",
                "APP__SERVER__PORT=Server.port"
            ]
        );
        let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].starts_with("$APP__: this variable names no key"), "{refused:?}");
        assert!(refused[1].starts_with("$APP__GREETING__X: greeting: `greeting` is not a mapping"), "{refused:?}");
    }
}

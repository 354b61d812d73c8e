//! `${VAR}` and `{{VAR}}` interpolation of the config file's string values (SPEC §3), so that
//! Console-style configs (`{{AUTH0_CLIENT_SECRET}}`) and systemd `EnvironmentFile`s both work.
//!
//! Rules: a reference is `${NAME}` or `{{NAME}}`, `NAME` made of ASCII letters, digits and `_`
//! (not starting with a digit), blanks around it ignored; `$${` is a literal `${` and `{{{{` a
//! literal `{{`. A variable absent from the environment is an error naming it; a variable set to
//! the empty string interpolates as the empty string (and a value left empty then means unset).
//! Only values are interpolated, never keys. A `$` or `{` not starting a reference is kept as is.

use serde_json::Value;

use super::env::Env;
use super::error::ConfigError;

/// Interpolates every string value of `doc` in place; `path` names the value in errors.
pub(crate) fn interpolate_document(doc: &mut Value, env: &Env) -> Result<(), ConfigError> {
    fn walk(value: &mut Value, path: &mut Vec<String>, env: &Env) -> Result<(), ConfigError> {
        match value {
            Value::String(s) if s.contains(['$', '{']) => {
                *s = interpolate(s, env).map_err(|err| err.into_config_error(path.join(".")))?;
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    walk(item, path, env)?;
                    path.pop();
                }
            }
            Value::Object(members) => {
                for (key, item) in members.iter_mut() {
                    path.push(key.clone());
                    walk(item, path, env)?;
                    path.pop();
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(doc, &mut Vec::new(), env)
}

#[derive(Debug, PartialEq)]
pub(crate) enum InterpolationError {
    Unset(String),
    Malformed(String),
}

impl InterpolationError {
    fn into_config_error(self, key: String) -> ConfigError {
        match self {
            Self::Unset(var) => ConfigError::UnsetVariable { key, var },
            Self::Malformed(reason) => ConfigError::Interpolation { key, reason },
        }
    }
}

/// Interpolates one string.
pub(crate) fn interpolate(input: &str, env: &Env) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{{{{") {
            out.push_str("{{");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            rest = substitute(after, "${", "}", "$${", env, &mut out)?;
        } else if let Some(after) = rest.strip_prefix("{{") {
            rest = substitute(after, "{{", "}}", "{{{{", env, &mut out)?;
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
    }
    Ok(out)
}

/// Resolves the reference at the start of `after` (just past `open`), appends its value to `out`
/// and returns what follows the reference.
fn substitute<'a>(
    after: &'a str,
    open: &str,
    close: &str,
    escape: &str,
    env: &Env,
    out: &mut String,
) -> Result<&'a str, InterpolationError> {
    let Some(end) = after.find(close) else {
        return Err(InterpolationError::Malformed(format!(
            "`{open}` has no closing `{close}`; write `{escape}` for a literal `{open}`"
        )));
    };
    let name = after[..end].trim();
    if !is_variable_name(name) {
        return Err(InterpolationError::Malformed(format!(
            "`{open}{}{close}` is not a variable reference (names are ASCII letters, digits and `_`); \
             write `{escape}` for a literal `{open}`",
            &after[..end]
        )));
    }
    match env.get_raw(name) {
        Some(value) => out.push_str(value),
        None => return Err(InterpolationError::Unset(name.to_owned())),
    }
    Ok(&after[end + close.len()..])
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Env {
        Env::from_pairs([
            ("SECRET", "s3cr3t"),
            ("HOST", "tenant.eu.auth0.com"),
            ("EMPTY", ""),
            ("_X1", "x"),
        ])
    }

    fn run(input: &str) -> Result<String, InterpolationError> {
        interpolate(input, &env())
    }

    /// Asserts that each input interpolates to its expected text.
    fn assert_interpolates(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            assert_eq!(run(input).expect(input), *expected, "{input}");
        }
    }

    #[test]
    fn both_syntaxes_are_replaced() {
        assert_interpolates(&[
            ("${SECRET}", "s3cr3t"),
            ("{{SECRET}}", "s3cr3t"),
            ("https://${HOST}/", "https://tenant.eu.auth0.com/"),
            (
                "{{HOST}}-{{ SECRET }}-${_X1}",
                "tenant.eu.auth0.com-s3cr3t-x",
            ),
            ("a${EMPTY}b", "ab"),
        ]);
    }

    #[test]
    fn escapes_are_literal() {
        assert_interpolates(&[
            ("$${SECRET}", "${SECRET}"),
            ("{{{{SECRET}}", "{{SECRET}}"),
            ("$$${SECRET}", "$${SECRET}"),
            ("price: $5 {x} }} $ {", "price: $5 {x} }} $ {"),
            ("ünïcödé ${HOST} ✓", "ünïcödé tenant.eu.auth0.com ✓"),
        ]);
    }

    #[test]
    fn unset_variables_are_named() {
        assert_eq!(
            run("${NOPE}"),
            Err(InterpolationError::Unset("NOPE".into()))
        );
        assert_eq!(
            run("x{{MISSING}}"),
            Err(InterpolationError::Unset("MISSING".into()))
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "${SECRET",
            "{{SECRET}",
            "${}",
            "${1ABC}",
            "{{a-b}}",
            "${A B}",
        ] {
            assert!(
                matches!(run(bad), Err(InterpolationError::Malformed(_))),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn documents_are_walked_with_paths() {
        let mut doc = json!({
            "clients": {"web": {"clientSecret": "{{SECRET}}", "scopes": ["${_X1}", "email"]}},
            "plugins": [{"config": {"nested": ["${HOST}"]}}],
            "n": 3
        });
        interpolate_document(&mut doc, &env()).expect("ok");
        assert_eq!(doc["clients"]["web"]["clientSecret"], "s3cr3t");
        assert_eq!(doc["clients"]["web"]["scopes"], json!(["x", "email"]));
        assert_eq!(
            doc["plugins"][0]["config"]["nested"][0],
            "tenant.eu.auth0.com"
        );

        let mut doc = json!({"plugins": [{"config": {"token": "${TOKEN}"}}]});
        let err = interpolate_document(&mut doc, &env()).expect_err("unset");
        assert_eq!(err.key(), Some("plugins.0.config.token"));
        let message = err.to_string();
        assert!(
            message.contains("TOKEN") && message.contains("`$${`"),
            "{message}"
        );
    }
}

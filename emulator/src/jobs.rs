//! Import jobs (`POST /api/v2/jobs/users-imports`, wire reference §3): the per-user validation of an
//! import file against Auth0's user schema (§3.4) with Auth0's error codes, and the job records with
//! their pending → processing → completed / failed lifecycle.
//!
//! Messages are guesses in the shape of the one real per-user error seen (tag [INF] from [OBS]):
//! `Error in <path> property - <validator message>`, the validator message worded like the Management
//! API's own schema errors (`Object didn't pass validation for format email: x`).

use serde_json::{Map, Value};

/// One error of one user, as `GET /api/v2/jobs/{id}/errors` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl UserError {
    fn at(code: &'static str, path: &str, detail: impl std::fmt::Display) -> Self {
        UserError {
            code,
            message: format!("Error in {path} property - {detail}"),
            path: Some(path.to_string()),
        }
    }

    /// A user already in the tenant, and `upsert` is false. Exact text seen from Auth0 [OBS].
    pub fn duplicated_in_tenant() -> Self {
        UserError {
            code: "DUPLICATED_USER",
            message: "The user already exist and upsert parameter is false".into(),
            path: None,
        }
    }

    /// A user listed twice in one file. Auth0's text names the matching attribute [OBS]:
    /// "A user with this [email|username|user_id] was already provided."
    pub fn duplicated_in_file(attribute: &str) -> Self {
        UserError {
            code: "DUPLICATED_USER",
            message: format!("A user with this {attribute} was already provided."),
            path: None,
        }
    }

    /// With `upsert`, a user matched on username (or user id) but not on email cannot be updated.
    /// [INF]: the code is Auth0's, the text is not documented.
    pub fn conflict(code: &'static str, attribute: &str) -> Self {
        UserError {
            code,
            message: format!("Another user already has this {attribute}"),
            path: None,
        }
    }
}

/// `app_metadata` keys Auth0 refuses in an import (§3.4).
const FORBIDDEN_APP_METADATA: [&str; 18] = [
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email_verified",
    "email",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastIP",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor_last_modified",
    "multifactor",
    "updated_at",
    "user_id",
];

const HASH_ALGORITHMS: [&str; 11] = [
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2",
    "scrypt",
];
const ENCODINGS: [&str; 3] = ["base64", "hex", "utf8"];
const DIGESTS: [&str; 9] = [
    "md4",
    "md5",
    "ripemd160",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "whirlpool",
];
const PASSWORD_ENCODINGS: [&str; 6] = ["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid_type(path: &str, expected: &str, value: &Value) -> UserError {
    UserError::at(
        "INVALID_TYPE",
        path,
        format!(
            "Expected type {expected} but found type {}",
            type_name(value)
        ),
    )
}

/// A pragmatic `format: email` check: one `@`, a non-empty local part, a dotted-or-not domain
/// without spaces. Auth0's validator is stricter in corner cases; this accepts what it accepts.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !value.chars().any(char::is_whitespace)
        && !local.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| {
            c.is_alphanumeric() || c == '.' || c == '-' || c == '[' || c == ']' || c == ':'
        })
}

/// `^\+[0-9]{1,15}$`.
pub fn is_e164(value: &str) -> bool {
    value.strip_prefix('+').is_some_and(|digits| {
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_string(
    user: &Map<String, Value>,
    key: &str,
    limits: Option<(usize, usize)>,
    errors: &mut Vec<UserError>,
) {
    match user.get(key) {
        None => {}
        Some(Value::String(s)) => {
            if let Some((min, max)) = limits {
                let len = s.chars().count();
                if len < min {
                    errors.push(UserError::at(
                        "MIN_LENGTH",
                        key,
                        format!("String is too short ({len} chars), minimum {min}"),
                    ));
                } else if len > max {
                    errors.push(UserError::at(
                        "MAX_LENGTH",
                        key,
                        format!("String is too long ({len} chars), maximum {max}"),
                    ));
                }
            }
        }
        Some(other) => errors.push(invalid_type(key, "string", other)),
    }
}

fn check_bool(user: &Map<String, Value>, key: &str, errors: &mut Vec<UserError>) {
    if let Some(value) = user.get(key)
        && !value.is_boolean()
    {
        errors.push(invalid_type(key, "boolean", value));
    }
}

fn check_enum(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
    errors: &mut Vec<UserError>,
) {
    match object.get(key) {
        None => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(Value::String(s)) => errors.push(UserError::at(
            "ENUM_MISMATCH",
            path,
            format!("No enum match for: {}", Value::String(s.clone())),
        )),
        Some(other) => errors.push(invalid_type(path, "string", other)),
    }
}

fn require(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<UserError>,
) -> bool {
    if object.contains_key(key) {
        true
    } else {
        errors.push(UserError::at(
            "OBJECT_REQUIRED",
            path,
            format!("Missing required property: {key}"),
        ));
        false
    }
}

fn check_integer(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    min: i64,
    errors: &mut Vec<UserError>,
) {
    let Some(value) = object.get(key) else {
        return;
    };
    match value.as_i64() {
        Some(v) if v < min => errors.push(UserError::at(
            "MINIMUM",
            path,
            format!("Value {v} is less than minimum {min}"),
        )),
        Some(_) => {}
        None if value.is_u64() => {}
        None => errors.push(invalid_type(path, "integer", value)),
    }
}

fn check_custom_password_hash(value: &Value, errors: &mut Vec<UserError>) {
    let base = "custom_password_hash";
    let Some(cph) = value.as_object() else {
        errors.push(invalid_type(base, "object", value));
        return;
    };
    if require(cph, "algorithm", base, errors) {
        check_enum(
            cph,
            "algorithm",
            &format!("{base}.algorithm"),
            &HASH_ALGORITHMS,
            errors,
        );
    }
    if require(cph, "hash", base, errors) {
        let path = format!("{base}.hash");
        match cph.get("hash") {
            Some(Value::Object(hash)) => {
                if let Some(v) = hash.get("value")
                    && !v.is_string()
                {
                    errors.push(invalid_type(&format!("{path}.value"), "string", v));
                }
                check_enum(
                    hash,
                    "encoding",
                    &format!("{path}.encoding"),
                    &ENCODINGS,
                    errors,
                );
                check_enum(hash, "digest", &format!("{path}.digest"), &DIGESTS, errors);
                match hash.get("key") {
                    None => {}
                    Some(Value::Object(key)) => {
                        let key_path = format!("{path}.key");
                        if require(key, "value", &key_path, errors)
                            && let Some(v) = key.get("value")
                            && !v.is_string()
                        {
                            errors.push(invalid_type(&format!("{key_path}.value"), "string", v));
                        }
                        check_enum(
                            key,
                            "encoding",
                            &format!("{key_path}.encoding"),
                            &ENCODINGS,
                            errors,
                        );
                    }
                    Some(other) => {
                        errors.push(invalid_type(&format!("{path}.key"), "object", other))
                    }
                }
            }
            Some(other) => errors.push(invalid_type(&path, "object", other)),
            None => {}
        }
    }
    match cph.get("salt") {
        None => {}
        Some(Value::Object(salt)) => {
            let path = format!("{base}.salt");
            require(salt, "value", &path, errors);
            check_enum(
                salt,
                "encoding",
                &format!("{path}.encoding"),
                &ENCODINGS,
                errors,
            );
            check_enum(
                salt,
                "position",
                &format!("{path}.position"),
                &["prefix", "suffix"],
                errors,
            );
        }
        Some(other) => errors.push(invalid_type(&format!("{base}.salt"), "object", other)),
    }
    match cph.get("password") {
        None => {}
        Some(Value::Object(password)) => check_enum(
            password,
            "encoding",
            &format!("{base}.password.encoding"),
            &PASSWORD_ENCODINGS,
            errors,
        ),
        Some(other) => errors.push(invalid_type(&format!("{base}.password"), "object", other)),
    }
    check_integer(cph, "keylen", &format!("{base}.keylen"), 1, errors);
    check_integer(cph, "cost", &format!("{base}.cost"), 2, errors);
    check_integer(cph, "blockSize", &format!("{base}.blockSize"), 1, errors);
    check_integer(
        cph,
        "parallelization",
        &format!("{base}.parallelization"),
        1,
        errors,
    );
    if cph.get("algorithm").and_then(Value::as_str) == Some("scrypt") && !cph.contains_key("keylen")
    {
        require(cph, "keylen", base, errors);
    }
}

/// Checks one MFA factor's value; `Some((code, detail))` when it fails.
type FactorCheck = fn(&str) -> Option<(&'static str, String)>;

fn check_mfa_factors(value: &Value, errors: &mut Vec<UserError>) {
    let base = "mfa_factors";
    let Some(factors) = value.as_array() else {
        errors.push(invalid_type(base, "array", value));
        return;
    };
    if factors.is_empty() {
        errors.push(UserError::at(
            "ARRAY_LENGTH_SHORT",
            base,
            "Array is too short (0), minimum 1",
        ));
    } else if factors.len() > 10 {
        errors.push(UserError::at(
            "ARRAY_LENGTH_LONG",
            base,
            format!("Array is too long ({}), maximum 10", factors.len()),
        ));
    }
    for (i, factor) in factors.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let Some(factor) = factor.as_object() else {
            errors.push(invalid_type(&path, "object", factor));
            continue;
        };
        let kinds: Vec<&String> = factor.keys().collect();
        let known = ["totp", "phone", "email"];
        if kinds.len() != 1 || !known.contains(&kinds[0].as_str()) {
            errors.push(UserError::at(
                "ANY_OF_MISSING",
                &path,
                "Data does not match any schemas from 'anyOf'",
            ));
            continue;
        }
        let kind = kinds[0].as_str();
        let inner_path = format!("{path}.{kind}");
        let Some(inner) = factor.get(kind).and_then(Value::as_object) else {
            if let Some(v) = factor.get(kind) {
                errors.push(invalid_type(&inner_path, "object", v));
            }
            continue;
        };
        let (field, check): (&str, FactorCheck) = match kind {
            "totp" => ("secret", |s| {
                (s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)))
                .then(|| {
                    (
                        "PATTERN",
                        format!("String does not match pattern ^[A-Z2-7]+$: {s}"),
                    )
                })
            }),
            "phone" => ("value", |s| {
                (!is_e164(s)).then(|| {
                    (
                        "PATTERN",
                        format!("String does not match pattern ^\\+[0-9]{{1,15}}$: {s}"),
                    )
                })
            }),
            _ => ("value", |s| {
                (!is_email(s)).then(|| {
                    (
                        "FORMAT",
                        format!("Object didn't pass validation for format email: {s}"),
                    )
                })
            }),
        };
        if !require(inner, field, &inner_path, errors) {
            continue;
        }
        let field_path = format!("{inner_path}.{field}");
        match inner.get(field) {
            Some(Value::String(s)) => {
                if let Some((code, detail)) = check(s) {
                    errors.push(UserError::at(code, &field_path, detail));
                }
            }
            Some(other) => errors.push(invalid_type(&field_path, "string", other)),
            None => {}
        }
    }
}

/// Validates one entry of an import file against Auth0's user schema (§3.4). An empty result means
/// the user may be imported. Properties the schema does not list are ignored [INF]: Auth0's schema
/// says `additionalProperties: false`, yet its documented error codes have none for an extra
/// property, which suggests the validator strips them.
pub fn validate_user(user: &Value) -> Vec<UserError> {
    let mut errors = Vec::new();
    let Some(object) = user.as_object() else {
        return vec![UserError {
            code: "INVALID_TYPE",
            message: format!("Expected type object but found type {}", type_name(user)),
            path: None,
        }];
    };
    if require(object, "email", "email", &mut errors) {
        match object.get("email") {
            Some(Value::String(email)) if is_email(email) => {}
            Some(Value::String(email)) => errors.push(UserError::at(
                "FORMAT",
                "email",
                format!("Object didn't pass validation for format email: {email}"),
            )),
            Some(other) => errors.push(invalid_type("email", "string", other)),
            None => {}
        }
    }
    for key in ["email_verified", "blocked", "phone_verified"] {
        check_bool(object, key, &mut errors);
    }
    // Lengths as in `POST /api/v2/users` (§2.5) [INF]: the import schema states none, but Auth0
    // lists MIN_LENGTH and MAX_LENGTH among its import error codes.
    check_string(object, "user_id", Some((1, 255)), &mut errors);
    check_string(object, "username", Some((1, 128)), &mut errors);
    check_string(object, "given_name", Some((1, 150)), &mut errors);
    check_string(object, "family_name", Some((1, 150)), &mut errors);
    check_string(object, "name", Some((1, 300)), &mut errors);
    check_string(object, "nickname", Some((1, 300)), &mut errors);
    check_string(object, "picture", None, &mut errors);
    check_string(object, "password_hash", None, &mut errors);
    match object.get("phone_number") {
        None => {}
        Some(Value::String(phone)) if is_e164(phone) => {}
        Some(Value::String(phone)) => errors.push(UserError::at(
            "PATTERN",
            "phone_number",
            format!("String does not match pattern ^\\+[0-9]{{1,15}}$: {phone}"),
        )),
        Some(other) => errors.push(invalid_type("phone_number", "string", other)),
    }
    if let Some(cph) = object.get("custom_password_hash") {
        if object.contains_key("password_hash") {
            // The two are mutually exclusive; a `not: {required: [both]}` in the schema [INF].
            errors.push(UserError::at(
                "NOT_PASSED",
                "custom_password_hash",
                "Data matches schema from 'not'",
            ));
        }
        check_custom_password_hash(cph, &mut errors);
    }
    for key in ["app_metadata", "user_metadata"] {
        if let Some(value) = object.get(key)
            && !value.is_object()
        {
            errors.push(invalid_type(key, "object", value));
        }
    }
    if let Some(Value::Object(app_metadata)) = object.get("app_metadata") {
        for forbidden in FORBIDDEN_APP_METADATA {
            if app_metadata.contains_key(forbidden) {
                // A `not` over the forbidden keys in Auth0's schema [INF].
                errors.push(UserError::at(
                    "NOT_PASSED",
                    &format!("app_metadata.{forbidden}"),
                    "Data matches schema from 'not'",
                ));
            }
        }
    }
    if let Some(factors) = object.get("mfa_factors") {
        check_mfa_factors(factors, &mut errors);
    }
    errors
}

/// The fields of a valid import entry that `upsert` may overwrite (§3.4).
pub const UPSERTABLE: [&str; 9] = [
    "app_metadata",
    "email_verified",
    "family_name",
    "given_name",
    "name",
    "nickname",
    "picture",
    "user_metadata",
    "custom_password_hash",
];

/// The user as `/errors` shows it: secrets replaced by `*****` (§3.3).
pub fn redact(user: &Value) -> Value {
    let mut user = user.clone();
    if let Some(object) = user.as_object_mut() {
        if object.get("password_hash").is_some_and(Value::is_string) {
            object.insert("password_hash".into(), Value::String("*****".into()));
        }
        if let Some(Value::Object(cph)) = object.get_mut("custom_password_hash") {
            for part in ["hash", "salt"] {
                if let Some(Value::Object(inner)) = cph.get_mut(part) {
                    if inner.contains_key("value") {
                        inner.insert("value".into(), Value::String("*****".into()));
                    }
                    if let Some(Value::Object(key)) = inner.get_mut("key")
                        && key.contains_key("value")
                    {
                        key.insert("value".into(), Value::String("*****".into()));
                    }
                }
            }
        }
        if let Some(Value::Array(factors)) = object.get_mut("mfa_factors") {
            for factor in factors {
                if let Some(Value::Object(totp)) = factor.get_mut("totp")
                    && totp.contains_key("secret")
                {
                    totp.insert("secret".into(), Value::String("*****".into()));
                }
            }
        }
    }
    user
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(user: Value) -> Vec<(&'static str, Option<String>)> {
        validate_user(&user)
            .into_iter()
            .map(|e| (e.code, e.path))
            .collect()
    }

    #[test]
    fn accepts_a_full_valid_user() {
        let user = json!({
            "email": "a@example.com", "email_verified": true, "user_id": "123", "username": "alice",
            "given_name": "A", "family_name": "B", "name": "A B", "nickname": "ab",
            "picture": "https://example.com/a.png", "blocked": false,
            "phone_number": "+15555550100", "phone_verified": true,
            "custom_password_hash": {
                "algorithm": "hmac",
                "hash": {"value": "abc", "encoding": "hex", "digest": "sha256", "key": {"value": "k", "encoding": "utf8"}},
                "salt": {"value": "s", "encoding": "utf8", "position": "suffix"},
                "password": {"encoding": "utf8"}
            },
            "app_metadata": {"roles": ["admin"]}, "user_metadata": {"theme": "dark"},
            "mfa_factors": [{"totp": {"secret": "JBTWY3DPEHPK3PNP"}}, {"phone": {"value": "+12125550001"}}, {"email": {"value": "m@example.com"}}],
            "unknown_extra": 1
        });
        assert_eq!(validate_user(&user), vec![]);
    }

    #[test]
    fn reports_auth0_codes_for_each_schema_rule() {
        let table: Vec<(Value, &str, &str)> = vec![
            (json!({}), "OBJECT_REQUIRED", "email"),
            (json!({"email": "nope"}), "FORMAT", "email"),
            (json!({"email": 5}), "INVALID_TYPE", "email"),
            (
                json!({"email": "a@b.c", "email_verified": "yes"}),
                "INVALID_TYPE",
                "email_verified",
            ),
            (
                json!({"email": "a@b.c", "blocked": 1}),
                "INVALID_TYPE",
                "blocked",
            ),
            (
                json!({"email": "a@b.c", "username": ""}),
                "MIN_LENGTH",
                "username",
            ),
            (
                json!({"email": "a@b.c", "given_name": "x".repeat(151)}),
                "MAX_LENGTH",
                "given_name",
            ),
            (
                json!({"email": "a@b.c", "phone_number": "0123"}),
                "PATTERN",
                "phone_number",
            ),
            (
                json!({"email": "a@b.c", "app_metadata": []}),
                "INVALID_TYPE",
                "app_metadata",
            ),
            (
                json!({"email": "a@b.c", "user_metadata": "x"}),
                "INVALID_TYPE",
                "user_metadata",
            ),
            (
                json!({"email": "a@b.c", "app_metadata": {"email": "x"}}),
                "NOT_PASSED",
                "app_metadata.email",
            ),
            (
                json!({"email": "a@b.c", "password_hash": "h", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x"}}}),
                "NOT_PASSED",
                "custom_password_hash",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"hash": {"value": "x"}}}),
                "OBJECT_REQUIRED",
                "custom_password_hash",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"algorithm": "rot13", "hash": {"value": "x"}}}),
                "ENUM_MISMATCH",
                "custom_password_hash.algorithm",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x", "encoding": "b32"}}}),
                "ENUM_MISMATCH",
                "custom_password_hash.hash.encoding",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "x"}, "keylen": 0}}),
                "MINIMUM",
                "custom_password_hash.keylen",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": []}),
                "ARRAY_LENGTH_SHORT",
                "mfa_factors",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": vec![json!({"email": {"value": "m@x.y"}}); 11]}),
                "ARRAY_LENGTH_LONG",
                "mfa_factors",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"sms": {}}]}),
                "ANY_OF_MISSING",
                "mfa_factors[0]",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"totp": {"secret": "lower"}}]}),
                "PATTERN",
                "mfa_factors[0].totp.secret",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"phone": {}}]}),
                "OBJECT_REQUIRED",
                "mfa_factors[0].phone",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"email": {"value": "bad"}}]}),
                "FORMAT",
                "mfa_factors[0].email.value",
            ),
        ];
        for (user, code, path) in table {
            let found = codes(user.clone());
            assert!(
                found.contains(&(code, Some(path.to_string()))),
                "{user}: expected {code} at {path}, got {found:?}"
            );
        }
    }

    #[test]
    fn words_messages_like_auth0() {
        let errors = validate_user(&json!({"email": "akshay144@"}));
        assert_eq!(
            errors,
            vec![UserError {
                code: "FORMAT",
                message: "Error in email property - Object didn't pass validation for format email: akshay144@".into(),
                path: Some("email".into()),
            }]
        );
        assert_eq!(
            validate_user(&json!({"name": "x"}))[0].message,
            "Error in email property - Missing required property: email"
        );
        assert_eq!(
            serde_json::to_value(UserError::duplicated_in_tenant()).unwrap(),
            json!({"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"})
        );
    }

    #[test]
    fn a_non_object_entry_is_an_invalid_type() {
        assert_eq!(codes(json!("a@b.c")), vec![("INVALID_TYPE", None)]);
    }

    #[test]
    fn redacts_secrets() {
        let user = json!({"email": "a@b.c", "password_hash": "$2b$10$abc",
            "custom_password_hash": {"algorithm": "hmac", "hash": {"value": "h", "key": {"value": "k"}}, "salt": {"value": "s"}},
            "mfa_factors": [{"totp": {"secret": "ABC"}}]});
        assert_eq!(
            redact(&user),
            json!({"email": "a@b.c", "password_hash": "*****",
                "custom_password_hash": {"algorithm": "hmac", "hash": {"value": "*****", "key": {"value": "*****"}}, "salt": {"value": "*****"}},
                "mfa_factors": [{"totp": {"secret": "*****"}}]})
        );
    }

    #[test]
    fn email_and_phone_formats() {
        for ok in ["a@b.c", "first.last+tag@example.co.uk", "x@localhost"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "a", "@b.c", "a@", "a b@c.d", "a@b..c", "a@.b"] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_e164("+1"));
        assert!(is_e164("+123456789012345"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+"));
        assert!(!is_e164("12"));
    }
}

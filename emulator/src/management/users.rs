//! The rules of `/api/v2/users` (wire reference §2.4–2.8) over the Management API's JSON form of a
//! user: list parameters, search, paging, sorting and field selection; the create body's schema; the
//! patch semantics (root fields replaced, metadata merged one level deep, `null` deletes).

use super::error::MgmtError;
use crate::lucene;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Default `per_page` [INF]: "half the maximum", as Auth0's generic paging docs put it.
pub const DEFAULT_PER_PAGE: u64 = 50;
/// Largest `per_page` [DOC].
pub const MAX_PER_PAGE: u64 = 100;
/// Search returns at most this many users in all [DOC].
pub const SEARCH_CAP: u64 = 1000;

/// `GET /api/v2/users` parameters, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListParams {
    pub page: u64,
    pub per_page: u64,
    pub include_totals: bool,
    pub query: Option<lucene::Query>,
    pub sort: Option<(String, bool)>,
    pub fields: Option<(Vec<String>, bool)>,
}

fn parse_bool(
    params: &HashMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, MgmtError> {
    match params.get(key).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(MgmtError::invalid_query(
            &format!("Expected type boolean but found type string: {other}"),
            key,
            describe(key),
        )),
    }
}

fn parse_int(
    params: &HashMap<String, String>,
    key: &str,
    max: Option<u64>,
) -> Result<Option<u64>, MgmtError> {
    let Some(raw) = params.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let value: i64 = raw.parse().map_err(|_| {
        MgmtError::invalid_query(
            &format!("Expected type integer but found type string: {raw}"),
            key,
            describe(key),
        )
    })?;
    if value < 0 {
        return Err(MgmtError::invalid_query(
            &format!("Value {value} is less than minimum 0"),
            key,
            describe(key),
        ));
    }
    let value = value as u64;
    if let Some(max) = max
        && value > max
    {
        return Err(MgmtError::invalid_query(
            &format!("Value {value} is greater than maximum {max}"),
            key,
            describe(key),
        ));
    }
    Ok(Some(value))
}

/// The OAS descriptions of the list parameters, which Auth0's validation messages quote.
fn describe(key: &str) -> &'static str {
    match key {
        "page" => "Page index of the results to return. First page is 0",
        "per_page" => "Number of results per page",
        "include_totals" => {
            "Return results inside an object that contains the total result count (true) or as a direct array of results (false, default)"
        }
        "include_fields" => {
            "Whether specified fields are to be included (true) or excluded (false)"
        }
        "sort" => {
            "Field to sort by. Use <code>field:order</code> where order is <code>1</code> for ascending and <code>-1</code> for descending"
        }
        _ => "",
    }
}

impl ListParams {
    /// Parses the query string's parameters; a bad value is Auth0's 400.
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, MgmtError> {
        let page = parse_int(params, "page", None)?.unwrap_or(0);
        let per_page =
            parse_int(params, "per_page", Some(MAX_PER_PAGE))?.unwrap_or(DEFAULT_PER_PAGE);
        let include_totals = parse_bool(params, "include_totals", false)?;
        let include_fields = parse_bool(params, "include_fields", true)?;
        match params.get("search_engine").map(String::as_str) {
            None | Some("") | Some("v3") => {}
            Some(engine @ ("v1" | "v2")) => {
                // Retired engines [DOC]; the exact wording is [INF].
                return Err(MgmtError::bad_request(
                    "operation_not_supported",
                    format!("You are not allowed to use search_engine={engine}."),
                ));
            }
            Some(other) => {
                return Err(MgmtError::invalid_query(
                    &format!("No enum match for: \"{other}\""),
                    "search_engine",
                    "The version of the search engine",
                ));
            }
        }
        let query = match params.get("q").map(|q| q.trim()) {
            None | Some("") => None,
            Some(q) => Some(lucene::parse(q).map_err(|e| {
                // [INF]: Auth0's text for an unparsable query is not documented.
                MgmtError::bad_request(
                    "invalid_query_string",
                    format!("Invalid query string: {e}. Query: {q}"),
                )
            })?),
        };
        let sort = match params.get("sort").filter(|s| !s.is_empty()) {
            None => None,
            Some(sort) => {
                let (field, order) = sort.rsplit_once(':').ok_or_else(|| {
                    MgmtError::invalid_query(
                        &format!(
                            "String does not match pattern ^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$: {sort}"
                        ),
                        "sort",
                        describe("sort"),
                    )
                })?;
                let ascending = match order {
                    "1" => true,
                    "-1" => false,
                    _ => {
                        return Err(MgmtError::invalid_query(
                            &format!(
                                "String does not match pattern ^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$: {sort}"
                            ),
                            "sort",
                            describe("sort"),
                        ));
                    }
                };
                Some((field.to_string(), ascending))
            }
        };
        let fields = fields_param(params, include_fields);
        Ok(ListParams {
            page,
            per_page,
            include_totals,
            query,
            sort,
            fields,
        })
    }
}

/// `fields` and `include_fields`, shared by the list and the get.
pub fn fields_param(
    params: &HashMap<String, String>,
    include_fields: bool,
) -> Option<(Vec<String>, bool)> {
    params.get("fields").filter(|f| !f.is_empty()).map(|f| {
        (
            f.split(',').map(|s| s.trim().to_string()).collect(),
            include_fields,
        )
    })
}

/// Keeps (or drops) the listed root fields of a user.
pub fn project(user: Value, fields: &Option<(Vec<String>, bool)>) -> Value {
    let (Some((fields, include)), Value::Object(map)) = (fields, &user) else {
        return user;
    };
    Value::Object(
        map.iter()
            .filter(|(k, _)| fields.iter().any(|f| f == *k) == *include)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// The object `include_totals=true` answers: Auth0's key order [OBS].
#[derive(Debug, serde::Serialize)]
pub struct Totals {
    pub start: u64,
    pub limit: u64,
    pub length: u64,
    pub users: Vec<Value>,
    pub total: u64,
}

/// One page of a search.
#[derive(Debug)]
pub enum Page {
    Bare(Vec<Value>),
    Totals(Totals),
}

fn sort_key(user: &Value, field: &str) -> Option<Value> {
    let mut node = user;
    for segment in field.split('.') {
        node = node.get(segment)?;
    }
    Some(node.clone())
}

fn compare_json(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        // Users without the field come last either way [INF].
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Searches, sorts and pages `users` (in creation order). Paging past the first 1000 results is
/// Auth0's 400.
pub fn list(users: Vec<Value>, params: &ListParams) -> Result<Page, MgmtError> {
    let end = (params.page + 1).saturating_mul(params.per_page);
    if end > SEARCH_CAP {
        return Err(MgmtError::paging_limit());
    }
    let mut found: Vec<Value> = match &params.query {
        Some(query) => users.into_iter().filter(|u| query.matches(u)).collect(),
        None => users,
    };
    if let Some((field, ascending)) = &params.sort {
        found.sort_by(|a, b| {
            let (ka, kb) = (sort_key(a, field), sort_key(b, field));
            match (&ka, &kb, ascending) {
                (Some(_), Some(_), false) => compare_json(&kb, &ka),
                _ => compare_json(&ka, &kb),
            }
        });
    }
    let total = found.len() as u64;
    let start = params.page.saturating_mul(params.per_page);
    let users: Vec<Value> = found
        .into_iter()
        .skip(start as usize)
        .take(params.per_page as usize)
        .map(|u| project(u, &params.fields))
        .collect();
    Ok(if params.include_totals {
        Page::Totals(Totals {
            start,
            limit: params.per_page,
            length: users.len() as u64,
            users,
            total,
        })
    } else {
        Page::Bare(users)
    })
}

// ---------------------------------------------------------------------------------------------
// Create

/// The OAS descriptions of `CreateUserRequestContent` properties, quoted by Auth0's messages.
fn property_description(key: &str) -> &'static str {
    match key {
        "email" => "The user's email",
        "phone_number" => "The user's phone number (following the E.164 recommendation)",
        "user_metadata" => {
            "Data related to the user that does not affect the application's core functionality"
        }
        "app_metadata" => {
            "Data related to the user that does affect the application's core functionality"
        }
        "blocked" => "Whether this user was blocked by an administrator (true) or not (false)",
        "email_verified" => "Whether this email address is verified (true) or unverified (false)",
        "phone_verified" => "Whether this phone number has been verified (true) or not (false)",
        "verify_email" => {
            "Whether the user will receive a verification email after creation (true) or no email (false)"
        }
        "verify_phone_number" => {
            "Whether the user will receive a text message to verify their phone number (true) or not (false)"
        }
        "given_name" => "The user's given name(s)",
        "family_name" => "The user's family name(s)",
        "name" => "The user's full name",
        "nickname" => "The user's nickname",
        "picture" => "A URI pointing to the user's picture",
        "user_id" => "The external user's id provided by the identity provider",
        "connection" => "Name of the connection this user should be created in",
        "password" => "Initial password for this user. Only valid for auth0 connection strategy",
        "username" => "The user's username. Only valid if the connection requires a username",
        "client_id" => "Auth0 client ID. Only valid when updating email address",
        _ => "",
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Str { min: usize, max: usize },
    Bool,
    Object,
}

fn create_schema(key: &str) -> Option<Kind> {
    Some(match key {
        "email" | "phone_number" | "picture" | "connection" => Kind::Str {
            min: 1,
            max: usize::MAX,
        },
        "given_name" | "family_name" => Kind::Str { min: 1, max: 150 },
        "name" | "nickname" => Kind::Str { min: 1, max: 300 },
        "username" => Kind::Str { min: 1, max: 128 },
        "user_id" => Kind::Str { min: 0, max: 255 },
        "password" => Kind::Str {
            min: 1,
            max: usize::MAX,
        },
        "blocked" | "email_verified" | "phone_verified" | "verify_email" => Kind::Bool,
        "user_metadata" | "app_metadata" => Kind::Object,
        _ => return None,
    })
}

fn patch_schema(key: &str) -> Option<Kind> {
    match key {
        "connection" | "client_id" => Some(Kind::Str {
            min: 1,
            max: usize::MAX,
        }),
        "verify_email" | "verify_phone_number" => Some(Kind::Bool),
        "user_id" => None,
        _ => create_schema(key),
    }
}

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

/// Checks one property against its kind; `null` is allowed where `nullable` (patches unset).
fn check_property(key: &str, value: &Value, kind: Kind, nullable: bool) -> Result<(), MgmtError> {
    let bad = |detail: String| {
        Err(MgmtError::invalid_body_property(
            &detail,
            key,
            property_description(key),
        ))
    };
    match (kind, value) {
        (_, Value::Null) if nullable => Ok(()),
        (Kind::Str { min, max }, Value::String(s)) => {
            let len = s.chars().count();
            if len < min {
                return bad(format!("String is too short ({len} chars), minimum {min}"));
            }
            if len > max {
                return bad(format!("String is too long ({len} chars), maximum {max}"));
            }
            if key == "email" && !crate::jobs::is_email(s) {
                return bad(format!(
                    "Object didn't pass validation for format email: {s}"
                ));
            }
            if key == "phone_number" && !crate::jobs::is_e164(s) {
                return bad(format!(
                    "String does not match pattern ^\\+[0-9]{{1,15}}$: {s}"
                ));
            }
            if key == "user_id" && s.chars().any(char::is_whitespace) {
                return bad(format!("String does not match pattern ^\\S*$: {s}"));
            }
            Ok(())
        }
        (Kind::Bool, Value::Bool(_)) | (Kind::Object, Value::Object(_)) => Ok(()),
        (kind, other) => {
            let expected = match kind {
                Kind::Str { .. } => "string",
                Kind::Bool => "boolean",
                Kind::Object => "object",
            };
            bad(format!(
                "Expected type {expected} but found type {}",
                type_name(other)
            ))
        }
    }
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, MgmtError> {
    body.as_object().ok_or_else(|| {
        MgmtError::invalid_body(&format!(
            "Expected type object but found type {}",
            type_name(body)
        ))
    })
}

/// Validates a `POST /api/v2/users` body against `CreateUserRequestContent` (§2.5): unknown
/// properties, types, lengths, formats, and the required `connection`.
pub fn validate_create(body: &Value) -> Result<&Map<String, Value>, MgmtError> {
    let object = as_object(body)?;
    for (key, value) in object {
        let Some(kind) = create_schema(key) else {
            return Err(MgmtError::invalid_body(&format!(
                "Additional properties not allowed: {key}"
            )));
        };
        check_property(key, value, kind, false)?;
    }
    if !object.contains_key("connection") {
        return Err(MgmtError::invalid_body(
            "Missing required property: connection",
        ));
    }
    Ok(object)
}

/// Validates a `PATCH /api/v2/users/{id}` body (§2.7).
pub fn validate_patch(body: &Value) -> Result<&Map<String, Value>, MgmtError> {
    let object = as_object(body)?;
    for (key, value) in object {
        let Some(kind) = patch_schema(key) else {
            return Err(MgmtError::invalid_body(&format!(
                "Additional properties not allowed: {key}"
            )));
        };
        check_property(key, value, kind, true)?;
    }
    let has = |k: &str| object.get(k).is_some_and(|v| !v.is_null());
    // The combinations Auth0 refuses [DOC]; `operation_not_supported` is [INF].
    for (a, b) in [
        ("password", "email"),
        ("password", "email_verified"),
        ("username", "email"),
        ("username", "email_verified"),
        ("username", "password"),
    ] {
        if has(a) && has(b) {
            return Err(MgmtError::bad_request(
                "operation_not_supported",
                format!("Cannot update {a} and {b} simultaneously."),
            ));
        }
    }
    Ok(object)
}

/// Fields a patch may never unset, even with `null` [INF]: a database user keeps its identity.
const NOT_UNSETTABLE: [&str; 4] = ["email", "connection", "client_id", "password"];

/// Applies a validated patch to the JSON form of a user: root properties are replaced (or unset
/// with `null`); `app_metadata` and `user_metadata` are merged one level deep, a `null` value
/// deleting its key, and `{}` (or `null`) removing the metadata entirely [DOC]. Request-only
/// properties (`password`, `connection`, `verify_*`, `client_id`) are left to the caller.
pub fn apply_patch(user: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match key.as_str() {
            "password" | "connection" | "client_id" | "verify_email" | "verify_phone_number" => {}
            "app_metadata" | "user_metadata" => match value {
                Value::Object(changes) if !changes.is_empty() => {
                    let target = user
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !target.is_object() {
                        *target = Value::Object(Map::new());
                    }
                    if let Value::Object(target) = target {
                        for (k, v) in changes {
                            if v.is_null() {
                                target.remove(k);
                            } else {
                                target.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                _ => {
                    user.remove(key);
                }
            },
            _ if value.is_null() && !NOT_UNSETTABLE.contains(&key.as_str()) => {
                user.remove(key);
            }
            _ if value.is_null() => {}
            _ => {
                user.insert(key.clone(), value.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

use super::{Authorized, json_response, no_content, store};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `/users` and `/users/{id}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list_users))
        .route("/users", web::post().to(create_user))
        .route("/users/{id}", web::get().to(get_user))
        .route("/users/{id}", web::patch().to(patch_user))
        .route("/users/{id}", web::delete().to(delete_user));
}

/// The query string as a map; a repeated key keeps its last value.
pub fn query_params(req: &HttpRequest) -> Result<HashMap<String, String>, MgmtError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|_| MgmtError::bad_request("invalid_query_string", "Invalid request query string"))
}

/// A JSON request body; hapi's 400 when it is not JSON [INF].
pub fn json_body(body: &[u8]) -> Result<Value, MgmtError> {
    serde_json::from_slice(body).map_err(|_| {
        MgmtError::new(
            StatusCode::BAD_REQUEST,
            None,
            "Invalid request payload JSON format",
        )
    })
}

fn tenant(req: &HttpRequest) -> Result<store::Tenant, MgmtError> {
    store::tenant(req).ok_or_else(MgmtError::invalid_token)
}

async fn list_users(auth: Authorized, req: HttpRequest) -> Result<HttpResponse, MgmtError> {
    auth.require(&["read:users", "read:user_idp_tokens"])?;
    let params = ListParams::parse(&query_params(&req)?)?;
    let tenant = tenant(&req)?;
    Ok(match list(store::users(&tenant), &params)? {
        Page::Bare(users) => json_response(StatusCode::OK, &users),
        Page::Totals(totals) => json_response(StatusCode::OK, &totals),
    })
}

async fn get_user(
    auth: Authorized,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["read:users", "read:user_idp_tokens", "read:current_user"])?;
    let params = query_params(&req)?;
    let include_fields = params.get("include_fields").map(String::as_str) != Some("false");
    let fields = fields_param(&params, include_fields);
    let user = store::user(&tenant(&req)?, &id).ok_or_else(MgmtError::inexistent_user)?;
    Ok(json_response(StatusCode::OK, &project(user, &fields)))
}

async fn create_user(
    auth: Authorized,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["create:users"])?;
    let body = json_body(&body)?;
    let profile = validate_create(&body)?;
    let user = store::create_user(&tenant(&req)?, profile)?;
    Ok(json_response(StatusCode::CREATED, &user))
}

async fn patch_user(
    auth: Authorized,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&[
        "update:users",
        "update:users_app_metadata",
        "update:current_user_metadata",
    ])?;
    let body = json_body(&body)?;
    let patch = validate_patch(&body)?;
    let user = store::update_user(&tenant(&req)?, &id, patch)?;
    Ok(json_response(StatusCode::OK, &user))
}

/// 204 whether or not the user existed: the OAS lists no 404 for this route [DOC], so deleting is
/// idempotent [INF].
async fn delete_user(
    auth: Authorized,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["delete:users", "delete:current_user"])?;
    store::delete_user(&tenant(&req)?, &id);
    Ok(no_content())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn users(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"user_id": format!("auth0|{i:03}"), "email": format!("u{i:03}@x.io"), "logins_count": i % 7}))
            .collect()
    }

    #[test]
    fn pages_with_totals_in_auth0_key_order() {
        let p = ListParams::parse(&params(&[
            ("page", "1"),
            ("per_page", "2"),
            ("include_totals", "true"),
        ]))
        .unwrap();
        let Page::Totals(totals) = list(users(5), &p).unwrap() else {
            panic!("expected totals")
        };
        assert_eq!(
            serde_json::to_string(&Totals {
                users: vec![],
                ..totals
            })
            .unwrap(),
            r#"{"start":2,"limit":2,"length":2,"users":[],"total":5}"#
        );
    }

    #[test]
    fn defaults_to_a_bare_array_of_50() {
        let p = ListParams::parse(&params(&[])).unwrap();
        let Page::Bare(page) = list(users(60), &p).unwrap() else {
            panic!("expected a bare array")
        };
        assert_eq!(page.len(), 50);
    }

    #[test]
    fn caps_per_page_and_the_first_1000_results() {
        let err = ListParams::parse(&params(&[("per_page", "101")])).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert_eq!(err.error_code, Some("invalid_query_string"));
        assert_eq!(
            err.message,
            "Query validation error: 'Value 101 is greater than maximum 100' on property per_page (Number of results per page)."
        );
        let ok = ListParams::parse(&params(&[("page", "9"), ("per_page", "100")])).unwrap();
        assert!(list(users(3), &ok).is_ok());
        let over = ListParams::parse(&params(&[("page", "10"), ("per_page", "100")])).unwrap();
        let err = list(users(3), &over).unwrap_err();
        assert_eq!(
            err.message,
            "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation."
        );
        for bad in [
            ("page", "-1"),
            ("page", "x"),
            ("include_totals", "yes"),
            ("sort", "email"),
            ("sort", "email:2"),
        ] {
            assert!(ListParams::parse(&params(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn searches_sorts_and_selects_fields() {
        let p = ListParams::parse(&params(&[
            ("q", "logins_count:[2 TO 4]"),
            ("sort", "email:-1"),
            ("fields", "email,logins_count"),
            ("per_page", "3"),
        ]))
        .unwrap();
        let Page::Bare(page) = list(users(10), &p).unwrap() else {
            panic!()
        };
        assert_eq!(
            page,
            vec![
                json!({"email": "u009@x.io", "logins_count": 2}),
                json!({"email": "u004@x.io", "logins_count": 4}),
                json!({"email": "u003@x.io", "logins_count": 3}),
            ]
        );
        let p = ListParams::parse(&params(&[
            ("fields", "email"),
            ("include_fields", "false"),
            ("per_page", "1"),
        ]))
        .unwrap();
        let Page::Bare(page) = list(users(2), &p).unwrap() else {
            panic!()
        };
        assert_eq!(
            page,
            vec![json!({"user_id": "auth0|000", "logins_count": 0})]
        );
    }

    #[test]
    fn an_unparsable_query_is_a_400() {
        let err = ListParams::parse(&params(&[("q", "email:\"open")])).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.error_code),
            (400, Some("invalid_query_string"))
        );
        let err =
            ListParams::parse(&params(&[("q", "email:x"), ("search_engine", "v2")])).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
    }

    #[test]
    fn create_requires_connection_and_follows_the_schema() {
        let err = validate_create(&json!({"email": "a@b.c", "password": "x"})).unwrap_err();
        assert_eq!(
            err.message,
            "Payload validation error: 'Missing required property: connection'."
        );
        assert_eq!(err.error_code, Some("invalid_body"));
        let err = validate_create(&json!({"email": "nope", "connection": "DB"})).unwrap_err();
        assert_eq!(
            err.message,
            "Payload validation error: 'Object didn't pass validation for format email: nope' on property email (The user's email)."
        );
        let err = validate_create(&json!({"connection": "DB", "shoe_size": 42})).unwrap_err();
        assert_eq!(
            err.message,
            "Payload validation error: 'Additional properties not allowed: shoe_size'."
        );
        let err = validate_create(&json!({"connection": "DB", "blocked": "no"})).unwrap_err();
        assert_eq!(
            err.message,
            "Payload validation error: 'Expected type boolean but found type string' on property blocked (Whether this user was blocked by an administrator (true) or not (false))."
        );
        assert!(validate_create(&json!({"connection": "DB", "given_name": ""})).is_err());
        assert!(validate_create(&json!({"connection": "DB", "phone_number": "555"})).is_err());
        assert!(validate_create(&json!([])).is_err());
        assert!(
            validate_create(
                &json!({"connection": "DB", "email": "a@b.c", "password": "p", "app_metadata": {}})
            )
            .is_ok()
        );
    }

    #[test]
    fn patch_merges_metadata_one_level_and_null_deletes() {
        let mut user = json!({
            "email": "a@b.c", "given_name": "A", "nickname": "a",
            "app_metadata": {"plan": "free", "groups": ["x"], "nested": {"a": 1, "b": 2}},
            "user_metadata": {"theme": "dark"}
        })
        .as_object()
        .unwrap()
        .clone();
        let patch = json!({
            "given_name": null, "nickname": "b", "email": null,
            "app_metadata": {"plan": "pro", "groups": null, "nested": {"c": 3}},
            "user_metadata": {}
        });
        apply_patch(&mut user, validate_patch(&patch).unwrap());
        assert_eq!(
            Value::Object(user),
            json!({"email": "a@b.c", "nickname": "b", "app_metadata": {"plan": "pro", "nested": {"c": 3}}})
        );
    }

    #[test]
    fn patch_refuses_what_auth0_refuses() {
        let err = validate_patch(&json!({"password": "p", "email": "a@b.c"})).unwrap_err();
        assert_eq!(
            err.message,
            "Cannot update password and email simultaneously."
        );
        assert!(validate_patch(&json!({"user_id": "x"})).is_err());
        assert!(validate_patch(&json!({"blocked": "yes"})).is_err());
        assert!(
            validate_patch(&json!({"blocked": true, "verify_email": false, "connection": "DB"}))
                .is_ok()
        );
    }
}

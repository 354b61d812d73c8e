//! `GET /users`'s query translation (SPEC §6): the CRUD-style parameters (`_l`, `_sk`, `email`,
//! `nickname`, `username`, `connection`, `app_metadata.<path>`) and the `acl_rows` header (a
//! Mongo-style row filter) to the Management API's `GET /api/v2/users` parameters, with one
//! Lucene `q` for user search v3.
//!
//! `q` is the clauses joined by ` AND `, in this order: `email`, `nickname`, `username`
//! (`field:"value"`, or `field:value*` for a value ending in `*`), each `app_metadata.<path>`
//! (`app_metadata.<path>:"value"`), the `acl_rows` filter in `( )`, and last the connections
//! (`(identities.connection:"a" OR identities.connection:"b")`, the requested ones, else every
//! supported one; none configured: no clause).
//!
//! User input never changes the query's structure: every Lucene special character of a value is
//! escaped (also inside quotes, where `"` and `\` would otherwise end or escape), and a field name
//! (`app_metadata.<path>`, an `acl_rows` key) must be `[A-Za-z0-9_.]+` and not a Lucene word
//! (`AND`, `OR`, `NOT`, `_exists_`), else the request is refused naming the parameter.
//!
//! Choices where the upstream service is silent: an empty `email`/`nickname`/`username`/
//! `connection` is no filter; a single-valued parameter given twice is refused; in `acl_rows`, `field: null` and
//! `{"$exists": false}` are `(NOT _exists_:field)`, `$ne` is `(NOT field:"v")` (in parentheses:
//! Lucene reads a bare `NOT a OR b` as "b and not a"), a top-level `{}` is no filter, and an empty
//! `$and`/`$or`/`$in` is refused (Lucene cannot say "nothing").

use serde_json::Value;

/// `_l` when absent, and its bounds (Auth0's `per_page` maximum is 100).
pub const DEFAULT_PAGE_SIZE: u32 = 25;
pub const MAX_PAGE_SIZE: u32 = 100;
/// The largest `_sk` (the OpenAPI document's bound: a 32-bit signed integer).
pub const MAX_SKIP: u32 = i32::MAX as u32;

/// Nesting beyond this in `acl_rows` is refused (a filter from an ACL engine is shallow).
const MAX_ACL_DEPTH: usize = 32;

/// The name of the header carrying the row filter.
pub const ACL_ROWS: &str = "acl_rows";

/// Why the query cannot be translated: a 400 naming `parameter`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{parameter}`: {reason}")]
pub struct UserQueryError {
    pub parameter: String,
    pub reason: String,
}

fn refuse(parameter: &str, reason: impl Into<String>) -> UserQueryError {
    UserQueryError {
        parameter: crate::echo::Clipped(parameter, 80).to_string(),
        reason: reason.into(),
    }
}

/// The Auth0 search the request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSearch {
    pub per_page: u32,
    pub page: u32,
    /// `None`: no clause at all (no filter and no connection configured).
    pub q: Option<String>,
}

impl UserSearch {
    /// The `GET /api/v2/users` query parameters.
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut query = vec![
            ("search_engine".to_owned(), "v3".to_owned()),
            ("per_page".to_owned(), self.per_page.to_string()),
            ("page".to_owned(), self.page.to_string()),
        ];
        if let Some(q) = &self.q {
            query.push(("q".to_owned(), q.clone()));
        }
        query
    }
}

/// Translates the request's query parameters (decoded, in order, repeats kept), its `acl_rows`
/// header and the management client's `supported` connections (empty: no restriction).
pub fn translate(
    params: &[(String, String)],
    acl_rows: Option<&str>,
    supported: &[&str],
) -> Result<UserSearch, UserQueryError> {
    let single = |name: &str| -> Result<Option<&str>, UserQueryError> {
        let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(refuse(name, "given more than once"));
        }
        Ok(first.map(String::as_str))
    };
    let number = |name: &str| -> Result<Option<u32>, UserQueryError> {
        single(name)?
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| refuse(name, "expected a non-negative integer"))
            })
            .transpose()
    };
    let per_page = number("_l")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&per_page) {
        return Err(refuse(
            "_l",
            format!("expected an integer from 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    let skip = number("_sk")?.unwrap_or(0);
    if skip > MAX_SKIP {
        return Err(refuse(
            "_sk",
            format!("expected an integer from 0 to {MAX_SKIP}"),
        ));
    }

    let mut clauses = Vec::new();
    for field in ["email", "nickname", "username"] {
        if let Some(value) = single(field)?.filter(|v| !v.is_empty()) {
            clauses.push(field_clause(field, value));
        }
    }
    for (name, value) in params {
        if let Some(path) = name.strip_prefix("app_metadata.") {
            if !valid_field(name) || path.is_empty() {
                return Err(refuse(
                    name,
                    "the path after `app_metadata.` must be letters, digits, `_` and `.`",
                ));
            }
            clauses.push(phrase(name, value));
        }
    }
    if let Some(acl) = acl_rows
        && let Some(filter) = acl_clause(acl)?
    {
        clauses.push(format!("({filter})"));
    }
    let requested: Vec<&str> = params
        .iter()
        .filter(|(k, v)| k == "connection" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    for connection in &requested {
        if !supported.is_empty() && !supported.contains(connection) {
            return Err(refuse(
                "connection",
                format!(
                    "{} is not a supported connection",
                    crate::echo::Quoted(connection)
                ),
            ));
        }
    }
    let connections = if requested.is_empty() {
        supported.to_vec()
    } else {
        requested
    };
    if !connections.is_empty() {
        let any: Vec<String> = connections
            .iter()
            .map(|c| phrase("identities.connection", c))
            .collect();
        clauses.push(format!("({})", any.join(" OR ")));
    }
    Ok(UserSearch {
        per_page,
        page: skip / per_page,
        q: (!clauses.is_empty()).then(|| clauses.join(" AND ")),
    })
}

/// `field:"value"`, or `field:value*` (the rest escaped) for a value ending in `*`.
pub fn field_clause(field: &str, value: &str) -> String {
    match value.strip_suffix('*') {
        Some(prefix) => format!("{field}:{}*", escape(prefix, true)),
        None => phrase(field, value),
    }
}

/// `field:"value"` with every special character of `value` escaped.
pub fn phrase(field: &str, value: &str) -> String {
    format!("{field}:\"{}\"", escape(value, false))
}

/// Lucene's special characters (`+ - & | ! ( ) { } [ ] ^ " ~ * ? : \ /`) escaped with `\`; in an
/// unquoted term (`bare`), whitespace too.
pub fn escape(value: &str, bare: bool) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        let special = matches!(
            c,
            '+' | '-'
                | '&'
                | '|'
                | '!'
                | '('
                | ')'
                | '{'
                | '}'
                | '['
                | ']'
                | '^'
                | '"'
                | '~'
                | '*'
                | '?'
                | ':'
                | '\\'
                | '/'
        );
        if special || (bare && c.is_whitespace()) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A field name the query may carry: `[A-Za-z0-9_.]+`, and not a word Lucene reads itself.
pub fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && !matches!(name, "AND" | "OR" | "NOT" | "TO" | "_exists_")
}

/// The `acl_rows` filter as Lucene, without the outer parentheses; `None` for `{}`.
pub fn acl_clause(acl: &str) -> Result<Option<String>, UserQueryError> {
    let filter: Value =
        serde_json::from_str(acl).map_err(|err| refuse(ACL_ROWS, format!("not JSON ({err})")))?;
    match &filter {
        Value::Object(fields) if fields.is_empty() => Ok(None),
        Value::Object(_) => acl_object(&filter, 0, true).map(Some),
        _ => Err(refuse(ACL_ROWS, "expected a JSON object")),
    }
}

/// `parts` joined by `joiner`, in parentheses unless there is one part or the caller wraps the
/// result itself (`bare`).
fn group(mut parts: Vec<String>, joiner: &str, bare: bool) -> String {
    if parts.len() == 1 {
        parts.remove(0)
    } else if bare {
        parts.join(joiner)
    } else {
        format!("({})", parts.join(joiner))
    }
}

fn unsupported(operator: &str) -> UserQueryError {
    refuse(
        ACL_ROWS,
        format!(
            "unsupported operator {} (use $and, $or, $in, $eq, $ne, $exists)",
            crate::echo::Quoted(operator)
        ),
    )
}

/// One filter object; `bare`: the caller puts the result in parentheses.
fn acl_object(filter: &Value, depth: usize, bare: bool) -> Result<String, UserQueryError> {
    if depth > MAX_ACL_DEPTH {
        return Err(refuse(ACL_ROWS, "nested too deeply"));
    }
    let Value::Object(fields) = filter else {
        return Err(refuse(ACL_ROWS, "expected an object in `$and`/`$or`"));
    };
    if fields.is_empty() {
        return Err(refuse(ACL_ROWS, "an empty object inside the filter"));
    }
    let alone = bare && fields.len() == 1;
    let mut clauses = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        clauses.push(match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = value else {
                    return Err(refuse(ACL_ROWS, format!("`{key}` needs a list")));
                };
                if items.is_empty() {
                    return Err(refuse(
                        ACL_ROWS,
                        format!("`{key}` needs at least one filter"),
                    ));
                }
                let parts = items
                    .iter()
                    .map(|item| acl_object(item, depth + 1, false))
                    .collect::<Result<Vec<_>, _>>()?;
                let joiner = if key == "$and" { " AND " } else { " OR " };
                group(parts, joiner, alone)
            }
            operator if operator.starts_with('$') => return Err(unsupported(operator)),
            field => acl_field(field, value, alone)?,
        });
    }
    Ok(group(clauses, " AND ", bare))
}

/// The condition on one field; `bare`: the caller puts the result in parentheses.
fn acl_field(field: &str, condition: &Value, bare: bool) -> Result<String, UserQueryError> {
    if !valid_field(field) {
        return Err(refuse(
            ACL_ROWS,
            format!(
                "field name {} must be letters, digits, `_` and `.`",
                crate::echo::Quoted(field)
            ),
        ));
    }
    let operators = match condition {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => ops,
        Value::Object(_) | Value::Array(_) => {
            return Err(refuse(
                ACL_ROWS,
                format!(
                    "the value of {} must be a scalar or an operator object",
                    crate::echo::Quoted(field)
                ),
            ));
        }
        scalar => return equals(field, scalar, bare),
    };
    let alone = bare && operators.len() == 1;
    let mut clauses = Vec::with_capacity(operators.len());
    for (operator, operand) in operators {
        clauses.push(match operator.as_str() {
            "$eq" => equals(field, operand, alone)?,
            "$ne" => negate(&equals(field, operand, false)?, alone),
            "$in" => {
                let Value::Array(values) = operand else {
                    return Err(refuse(ACL_ROWS, "`$in` needs a list"));
                };
                if values.is_empty() {
                    return Err(refuse(ACL_ROWS, "`$in` needs at least one value"));
                }
                let any = values
                    .iter()
                    .map(|v| equals(field, v, false))
                    .collect::<Result<Vec<_>, _>>()?;
                group(any, " OR ", alone)
            }
            "$exists" => match operand {
                Value::Bool(true) => format!("_exists_:{field}"),
                Value::Bool(false) => negate(&format!("_exists_:{field}"), alone),
                _ => return Err(refuse(ACL_ROWS, "`$exists` needs true or false")),
            },
            other => return Err(unsupported(other)),
        });
    }
    Ok(group(clauses, " AND ", bare))
}

/// `NOT clause`, in parentheses unless the caller adds them: Lucene reads a bare `NOT a OR b`
/// as "b and not a", and a parenthesised pure negation as "everything but a".
fn negate(clause: &str, bare: bool) -> String {
    if bare {
        format!("NOT {clause}")
    } else {
        format!("(NOT {clause})")
    }
}

/// `field:"value"` for a scalar (`null`: the field holds nothing).
fn equals(field: &str, value: &Value, bare: bool) -> Result<String, UserQueryError> {
    match value {
        Value::String(text) => Ok(phrase(field, text)),
        Value::Number(n) => Ok(phrase(field, &n.to_string())),
        Value::Bool(b) => Ok(phrase(field, &b.to_string())),
        Value::Null => Ok(negate(&format!("_exists_:{field}"), bare)),
        _ => Err(refuse(
            ACL_ROWS,
            format!(
                "the value compared with {} must be a string, a number, a boolean or null",
                crate::echo::Quoted(field)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn q(pairs: &[(&str, &str)], acl: Option<&str>, supported: &[&str]) -> Option<String> {
        translate(&params(pairs), acl, supported).unwrap().q
    }

    #[test]
    fn paging_defaults_bounds_and_division() {
        let search = translate(&[], None, &[]).unwrap();
        assert_eq!((search.per_page, search.page, search.q), (25, 0, None));
        let search = translate(&params(&[("_l", "10"), ("_sk", "35")]), None, &[]).unwrap();
        assert_eq!((search.per_page, search.page), (10, 3));
        assert_eq!(
            search.to_query(),
            params(&[("search_engine", "v3"), ("per_page", "10"), ("page", "3")])
        );
        for bad in ["0", "101", "-1", "x", ""] {
            let err = translate(&params(&[("_l", bad)]), None, &[]).unwrap_err();
            assert_eq!(err.parameter, "_l", "{bad}");
        }
        for bad in ["-5", "2147483648", "4294967295", "4294967296", "1e3"] {
            let err = translate(&params(&[("_sk", bad)]), None, &[]).unwrap_err();
            assert_eq!(err.parameter, "_sk", "{bad}");
        }
        let search =
            translate(&params(&[("_l", "100"), ("_sk", "2147483647")]), None, &[]).unwrap();
        assert_eq!(search.page, 21_474_836);
        let err = translate(&params(&[("_l", "5"), ("_l", "6")]), None, &[]).unwrap_err();
        assert_eq!(err.parameter, "_l");
    }

    #[test]
    fn each_field_filter() {
        assert_eq!(
            q(&[("email", "a@b.c")], None, &[]).unwrap(),
            r#"email:"a@b.c""#
        );
        assert_eq!(
            q(&[("nickname", "Jo \"J\" Doe")], None, &[]).unwrap(),
            r#"nickname:"Jo \"J\" Doe""#
        );
        assert_eq!(
            q(&[("username", "jo*")], None, &[]).unwrap(),
            "username:jo*"
        );
        assert_eq!(
            q(&[("email", "a b+(c)*")], None, &[]).unwrap(),
            r"email:a\ b\+\(c\)*"
        );
        assert_eq!(q(&[("email", "")], None, &[]), None);
        assert_eq!(
            q(&[("connection", "")], None, &["A"]).unwrap(),
            r#"(identities.connection:"A")"#
        );
        assert_eq!(
            q(&[("app_metadata.groups", "admin")], None, &[]).unwrap(),
            r#"app_metadata.groups:"admin""#
        );
        assert_eq!(
            q(&[("connection", "A")], None, &["A", "B"]).unwrap(),
            r#"(identities.connection:"A")"#
        );
        assert_eq!(
            q(&[], None, &["A", "B"]).unwrap(),
            r#"(identities.connection:"A" OR identities.connection:"B")"#
        );
    }

    #[test]
    fn filters_combine_in_the_order_of_the_spec() {
        let pairs = [
            ("connection", "B"),
            ("app_metadata.tier", "gold"),
            ("username", "u"),
            ("app_metadata.groups", "admin"),
            ("nickname", "n*"),
            ("email", "e@x.io"),
            ("connection", "A"),
        ];
        assert_eq!(
            q(&pairs, Some(r#"{"app_metadata.team": "red"}"#), &["A", "B"]).unwrap(),
            r#"email:"e@x.io" AND nickname:n* AND username:"u" AND app_metadata.tier:"gold" AND app_metadata.groups:"admin" AND (app_metadata.team:"red") AND (identities.connection:"B" OR identities.connection:"A")"#
        );
    }

    #[test]
    fn unsupported_connections_and_bad_field_names_are_refused_by_name() {
        let err = translate(&params(&[("connection", "C")]), None, &["A"]).unwrap_err();
        assert_eq!(err.parameter, "connection");
        assert_eq!(
            q(&[("connection", "C")], None, &[]).unwrap(),
            r#"(identities.connection:"C")"#
        );
        for bad in [
            "app_metadata.",
            "app_metadata.a b",
            "app_metadata.x:y",
            "app_metadata.a\"",
        ] {
            let err = translate(&params(&[(bad, "v")]), None, &[]).unwrap_err();
            assert_eq!(err.parameter, bad);
        }
        let err = translate(&[], Some(r#"{"a:b": 1}"#), &[]).unwrap_err();
        assert_eq!(err.parameter, "acl_rows");
        let err = translate(&[], Some(r#"{"_exists_": "x"}"#), &[]).unwrap_err();
        assert_eq!(err.parameter, "acl_rows");
    }

    #[test]
    fn acl_rows_operators() {
        let acl = |text: &str| acl_clause(text).unwrap().unwrap();
        assert_eq!(acl(r#"{"a": "x"}"#), r#"a:"x""#);
        assert_eq!(acl(r#"{"a": 1, "b": true}"#), r#"a:"1" AND b:"true""#);
        assert_eq!(acl(r#"{"a": {"$eq": "x"}}"#), r#"a:"x""#);
        assert_eq!(acl(r#"{"a": {"$ne": "x"}}"#), r#"NOT a:"x""#);
        assert_eq!(acl(r#"{"a": {"$in": ["x", "y"]}}"#), r#"a:"x" OR a:"y""#);
        assert_eq!(acl(r#"{"a": {"$exists": true}}"#), "_exists_:a");
        assert_eq!(acl(r#"{"a": {"$exists": false}}"#), "NOT _exists_:a");
        assert_eq!(acl(r#"{"a": null}"#), "NOT _exists_:a");
        assert_eq!(
            acl(r#"{"a": {"$ne": "x", "$exists": true}, "b": null}"#),
            r#"(_exists_:a AND (NOT a:"x")) AND (NOT _exists_:b)"#
        );
        assert_eq!(
            acl(r#"{"$or": [{"a": "x"}, {"$and": [{"b": "y"}, {"c": {"$ne": "z"}}]}]}"#),
            r#"a:"x" OR (b:"y" AND (NOT c:"z"))"#
        );
        assert_eq!(acl_clause("{}").unwrap(), None);
        for bad in [
            "[]",
            "nope",
            r#"{"a": {"$regex": "x"}}"#,
            r#"{"$nor": []}"#,
            r#"{"$or": []}"#,
            r#"{"$or": {}}"#,
            r#"{"a": {"$in": []}}"#,
            r#"{"a": {"$in": "x"}}"#,
            r#"{"a": {"$exists": 1}}"#,
            r#"{"a": [1]}"#,
            r#"{"a": {"b": 1}}"#,
            r#"{"a": {"$eq": {"b": 1}}}"#,
            r#"{"$and": [{}]}"#,
        ] {
            let err = acl_clause(bad).unwrap_err();
            assert_eq!(err.parameter, "acl_rows", "{bad}");
        }
        let deep = format!(
            "{}{}{}",
            r#"{"$and":["#.repeat(40),
            r#"{"a":1}"#,
            "]}".repeat(40)
        );
        assert!(acl_clause(&deep).is_err());
    }

    mod structure {
        //! Arbitrary input through every filter: the query always parses (with the emulator's
        //! independent Lucene parser) into exactly the intended clauses.
        use auth0_emulator::lucene::{GlobPart, Pattern, Query, parse};
        use proptest::prelude::*;

        use super::super::*;

        fn term(field: &str, value: &str) -> Query {
            Query::Term {
                field: Some(field.to_owned()),
                value: Pattern::Exact(value.to_owned()),
            }
        }

        /// What `field_clause` must parse to.
        fn field_query(field: &str, value: &str) -> Query {
            match value.strip_suffix('*') {
                None => term(field, value),
                Some(prefix) => {
                    let mut parts: Vec<GlobPart> = prefix.chars().map(GlobPart::Literal).collect();
                    parts.push(GlobPart::AnyRun);
                    Query::Term {
                        field: Some(field.to_owned()),
                        value: Pattern::Glob(parts),
                    }
                }
            }
        }

        fn field_name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_]{1,8}(\\.[A-Za-z0-9_]{1,8}){0,2}"
                .prop_filter("not a Lucene word", |f| valid_field(f))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn every_filter_keeps_its_structure(
                email in "\\PC{1,12}",
                nickname in "\\PC{1,12}\\*?",
                username in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
                path in field_name(),
                meta in any::<String>(),
                acl_field in field_name(),
                acl_values in proptest::collection::vec(any::<String>(), 1..4),
                connection in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
            ) {
                let field = format!("app_metadata.{path}");
                let pairs = vec![
                    ("email".to_owned(), email.clone()),
                    ("nickname".to_owned(), nickname.clone()),
                    ("username".to_owned(), username.clone()),
                    (field.clone(), meta.clone()),
                    ("connection".to_owned(), connection.clone()),
                ];
                let acl = serde_json::json!({ acl_field.clone(): {"$in": acl_values} }).to_string();
                let search = translate(&pairs, Some(&acl), &[]).unwrap();
                let q = search.q.unwrap();
                let parsed = parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
                let any: Vec<Query> = acl_values.iter().map(|v| term(&acl_field, v)).collect();
                let acl_query = if any.len() == 1 { any[0].clone() } else { Query::Or(any) };
                let expected = Query::And(vec![
                    field_query("email", &email),
                    field_query("nickname", &nickname),
                    field_query("username", &username),
                    term(&field, &meta),
                    acl_query,
                    term("identities.connection", &connection),
                ]);
                prop_assert_eq!(parsed, expected, "{}", q);
            }

            #[test]
            fn acl_negations_and_existence_keep_their_structure(
                a in field_name(),
                b in field_name(),
                x in any::<String>(),
                y in any::<String>(),
            ) {
                let acl = serde_json::json!({"$or": [{a.clone(): {"$ne": x}}, {"$and": [{b.clone(): y}, {a.clone(): {"$exists": true}}]}]}).to_string();
                let q = format!("({})", acl_clause(&acl).unwrap().unwrap());
                let parsed = parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
                let expected = Query::Or(vec![
                    Query::Not(Box::new(term(&a, &x))),
                    Query::And(vec![term(&b, &y), Query::Exists(a.clone())]),
                ]);
                prop_assert_eq!(parsed, expected, "{}", q);
            }
        }
    }
}

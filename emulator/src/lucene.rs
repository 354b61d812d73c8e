//! The subset of Lucene query syntax that Auth0's user search v3 accepts in `GET /api/v2/users?q=`
//! (wire reference §2.4), parsed into a [`Query`] and evaluated over the Management API's JSON form of a
//! user.
//!
//! Supported: `field:"phrase"`, `field:term`, escaped characters (`name:John\ Doe`), `*` and `?`
//! wildcards (a leading-`*` literal needs 3 characters, as Auth0 requires), `AND` / `OR` / `NOT` (also
//! `&&`, `||`, `!`, `+`, `-`), parentheses, field groups (`name:("a" OR "b")`), ranges
//! (`logins_count:[1 TO 5}`, `*` for an open end), `_exists_:field`, dotted paths into metadata that
//! match any element of an array on the way, `email.domain`, `identities.connection`, and Auth0's case
//! rules (the normalized fields `email`, `name`, `given_name`, `family_name` and `nickname` compare
//! case-insensitively, everything else case-sensitively). Wildcards and ranges on `user_metadata` are
//! refused, as Auth0 documents.
//!
//! Where Lucene and Auth0 leave a choice open, this module guesses (tag [INF] in the reference):
//! - a quoted or unquoted value matches a field's whole value (Auth0 calls quotes an "exact match");
//!   a term without a field also matches a single word of a root text field;
//! - adjacent clauses without an operator are OR-ed (Lucene's default operator), and `AND` binds
//!   tighter than `OR`;
//! - boosts (`^2`) are accepted and ignored; fuzzy and proximity searches (`~`) and regular
//!   expressions are refused as unparsable.

use serde_json::Value;
use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every clause must match.
    And(Vec<Query>),
    /// At least one clause must match.
    Or(Vec<Query>),
    /// The clause must not match.
    Not(Box<Query>),
    /// A value, in a field or (without one) in any root text field.
    Term {
        field: Option<String>,
        value: Pattern,
    },
    /// `_exists_:field`: the field holds an indexed value.
    Exists(String),
    /// `field:[lower TO upper]`.
    Range {
        field: String,
        lower: Bound,
        upper: Bound,
    },
}

/// A value to compare with, exact or with wildcards.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// The whole value, compared literally.
    Exact(String),
    /// A glob: `*` matches any run of characters, `?` exactly one.
    Glob(Vec<GlobPart>),
}

/// One piece of a glob pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobPart {
    Literal(char),
    AnyRun,
    AnyOne,
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Unbounded,
    Inclusive(String),
    Exclusive(String),
}

/// Why a query could not be parsed; the text goes into Auth0's 400 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn error<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

/// The fields Auth0 normalizes, whose search values are case-insensitive.
const NORMALIZED_FIELDS: [&str; 5] = ["email", "name", "given_name", "family_name", "nickname"];

/// Root fields a term without a field name is compared with. [INF]: Auth0 says only that such a term
/// does not match metadata.
const DEFAULT_FIELDS: [&str; 8] = [
    "email",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "username",
    "user_id",
    "phone_number",
];

/// Parses `q`. An empty or blank query is an error, as there is nothing to search for; callers treat
/// an absent `q` as "every user" before calling this.
pub fn parse(q: &str) -> Result<Query, ParseError> {
    let tokens = tokenize(q)?;
    if tokens.is_empty() {
        return error("empty query");
    }
    let mut parser = Parser { tokens, pos: 0 };
    let query = parser.parse_or(None)?;
    if let Some(token) = parser.peek() {
        return error(format!("unexpected {}", token.describe()));
    }
    Ok(query)
}

impl Query {
    /// Whether `user` (the Management API's JSON form of a user) matches.
    pub fn matches(&self, user: &Value) -> bool {
        match self {
            Query::And(clauses) => clauses.iter().all(|c| c.matches(user)),
            Query::Or(clauses) => clauses.iter().any(|c| c.matches(user)),
            Query::Not(clause) => !clause.matches(user),
            Query::Term {
                field: Some(field),
                value,
            } => {
                let fold = is_normalized(field);
                field_values(user, field)
                    .iter()
                    .any(|v| value.matches(v, fold))
            }
            Query::Term { field: None, value } => DEFAULT_FIELDS.iter().any(|field| {
                let fold = is_normalized(field);
                field_values(user, field).iter().any(|v| {
                    value.matches(v, fold) || v.split_whitespace().any(|w| value.matches(w, fold))
                })
            }),
            Query::Exists(field) => field_nodes(user, field).into_iter().any(is_indexed),
            Query::Range {
                field,
                lower,
                upper,
            } => field_values(user, field)
                .iter()
                .any(|v| in_range(v, lower, upper)),
        }
    }
}

impl Pattern {
    fn matches(&self, value: &str, fold_case: bool) -> bool {
        match self {
            Pattern::Exact(expected) if fold_case => {
                expected.to_lowercase() == value.to_lowercase()
            }
            Pattern::Exact(expected) => expected == value,
            Pattern::Glob(parts) => {
                let value: Vec<char> = if fold_case {
                    value.to_lowercase().chars().collect()
                } else {
                    value.chars().collect()
                };
                let parts: Vec<GlobPart> = if fold_case {
                    parts
                        .iter()
                        .flat_map(|p| match p {
                            GlobPart::Literal(c) => {
                                c.to_lowercase().map(GlobPart::Literal).collect::<Vec<_>>()
                            }
                            other => vec![other.clone()],
                        })
                        .collect()
                } else {
                    parts.clone()
                };
                glob_match(&parts, &value)
            }
        }
    }
}

/// Iterative glob matching with backtracking on the last `*`.
fn glob_match(pattern: &[GlobPart], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(GlobPart::AnyOne) => {
                p += 1;
                t += 1;
            }
            Some(GlobPart::Literal(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(GlobPart::AnyRun) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|part| *part == GlobPart::AnyRun)
}

fn in_range(value: &str, lower: &Bound, upper: &Bound) -> bool {
    let cmp = |bound: &str| -> Option<std::cmp::Ordering> {
        match (value.parse::<f64>(), bound.parse::<f64>()) {
            (Ok(v), Ok(b)) => v.partial_cmp(&b),
            _ => Some(value.cmp(bound)),
        }
    };
    let above = match lower {
        Bound::Unbounded => true,
        Bound::Inclusive(b) => cmp(b).is_some_and(|o| o.is_ge()),
        Bound::Exclusive(b) => cmp(b).is_some_and(|o| o.is_gt()),
    };
    let below = match upper {
        Bound::Unbounded => true,
        Bound::Inclusive(b) => cmp(b).is_some_and(|o| o.is_le()),
        Bound::Exclusive(b) => cmp(b).is_some_and(|o| o.is_lt()),
    };
    above && below
}

fn is_normalized(field: &str) -> bool {
    NORMALIZED_FIELDS.contains(&field) || field == "email.domain"
}

/// The indexed scalar values of a dotted path, as strings. A path crosses arrays by matching any of
/// their elements; `null`, empty arrays and empty objects are not indexed (Auth0 documents this).
pub fn field_values(user: &Value, field: &str) -> Vec<String> {
    if field == "email.domain" {
        return user
            .get("email")
            .and_then(Value::as_str)
            .and_then(|email| email.rsplit_once('@'))
            .map(|(_, domain)| vec![domain.to_string()])
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    for value in field_nodes(user, field) {
        collect_scalars(value, &mut out);
    }
    out
}

/// The JSON values a dotted path reaches, crossing arrays.
fn field_nodes<'a>(user: &'a Value, field: &str) -> Vec<&'a Value> {
    let mut current: Vec<&Value> = vec![user];
    for segment in field.split('.') {
        let mut next = Vec::new();
        for value in current {
            collect_member(value, segment, &mut next);
        }
        current = next;
    }
    current
}

/// Whether a value holds anything the search index would keep.
fn is_indexed(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => items.iter().any(is_indexed),
        Value::Object(map) => map.values().any(is_indexed),
        _ => true,
    }
}

fn collect_member<'a>(value: &'a Value, segment: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(segment) {
                out.push(v);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_member(item, segment, out);
            }
        }
        _ => {}
    }
}

fn collect_scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect_scalars(v, out)),
        Value::Null | Value::Object(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

/// A character of a term and whether it was escaped (an escaped `*` is a literal star).
type TermChar = (char, bool);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Colon,
    And,
    Or,
    Not,
    Required,
    RangeOpen(bool),
    RangeClose(bool),
    Phrase(String),
    Term(Vec<TermChar>),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "'('".into(),
            Token::RParen => "')'".into(),
            Token::Colon => "':'".into(),
            Token::And => "AND".into(),
            Token::Or => "OR".into(),
            Token::Not => "NOT".into(),
            Token::Required => "'+'".into(),
            Token::RangeOpen(_) => "range start".into(),
            Token::RangeClose(_) => "range end".into(),
            Token::Phrase(p) => format!("\"{p}\""),
            Token::Term(t) => format!("'{}'", t.iter().map(|(c, _)| c).collect::<String>()),
        }
    }
}

/// Characters that end a term unless escaped (Lucene's special characters, minus those allowed
/// inside a term: `-`, `+`, `!` after its first character, `*`, `?`, `/`, `.` and `@`).
fn ends_term(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ':' | '"' | '[' | ']' | '{' | '}' | '^' | '~')
}

fn tokenize(q: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = q.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ':' => {
                tokens.push(Token::Colon);
                i += 1;
            }
            '[' | '{' => {
                tokens.push(Token::RangeOpen(c == '['));
                i += 1;
            }
            ']' | '}' => {
                tokens.push(Token::RangeClose(c == ']'));
                i += 1;
            }
            '+' => {
                tokens.push(Token::Required);
                i += 1;
            }
            '-' | '!' => {
                tokens.push(Token::Not);
                i += 1;
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if chars.get(i + 1) == Some(&'|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '^' => {
                // A boost: `^2` or `^1.5`; it changes scores, never matches, so it is dropped.
                i += 1;
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                if i == start {
                    return error("a boost '^' needs a number");
                }
            }
            '~' => return error("fuzzy and proximity searches ('~') are not supported"),
            '"' => {
                i += 1;
                let mut phrase = String::new();
                loop {
                    match chars.get(i) {
                        None => return error("unterminated quoted string"),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => match chars.get(i + 1) {
                            Some(&escaped) => {
                                phrase.push(escaped);
                                i += 2;
                            }
                            None => return error("a trailing '\\' escapes nothing"),
                        },
                        Some(&other) => {
                            phrase.push(other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Phrase(phrase));
            }
            _ => {
                let mut term: Vec<TermChar> = Vec::new();
                while i < chars.len() && !ends_term(chars[i]) {
                    if chars[i] == '\\' {
                        match chars.get(i + 1) {
                            Some(&escaped) => {
                                term.push((escaped, true));
                                i += 2;
                            }
                            None => return error("a trailing '\\' escapes nothing"),
                        }
                    } else {
                        term.push((chars[i], false));
                        i += 1;
                    }
                }
                let plain: String = term.iter().map(|(c, _)| c).collect();
                let escaped = term.iter().any(|(_, e)| *e);
                tokens.push(match plain.as_str() {
                    "AND" if !escaped => Token::And,
                    "OR" if !escaped => Token::Or,
                    "NOT" if !escaped => Token::Not,
                    _ => Token::Term(term),
                });
            }
        }
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------
// Parser: or := and (OR and)* ; and := unary ((AND)? unary)* with implicit adjacency OR-ed;
// unary := (NOT | '+') unary | primary ; primary := '(' or ')' | field ':' value | value.

/// How a clause takes part in an OR list (Lucene's `BooleanClause.Occur`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occur {
    Should,
    Must,
    MustNot,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn starts_clause(token: &Token) -> bool {
        matches!(
            token,
            Token::LParen
                | Token::Not
                | Token::Required
                | Token::Phrase(_)
                | Token::Term(_)
                | Token::RangeOpen(_)
        )
    }

    /// `field` is the field of an enclosing group, `name:( ... )`.
    ///
    /// The clauses of an OR list follow Lucene's boolean semantics: a `NOT` (or `-`) clause is
    /// prohibited whatever joins it (`a NOT b` and `a OR NOT b` both mean a AND NOT b), and once a
    /// clause is required with `+`, the optional ones no longer decide the match.
    fn parse_or(&mut self, field: Option<&str>) -> Result<Query, ParseError> {
        let mut clauses = vec![self.parse_and(field)?];
        loop {
            match self.peek() {
                Some(Token::Or) => {
                    self.pos += 1;
                    clauses.push(self.parse_and(field)?);
                }
                // Lucene's default operator: adjacent clauses are OR-ed.
                Some(token) if Self::starts_clause(token) => clauses.push(self.parse_and(field)?),
                _ => break,
            }
        }
        if clauses.len() == 1 {
            let (_, query) = clauses.remove(0);
            return Ok(query);
        }
        let mut should = Vec::new();
        let mut must = Vec::new();
        for (occur, query) in clauses {
            match occur {
                Occur::Should => should.push(query),
                Occur::Must | Occur::MustNot => must.push(query),
            }
        }
        let has_required = must.iter().any(|q| !matches!(q, Query::Not(_)));
        if !has_required && !should.is_empty() {
            let any = if should.len() == 1 {
                should.remove(0)
            } else {
                Query::Or(should)
            };
            must.insert(0, any);
        }
        Ok(if must.len() == 1 {
            must.remove(0)
        } else {
            Query::And(must)
        })
    }

    fn parse_and(&mut self, field: Option<&str>) -> Result<(Occur, Query), ParseError> {
        let mut clauses = vec![self.parse_unary(field)?];
        while let Some(Token::And) = self.peek() {
            self.pos += 1;
            clauses.push(self.parse_unary(field)?);
        }
        Ok(if clauses.len() == 1 {
            clauses.remove(0)
        } else {
            (
                Occur::Should,
                Query::And(clauses.into_iter().map(|(_, q)| q).collect()),
            )
        })
    }

    fn parse_unary(&mut self, field: Option<&str>) -> Result<(Occur, Query), ParseError> {
        match self.peek() {
            Some(Token::Not) => {
                self.pos += 1;
                let (_, inner) = self.parse_unary(field)?;
                Ok((Occur::MustNot, Query::Not(Box::new(inner))))
            }
            Some(Token::Required) => {
                self.pos += 1;
                let (_, inner) = self.parse_unary(field)?;
                Ok((Occur::Must, inner))
            }
            _ => Ok((Occur::Should, self.parse_primary(field)?)),
        }
    }

    fn parse_primary(&mut self, field: Option<&str>) -> Result<Query, ParseError> {
        match self.next() {
            None => error("the query ends where a term was expected"),
            Some(Token::LParen) => {
                let inner = self.parse_or(field)?;
                match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    _ => error("missing ')'"),
                }
            }
            Some(Token::Term(term)) if field.is_none() && self.peek() == Some(&Token::Colon) => {
                self.pos += 1;
                let name: String = term.iter().map(|(c, _)| c).collect();
                if name.is_empty() {
                    return error("empty field name");
                }
                self.parse_field_value(&name)
            }
            Some(Token::Phrase(phrase)) => Ok(Query::Term {
                field: field.map(str::to_string),
                value: Pattern::Exact(phrase),
            }),
            Some(Token::Term(term)) => term_query(field, &term),
            Some(Token::RangeOpen(inclusive)) => match field {
                Some(field) => self.parse_range(field, inclusive),
                None => error("a range needs a field"),
            },
            Some(other) => error(format!("unexpected {}", other.describe())),
        }
    }

    fn parse_field_value(&mut self, field: &str) -> Result<Query, ParseError> {
        if field == "_exists_" {
            return match self.next() {
                Some(Token::Term(term)) => Ok(Query::Exists(term.iter().map(|(c, _)| c).collect())),
                Some(Token::Phrase(name)) => Ok(Query::Exists(name)),
                _ => error("_exists_ needs a field name"),
            };
        }
        match self.peek() {
            Some(Token::LParen) => {
                self.pos += 1;
                let inner = self.parse_or(Some(field))?;
                match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    _ => error("missing ')'"),
                }
            }
            Some(Token::Phrase(_)) | Some(Token::Term(_)) | Some(Token::RangeOpen(_)) => {
                self.parse_primary(Some(field))
            }
            Some(Token::Not) => {
                // `field:-value` reads as a negative number or a literal dash in Lucene; Auth0's
                // parser would search for the literal. Treat the dash as part of the value.
                self.pos += 1;
                match self.next() {
                    Some(Token::Term(mut term)) => {
                        term.insert(0, ('-', true));
                        term_query(Some(field), &term)
                    }
                    _ => error(format!("field '{field}' has no value")),
                }
            }
            _ => error(format!("field '{field}' has no value")),
        }
    }

    fn parse_range(&mut self, field: &str, lower_inclusive: bool) -> Result<Query, ParseError> {
        if is_user_metadata(field) {
            return error("range searches are not available on user_metadata fields");
        }
        let lower = self.range_end()?;
        match self.next() {
            Some(Token::Term(t)) if t.iter().map(|(c, _)| c).collect::<String>() == "TO" => {}
            _ => return error("a range needs 'TO'"),
        }
        let upper = self.range_end()?;
        let upper_inclusive = match self.next() {
            Some(Token::RangeClose(inclusive)) => inclusive,
            _ => return error("unterminated range"),
        };
        let bound = |value: Option<String>, inclusive: bool| match value {
            None => Bound::Unbounded,
            Some(v) if inclusive => Bound::Inclusive(v),
            Some(v) => Bound::Exclusive(v),
        };
        Ok(Query::Range {
            field: field.to_string(),
            lower: bound(lower, lower_inclusive),
            upper: bound(upper, upper_inclusive),
        })
    }

    /// One end of a range: `None` for `*`.
    fn range_end(&mut self) -> Result<Option<String>, ParseError> {
        match self.next() {
            Some(Token::Term(term)) => {
                if term == [('*', false)] {
                    Ok(None)
                } else {
                    Ok(Some(term.iter().map(|(c, _)| c).collect()))
                }
            }
            Some(Token::Phrase(p)) => Ok(Some(p)),
            _ => error("a range needs two ends"),
        }
    }
}

fn is_user_metadata(field: &str) -> bool {
    field == "user_metadata" || field.starts_with("user_metadata.")
}

/// A term becomes an exact value or, with an unescaped `*` or `?`, a glob.
fn term_query(field: Option<&str>, term: &[TermChar]) -> Result<Query, ParseError> {
    let wild = term.iter().any(|(c, e)| !e && (*c == '*' || *c == '?'));
    if !wild {
        return Ok(Query::Term {
            field: field.map(str::to_string),
            value: Pattern::Exact(term.iter().map(|(c, _)| c).collect()),
        });
    }
    if let Some(field) = field
        && is_user_metadata(field)
    {
        return error("wildcard searches are not available on user_metadata fields");
    }
    let parts: Vec<GlobPart> = term
        .iter()
        .map(|&(c, escaped)| match (c, escaped) {
            ('*', false) => GlobPart::AnyRun,
            ('?', false) => GlobPart::AnyOne,
            (c, _) => GlobPart::Literal(c),
        })
        .collect();
    // Auth0: "For suffix matching, literals must have 3 characters or more" (`name:*usa`, not
    // `name:*sa`). A lone `*` (any value) is not a suffix match.
    if parts.first() == Some(&GlobPart::AnyRun) && parts.len() > 1 {
        let literal = parts
            .iter()
            .filter(|p| matches!(p, GlobPart::Literal(_)))
            .count();
        if literal < 3 {
            return error("for suffix matching, literals must have 3 characters or more");
        }
    }
    Ok(Query::Term {
        field: field.map(str::to_string),
        value: Pattern::Glob(parts),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jane() -> Value {
        json!({
            "user_id": "auth0|0123456789abcdef01234567",
            "email": "Jane.Doe@Example.com",
            "name": "Jane Doe",
            "nickname": "jane",
            "username": "JaneD",
            "logins_count": 12,
            "blocked": false,
            "identities": [
                {"connection": "Username-Password-Authentication", "provider": "auth0", "isSocial": false}
            ],
            "app_metadata": {
                "groups": ["admins", "Editors"],
                "plan": {"tier": "gold"},
                "addresses": [{"city": "Paris"}, {"city": "Rome"}],
                "empty": [],
                "nothing": null,
                "path/with:colon": "x",
                "score": 3.5,
                "flag": true
            },
            "user_metadata": {"color": "Blue", "cities": ["Oslo"]}
        })
    }

    fn john() -> Value {
        json!({
            "user_id": "auth0|john",
            "email": "john@other.org",
            "name": "John Smith",
            "nickname": "johnny",
            "logins_count": 150,
            "blocked": true,
            "identities": [{"connection": "Partners", "provider": "auth0", "isSocial": false}],
            "app_metadata": {"groups": ["users"]}
        })
    }

    fn check(q: &str) -> (bool, bool) {
        let query = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        (query.matches(&jane()), query.matches(&john()))
    }

    #[test]
    fn matches_the_documented_forms() {
        let table: &[(&str, bool, bool)] = &[
            (r#"email:"jane.doe@example.com""#, true, false),
            (r#"email:"JANE.DOE@EXAMPLE.COM""#, true, false),
            ("email:jane.doe@example.com", true, false),
            (r#"name:"jane doe""#, true, false),
            (r"name:Jane\ Doe", true, false),
            ("name:jane", false, false),
            ("nickname:JANE", true, false),
            ("username:JaneD", true, false),
            // username is not a normalized field: case-sensitive
            ("username:janed", false, false),
            ("email:jane*", true, false),
            ("email:JO*", false, true),
            ("name:*smith", false, true),
            ("name:j*", true, true),
            ("name:J?hn*", false, true),
            ("email.domain:example.com", true, false),
            ("email.domain:EXAMPLE.COM", true, false),
            (
                r#"identities.connection:"Username-Password-Authentication""#,
                true,
                false,
            ),
            ("identities.connection:Partners", false, true),
            (r#"app_metadata.groups:"admins""#, true, false),
            // metadata is case-sensitive
            (r#"app_metadata.groups:"editors""#, false, false),
            (r#"app_metadata.groups:"Editors""#, true, false),
            (r#"app_metadata.plan.tier:"gold""#, true, false),
            (r#"app_metadata.addresses.city:"Rome""#, true, false),
            ("app_metadata.score:3.5", true, false),
            ("app_metadata.flag:true", true, false),
            (r"app_metadata.path\/with\:colon:x", true, false),
            (r#"user_metadata.color:"Blue""#, true, false),
            (r#"user_metadata.cities:"Oslo""#, true, false),
            ("blocked:true", false, true),
            ("logins_count:12", true, false),
            ("logins_count:[10 TO 20]", true, false),
            ("logins_count:[12 TO 20]", true, false),
            ("logins_count:{12 TO 20]", false, false),
            ("logins_count:{100 TO *]", false, true),
            ("logins_count:[* TO 150}", true, false),
            ("_exists_:app_metadata.plan", true, false),
            ("_exists_:app_metadata.empty", false, false),
            ("_exists_:app_metadata.nothing", false, false),
            ("_exists_:username", true, false),
            ("NOT _exists_:username", false, true),
            (r#"name:("Jane Doe" OR "John Smith")"#, true, true),
            (
                r#"app_metadata.groups:("admins" AND "Editors")"#,
                true,
                false,
            ),
            (
                r#"email:"jane.doe@example.com" OR email:"john@other.org""#,
                true,
                true,
            ),
            (r#"email:jane* AND blocked:false"#, true, false),
            (r#"email:jane* && blocked:true"#, false, false),
            (r#"NOT blocked:true"#, true, false),
            (r#"-blocked:true"#, true, false),
            (r#"!blocked:true"#, true, false),
            (r#"+blocked:true"#, false, true),
            (r#"blocked:true || logins_count:12"#, true, true),
            // Lucene: a prohibited clause is excluded whatever joins it; `+` makes a clause required
            (r#"name:j* NOT blocked:true"#, true, false),
            (r#"name:j* OR NOT blocked:true"#, true, false),
            (r#"+name:j* nickname:nobody"#, true, true),
            (r#"nickname:jane +blocked:true"#, false, true),
            (
                r#"(app_metadata.groups:"admins" OR app_metadata.groups:"users") AND NOT blocked:true"#,
                true,
                false,
            ),
            (
                r#"(identities.connection:"Partners" OR identities.connection:"Other")"#,
                false,
                true,
            ),
            // a term without a field: root text fields, whole value or one word, not metadata
            ("johnny", false, true),
            ("Smith", false, true),
            ("admins", false, false),
            // adjacency is OR
            ("nickname:jane nickname:johnny", true, true),
            // boosts are ignored
            ("nickname:jane^2", true, false),
            // an escaped star is a literal
            (r"name:Jane\*", false, false),
            // escaped quote inside a phrase
            (r#"name:"Jane \"Doe""#, false, false),
        ];
        for (q, expect_jane, expect_john) in table {
            assert_eq!(
                check(q),
                (*expect_jane, *expect_john),
                "query {q} (jane, john)"
            );
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // = blocked:true OR (nickname:jane AND logins_count:99)
        assert_eq!(
            check("blocked:true OR nickname:jane AND logins_count:99"),
            (false, true)
        );
        assert_eq!(
            check("(blocked:true OR nickname:jane) AND logins_count:12"),
            (true, false)
        );
    }

    #[test]
    fn parses_to_the_expected_tree() {
        assert_eq!(
            parse(r#"email:"a@b.c" AND NOT (x:1 OR y:2*)"#).unwrap(),
            Query::And(vec![
                Query::Term {
                    field: Some("email".into()),
                    value: Pattern::Exact("a@b.c".into())
                },
                Query::Not(Box::new(Query::Or(vec![
                    Query::Term {
                        field: Some("x".into()),
                        value: Pattern::Exact("1".into())
                    },
                    Query::Term {
                        field: Some("y".into()),
                        value: Pattern::Glob(vec![GlobPart::Literal('2'), GlobPart::AnyRun])
                    },
                ])))
            ])
        );
    }

    #[test]
    fn refuses_unparsable_queries() {
        for q in [
            "",
            "   ",
            r#"email:"unterminated"#,
            "email:",
            "email:jane AND",
            "OR email:jane",
            "(email:jane",
            "email:jane)",
            "name:*sa",
            "user_metadata.color:Bl*",
            "user_metadata.age:[1 TO 5]",
            "logins_count:[1 5]",
            "logins_count:[1 TO 5",
            "name:jane~",
            "name:jane^",
            r"name:jane\",
            "_exists_:",
            "NOT",
            "()",
        ] {
            assert!(parse(q).is_err(), "{q:?} should not parse");
        }
    }

    #[test]
    fn suffix_literal_of_three_is_allowed() {
        assert!(parse("name:*usa").is_ok());
        assert!(parse("name:*").is_ok());
    }

    #[test]
    fn collects_values_across_arrays() {
        let user = jane();
        assert_eq!(
            field_values(&user, "app_metadata.addresses.city"),
            ["Paris", "Rome"]
        );
        assert_eq!(
            field_values(&user, "identities.connection"),
            ["Username-Password-Authentication"]
        );
        assert!(field_values(&user, "app_metadata.missing.deeper").is_empty());
        assert_eq!(field_values(&user, "email.domain"), ["Example.com"]);
    }
}

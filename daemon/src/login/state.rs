//! The login states of the authorization-code flow (SPEC §5): what `GET /authorize` issues (a
//! [`StateRecord`] with its PKCE verifier, nonce and binding), how a state is taken once, and
//! how its code is exchanged. `GET /authorize` and `GET /oauth/callback` (`http/authorize.rs`)
//! and the code exchange of `POST /oauth/token` (`http/token.rs`) share these rules, so neither
//! route file needs the other. Nothing here knows HTTP: the routes read the binding cookie's
//! values and set it; a refusal is a [`StateError`], which `http/error.rs` answers.
//!
//! | choice | why |
//! |---|---|
//! | the PKCE verifier, the nonce, generated states and binding secrets are 256 random bits in base64url (43 characters) | RFC 7636's minimum verifier length |
//! | the binding cookie is named after 96 bits of SHA-256(state) ([`binding_cookie_name`]) | one cookie per login, so tabs do not undo each other, without the cookie carrying the state |
//! | the record keeps the SHA-256 of the binding secret, compared in constant time | a leaked record logs nobody in |
//! | a binding is checked before the state is spent ([`take_state`]) | a request without it cannot spend another browser's login |
//! | the state is taken as read, atomically | a concurrent take wins, the other caller gets [`StateError::Unknown`] |
//! | a state of another client is consumed all the same | taking stays one step; Auth0's code is single-use too |
//! | a nonce mismatch is refused like a PKCE mismatch | both say the code does not come from this login |

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use url::Url;

use crate::actors::Actors;
use crate::actors::logins::CodeLogin;
use crate::actors::tokens::TokenError;
use crate::auth0::jwks::IdTokenError;
use crate::config::{ClientSettings, Settings};
use crate::store::{Session, StateRecord, StoreError, Timestamp};

/// Longest `state` a caller may choose (with `authorizeStateRequired`), in bytes.
pub const MAX_STATE_LEN: usize = 512;

/// Prefix of the login-binding cookies' names after `__Host-` (see [`binding_cookie_name`]).
pub const BINDING_COOKIE_PREFIX: &str = "auth0_client_login_";

/// The cookie-name prefix that browsers accept only with `Secure`, `Path=/` and no `Domain`.
pub const HOST_PREFIX: &str = "__Host-";

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE `S256` challenge of `verifier`: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The name of the cookie binding the login of `state` to the browser that started it: a fixed
/// prefix and 96 bits of SHA-256(state), so the cookie names a login without carrying its state.
/// A `Secure` cookie (`secure`: unless `server.insecureCookies`) also gets the `__Host-` prefix,
/// which browsers accept only from a secure origin, with `Path=/` and no `Domain`: no sibling or
/// parent domain can plant or shadow it.
pub fn binding_cookie_name(state: &str, secure: bool) -> String {
    let digest = Sha256::digest(state.as_bytes());
    format!(
        "{}{BINDING_COOKIE_PREFIX}{}",
        if secure { HOST_PREFIX } else { "" },
        URL_SAFE_NO_PAD.encode(&digest[..12])
    )
}

/// A login `GET /authorize` starts: its state record, and the secret of its binding cookie,
/// whose SHA-256 the record keeps.
pub struct NewLogin {
    pub record: StateRecord,
    /// 256 random bits, base64url: the binding cookie's value.
    pub binding_secret: String,
}

impl NewLogin {
    /// A login of `client` under `state`, returning to `redirect`, live for `ttl` from `now`;
    /// its PKCE verifier, nonce and binding secret fresh.
    pub fn issue(
        state: String,
        client: &str,
        redirect: Option<String>,
        ttl: Duration,
        now: Timestamp,
    ) -> Self {
        let binding_secret = random_token();
        let record = StateRecord {
            state,
            client: client.to_owned(),
            redirect,
            pkce_verifier: random_token(),
            nonce: random_token(),
            binding: URL_SAFE_NO_PAD.encode(Sha256::digest(binding_secret.as_bytes())),
            expires_at: now.saturating_add(ttl),
        };
        Self {
            record,
            binding_secret,
        }
    }
}

/// Whether a request presents the binding of a record, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    Valid,
    Missing,
    Mismatch,
}

/// Compares every non-empty value of the binding's cookie (a browser may send several with one
/// name: one planted under another path, say) with the hash `record` keeps, in constant time. A
/// record without a hash (an earlier version's) matches nothing.
pub fn binding_presented<'v>(
    record: &StateRecord,
    values: impl IntoIterator<Item = &'v str>,
) -> Presented {
    let expected = URL_SAFE_NO_PAD
        .decode(record.binding.as_bytes())
        .ok()
        .filter(|hash| hash.len() == 32);
    let mut found = Presented::Missing;
    for value in values.into_iter().filter(|value| !value.is_empty()) {
        let digest = Sha256::digest(value.as_bytes());
        if expected
            .as_deref()
            .is_some_and(|hash| bool::from(digest.as_slice().ct_eq(hash)))
        {
            return Presented::Valid;
        }
        found = Presented::Mismatch;
    }
    found
}

/// Whether `client`'s `redirectUrl` is this daemon's own `<SERVICE_PREFIX>/oauth/callback`
/// (standalone): its path ends with it, so a proxy may serve the daemon under a longer path.
pub fn is_own_callback(client: &ClientSettings, settings: &Settings) -> bool {
    // Starts with `/`, so a match ends on a whole path segment.
    let own = format!("{}/oauth/callback", settings.service_prefix);
    Url::parse(&client.redirect_url).is_ok_and(|url| url.path().ends_with(&own))
}

/// Where a state is presented, which decides whether its binding is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presentation {
    /// `GET /oauth/callback`, either branch: always (a browser is there, and it is this route's
    /// defence against login CSRF).
    Callback,
    /// The code exchange of `POST /oauth/token`: when the state's client has the daemon's own
    /// callback as `redirectUrl`.
    Exchange,
}

/// Why a state was not taken, or its code not exchanged.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No live record of the state (never issued, expired, or taken): 400.
    #[error("`state` is unknown, expired or already used: start the login again at /authorize")]
    Unknown,
    /// The route requires the login's binding and the request does not present it: 403, the
    /// state left for its owner.
    #[error("{}", unbound_message(*.route, *.presented, .client))]
    Unbound {
        route: Presentation,
        presented: Presented,
        /// The client the state was issued for.
        client: String,
    },
    /// The ID token's nonce is not the one `/authorize` sent: 403.
    #[error(
        "the ID token's nonce is not the one /authorize sent: the code does not come from the \
         login this `state` started"
    )]
    NonceMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The code exchange failed otherwise.
    #[error(transparent)]
    Login(#[from] TokenError),
}

fn unbound_message(route: Presentation, presented: Presented, client: &str) -> String {
    let why = unbound_why(presented);
    match route {
        Presentation::Callback => format!(
            "this browser did not start the login of this `state` ({why}): start again at \
             /authorize, on the same host as /oauth/callback"
        ),
        Presentation::Exchange => format!(
            "the login of this `state` is bound to the browser that started it ({why}), since \
             client `{client}` has this daemon's /oauth/callback as its redirectUrl: let the \
             browser finish it at /oauth/callback"
        ),
    }
}

fn unbound_why(presented: Presented) -> &'static str {
    match presented {
        Presented::Mismatch => "its login cookie does not match",
        _ => "its login cookie is missing",
    }
}

/// Takes (atomically, once) the live state record of `state`, presented on `route` with the
/// values of its binding cookie ([`binding_cookie_name`]) in `binding`. When the route requires
/// the login's binding (see [`Presentation`]), it is checked first: without it,
/// [`StateError::Unbound`] and the state is left for its owner.
pub async fn take_state<'v>(
    actors: &Actors,
    settings: &Settings,
    state: &str,
    route: Presentation,
    binding: impl IntoIterator<Item = &'v str>,
) -> Result<StateRecord, StateError> {
    if state.len() > MAX_STATE_LEN {
        return Err(StateError::Unknown);
    }
    let record = actors
        .sessions
        .get_state(state)
        .await?
        .filter(|record| record.is_live(actors.clock.now()))
        .ok_or(StateError::Unknown)?;
    let bound = match route {
        Presentation::Callback => true,
        Presentation::Exchange => settings
            .clients
            .get(&record.client)
            .is_none_or(|client| is_own_callback(client, settings)),
    };
    if bound {
        let presented = binding_presented(&record, binding);
        if presented != Presented::Valid {
            tracing::warn!(
                client = %record.client,
                ?route,
                why = unbound_why(presented),
                "a login's state presented without the binding of the browser that started it"
            );
            return Err(StateError::Unbound {
                route,
                presented,
                client: record.client,
            });
        }
    }
    if actors.sessions.take_state_if(&record).await? {
        Ok(record)
    } else {
        Err(StateError::Unknown)
    }
}

/// Exchanges `code` for the login `record` started, with the credentials of `client` (named
/// `client_name`), the same `redirect_uri` and the stored PKCE verifier; the ID token must carry
/// the stored nonce.
pub async fn exchange(
    actors: &Actors,
    client_name: &str,
    client: Arc<ClientSettings>,
    record: &StateRecord,
    code: String,
) -> Result<Session, StateError> {
    let login = CodeLogin {
        client: client_name.to_owned(),
        redirect_uri: client.redirect_url.clone(),
        settings: client,
        code: SecretString::from(code),
        code_verifier: SecretString::from(record.pkce_verifier.clone()),
        nonce: record.nonce.clone(),
    };
    match actors.logins.code(login).await {
        Ok(session) => {
            tracing::info!(
                client = %client_name,
                sub = %session.sub,
                "user logged in (authorization code)"
            );
            Ok(session)
        }
        Err(TokenError::IdToken(IdTokenError::NonceMismatch)) => {
            tracing::warn!(client = %client_name, "ID token nonce mismatch in a code exchange");
            Err(StateError::NonceMismatch)
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::http::extract::test_support;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_43_base64url_characters_and_differ() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a, random_token());
    }

    #[test]
    fn binding_cookies_are_named_after_the_state_without_carrying_it() {
        let name = binding_cookie_name("some-state", false);
        assert!(name.starts_with(BINDING_COOKIE_PREFIX));
        assert_eq!(name.len(), BINDING_COOKIE_PREFIX.len() + 16);
        assert!(!name.contains("some-state"));
        assert_ne!(name, binding_cookie_name("other-state", false));
        assert_eq!(
            binding_cookie_name("some-state", true),
            format!("__Host-{name}"),
            "a Secure cookie gets the __Host- prefix"
        );
    }

    fn new_login() -> NewLogin {
        NewLogin::issue(
            "st".into(),
            "web",
            None,
            Duration::from_secs(60),
            Timestamp::now(),
        )
    }

    #[test]
    fn a_new_login_holds_fresh_secrets_and_the_bindings_hash() {
        let login = new_login();
        let other = new_login();
        assert_eq!(login.binding_secret.len(), 43);
        assert_ne!(login.binding_secret, other.binding_secret);
        assert_ne!(login.record.pkce_verifier, other.record.pkce_verifier);
        assert_ne!(login.record.nonce, other.record.nonce);
        assert_ne!(login.record.binding, login.binding_secret);
        assert_eq!(
            login.record.binding,
            pkce_challenge(&login.binding_secret),
            "base64url(SHA-256(secret))"
        );
    }

    #[test]
    fn a_binding_is_the_secret_whose_hash_the_record_keeps() {
        let NewLogin {
            record,
            binding_secret: secret,
        } = new_login();
        let presented = |values: &[&str]| binding_presented(&record, values.iter().copied());
        assert_eq!(presented(&[&secret]), Presented::Valid);
        assert_eq!(presented(&[]), Presented::Missing);
        assert_eq!(presented(&[""]), Presented::Missing);
        assert_eq!(presented(&["1"]), Presented::Mismatch);
        assert_eq!(
            presented(&[&record.binding]),
            Presented::Mismatch,
            "the hash is no secret"
        );
        // A planted cookie beside the real one does not hide it.
        assert_eq!(presented(&["1", &secret]), Presented::Valid);
        let mut old = record.clone();
        old.binding = String::new();
        assert_eq!(
            binding_presented(&old, ["1"]),
            Presented::Mismatch,
            "a record without a hash matches nothing"
        );
    }

    #[test]
    fn the_own_callback_is_the_prefixed_oauth_callback_path() {
        let with = |redirect: &str, prefix: &[(&str, &str)]| {
            let mut doc = test_support::doc();
            doc["clients"]["web"]["redirectUrl"] = redirect.into();
            let settings = test_support::settings_env(doc, prefix);
            is_own_callback(&settings.clients["web"], &settings)
        };
        assert!(with("https://auth.example/oauth/callback", &[]));
        assert!(with("http://127.0.0.1:8080/oauth/callback", &[]));
        assert!(
            with("https://app.example/auth/oauth/callback", &[]),
            "behind a proxy path"
        );
        assert!(with(
            "https://app.example/auth/oauth/callback",
            &[("SERVICE_PREFIX", "/auth")]
        ));
        assert!(!with(
            "https://app.example/oauth/callback",
            &[("SERVICE_PREFIX", "/auth")]
        ));
        assert!(!with("https://app.example/web-login/callback", &[]));
        assert!(!with("https://app.example/xoauth/callback", &[]));
        assert!(!with("https://app.example/oauth/callback/x", &[]));
    }

    #[test]
    fn unbound_messages_say_where_to_finish_the_login() {
        let err = |route| StateError::Unbound {
            route,
            presented: Presented::Mismatch,
            client: "web".into(),
        };
        let callback = err(Presentation::Callback).to_string();
        assert!(callback.contains("does not match") && callback.contains("same host"));
        let exchange = err(Presentation::Exchange).to_string();
        assert!(exchange.contains("client `web`"), "{exchange}");
    }
}

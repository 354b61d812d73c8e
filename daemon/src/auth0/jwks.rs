//! The tenants' signing keys and ID-token verification (SPEC §5: "RS256 via the tenant JWKS,
//! refetched once on an unknown `kid`; `iss`, `aud` = clientId, `exp`, and `nonce` in the code
//! flow"; SPEC §3: HS256 with the client's `clientSecret` when it lists `HS256`).
//!
//! The key follows the token header's `alg`, among the client's `supportedSigningAlgs` only:
//! `RS256` takes the JWKS key its `kid` names, `HS256` the client's secret. A JWKS key is never
//! an HMAC secret (the classic confusion: HS256 "signed" with the tenant's public key), and an
//! HS256 token for a client that lists only RS256 is refused before any key is looked at.
//!
//! [`JwksCache`] keeps one key set per tenant (keyed by `auth0Url`), fetched from
//! `<auth0Url>/.well-known/jwks.json` on first use. A token naming a `kid` the set does not have
//! triggers one refetch (Auth0 rotated its key), but fetches of one tenant are at least
//! [`DEFAULT_REFETCH_INTERVAL`] apart, so a stream of forged tokens with made-up `kid`s cannot
//! make the daemon hammer Auth0. A set older than [`DEFAULT_MAX_AGE`] is refreshed in the
//! background while its keys keep verifying, so a key Auth0 revoked stops being accepted.
//!
//! Both ages are read on the daemon's [`Clock`], so tests move time instead of sleeping; the
//! fetches themselves keep real-time timeouts (the [`Auth0Http`] client's), and a token's `exp`
//! is checked against the machine's clock (Auth0's time, not the daemon's).
//!
//! Locks: the key sets sit behind `std::sync::RwLock`s held only to copy an `Arc` in or out;
//! fetches of one tenant are serialised by a `tokio::sync::Mutex`, the one lock held across an
//! await. Verifying with a known key takes no lock but two brief read locks, and never awaits.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::{Auth0Error, Auth0Http};
use crate::clock::Clock;
use crate::config::ClientSettings;
use crate::store::Timestamp;

/// The shortest time between two fetches of one tenant's JWKS.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Age after which a key set is refreshed (in the background) on its next use.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp`.
pub const LEEWAY_SECONDS: u64 = 60;

/// A `kid` from an untrusted token is cut to this length before it reaches an error or a log.
const MAX_KID_CHARS: usize = 64;

/// Why the tenant's key set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch the JWKS of {tenant}")]
    Fetch {
        tenant: String,
        #[source]
        source: Auth0Error,
    },
    /// The last fetch failed and the next is not due yet.
    #[error("the JWKS of {tenant} is unavailable: {reason}")]
    Unavailable { tenant: String, reason: String },
    #[error("the JWKS of {tenant} has no RS256 signing key")]
    Empty { tenant: String },
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a well-formed JWT")]
    Malformed,
    #[error(
        "the ID token is signed with {found}; this client accepts {accepted} (supportedSigningAlgs)"
    )]
    UnsupportedAlgorithm { found: String, accepted: String },
    #[error("the ID token names no signing key (kid)")]
    MissingKid,
    #[error("the ID token's signing key {kid:?} is not in the tenant's JWKS")]
    UnknownKey { kid: String },
    #[error(transparent)]
    Keys(#[from] JwksError),
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token's issuer is not {expected}")]
    WrongIssuer { expected: String },
    #[error("the ID token is not for client {expected}")]
    WrongAudience { expected: String },
    #[error("the ID token has several audiences and its authorized party is not {expected}")]
    WrongAuthorizedParty { expected: String },
    #[error("the ID token's nonce does not match the one sent to /authorize")]
    NonceMismatch,
    #[error("the ID token's `{0}` claim is missing or invalid")]
    InvalidClaim(String),
}

/// The JWKS caches of every tenant, cheap to clone and share (the Tokens actor owns one; the
/// check-up probe holds a clone).
#[derive(Clone, Debug)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Auth0Http,
    /// Where the fetch times and the set ages are read.
    clock: Clock,
    refetch_interval: Duration,
    max_age: Duration,
    tenants: RwLock<HashMap<String, Arc<TenantKeys>>>,
}

#[derive(Debug)]
struct TenantKeys {
    /// The `auth0Url`, for messages.
    tenant: String,
    jwks_url: String,
    keys: RwLock<Arc<KeySet>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// `None` until the first successful fetch.
    fetched_at: Option<Timestamp>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("fetched_at", &self.fetched_at)
            .finish()
    }
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Timestamp>,
    /// Why the last attempt failed; `None` after a success.
    last_error: Option<String>,
}

impl FetchState {
    fn may_fetch(&self, interval: Duration, now: Timestamp) -> bool {
        self.last_attempt
            .is_none_or(|at| has_passed(at, interval, now))
    }
}

/// Whether `interval` has passed between `since` and `now`. A `now` before `since` (the system
/// clock was set back) counts as passed, as an `Instant` never goes back: waiting for the clock
/// to catch up would stall the tenant's fetches, and the next fetch restarts the count.
fn has_passed(since: Timestamp, interval: Duration, now: Timestamp) -> bool {
    now < since || now >= since.saturating_add(interval)
}

/// The JWKS document (wire reference §1.7).
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

impl JwksCache {
    /// A cache fetching through `http`, timing on `clock`, with the default intervals.
    pub fn new(http: Auth0Http, clock: Clock) -> Self {
        Self::with_intervals(http, clock, DEFAULT_REFETCH_INTERVAL, DEFAULT_MAX_AGE)
    }

    /// A cache whose fetches of one tenant are at least `refetch_interval` apart, and whose key
    /// sets are refreshed once older than `max_age`, both on `clock`.
    pub fn with_intervals(
        http: Auth0Http,
        clock: Clock,
        refetch_interval: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                clock,
                refetch_interval,
                max_age,
                tenants: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Verifies an ID token of `client` and returns its claims: signed with an algorithm the
    /// client lists (RS256 by a key of the client's tenant, HS256 with its secret), `iss` = [`ClientSettings::issuer`], `aud` = the client id (a string,
    /// or a list containing it, then with `azp` = the client id), `exp` in the future (60 s of
    /// leeway), `sub` a string, `iat` a number, and `nonce` = `expected_nonce` when given.
    pub async fn verify_id_token(
        &self,
        token: &str,
        client: &ClientSettings,
        expected_nonce: Option<&str>,
    ) -> Result<Map<String, Value>, IdTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
        let unsupported = || IdTokenError::UnsupportedAlgorithm {
            found: format!("{:?}", header.alg),
            accepted: client.supported_signing_algs.join(", "),
        };
        let (key, alg) = match header.alg {
            Algorithm::RS256 if client.accepts_signing_alg("RS256") => {
                let kid = header.kid.clone().ok_or(IdTokenError::MissingKid)?;
                (self.key(&client.auth0_url, &kid).await?, Algorithm::RS256)
            }
            // The client's own secret, whatever `kid` the header names: never a JWKS key.
            // (An empty secret cannot verify anything: a bad signature.)
            Algorithm::HS256 if client.accepts_signing_alg("HS256") => (
                Arc::new(
                    DecodingKey::from_secret(client.client_secret.expose_secret().as_bytes())
                        .map_err(|_| IdTokenError::BadSignature)?,
                ),
                Algorithm::HS256,
            ),
            _ => return Err(unsupported()),
        };

        let issuer = client.issuer();
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&client.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidSignature => IdTokenError::BadSignature,
                ErrorKind::ExpiredSignature => IdTokenError::Expired,
                ErrorKind::InvalidIssuer => IdTokenError::WrongIssuer {
                    expected: issuer.clone(),
                },
                ErrorKind::InvalidAudience => IdTokenError::WrongAudience {
                    expected: client.client_id.clone(),
                },
                ErrorKind::InvalidAlgorithm => unsupported(),
                ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                    IdTokenError::InvalidClaim(claim.clone())
                }
                _ => IdTokenError::Malformed,
            })?
            .claims;

        if !claims.get("iat").is_some_and(Value::is_number) {
            return Err(IdTokenError::InvalidClaim("iat".into()));
        }
        // OpenID Connect Core §3.1.3.7: with several audiences, `azp` must be this client.
        if let Some(Value::Array(audiences)) = claims.get("aud")
            && audiences.len() > 1
            && claims.get("azp").and_then(Value::as_str) != Some(client.client_id.as_str())
        {
            return Err(IdTokenError::WrongAuthorizedParty {
                expected: client.client_id.clone(),
            });
        }
        if let Some(expected) = expected_nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(expected)
        {
            return Err(IdTokenError::NonceMismatch);
        }
        Ok(claims)
    }

    /// For `/-/check-up`: the tenant's JWKS is reachable and holds at least one RS256 key.
    /// Fetches it unless it was fetched less than the refetch interval ago (then answers from
    /// that fetch), so probing often does not hammer Auth0. Returns the number of keys.
    pub async fn check(&self, auth0_url: &Url) -> Result<usize, JwksError> {
        let tenant = self.tenant(auth0_url);
        let mut state = tenant.fetch.lock().await;
        if state.may_fetch(self.inner.refetch_interval, self.inner.clock.now()) {
            self.refetch(&tenant, &mut state).await?;
        } else if let Some(reason) = &state.last_error {
            return Err(JwksError::Unavailable {
                tenant: tenant.tenant.clone(),
                reason: reason.clone(),
            });
        }
        drop(state);
        match tenant.current().keys.len() {
            0 => Err(JwksError::Empty {
                tenant: tenant.tenant.clone(),
            }),
            n => Ok(n),
        }
    }

    /// The key `kid` of the tenant, fetching its JWKS when the key is unknown (at most once per
    /// refetch interval) and refreshing a stale set in the background.
    pub(super) async fn key(
        &self,
        auth0_url: &Url,
        kid: &str,
    ) -> Result<Arc<DecodingKey>, IdTokenError> {
        let tenant = self.tenant(auth0_url);
        let known = tenant.current();
        if let Some(key) = known.keys.get(kid) {
            let now = self.inner.clock.now();
            if known
                .fetched_at
                .is_some_and(|at| has_passed(at, self.inner.max_age, now))
            {
                self.refresh_in_background(&tenant);
            }
            return Ok(Arc::clone(key));
        }

        let mut state = tenant.fetch.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(key) = tenant.current().keys.get(kid) {
            return Ok(Arc::clone(key));
        }
        if state.may_fetch(self.inner.refetch_interval, self.inner.clock.now()) {
            let fetched = self.refetch(&tenant, &mut state).await;
            if let Err(err) = fetched
                && tenant.current().keys.is_empty()
            {
                return Err(err.into());
            }
        } else if let Some(reason) = &state.last_error
            && tenant.current().keys.is_empty()
        {
            return Err(JwksError::Unavailable {
                tenant: tenant.tenant.clone(),
                reason: reason.clone(),
            }
            .into());
        }
        drop(state);
        tenant
            .current()
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| IdTokenError::UnknownKey {
                kid: kid.chars().take(MAX_KID_CHARS).collect(),
            })
    }

    /// Refreshes a stale set without making the caller wait; skipped when a fetch is running
    /// or not yet due, or when there is no Tokio runtime to run it on.
    fn refresh_in_background(&self, tenant: &Arc<TenantKeys>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.clone();
        let tenant = Arc::clone(tenant);
        runtime.spawn(async move {
            let Ok(mut state) = tenant.fetch.try_lock() else {
                return;
            };
            if state.may_fetch(cache.inner.refetch_interval, cache.inner.clock.now()) {
                // A failure keeps the current keys; it is logged by `refetch`.
                let _ = cache.refetch(&tenant, &mut state).await;
            }
        });
    }

    /// Fetches the tenant's JWKS and installs it; the caller holds the tenant's fetch lock.
    async fn refetch(&self, tenant: &TenantKeys, state: &mut FetchState) -> Result<(), JwksError> {
        state.last_attempt = Some(self.inner.clock.now());
        let request = self.inner.http.client().get(&tenant.jwks_url);
        let fetched = self
            .inner
            .http
            .send("/.well-known/jwks.json", request)
            .await
            .and_then(|answer| answer.json::<JwksDocument>());
        match fetched {
            Ok(document) => {
                let set = KeySet {
                    keys: parse_keys(&document, &tenant.tenant),
                    fetched_at: Some(self.inner.clock.now()),
                };
                tracing::info!(
                    target: "auth0_client::auth0",
                    tenant = %tenant.tenant,
                    keys = set.keys.len(),
                    "fetched the tenant's JWKS"
                );
                state.last_error = None;
                *tenant.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
                Ok(())
            }
            Err(source) => {
                tracing::warn!(
                    target: "auth0_client::auth0",
                    tenant = %tenant.tenant,
                    error = ?source,
                    "cannot fetch the tenant's JWKS"
                );
                state.last_error = Some(source.to_string());
                Err(JwksError::Fetch {
                    tenant: tenant.tenant.clone(),
                    source,
                })
            }
        }
    }

    fn tenant(&self, auth0_url: &Url) -> Arc<TenantKeys> {
        let name = auth0_url.as_str();
        if let Some(tenant) = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Arc::clone(tenant);
        }
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(tenants.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(TenantKeys {
                tenant: name.to_owned(),
                jwks_url: format!("{}.well-known/jwks.json", normalised(name)),
                keys: RwLock::new(Arc::new(KeySet::default())),
                fetch: tokio::sync::Mutex::new(FetchState::default()),
            })
        }))
    }
}

impl TenantKeys {
    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `auth0Url` with the trailing `/` config guarantees (kept for URLs built elsewhere).
fn normalised(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

/// The RS256 signing keys of a JWKS, by `kid`. Keys for another use or algorithm, or that do not
/// parse, are skipped (and logged).
fn parse_keys(document: &JwksDocument, tenant: &str) -> HashMap<String, Arc<DecodingKey>> {
    let mut keys = HashMap::new();
    for jwk in &document.keys {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let usable = field("kty") == Some("RSA")
            && field("use").is_none_or(|u| u == "sig")
            && field("alg").is_none_or(|a| a == "RS256");
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
            continue;
        };
        if !usable {
            continue;
        }
        match DecodingKey::from_rsa_components(n, e) {
            Ok(key) => {
                keys.insert(kid.to_owned(), Arc::new(key));
            }
            Err(err) => tracing::warn!(
                target: "auth0_client::auth0",
                tenant,
                kid,
                error = %err,
                "skipping a JWKS key that does not parse"
            ),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use auth0_emulator::seed::demo;
    use auth0_emulator::{Emulator, EmulatorHandle, Seed};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use secrecy::{ExposeSecret as _, SecretString};
    use serde_json::json;

    use super::*;
    use crate::auth0::authentication::tests::client_settings;
    use crate::auth0::{AuthenticationClient, PasswordGrant};

    fn http() -> Auth0Http {
        Auth0Http::new(Duration::from_secs(5)).unwrap()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn start() -> (EmulatorHandle, ClientSettings) {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let client = client_settings(emulator.base_url(), demo::LOGIN_CLIENT_SECRET);
        (emulator, client)
    }

    /// Claims of a valid ID token of the demo client.
    fn claims(emulator: &EmulatorHandle) -> Value {
        json!({
            "iss": emulator.issuer(),
            "sub": demo::USER_ID,
            "aud": demo::LOGIN_CLIENT_ID,
            "iat": now(),
            "exp": now() + 600,
        })
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    /// A compact JWS with any header and a signature over it by `sign`.
    fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }

    fn jwks_fetches(emulator: &EmulatorHandle) -> usize {
        emulator.requests_to("/.well-known/jwks.json").len()
    }

    #[tokio::test]
    async fn an_id_token_from_a_password_grant_verifies() {
        let (emulator, client) = start();
        let auth = AuthenticationClient::new(http());
        let password = SecretString::from(demo::USER_PASSWORD);
        let tokens = auth
            .password_grant(
                &client,
                &PasswordGrant {
                    username: demo::USER_EMAIL,
                    password: &password,
                    connection: Some(demo::CONNECTION),
                    end_user_ip: None,
                },
            )
            .await
            .unwrap();
        let cache = JwksCache::new(auth.http().clone(), Clock::system());
        let id_token = tokens.id_token.unwrap();
        let claims = cache
            .verify_id_token(id_token.expose_secret(), &client, None)
            .await
            .unwrap();
        assert_eq!(claims["sub"], demo::USER_ID);
        assert_eq!(claims["aud"], demo::LOGIN_CLIENT_ID);
        // Verified again from the cache: one fetch in all.
        cache
            .verify_id_token(id_token.expose_secret(), &client, None)
            .await
            .unwrap();
        assert_eq!(jwks_fetches(&emulator), 1);
    }

    #[tokio::test]
    async fn claims_are_checked() {
        let (emulator, client) = start();
        let cache = JwksCache::new(http(), Clock::system());
        let sign = |claims: Value| emulator.tenant().sign(&claims);
        let verify = |token: String, nonce: Option<&'static str>| {
            let cache = cache.clone();
            let client = client.clone();
            async move { cache.verify_id_token(&token, &client, nonce).await }
        };
        let good = claims(&emulator);
        // The good claims with one changed, verified without a nonce.
        let changed =
            |name: &str, value: Value| verify(sign(with(good.clone(), name, value)), None);

        verify(sign(good.clone()), None).await.unwrap();
        assert!(matches!(
            changed("aud", json!("another-client")).await,
            Err(IdTokenError::WrongAudience { .. })
        ));
        assert!(matches!(
            changed("iss", json!("https://evil.example/")).await,
            Err(IdTokenError::WrongIssuer { .. })
        ));
        // The issuer is compared exactly: no trailing slash is another issuer.
        let no_slash = emulator.issuer().trim_end_matches('/').to_owned();
        assert!(matches!(
            changed("iss", json!(no_slash)).await,
            Err(IdTokenError::WrongIssuer { .. })
        ));
        assert!(matches!(
            changed("exp", json!(now() - 120)).await,
            Err(IdTokenError::Expired)
        ));
        // Within the leeway: accepted.
        changed("exp", json!(now() - 10)).await.unwrap();
        let mut no_sub = good.clone();
        no_sub.as_object_mut().unwrap().remove("sub");
        assert!(matches!(
            verify(sign(no_sub), None).await,
            Err(IdTokenError::InvalidClaim(c)) if c == "sub"
        ));
        let mut no_iat = good.clone();
        no_iat.as_object_mut().unwrap().remove("iat");
        assert!(matches!(
            verify(sign(no_iat), None).await,
            Err(IdTokenError::InvalidClaim(c)) if c == "iat"
        ));

        // Several audiences: the client must be one, and the authorized party.
        let several = with(
            good.clone(),
            "aud",
            json!([demo::LOGIN_CLIENT_ID, "https://api.example/"]),
        );
        assert!(matches!(
            verify(sign(several.clone()), None).await,
            Err(IdTokenError::WrongAuthorizedParty { .. })
        ));
        verify(
            sign(with(several, "azp", json!(demo::LOGIN_CLIENT_ID))),
            None,
        )
        .await
        .unwrap();
        assert!(matches!(
            changed("aud", json!(["x", "y"])).await,
            Err(IdTokenError::WrongAudience { .. })
        ));

        // Nonce: checked when expected.
        let with_nonce = with(good.clone(), "nonce", json!("n-123"));
        verify(sign(with_nonce.clone()), Some("n-123"))
            .await
            .unwrap();
        verify(sign(with_nonce.clone()), None).await.unwrap();
        assert!(matches!(
            verify(sign(with_nonce), Some("n-456")).await,
            Err(IdTokenError::NonceMismatch)
        ));
        assert!(matches!(
            verify(sign(good), Some("n-123")).await,
            Err(IdTokenError::NonceMismatch)
        ));
    }

    #[tokio::test]
    async fn forged_and_malformed_tokens_are_refused() {
        let (emulator, client) = start();
        let cache = JwksCache::new(http(), Clock::system());
        let good = claims(&emulator);
        let kid = emulator.current_kid();

        // Signed by a key the tenant does not publish, under the tenant's kid.
        let foreign = auth0_emulator::keys::take_key();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let forged = jws(&header, &good, |m| foreign.sign(m));
        auth0_emulator::keys::give_back([foreign]);
        assert!(matches!(
            cache.verify_id_token(&forged, &client, None).await,
            Err(IdTokenError::BadSignature)
        ));

        // A genuine token of another tenant (its own kid), claiming to be from this one.
        let other = Emulator::start(Seed::demo()).unwrap();
        let foreign_token = other.tenant().sign(&good);
        assert_unknown_key(&cache, &foreign_token, &client).await;

        // A payload changed after signing.
        let genuine = emulator.tenant().sign(&good);
        let parts: Vec<&str> = genuine.split('.').collect();
        let tampered_claims = with(good.clone(), "sub", json!("auth0|someone-else"));
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(tampered_claims.to_string()),
            parts[2]
        );
        assert!(matches!(
            cache.verify_id_token(&tampered, &client, None).await,
            Err(IdTokenError::BadSignature)
        ));

        // HS256 with the public key as the secret, `none`, no kid, garbage.
        let hs = jws(&json!({"alg": "HS256", "kid": kid}), &good, |_| {
            vec![1, 2, 3]
        });
        assert!(matches!(
            cache.verify_id_token(&hs, &client, None).await,
            Err(IdTokenError::UnsupportedAlgorithm { .. })
        ));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(good.to_string())
        );
        assert!(cache.verify_id_token(&none, &client, None).await.is_err());
        let no_kid = jws(&json!({"alg": "RS256"}), &good, |_| vec![1]);
        assert!(matches!(
            cache.verify_id_token(&no_kid, &client, None).await,
            Err(IdTokenError::MissingKid)
        ));
        assert!(matches!(
            cache.verify_id_token("not.a-token", &client, None).await,
            Err(IdTokenError::Malformed)
        ));
    }

    /// An HS256 token over `claims`, signed with `secret`.
    fn hs256(claims: &Value, secret: &[u8], kid: Option<String>) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = kid;
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hs256_is_verified_with_the_client_secret_when_the_client_lists_it() {
        let (emulator, rs_only) = start();
        let cache = JwksCache::new(http(), Clock::system());
        let good = claims(&emulator);
        let secret = demo::LOGIN_CLIENT_SECRET.as_bytes();
        let mut both = rs_only.clone();
        both.supported_signing_algs = vec!["RS256".into(), "HS256".into()];
        let mut hs_only = rs_only.clone();
        hs_only.supported_signing_algs = vec!["HS256".into()];

        // Signed with the client's secret: accepted by a client listing HS256, with or without a
        // kid (the kid of a JWKS key changes nothing: the secret is the key).
        for kid in [None, Some(emulator.current_kid())] {
            let token = hs256(&good, secret, kid);
            for client in [&both, &hs_only] {
                let claims = cache.verify_id_token(&token, client, None).await.unwrap();
                assert_eq!(claims["sub"], demo::USER_ID);
            }
            // A client listing RS256 only refuses it, although the secret is right.
            assert!(matches!(
                cache.verify_id_token(&token, &rs_only, None).await,
                Err(IdTokenError::UnsupportedAlgorithm { .. })
            ));
        }
        // The other claims are checked as for RS256.
        let expired = hs256(
            &with(good.clone(), "exp", json!(now() - 3600)),
            secret,
            None,
        );
        assert!(matches!(
            cache.verify_id_token(&expired, &both, None).await,
            Err(IdTokenError::Expired)
        ));
        // Another secret, or the tenant's published key used as an HMAC secret: a bad signature.
        let jwks = emulator.tenant().jwks().to_string();
        for wrong in [b"another-secret".as_slice(), jwks.as_bytes()] {
            let token = hs256(&good, wrong, Some(emulator.current_kid()));
            assert!(matches!(
                cache.verify_id_token(&token, &both, None).await,
                Err(IdTokenError::BadSignature)
            ));
        }
        // RS256 still verifies for a client listing both, and is refused by an HS256-only one.
        let rs = emulator.tenant().sign(&good);
        assert!(cache.verify_id_token(&rs, &both, None).await.is_ok());
        let refused = cache.verify_id_token(&rs, &hs_only, None).await;
        assert!(
            matches!(refused, Err(IdTokenError::UnsupportedAlgorithm { .. })),
            "{refused:?}"
        );
        let message = refused.unwrap_err().to_string();
        assert!(
            message.contains("RS256") && message.contains("HS256"),
            "{message}"
        );
    }

    /// An ID token signed with the emulator's current key, verified once through `cache` (which
    /// fetches the key set when it has none).
    async fn verified_token(
        emulator: &EmulatorHandle,
        cache: &JwksCache,
        client: &ClientSettings,
    ) -> String {
        let token = emulator.tenant().sign(&claims(emulator));
        cache.verify_id_token(&token, client, None).await.unwrap();
        token
    }

    /// Asserts that `cache` refuses `token` for a key it does not know.
    async fn assert_unknown_key(cache: &JwksCache, token: &str, client: &ClientSettings) {
        assert!(matches!(
            cache.verify_id_token(token, client, None).await,
            Err(IdTokenError::UnknownKey { .. })
        ));
    }

    /// A cache on `clock` that refetches an unknown kid at most once per `interval`.
    fn refetching_every(clock: &Clock, interval: Duration) -> JwksCache {
        JwksCache::with_intervals(http(), clock.clone(), interval, DEFAULT_MAX_AGE)
    }

    #[tokio::test]
    async fn an_unknown_kid_after_a_rotation_refetches_the_jwks() {
        let (emulator, client) = start();
        let clock = Clock::manual();
        let cache = refetching_every(&clock, Duration::from_millis(200));
        let before = verified_token(&emulator, &cache, &client).await;
        assert_eq!(jwks_fetches(&emulator), 1);

        let new_kid = emulator.rotate_signing_key(false);
        assert_eq!(emulator.current_kid(), new_kid);
        let after = emulator.tenant().sign(&claims(&emulator));
        clock.advance(Duration::from_millis(250));
        cache.verify_id_token(&after, &client, None).await.unwrap();
        assert_eq!(jwks_fetches(&emulator), 2);
        // The refetched set replaced the old one: the unpublished key is gone.
        assert_unknown_key(&cache, &before, &client).await;
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_refetches_at_most_once_per_interval() {
        let (emulator, client) = start();
        let interval = Duration::from_millis(500);
        let clock = Clock::manual();
        let cache = refetching_every(&clock, interval);
        let good = verified_token(&emulator, &cache, &client).await;
        assert_eq!(jwks_fetches(&emulator), 1);

        let forged: Vec<String> = (0..50)
            .map(|i| {
                jws(
                    &json!({"alg": "RS256", "kid": format!("forged-{i}")}),
                    &claims(&emulator),
                    |_| vec![0; 256],
                )
            })
            .collect();
        let flood = |tokens: Vec<String>| {
            let cache = cache.clone();
            let client = client.clone();
            async move {
                let calls = tokens.into_iter().map(|token| {
                    let cache = cache.clone();
                    let client = client.clone();
                    async move { cache.verify_id_token(&token, &client, None).await }
                });
                futures_util::future::join_all(calls).await
            }
        };

        // Right after the first fetch: none is due.
        let results = flood(forged.clone()).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(IdTokenError::UnknownKey { .. })))
        );
        assert_eq!(jwks_fetches(&emulator), 1);

        // Once the interval passed: exactly one refetch for the whole flood, spawned concurrently.
        clock.advance(interval + Duration::from_millis(50));
        let spawned: Vec<_> = forged
            .iter()
            .cloned()
            .map(|token| {
                let cache = cache.clone();
                let client = client.clone();
                tokio::spawn(async move { cache.verify_id_token(&token, &client, None).await })
            })
            .collect();
        for handle in spawned {
            assert!(matches!(
                handle.await.unwrap(),
                Err(IdTokenError::UnknownKey { .. })
            ));
        }
        assert_eq!(jwks_fetches(&emulator), 2);
        // Known keys keep verifying without a fetch.
        cache.verify_id_token(&good, &client, None).await.unwrap();
        assert_eq!(jwks_fetches(&emulator), 2);
    }

    #[tokio::test]
    async fn a_stale_set_is_refreshed_in_the_background() {
        let (emulator, client) = start();
        let clock = Clock::manual();
        let cache = JwksCache::with_intervals(
            http(),
            clock.clone(),
            Duration::from_millis(50),
            Duration::from_millis(100),
        );
        let before = verified_token(&emulator, &cache, &client).await;
        emulator.rotate_signing_key(false);
        clock.advance(Duration::from_millis(150));
        // Stale: still verifies with the cached key, and starts a refresh.
        cache.verify_id_token(&before, &client, None).await.unwrap();
        // The refresh runs on a task of its own: once Auth0 has its request, the task holds the
        // tenant's fetch lock until the new set is installed.
        tokio::time::timeout(Duration::from_secs(5), async {
            while jwks_fetches(&emulator) < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the background refresh asks Auth0 for the JWKS");
        drop(cache.tenant(&client.auth0_url).fetch.lock().await);
        assert_eq!(jwks_fetches(&emulator), 2);
        // The revoked key is gone once the refresh landed.
        assert_unknown_key(&cache, &before, &client).await;
    }

    #[tokio::test]
    async fn check_up_reports_reachability() {
        let (emulator, client) = start();
        let clock = Clock::manual();
        let cache = refetching_every(&clock, Duration::from_millis(200));
        assert_eq!(cache.check(&client.auth0_url).await.unwrap(), 1);
        // Probed again at once: answered from the last fetch.
        assert_eq!(cache.check(&client.auth0_url).await.unwrap(), 1);
        assert_eq!(jwks_fetches(&emulator), 1);

        emulator.rotate_signing_key(true);
        clock.advance(Duration::from_millis(250));
        assert_eq!(cache.check(&client.auth0_url).await.unwrap(), 2);

        emulator.fail("/.well-known/jwks.json", 503, json!("down"), 1);
        clock.advance(Duration::from_millis(250));
        assert!(matches!(
            cache.check(&client.auth0_url).await,
            Err(JwksError::Fetch { .. })
        ));
        // Within the interval the failure is remembered rather than refetched.
        assert!(matches!(
            cache.check(&client.auth0_url).await,
            Err(JwksError::Unavailable { .. })
        ));
        // Keys fetched before still verify while Auth0 is down.
        let token = verified_token(&emulator, &cache, &client).await;

        // An unreachable tenant.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let closed = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        assert!(matches!(
            cache.check(&closed).await,
            Err(JwksError::Fetch {
                source: Auth0Error::Unreachable { .. },
                ..
            })
        ));
        let unreachable = client_settings(&format!("http://127.0.0.1:{port}"), "s");
        let err = cache
            .verify_id_token(&token, &unreachable, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, IdTokenError::Keys(JwksError::Unavailable { .. })),
            "{err:?}"
        );

        // An empty key set.
        let empty = Emulator::start(Seed::demo()).unwrap();
        empty.fail("/.well-known/jwks.json", 200, json!({"keys": []}), 1);
        let empty_url = Url::parse(&format!("{}/", empty.base_url())).unwrap();
        assert!(matches!(
            cache.check(&empty_url).await,
            Err(JwksError::Empty { .. })
        ));
    }
}

//! `GET /authorize`, the login form and its `POST /u/login`.

/// A validated `/authorize` request, kept while the login form is shown.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub audience: Option<String>,
    pub connection: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<(String, String)>,
    pub response_mode: Option<String>,
}

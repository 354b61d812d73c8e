//! `POST /oauth/revoke` (wire reference §7.1): revokes a refresh token and its family.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};

use super::{ClientAuthError, Credentials, Params, authenticate_client, missing, oauth_error};
use crate::state::Tenant;

pub async fn revoke(req: HttpRequest, body: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let params = match Params::from_body(&req, &body) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let credentials = Credentials::from_request(&req, &params);
    let authenticated = authenticate_client(&tenant.data(), &credentials);
    let client = match authenticated {
        Ok(client) => client,
        Err(ClientAuthError::MissingClientId) => return missing("client_id"),
        // [INF] from RFC 7009 and Auth0's conventions (wire reference §7.1).
        Err(ClientAuthError::Refused) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            );
        }
    };
    // [INF] wording (wire reference §7.1).
    let Some(token) = params.get("token") else {
        return missing("token");
    };
    let mut grants = tenant.grants();
    if let Some(family_id) = grants.refresh_tokens.get(token).cloned() {
        // A token of another client is left alone, still answered 200 (RFC 7009 §2.2: nothing leaks).
        let own = grants
            .families
            .get(&family_id)
            .is_some_and(|family| family.client_id == client.client_id);
        if own {
            // With rotation, revoking a token invalidates its family ([INF] wire reference §7.1); without
            // rotation the family is that one token.
            grants.end_family(&family_id, "revoked");
        }
    }
    // 200 with an empty body, for unknown and already revoked tokens too ([DOC] RFC 7009, §7.1).
    HttpResponse::Ok().finish()
}

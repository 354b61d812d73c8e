//! `POST /dbconnections/change_password` (wire reference §7.2): "sends" a reset email (recorded for the
//! control API's `GET /__emulator/emails`) and answers the same text whether or not the user exists.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};

use super::{Params, missing, oauth_error};
use crate::state::{SentEmail, Tenant, now, timestamp};

pub async fn change_password(
    req: HttpRequest,
    body: web::Bytes,
    tenant: web::Data<Tenant>,
) -> HttpResponse {
    let params = match Params::from_body(&req, &body) {
        Ok(params) => params,
        Err(response) => return response,
    };
    // Field checks and their wording are [INF]: the reference documents only the success text.
    let Some(client_id) = params.get("client_id") else {
        return missing("client_id");
    };
    let Some(email) = params.get("email") else {
        return missing("email");
    };
    let Some(connection) = params.get("connection") else {
        return missing("connection");
    };
    let mut data = tenant.data();
    if data.client(client_id).is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("Unknown client: {client_id}"),
        );
    }
    if data.connection_by_name(connection).is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "connection not found",
        );
    }
    let user_id = data
        .find_user(connection, email)
        .map(|user| user.user_id.clone());
    if let Some(user_id) = user_id {
        data.emails.push(SentEmail {
            kind: "change_password".into(),
            email: email.to_string(),
            connection: connection.to_string(),
            client_id: client_id.to_string(),
            user_id,
            sent_at: timestamp(now()),
        });
    }
    // [DOC] text; the same answer for an unknown email ([INF] no-leak behaviour).
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("We've just sent you an email to reset your password.")
}

//! The HTTP server API: `POST <prefix>/api/<method>` with a JSON body, answered with
//! JSON, for an app's backend in any language (see docs/API.md).
//!
//! Off unless an API key is set (`cometd --api-key KEY`, `COMET_API_KEY`, the file key
//! `api_key`, or [`CometBuilder::api_key`](crate::CometBuilder::api_key)): every method
//! then answers 404. With a key, a request carries `Authorization: apikey KEY`; a
//! missing or wrong one answers 401. Errors answer `{"error":{"code","message"}}` with
//! the codes of the wire protocol ([`ErrorCode`]) and a fitting status:
//!
//! | code | status | when |
//! | --- | --- | --- |
//! | `unauthorized` | 401 | no `Authorization: apikey …`, or a wrong key |
//! | `not_found` | 404 | no such method; `history`, `presence` or `presence_stats` of a channel whose namespace keeps none |
//! | `bad_json` | 400 | the body is not a JSON object |
//! | `bad_frame` | 400 | a parameter is missing or of the wrong type |
//! | `bad_channel` | 400 | a channel name a client could not use |
//! | `too_large` | 413 | a body over `max_frame_bytes` + 16 KiB |
//! | `unavailable` | 503 | the hub (Redis) cannot be reached now |
//!
//! The methods themselves are in `methods.rs`.

mod methods;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use comet_actors::{ErrorCode, NodeError};
use futures::StreamExt;
use serde_json::{json, Map, Value};

use crate::Comet;

/// What a body may hold beyond `max_frame_bytes` (the JSON around the data).
const BODY_SLACK: usize = 16 * 1024;

/// Adds `POST /api/{method}` to comet's scope.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.route("/api/{method}", web::post().to(call));
}

/// A refused call: its code, status and message.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        let status = match code {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Unavailable | ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            code,
            status,
            message: message.into(),
        }
    }

    /// A parameter is missing or of the wrong type.
    pub(crate) fn param(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadFrame, message)
    }

    fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        }))
    }
}

impl From<NodeError> for ApiError {
    fn from(err: NodeError) -> ApiError {
        let code = match &err {
            NodeError::BadChannel(..) => ErrorCode::BadChannel,
            NodeError::NoHistory(_) | NodeError::NoPresence(_) => ErrorCode::NotFound,
            NodeError::Hub(_) | NodeError::Queue(_) | NodeError::Stopped => ErrorCode::Unavailable,
            #[allow(unreachable_patterns)]
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, err.to_string())
    }
}

/// Whether `given` is `key`, in time that does not depend on where they differ.
fn same_key(given: &[u8], key: &[u8]) -> bool {
    if given.len() != key.len() {
        return false;
    }
    given
        .iter()
        .zip(key)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// Checks `Authorization: apikey KEY` against each of `keys`.
fn authorize(request: &HttpRequest, keys: &[&str]) -> Result<(), ApiError> {
    let given = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("apikey").then(|| rest.trim())
        });
    match given {
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send the API key as `Authorization: apikey KEY`",
        )),
        Some(given)
            if keys
                .iter()
                .any(|key| same_key(given.as_bytes(), key.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "wrong API key")),
    }
}

/// Reads the body (bounded) as a JSON object; an empty body is `{}`.
async fn read_params(
    mut payload: web::Payload,
    max: usize,
) -> Result<Map<String, Value>, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| ApiError::param(format!("cannot read the body: {err}")))?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("the body is over {max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(params)) => Ok(params),
        Ok(_) => Err(ApiError::new(
            ErrorCode::BadJson,
            "the body must be a JSON object",
        )),
        Err(err) => Err(ApiError::new(
            ErrorCode::BadJson,
            format!("the body is not JSON: {err}"),
        )),
    }
}

async fn call(
    comet: web::Data<Comet>,
    request: HttpRequest,
    method: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let Some(key) = comet.settings().api_key.clone() else {
        // No key, no API: as if there were nothing here.
        return HttpResponse::NotFound().finish();
    };
    answer(&comet, &request, &method, payload, &[&key], |_, _| None).await
}

/// Another method a caller of [`answer`] serves beside the API's (the admin page's
/// `stats`): `Some` answer for a method it knows, `None` for the others.
pub(crate) type Extra = fn(&Comet, &str) -> Option<Value>;

/// Answers `method` for a request that carries one of `keys`: the API's methods, and
/// those of `extra`.
pub(crate) async fn answer(
    comet: &Comet,
    request: &HttpRequest,
    method: &str,
    payload: web::Payload,
    keys: &[&str],
    extra: Extra,
) -> HttpResponse {
    let answer = async {
        authorize(request, keys)?;
        let max = comet.config().limits.max_frame_bytes + BODY_SLACK;
        let params = read_params(payload, max).await?;
        match extra(comet, method) {
            Some(value) => Ok(value),
            None => methods::run(comet, method, params).await,
        }
    }
    .await;
    match answer {
        Ok(value) => HttpResponse::Ok()
            .insert_header(("cache-control", "no-store"))
            .json(value),
        Err(err) => {
            log::debug!("api {}: {} ({})", method, err.code, err.message);
            err.response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"secret", b"secret"));
        assert!(!same_key(b"secreT", b"secret"));
        assert!(!same_key(b"secre", b"secret"));
        assert!(!same_key(b"", b"secret"));
    }

    #[test]
    fn codes_have_fitting_statuses() {
        for (code, status) in [
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::NotFound, 404),
            (ErrorCode::BadChannel, 400),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::Unavailable, 503),
        ] {
            assert_eq!(ApiError::new(code, "").status.as_u16(), status);
        }
    }
}

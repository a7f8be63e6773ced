//! Unit tests of [`super`].

use super::*;

#[test]
fn rpc_errors_map_to_one_status_and_code_per_era() {
    use Era::*;
    let table: Vec<(RpcError, Era, u16, i32)> = vec![
        (RpcError::Parse, Modern, 400, -32700),
        (RpcError::InvalidRequest, Legacy, 400, -32600),
        (RpcError::Batch, Legacy, 400, -32600),
        (RpcError::UnexpectedResponse, Modern, 400, -32600),
        (RpcError::MethodNotFound, Modern, 404, -32601),
        (RpcError::MethodNotFound, Legacy, 200, -32601),
        (RpcError::InvalidParams("x".into()), Modern, 200, -32602),
        (RpcError::MissingMeta("x"), Modern, 400, -32602),
        (RpcError::HeaderMismatch("x"), Modern, 400, -32020),
        (RpcError::MissingCapability(json!({})), Modern, 400, -32021),
        (
            RpcError::UnsupportedVersion {
                requested: "v9".into(),
            },
            Modern,
            400,
            -32022,
        ),
        (RpcError::UnsupportedVersionHeader, Legacy, 400, -32600),
        (
            RpcError::ResourceNotFound { uri: "u".into() },
            Modern,
            200,
            -32602,
        ),
        (
            RpcError::ResourceNotFound { uri: "u".into() },
            Legacy,
            200,
            -32002,
        ),
        (RpcError::SessionRequired, Legacy, 400, -32600),
        (RpcError::SessionNotFound, Legacy, 404, -32600),
        (RpcError::SessionLimit, Legacy, 503, -32603),
        (RpcError::SessionQuota, Legacy, 429, -32600),
        (RpcError::Busy, Modern, 503, -32603),
        (RpcError::Internal, Legacy, 500, -32603),
    ];
    for (err, era, status, code) in table {
        assert_eq!(err.status(era).as_u16(), status, "{err:?} {era:?}");
        assert_eq!(err.code(era), code, "{err:?} {era:?}");
    }
}

#[test]
fn rejections_map_to_one_status_each() {
    let table = [
        (Rejection::MissingCredentials, 401),
        (Rejection::InvalidCredentials, 401),
        (Rejection::ForbiddenHost, 403),
        (Rejection::ForbiddenOrigin, 403),
        (
            Rejection::RateLimited {
                retry_after_secs: 1,
                limit: 1,
                window_secs: 1,
            },
            429,
        ),
        (Rejection::NotFound, 404),
        (Rejection::MethodNotAllowed { allow: "POST" }, 405),
        (Rejection::UnsupportedMediaType, 415),
        (Rejection::NotAcceptable, 406),
        (Rejection::PayloadTooLarge, 413),
        (Rejection::Conflict, 409),
        (Rejection::StreamLimit, 429),
        (Rejection::Internal, 500),
    ];
    for (rejection, status) in table {
        assert_eq!(rejection.status().as_u16(), status, "{rejection:?}");
        let body: Value = serde_json::from_str(rejection.body()).expect("json");
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "error": {"code": rejection.code(), "message": rejection.to_string()}}),
            "the constant body of {rejection:?} says what the variant says"
        );
    }
}

#[tokio::test]
async fn rejection_bodies_and_headers_are_fixed_per_kind() {
    use http_body_util::BodyExt;
    let limited = |retry_after_secs| Rejection::RateLimited {
        retry_after_secs,
        limit: 100,
        window_secs: 60,
    };
    for rejection in [
        Rejection::NotFound,
        Rejection::NotFound,
        Rejection::Internal,
        limited(7),
        limited(59),
    ] {
        let response = rejection.clone().into_response();
        assert_eq!(response.status(), rejection.status());
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "error": {"code": rejection.code(), "message": rejection.to_string()}})
        );
    }
    let response = limited(59).into_response();
    let h = response.headers();
    assert_eq!(h[header::RETRY_AFTER], "59");
    assert_eq!(h["ratelimit-policy"], "\"default\";q=100;w=60");
    assert_eq!(h["ratelimit"], "\"default\";r=0;t=59");
}

//! SigV4 signing of bulk requests for Amazon OpenSearch Service (`es`) and OpenSearch
//! Serverless (`aoss`). The signature covers the method, path, `Host`, `Content-Type`,
//! `x-amz-date` and the body's SHA-256, which is also sent as `x-amz-content-sha256`: the
//! service requires that header on signed requests with a body.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use http::Request;
use pipeline_domain::StorageError;

use super::Signing;
use super::response::OPERATION;

/// Signs `request`, whose body is `body`, with credentials fetched from the provider now
/// (the provider caches them and refreshes them before they expire).
pub async fn sign_request<B>(
    request: &mut Request<B>,
    body: &[u8],
    signing: &Signing,
) -> Result<(), StorageError> {
    let credentials = signing
        .credentials
        .provide_credentials()
        .await
        .map_err(credentials_error)?;
    sign_with(
        request,
        body,
        credentials,
        &signing.region,
        &signing.service,
        SystemTime::now(),
    )
}

/// Signs `request` with the given credentials at the given time.
pub fn sign_with<B>(
    request: &mut Request<B>,
    body: &[u8],
    credentials: Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), StorageError> {
    let refused = |message: String| {
        StorageError::permanent(OPERATION, format!("signing the bulk request: {message}"))
    };
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|error| refused(error.to_string()))?
        .into();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers,
        SignableBody::Bytes(body),
    )
    .map_err(|error| refused(error.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|error| refused(error.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Credentials that timed out or failed to load may come next time; a provider that has
/// none, or is misconfigured, will not.
fn credentials_error(error: CredentialsError) -> StorageError {
    let mut message = format!("loading credentials to sign the bulk request: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    match error {
        CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_) => {
            StorageError::transient(OPERATION, message)
        }
        _ => StorageError::permanent(OPERATION, message),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_credential_types::provider::SharedCredentialsProvider;
    use http::header::AUTHORIZATION;

    use super::super::endpoint::{bulk_request, bulk_uri};
    use super::*;

    const BODY: &[u8] =
        b"{\"index\":{\"_index\":\"events\",\"_id\":\"e1\"}}\n{\"searchText\":\"x\"}\n";
    /// The SHA-256 of [`BODY`], computed with `sha256sum`.
    const BODY_SHA256: &str = "ee85b43da2486d1d494520e2a1d7f22ccca2cf3666c890d000a5fa18c7b8713a";

    fn request() -> Request<http_body_util::Full<hyper::body::Bytes>> {
        let uri = bulk_uri("https://search-x.us-east-1.es.amazonaws.com").unwrap();
        bulk_request(&uri, hyper::body::Bytes::from_static(BODY)).unwrap()
    }

    fn credentials() -> Credentials {
        Credentials::new("AKID", "SECRET", None, None, "test")
    }

    #[test]
    fn a_signed_request_carries_the_signature_date_and_body_digest() {
        let mut request = request();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        sign_with(&mut request, BODY, credentials(), "us-east-1", "es", time).unwrap();
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
        let authorization = header(AUTHORIZATION.as_str());
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/es/aws4_request, "
            ),
            "{authorization}"
        );
        assert!(
            authorization.contains(
                "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
            ),
            "{authorization}"
        );
        assert_eq!(header("x-amz-date"), "20231114T221320Z");
        assert_eq!(header("x-amz-content-sha256"), BODY_SHA256);
    }

    #[tokio::test]
    async fn credentials_come_from_the_provider() {
        let mut request = request();
        let signing = Signing {
            service: "aoss".to_owned(),
            region: "eu-west-1".to_owned(),
            credentials: SharedCredentialsProvider::new(Credentials::new(
                "AKID",
                "SECRET",
                Some("TOKEN".to_owned()),
                None,
                "test",
            )),
        };
        sign_request(&mut request, BODY, &signing).await.unwrap();
        let authorization = request.headers()[AUTHORIZATION].to_str().unwrap();
        assert!(
            authorization.contains("/eu-west-1/aoss/aws4_request"),
            "{authorization}"
        );
        assert_eq!(request.headers()["x-amz-security-token"], "TOKEN");
    }
}

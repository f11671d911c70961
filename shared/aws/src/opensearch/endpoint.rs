//! The bulk endpoint: checking the configured URL, and the `POST {url}/_bulk` request that
//! carries one body. Both are pure.

use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Bytes;

/// The media type the bulk API requires.
pub const NDJSON: &str = "application/x-ndjson";

/// The bulk endpoint under `url`, which must be `http` or `https` with a host, may carry a
/// path prefix (a proxy's), and must not carry credentials, a query or a fragment.
pub fn bulk_uri(url: &str) -> Result<Uri, String> {
    if url.contains('#') {
        return Err(format!("{url:?} has a fragment; give the endpoint only"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{url:?} is not an http:// or https:// URL")),
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{url:?} has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{url:?} carries credentials; sign requests instead"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} has a query; give the endpoint only"));
    }
    let prefix = uri.path().trim_end_matches('/');
    let scheme = uri.scheme_str().unwrap_or("https");
    format!("{scheme}://{authority}{prefix}/_bulk")
        .parse()
        .map_err(|error| format!("{url:?} gives no bulk endpoint: {error}"))
}

/// The `POST {url}/_bulk` request for one body, with its `Host` set from the URI so that
/// the header signed is the header sent.
pub fn bulk_request(uri: &Uri, body: Bytes) -> Result<Request<Full<Bytes>>, String> {
    let host = uri
        .authority()
        .map(|authority| authority.as_str())
        .unwrap_or_default();
    let host = HeaderValue::from_str(host).map_err(|error| format!("host {host:?}: {error}"))?;
    Request::builder()
        .method(Method::POST)
        .uri(uri.clone())
        .header(HOST, host)
        .header(CONTENT_TYPE, NDJSON)
        .body(Full::new(body))
        .map_err(|error| format!("building the bulk request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_checked_and_bulk_is_appended() {
        let check = |url: &str| bulk_uri(url).map(|uri| uri.to_string());
        assert_eq!(
            check("https://search-x.us-east-1.es.amazonaws.com").unwrap(),
            "https://search-x.us-east-1.es.amazonaws.com/_bulk"
        );
        assert_eq!(
            check("http://127.0.0.1:9200/").unwrap(),
            "http://127.0.0.1:9200/_bulk"
        );
        assert_eq!(
            check("https://proxy.example/search/").unwrap(),
            "https://proxy.example/search/_bulk"
        );
        for bad in [
            "",
            "search-x.es.amazonaws.com",
            "ftp://host",
            "http://user:pw@host",
            "http://host/?a=1",
            "http://host/#x",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_request_posts_ndjson_to_the_bulk_endpoint() {
        let uri = bulk_uri("http://127.0.0.1:9200").unwrap();
        let request = bulk_request(&uri, Bytes::from_static(b"{}\n{}\n")).unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), "/_bulk");
        assert_eq!(request.headers()[CONTENT_TYPE], NDJSON);
        assert_eq!(request.headers()[HOST], "127.0.0.1:9200");
    }
}

//! Pure request building: a [`RequestSpec`] says what to send (method, path, query, headers,
//! body) without knowing the connection; [`RequestSpec::into_http`] turns it into the
//! `http::Request` the pooled client sends. Every API handle builds its requests here, and
//! unit tests check them by URI and body, as kube-core does.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::body::Body;

/// Characters escaped in one path segment (an instance name, an alias such as
/// `kitchen/busybox`, a fingerprint).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&')
    .add(b'+');

/// Characters escaped in a query value.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Escapes one path segment.
pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A request body before it is put on the wire.
pub(crate) enum RequestBody {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Vec<u8>),
    /// Raw bytes with a content type.
    Bytes(Bytes, &'static str),
    /// A streamed body with a content type (and the length, when known).
    Stream(Body, String),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Json(j) => write!(f, "Json({})", String::from_utf8_lossy(j)),
            RequestBody::Bytes(b, t) => write!(f, "Bytes({} bytes, {t})", b.len()),
            RequestBody::Stream(_, t) => write!(f, "Stream({t})"),
        }
    }
}

/// Everything needed to send one request, independent of the connection. Building it is
/// pure; [`RequestSpec::into_http`] makes the `http::Request`.
#[derive(Debug)]
pub(crate) struct RequestSpec {
    pub method: Method,
    /// Path below the server root, e.g. `/1.0/instances/c1`; may carry its own query string
    /// (as operation and log URLs from the server do).
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: RequestBody,
    /// How long the server may hold this request on purpose (a long poll's `timeout`), on
    /// top of the client's request limit.
    pub long_poll: std::time::Duration,
}

impl RequestSpec {
    /// A request without query, headers or body.
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        RequestSpec {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: RequestBody::Empty,
            long_poll: std::time::Duration::ZERO,
        }
    }

    /// `GET path`.
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Marks the request as a long poll the server may hold for `time`.
    pub(crate) fn long_poll(mut self, time: std::time::Duration) -> Self {
        self.long_poll = time;
        self
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets a JSON body.
    pub(crate) fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        // Serializing our own model types into a Vec cannot fail: they have string keys and
        // no non-serializable values.
        self.body = RequestBody::Json(serde_json::to_vec(body).unwrap_or_default());
        self
    }

    /// Sets a body.
    pub(crate) fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    /// The path and query string, with `project` added when set and not already present.
    pub(crate) fn path_and_query(&self, project: Option<&str>) -> String {
        let mut out = self.path.clone();
        let mut has_query = out.contains('?');
        let mut push = |out: &mut String, k: &str, v: &str| {
            out.push(if has_query { '&' } else { '?' });
            has_query = true;
            out.push_str(k);
            out.push('=');
            out.extend(utf8_percent_encode(v, QUERY).map(|s| s.to_string()));
        };
        for (k, v) in &self.query {
            push(&mut out, k, v);
        }
        if let Some(project) = project {
            let already = self.query.iter().any(|(k, _)| *k == "project")
                || self.path.contains("?project=")
                || self.path.contains("&project=");
            if !already {
                push(&mut out, "project", project);
            }
        }
        out
    }

    /// Builds the `http::Request` for `base` (e.g. `http://lxd`).
    pub(crate) fn into_http(
        self,
        base: &str,
        project: Option<&str>,
    ) -> Result<http::Request<Body>, http::Error> {
        let uri = format!("{base}{}", self.path_and_query(project));
        let mut builder = http::Request::builder().method(self.method).uri(uri);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let empty = || {
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync()
        };
        let body = match self.body {
            RequestBody::Empty => empty(),
            RequestBody::Json(bytes) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                http_body_util::Full::new(Bytes::from(bytes))
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            RequestBody::Bytes(bytes, content_type) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                http_body_util::Full::new(bytes)
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            RequestBody::Stream(body, content_type) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                body
            }
        };
        builder.body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_escapes_slash_in_alias() {
        assert_eq!(seg("kitchen/busybox"), "kitchen%2Fbusybox");
        assert_eq!(seg("c1"), "c1");
    }

    #[test]
    fn query_values_are_escaped_and_project_added() {
        let spec = RequestSpec::get("/1.0/instances/c1/files").query("path", "/etc/a b&c=d");
        assert_eq!(
            spec.path_and_query(Some("p 1")),
            "/1.0/instances/c1/files?path=/etc/a%20b%26c%3Dd&project=p%201"
        );
    }

    #[test]
    fn project_is_not_doubled_and_server_query_kept() {
        let spec = RequestSpec::get("/1.0/operations/abc/websocket?secret=s3");
        assert_eq!(
            spec.path_and_query(Some("p")),
            "/1.0/operations/abc/websocket?secret=s3&project=p"
        );
        let spec = RequestSpec::get("/1.0/instances?project=q");
        assert_eq!(spec.path_and_query(Some("p")), "/1.0/instances?project=q");
        let spec = RequestSpec::get("/1.0").query("project", "x");
        assert_eq!(spec.path_and_query(Some("p")), "/1.0?project=x");
        assert_eq!(RequestSpec::get("/1.0").path_and_query(None), "/1.0");
    }

    #[test]
    fn json_body_sets_content_type_and_uri() {
        let req = RequestSpec::new(Method::POST, "/1.0/instances")
            .json(&serde_json::json!({"name": "c1"}))
            .into_http("http://lxd", Some("default"))
            .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "http://lxd/1.0/instances?project=default"
        );
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
    }

    #[test]
    fn raw_body_keeps_given_content_type() {
        let req = RequestSpec::new(Method::POST, "/1.0/instances/c1/files")
            .body(RequestBody::Bytes(
                Bytes::from_static(b"x"),
                "application/octet-stream",
            ))
            .header(
                HeaderName::from_static("x-lxd-mode"),
                HeaderValue::from_static("0644"),
            )
            .into_http("http://lxd", None)
            .unwrap();
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/octet-stream"
        );
        assert_eq!(req.headers()["x-lxd-mode"], "0644");
    }
}

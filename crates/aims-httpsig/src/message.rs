//! The HTTP message being signed or verified: borrowed views over `http` request and
//! response parts, plus what a view needs that `http` does not carry (the scheme of an
//! origin-form request, trailers, the request a response answers).

use std::str::FromStr;

use http::{HeaderMap, Method, StatusCode, Uri};

use crate::HttpSigError;

/// A request, borrowed from `http` types.
///
/// The target URI (RFC 9110 section 7.1) is assembled from the URI's scheme and
/// authority when it has them (absolute form, or HTTP/2 `:scheme`/`:authority`), else
/// from [`RequestMessage::with_scheme`] and the single `Host` header. A server that
/// receives origin-form requests (HTTP/1.1) sets the scheme it listens with.
#[derive(Debug, Clone, Copy)]
pub struct RequestMessage<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    trailers: Option<&'a HeaderMap>,
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
}

impl<'a> RequestMessage<'a> {
    /// A request from its method, URI and headers.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
            trailers: None,
            scheme: None,
            authority: None,
        }
    }

    /// A request from `http` request parts.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        Self::new(&parts.method, &parts.uri, &parts.headers)
    }

    /// A request from an `http` request (the body is not read).
    pub fn from_request<B>(request: &'a http::Request<B>) -> Self {
        Self::new(request.method(), request.uri(), request.headers())
    }

    /// The scheme to use when the URI has none (`http` or `https`).
    pub fn with_scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// The authority to use instead of the URI's or the `Host` header's.
    pub fn with_authority(mut self, authority: &'a str) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The request's trailer fields (for `;tr` components).
    pub fn with_trailers(mut self, trailers: &'a HeaderMap) -> Self {
        self.trailers = Some(trailers);
        self
    }

    /// The method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The header fields.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The scheme, lower-cased.
    pub(crate) fn scheme(&self) -> Option<String> {
        self.uri
            .scheme_str()
            .or(self.scheme)
            .map(str::to_ascii_lowercase)
    }

    /// `host[:port]` as received.
    fn raw_authority(&self) -> Result<Option<&'a str>, HttpSigError> {
        if let Some(a) = self.authority {
            return Ok(Some(a));
        }
        if let Some(a) = self.uri.authority() {
            return Ok(Some(a.as_str()));
        }
        let mut hosts = self.headers.get_all(http::header::HOST).iter();
        let Some(host) = hosts.next() else {
            return Ok(None);
        };
        if hosts.next().is_some() {
            return Err(value_error("@authority", "more than one Host header"));
        }
        host.to_str()
            .map(Some)
            .map_err(|_| value_error("@authority", "Host is not visible ASCII"))
    }

    /// The authority normalized per RFC 9110 section 4.2.3: host lower-cased, default
    /// port (443 for https, 80 for http) removed.
    ///
    /// The value must be an authority and nothing more: a `Host` of `example.com/a`
    /// would otherwise make `GET /b` the same `@target-uri` (and `@authority`) as
    /// `GET /a/b` to `example.com`.
    pub(crate) fn authority(&self) -> Result<String, HttpSigError> {
        let raw = self
            .raw_authority()?
            .ok_or_else(|| HttpSigError::MissingComponent("\"@authority\"".into()))?;
        if raw.is_empty() || raw.contains('@') {
            return Err(value_error("@authority", "empty or with userinfo"));
        }
        if http::uri::Authority::from_str(raw).is_err() {
            return Err(value_error("@authority", "not a URI authority"));
        }
        let lower = raw.to_ascii_lowercase();
        let default_port = match self.scheme().as_deref() {
            Some("https") => Some(":443"),
            Some("http") => Some(":80"),
            _ => None,
        };
        Ok(match default_port.and_then(|p| lower.strip_suffix(p)) {
            // Only a port suffix, not the end of an IPv6 literal such as `[::443]`.
            Some(host) if !host.is_empty() && !host.ends_with(':') => host.to_owned(),
            _ => lower,
        })
    }

    /// The path, `/` if empty (RFC 9421 section 2.2.6).
    pub(crate) fn path(&self) -> &'a str {
        match self.uri.path() {
            "" => "/",
            p => p,
        }
    }

    /// The query without `?`, if any.
    pub(crate) fn query(&self) -> Option<&'a str> {
        self.uri.query()
    }

    /// The request target in origin form (`/path?query`), the authority for `CONNECT`,
    /// or `*` (RFC 9421 section 2.2.5).
    pub(crate) fn request_target(&self) -> Result<String, HttpSigError> {
        if self.method == Method::CONNECT {
            return self.authority();
        }
        let path = self.path();
        Ok(match self.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        })
    }

    /// The full target URI with a normalized scheme and authority (RFC 9421 section
    /// 2.2.2).
    pub(crate) fn target_uri(&self) -> Result<String, HttpSigError> {
        let scheme = self
            .scheme()
            .ok_or_else(|| value_error("@target-uri", "the scheme is unknown"))?;
        let authority = self.authority()?;
        let mut uri = format!("{scheme}://{authority}{}", self.path());
        if let Some(q) = self.query() {
            uri.push('?');
            uri.push_str(q);
        }
        Ok(uri)
    }
}

/// A response, borrowed from `http` types, with the request it answers (needed for
/// `;req` components).
#[derive(Debug, Clone, Copy)]
pub struct ResponseMessage<'a> {
    status: StatusCode,
    headers: &'a HeaderMap,
    trailers: Option<&'a HeaderMap>,
    request: Option<RequestMessage<'a>>,
}

impl<'a> ResponseMessage<'a> {
    /// A response from its status and headers.
    pub fn new(status: StatusCode, headers: &'a HeaderMap) -> Self {
        Self {
            status,
            headers,
            trailers: None,
            request: None,
        }
    }

    /// A response from `http` response parts.
    pub fn from_parts(parts: &'a http::response::Parts) -> Self {
        Self::new(parts.status, &parts.headers)
    }

    /// A response from an `http` response (the body is not read).
    pub fn from_response<B>(response: &'a http::Response<B>) -> Self {
        Self::new(response.status(), response.headers())
    }

    /// The request this response answers.
    pub fn with_request(mut self, request: RequestMessage<'a>) -> Self {
        self.request = Some(request);
        self
    }

    /// The response's trailer fields (for `;tr` components).
    pub fn with_trailers(mut self, trailers: &'a HeaderMap) -> Self {
        self.trailers = Some(trailers);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The header fields.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The related request, if given.
    pub fn request(&self) -> Option<RequestMessage<'a>> {
        self.request
    }
}

/// A request or a response.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// A request.
    Request(RequestMessage<'a>),
    /// A response.
    Response(ResponseMessage<'a>),
}

impl<'a> Message<'a> {
    /// The header fields.
    pub fn headers(&self) -> &'a HeaderMap {
        match self {
            Message::Request(r) => r.headers,
            Message::Response(r) => r.headers,
        }
    }

    /// The trailer fields, if given.
    pub fn trailers(&self) -> Option<&'a HeaderMap> {
        match self {
            Message::Request(r) => r.trailers,
            Message::Response(r) => r.trailers,
        }
    }
}

impl<'a> From<RequestMessage<'a>> for Message<'a> {
    fn from(r: RequestMessage<'a>) -> Self {
        Message::Request(r)
    }
}

impl<'a> From<ResponseMessage<'a>> for Message<'a> {
    fn from(r: ResponseMessage<'a>) -> Self {
        Message::Response(r)
    }
}

fn value_error(component: &str, reason: &'static str) -> HttpSigError {
    HttpSigError::ComponentValue {
        component: format!("\"{component}\""),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, host: Option<&str>) -> (Method, Uri, HeaderMap) {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(http::header::HOST, host.parse().unwrap());
        }
        (Method::GET, uri.parse().unwrap(), h)
    }

    #[test]
    fn origin_form_uses_host_and_configured_scheme() {
        let (m, u, h) = req("/path?param=value", Some("WWW.Example.com:443"));
        let r = RequestMessage::new(&m, &u, &h).with_scheme("https");
        assert_eq!(r.authority().unwrap(), "www.example.com");
        assert_eq!(
            r.target_uri().unwrap(),
            "https://www.example.com/path?param=value"
        );
        assert_eq!(r.request_target().unwrap(), "/path?param=value");
        // Without a scheme the target URI is unknown, the authority keeps its port.
        let r = RequestMessage::new(&m, &u, &h);
        assert!(r.target_uri().is_err());
        assert_eq!(r.authority().unwrap(), "www.example.com:443");
    }

    #[test]
    fn absolute_form_wins_over_host() {
        let (m, u, h) = req("http://example.com:80/", Some("evil.example"));
        let r = RequestMessage::new(&m, &u, &h);
        assert_eq!(r.authority().unwrap(), "example.com");
        assert_eq!(r.target_uri().unwrap(), "http://example.com/");
        let (m, u, h) = req("https://example.com:8443", None);
        let r = RequestMessage::new(&m, &u, &h);
        assert_eq!(r.authority().unwrap(), "example.com:8443");
        assert_eq!(r.path(), "/");
    }

    #[test]
    fn authority_errors() {
        let (m, u, mut h) = req("/", Some("a.example"));
        h.append(http::header::HOST, "b.example".parse().unwrap());
        assert!(RequestMessage::new(&m, &u, &h).authority().is_err());
        let (m, u, h) = req("/", None);
        assert_eq!(
            RequestMessage::new(&m, &u, &h).authority().unwrap_err(),
            HttpSigError::MissingComponent("\"@authority\"".into())
        );
        let (m, u, h) = req("https://user@example.com/", None);
        assert!(RequestMessage::new(&m, &u, &h).authority().is_err());
        let (m, u, h) = req("https://[::443]/", None);
        assert_eq!(
            RequestMessage::new(&m, &u, &h).authority().unwrap(),
            "[::443]"
        );
    }

    /// A `Host` that is not just an authority is refused: `GET /b` with
    /// `Host: example.com/a` must not give the `@target-uri` of `GET /a/b` to
    /// `example.com`.
    #[test]
    fn host_must_be_an_authority() {
        let (m, u, h) = req("/a/b", Some("example.com"));
        let honest = RequestMessage::new(&m, &u, &h).with_scheme("https");
        assert_eq!(honest.target_uri().unwrap(), "https://example.com/a/b");
        for host in [
            "example.com/a",
            "example.com?x",
            "example.com#f",
            "exa mple.com",
            "user@example.com",
        ] {
            let (m, u, h) = req("/b", Some(host));
            let r = RequestMessage::new(&m, &u, &h).with_scheme("https");
            for result in [r.target_uri(), r.authority()] {
                assert!(
                    matches!(result, Err(HttpSigError::ComponentValue { .. })),
                    "{host}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn connect_and_asterisk_targets() {
        let h = HeaderMap::new();
        let u: Uri = "example.com:443".parse().unwrap();
        let r = RequestMessage::new(&Method::CONNECT, &u, &h);
        assert_eq!(r.request_target().unwrap(), "example.com:443");
        let u: Uri = "*".parse().unwrap();
        let r = RequestMessage::new(&Method::OPTIONS, &u, &h);
        assert_eq!(r.request_target().unwrap(), "*");
    }
}

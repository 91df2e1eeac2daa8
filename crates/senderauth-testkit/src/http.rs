//! HTTP for tests, over reqwest: JSON calls to the API, raw bodies, and `FormClient`, which keeps
//! cookies and posts forms like a browser (redirects left to the test).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, Url};
use serde_json::Value;

/// A client that follows no redirect (the tests check them) and asks no proxy.
fn client(jar: Option<Arc<Jar>>) -> Client {
    // reqwest's TLS is rustls with the ring provider (as the service's), installed once per
    // process; the tests speak plain HTTP, but a client is not built without one.
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let builder = Client::builder().redirect(Policy::none()).no_proxy();
    let builder = match jar {
        Some(jar) => builder.cookie_provider(jar),
        None => builder,
    };
    builder.build().expect("an HTTP client")
}

fn url(address: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{address}{path}")).expect("a URL")
}

/// Sends one request and returns the status and the body parsed as JSON (`Null` when empty or
/// not JSON).
pub async fn call(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (status, text) = call_text(address, method, path, token, body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends one request (a JSON body, `Authorization: Bearer` with `token`) and returns the status
/// and the body as text.
pub async fn call_text(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client(None)
        .request(method, url(address, path))
        .header(CONTENT_TYPE, "application/json")
        .body(body.unwrap_or("").to_string());
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = request.send().await.expect("an answer from the server");
    let status = response.status().as_u16();
    (status, response.text().await.expect("the response's body"))
}

/// Sends one request without a body, with `headers`, and returns the status and the response's
/// header fields.
pub async fn response_headers(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap) {
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client(None).request(method, url(address, path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an answer from the server");
    (response.status().as_u16(), response.headers().clone())
}

/// POSTs `body` as it is (`content_type`) and returns the status, the response's head (status
/// line and header fields) and its body's bytes.
pub async fn call_raw(
    address: SocketAddr,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let response = client(None)
        .post(url(address, path))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, content_type)
        .body(body.to_vec())
        .send()
        .await
        .expect("an answer from the server");
    raw_response(response).await
}

/// GETs `path` with a bearer token: the status, the head as text and the body's bytes.
pub async fn get_raw(address: SocketAddr, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    let response = client(None)
        .get(url(address, path))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .expect("an answer from the server");
    raw_response(response).await
}

/// A response as the status, the head as text and the body's bytes.
async fn raw_response(response: reqwest::Response) -> (u16, String, Vec<u8>) {
    let status = response.status();
    let mut head = format!("HTTP/1.1 {status}");
    for (name, value) in response.headers() {
        head.push_str(&format!("\r\n{name}: {}", String::from_utf8_lossy(value.as_bytes())));
    }
    let bytes = response.bytes().await.expect("the response's body").to_vec();
    (status.as_u16(), head, bytes)
}

/// Publishes in `dns` the DKIM keys the service at `api` holds for one of the account's
/// domains, at the names its CNAMEs point to, replacing what was there: what the platform's own
/// DNS server would answer.
pub async fn publish_hosted_keys(dns: &crate::TestDns, api: SocketAddr, token: &str, domain: &str) {
    let (status, keys) = call(api, "GET", &format!("/api/v1/domains/{domain}/dkim"), Some(token), None).await;
    assert_eq!(status, 200, "{keys}");
    for key in keys["keys"].as_array().expect("keys") {
        let name = key["published_at"].as_str().expect("published_at");
        dns.remove(name, "TXT");
        dns.add(name, "TXT", key["record"].as_str().expect("record"));
    }
}

/// A cookie-keeping client for the web UI's forms: what a browser does with cookies (reqwest's
/// cookie store), redirects left to the test.
pub struct FormClient {
    jar: Arc<Jar>,
    client: Client,
    /// The server last asked: where `cookie` and `set_cookie` apply.
    server: Option<SocketAddr>,
}

impl Default for FormClient {
    fn default() -> FormClient {
        let jar = Arc::new(Jar::default());
        FormClient { client: client(Some(jar.clone())), jar, server: None }
    }
}

/// One response: status, the Location header if any, the body.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl FormClient {
    pub async fn get(&mut self, address: SocketAddr, path: &str) -> Page {
        self.server = Some(address);
        Page::from(self.client.get(url(address, path)).send().await.expect("an answer from the server")).await
    }

    /// POSTs `fields` as an HTML form would (application/x-www-form-urlencoded).
    pub async fn post(&mut self, address: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Page {
        self.server = Some(address);
        let response = self.client.post(url(address, path)).form(fields).send().await;
        Page::from(response.expect("an answer from the server")).await
    }

    /// Sends this cookie to the UI from now on (as a browser holding an old one would).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        let server = self.server.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 80)));
        self.jar.add_cookie_str(&format!("{name}={value}; Path=/ui"), &url(server, "/ui/"));
    }

    /// The value of a cookie the UI set and has not removed.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&url(self.server?, "/ui/"))?;
        let header = header.to_str().ok()?;
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }
}

impl Page {
    async fn from(response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let location = response.headers().get(LOCATION).and_then(|value| value.to_str().ok()).map(str::to_string);
        Page { status, location, body: response.text().await.expect("the response's body") }
    }
}

/// The value of the first `<input name="NAME" ... value="...">` in `html`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value = tag.split("value=\"").nth(1)?;
    Some(value[..value.find('"')?].to_string())
}

//! A minimal HTTP/1.1 client for tests: one request per connection, JSON bodies.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Sends one request and returns the status and the body as text.
pub async fn call_text(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.expect("connecting to the server");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("sending the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("reading the response");
    let response = String::from_utf8_lossy(&response);
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_string())
}

/// Sends `body` as is (`content_type`) and returns the status, the response's head (status line
/// and header fields) and its body's bytes.
pub async fn call_raw(
    address: SocketAddr,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).await.expect("connecting to the server");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("sending the request");
    stream.write_all(body).await.expect("sending the body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("reading the response");
    let end = response.windows(4).position(|window| window == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    (status, head, response[end + 4..].to_vec())
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

/// A minimal cookie-keeping client for the web UI's forms: what a browser does with cookies,
/// redirects left to the test.
#[derive(Default)]
pub struct FormClient {
    cookies: std::collections::BTreeMap<String, String>,
}

/// One response: status, the Location header if any, the body.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl FormClient {
    pub async fn get(&mut self, address: SocketAddr, path: &str) -> Page {
        self.send(address, "GET", path, None).await
    }

    /// POSTs `fields` as an HTML form would (application/x-www-form-urlencoded).
    pub async fn post(&mut self, address: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Page {
        let encode = |text: &str| {
            text.bytes()
                .map(|byte| match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
                    b' ' => "+".to_string(),
                    other => format!("%{other:02X}"),
                })
                .collect::<String>()
        };
        let body = fields
            .iter()
            .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(address, "POST", path, Some(&body)).await
    }

    /// Sends this cookie from now on (as a browser holding an old one would).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_string(), value.to_string());
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    async fn send(&mut self, address: SocketAddr, method: &str, path: &str, form: Option<&str>) -> Page {
        let mut stream = TcpStream::connect(address).await.expect("connecting to the server");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if !self.cookies.is_empty() {
            let jar = self.cookies.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("; ");
            request.push_str(&format!("Cookie: {jar}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.expect("sending the request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("reading the response");
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
        let mut location = None;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("location") {
                location = Some(value.to_string());
            }
            if name.eq_ignore_ascii_case("set-cookie")
                && let Some((pair, attributes)) = value.split_once(';').or(Some((value, "")))
                && let Some((key, content)) = pair.split_once('=')
            {
                if content.is_empty() || attributes.contains("Max-Age=0") {
                    self.cookies.remove(key);
                } else {
                    self.cookies.insert(key.to_string(), content.to_string());
                }
            }
        }
        Page { status, location, body: body.to_string() }
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

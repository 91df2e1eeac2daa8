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

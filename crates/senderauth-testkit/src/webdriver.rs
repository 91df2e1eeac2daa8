//! A headless Chromium driven through chromedriver's W3C WebDriver protocol (Debian's
//! `chromium` and `chromium-driver`): just the commands the UI tests need, over a plain
//! HTTP/1.1 connection per command.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Tab key, for [`Browser::press`].
pub const TAB: &str = "\u{E004}";
/// The Enter key.
pub const ENTER: &str = "\u{E007}";

/// Whether chromedriver and Chromium are installed.
pub fn available() -> bool {
    std::path::Path::new("/usr/bin/chromium").exists()
        && std::process::Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
}

/// A browser session; the driver (and its browser) is killed when this is dropped.
pub struct Browser {
    driver: std::process::Child,
    address: SocketAddr,
    session: String,
}

impl Drop for Browser {
    /// Ends the session (chromedriver then quits Chromium and its helper processes, which
    /// killing chromedriver alone would leave running), then stops chromedriver.
    fn drop(&mut self) {
        if !self.session.is_empty()
            && let Ok(mut stream) = std::net::TcpStream::connect(self.address)
        {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session, self.address
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                // The answer comes once Chromium has quit.
                let _ = stream.read(&mut [0u8; 4096]);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium `width` × `height` pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect(address).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut browser = Browser { driver, address, session: String::new() };
        let capabilities = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", format!("--window-size={width},{height}")],
        } } } });
        let created = browser.command("POST", "/session", Some(capabilities)).await;
        browser.session = created["sessionId"].as_str().expect("a session id").to_string();
        browser.resize(width, height).await;
        browser
    }

    /// Sends one command; its `value`, or a panic with the driver's error.
    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(self.address).await.expect("connecting to chromedriver");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("sending a command");
        // chromedriver may keep the connection open: read the head, then Content-Length bytes.
        let mut response = Vec::new();
        let mut chunk = vec![0u8; 65536];
        let (head_end, length) = loop {
            let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("{method} {path}: no answer within 60 s"))
                .expect("reading the answer");
            assert!(read > 0 || !response.is_empty(), "{method} {path}: the connection closed");
            response.extend_from_slice(&chunk[..read]);
            if let Some(end) = response.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, length);
            }
            if read == 0 {
                panic!("{method} {path}: the connection closed before the answer's head");
            }
        };
        while response.len() < head_end + length {
            let read = stream.read(&mut chunk).await.expect("reading the answer");
            if read == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..read]);
        }
        let text = String::from_utf8_lossy(&response[head_end..]).into_owned();
        let response = String::from_utf8_lossy(&response[..head_end]).into_owned();
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {response}{text}"));
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("{method} {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", &self.path("/url"), Some(json!({ "url": url }))).await;
    }

    pub async fn url(&self) -> String {
        self.command("GET", &self.path("/url"), None).await.as_str().unwrap_or_default().to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.command("GET", &self.path("/source"), None).await.as_str().unwrap_or_default().to_string()
    }

    async fn element(&self, css: &str) -> String {
        let found =
            self.command("POST", &self.path("/element"), Some(json!({ "using": "css selector", "value": css }))).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    /// The visible text of the first element matching `css` now, if there is one (read in the
    /// page in one step, so a page changing meanwhile cannot leave a stale reference).
    pub async fn find_text(&self, css: &str) -> Option<String> {
        let selector = serde_json::to_string(css).unwrap_or_default();
        let text =
            self.script(&format!("const e = document.querySelector({selector}); return e ? e.innerText : null;")).await;
        text.as_str().map(str::to_string)
    }

    /// Waits up to `limit` for an element matching `css` to appear; its visible text.
    pub async fn wait_for(&self, css: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(text) = self.find_text(css).await {
                return text;
            }
            assert!(started.elapsed() < limit, "no element {css} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `css` (a panic when there is none).
    pub async fn text(&self, css: &str) -> String {
        self.find_text(css).await.unwrap_or_else(|| panic!("no element {css}"))
    }

    /// Clicks `css` (a submit button, a link) and waits until the page it leads to has loaded.
    pub async fn submit(&self, css: &str) {
        self.script("window.__before_submit = true;").await;
        self.click(css).await;
        let started = Instant::now();
        loop {
            let loaded = self.script("return !window.__before_submit && document.readyState === 'complete';").await;
            if loaded == Value::Bool(true) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "clicking {css} loaded no page within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.command("POST", &self.path(&format!("/element/{element}/click")), Some(json!({}))).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.command("POST", &self.path(&format!("/element/{element}/clear")), Some(json!({}))).await;
        self.command("POST", &self.path(&format!("/element/{element}/value")), Some(json!({ "text": text }))).await;
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.element(css).await;
        self.command("GET", &self.path(&format!("/element/{element}/attribute/{name}")), None)
            .await
            .as_str()
            .map(str::to_string)
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.command("POST", &self.path("/execute/sync"), Some(json!({ "script": script, "args": [] }))).await
    }

    /// Types `keys` on the keyboard, into whatever has the focus (WebDriver key codes such as
    /// [`TAB`] and [`ENTER`] included).
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({ "type": "keyDown", "value": key.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": key.to_string() }));
        }
        let body = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] });
        self.command("POST", &self.path("/actions"), Some(body)).await;
    }

    /// Presses Tab until the focused element matches `css` (at most `limit` times, else a
    /// panic), as a keyboard-only user gets there. Returns whether the focus is visible there
    /// (an outline drawn).
    pub async fn tab_to(&self, css: &str, limit: usize) -> bool {
        let selector = serde_json::to_string(css).unwrap_or_default();
        for _ in 0..limit {
            self.press(TAB).await;
            let focused = self
                .script(&format!(
                    "const e = document.activeElement; return e && e.matches({selector}) ? getComputedStyle(e).outlineStyle : null;"
                ))
                .await;
            if let Some(outline) = focused.as_str() {
                return outline != "none";
            }
        }
        panic!("{css} was not reached with {limit} presses of Tab");
    }

    /// Lets the page read and write the clipboard (the origin must be http://127.0.0.1 or
    /// https, not a data: URL).
    pub async fn grant_clipboard(&self) {
        for name in ["clipboard-read", "clipboard-write"] {
            let body = json!({ "descriptor": { "name": name }, "state": "granted" });
            self.command("POST", &self.path("/permissions"), Some(body)).await;
        }
    }

    /// What the clipboard holds, as the page reads it.
    pub async fn clipboard(&self) -> String {
        let script = "const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, (error) => done('ERROR ' + error));";
        let read =
            self.command("POST", &self.path("/execute/async"), Some(json!({ "script": script, "args": [] }))).await;
        read.as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let shot = self.command("GET", &self.path("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap_or_default()).expect("a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("writing the screenshot");
    }

    /// Makes the page's viewport `width` × `height` CSS pixels, as on a phone that size
    /// (Chromium's device emulation: a window cannot be narrower than 500 px).
    pub async fn resize(&self, width: u32, height: u32) {
        let params = json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 });
        let body = json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": params });
        self.command("POST", &self.path("/goog/cdp/execute"), Some(body)).await;
    }
}

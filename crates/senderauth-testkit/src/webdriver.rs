//! A headless Chromium driven through chromedriver (Debian's `chromium` and `chromium-driver`)
//! with fantoccini's W3C WebDriver client, over plain HTTP on loopback: the commands the UI
//! tests need, each panicking with the driver's error when it fails.

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

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

/// A browser session; the session is ended and the driver stopped when this is dropped.
pub struct Browser {
    driver: std::process::Child,
    address: std::net::SocketAddr,
    session: String,
    client: Client,
}

impl Drop for Browser {
    /// Ends the session (chromedriver then quits Chromium and its helper processes, which
    /// killing chromedriver alone would leave running), then stops chromedriver. Synchronous:
    /// a drop cannot wait on the async client.
    fn drop(&mut self) {
        if let Ok(mut stream) = std::net::TcpStream::connect(self.address) {
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

/// A command fantoccini has no method for: chromedriver's own (`goog/cdp/execute`) or one of
/// WebDriver's extensions (permissions), sent to the session as JSON.
#[derive(Debug)]
struct SessionCommand {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// What a command answered, or a panic naming what was asked.
fn answered<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what}: {error}"))
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
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let options = json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", format!("--window-size={width},{height}")],
        });
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".to_string(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_string(), options);
        let client = answered(
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://{address}"))
                .await,
            "starting a browser session",
        );
        let session = answered(client.session_id().await, "the session id").unwrap_or_default();
        let browser = Browser { driver, address, session, client };
        browser.resize(width, height).await;
        browser
    }

    pub async fn goto(&self, url: &str) {
        answered(self.client.goto(url).await, url);
    }

    pub async fn url(&self) -> String {
        answered(self.client.current_url().await, "the current URL").to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        answered(self.client.source().await, "the page source")
    }

    async fn element(&self, css: &str) -> Element {
        answered(self.client.find(Locator::Css(css)).await, &format!("no element {css}"))
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
        answered(self.element(css).await.click().await, &format!("clicking {css}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        answered(element.clear().await, &format!("clearing {css}"));
        answered(element.send_keys(text).await, &format!("typing into {css}"));
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        answered(self.element(css).await.attr(name).await, &format!("the {name} of {css}"))
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub async fn script(&self, script: &str) -> Value {
        answered(self.client.execute(script, Vec::new()).await, "running a script")
    }

    /// Types `keys` on the keyboard, into whatever has the focus (WebDriver key codes such as
    /// [`TAB`] and [`ENTER`] included).
    pub async fn press(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".to_string());
        for key in keys.chars() {
            actions = actions.then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        }
        answered(self.client.perform_actions(actions).await, "pressing keys");
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
            answered(self.client.issue_cmd(SessionCommand { path: "permissions", body }).await, "permissions");
        }
    }

    /// What the clipboard holds, as the page reads it.
    pub async fn clipboard(&self) -> String {
        let script = "const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, (error) => done('ERROR ' + error));";
        let read = answered(self.client.execute_async(script, Vec::new()).await, "reading the clipboard");
        read.as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let png = answered(self.client.screenshot().await, "a screenshot");
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
        answered(self.client.issue_cmd(SessionCommand { path: "goog/cdp/execute", body }).await, "resizing");
    }
}

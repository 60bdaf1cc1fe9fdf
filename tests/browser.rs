//! Renders a report in headless Chromium through the DevTools protocol and reports what the page
//! did: console errors, network requests, and whether every image decoded.
//!
//! Chromium is Debian's `chromium` package (or `$CHROMIUM`). `.ci/run` installs it when missing and
//! sets `REVAUDIT_REQUIRE_BROWSER=1`, so there a missing browser fails the test; elsewhere the check
//! is skipped with a note on stderr.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// What the page did.
#[derive(Debug, Default)]
pub struct PageReport {
    /// Console messages of level error (incl. CSP violations and uncaught exceptions).
    pub errors: Vec<String>,
    /// Every URL the page requested, apart from the page itself and `data:` URLs.
    pub requests: Vec<String>,
    /// Per `<img>`: (decoded, natural width, natural height).
    pub images: Vec<(bool, u64, u64)>,
    /// document.title.
    pub title: String,
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    events: Vec<Value>,
}

impl Cdp {
    fn send(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to chromium");
        loop {
            let v = self.read();
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read from chromium") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("CDP JSON"),
                Message::Close(_) => panic!("chromium closed the connection"),
                _ => continue,
            }
        }
    }

    /// Read events until `method` arrives (or `timeout` passes).
    fn wait_for(&mut self, method: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let v = self.read();
            let hit = v["method"] == method;
            self.events.push(v);
            if hit {
                return true;
            }
        }
        false
    }
}

/// Render each page in one browser and report. `None` when no browser is installed and none is
/// required.
pub fn check(pages: &[&Path]) -> Option<Vec<PageReport>> {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("REVAUDIT_REQUIRE_BROWSER").is_none(),
            "REVAUDIT_REQUIRE_BROWSER is set but no chromium was found"
        );
        eprintln!("note: chromium not found, browser check skipped");
        return None;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let child = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--remote-debugging-port=0",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let browser = Browser {
        child,
        _profile: profile,
    };
    // Chromium writes its DevTools port and path into the profile folder.
    let port_file = browser._profile.path().join("DevToolsActivePort");
    let end = Instant::now() + Duration::from_secs(30);
    let (port, path) = loop {
        let mut s = String::new();
        if std::fs::File::open(&port_file)
            .and_then(|mut f| f.read_to_string(&mut s))
            .is_ok()
        {
            let mut lines = s.lines();
            if let (Some(p), Some(path)) = (lines.next(), lines.next()) {
                break (p.trim().to_string(), path.trim().to_string());
            }
        }
        assert!(Instant::now() < end, "chromium did not start within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (ws, _) =
        tungstenite::connect(format!("ws://127.0.0.1:{port}{path}")).expect("connect to chromium");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    }
    let mut cdp = Cdp {
        ws,
        next_id: 0,
        session: None,
        events: Vec::new(),
    };
    let mut out = Vec::new();
    for html in pages {
        out.push(render(&mut cdp, html));
    }
    drop(browser);
    Some(out)
}

fn render(cdp: &mut Cdp, html: &Path) -> PageReport {
    cdp.session = None;
    let target = cdp.send("Target.createTarget", json!({ "url": "about:blank" }));
    let attached = cdp.send(
        "Target.attachToTarget",
        json!({ "targetId": target["targetId"], "flatten": true }),
    );
    cdp.session = attached["sessionId"].as_str().map(|s| s.to_string());
    for domain in [
        "Page.enable",
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
    ] {
        cdp.send(domain, json!({}));
    }
    cdp.events.clear();
    let abs = std::fs::canonicalize(html).expect("report path");
    let url = format!("file://{}", abs.display());
    cdp.send("Page.navigate", json!({ "url": url }));
    assert!(
        cdp.wait_for("Page.loadEventFired", Duration::from_secs(60)),
        "the page did not finish loading"
    );
    let images = cdp.send(
        "Runtime.evaluate",
        json!({
            "expression": "Promise.all(Array.from(document.images).map(i => i.decode().then(() => true, () => false).then(ok => [ok && i.complete, i.naturalWidth, i.naturalHeight])))",
            "awaitPromise": true,
            "returnByValue": true
        }),
    );
    let title = cdp.send(
        "Runtime.evaluate",
        json!({ "expression": "document.title", "returnByValue": true }),
    );
    let mut report = PageReport {
        title: title["result"]["value"].as_str().unwrap_or("").to_string(),
        ..PageReport::default()
    };
    for img in images["result"]["value"].as_array().into_iter().flatten() {
        report.images.push((
            img[0].as_bool().unwrap_or(false),
            img[1].as_u64().unwrap_or(0),
            img[2].as_u64().unwrap_or(0),
        ));
    }
    for e in &cdp.events {
        if e["sessionId"].as_str() != cdp.session.as_deref() {
            continue;
        }
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Network.requestWillBeSent" => {
                let u = p["request"]["url"].as_str().unwrap_or("");
                if u != url && !u.starts_with("data:") {
                    report.requests.push(u.to_string());
                }
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                report.errors.push(p["entry"]["text"].to_string());
            }
            "Runtime.consoleAPICalled" if p["type"] == "error" => {
                report.errors.push(p["args"].to_string());
            }
            "Runtime.exceptionThrown" => report.errors.push(p.to_string()),
            _ => {}
        }
    }
    cdp.session = None;
    cdp.send(
        "Target.closeTarget",
        json!({ "targetId": target["targetId"] }),
    );
    report
}

//! The test harness: starts the real application on `127.0.0.1:0` with its
//! own temporary data folder and talks to it over HTTP and WebSocket.
//! Every await that depends on the server has a timeout, so a bug fails a
//! test quickly instead of hanging it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use comms_core::apps::Apps;
use comms_core::config::Config;
use comms_core::store::AppStatus;
use comms_server::startup::Application;
use comms_server::state::AppState;
use comms_testkit::smtp::{ReceivedMail, SmtpSink};
use futures_util::{SinkExt, StreamExt};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait on the server may take.
pub const WAIT: Duration = Duration::from_secs(10);

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
        }
    });
}

/// A client for a server at `addr`: HTTP and WebSocket helpers shared by
/// in-process servers ([`TestApp`]) and real `comms` processes.
pub struct Remote {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
}

/// A running server and a client for it (through [`Remote`]).
pub struct TestApp {
    remote: Remote,
    pub data_dir: Arc<TempDir>,
    /// The SMTP server the app's emails go to (unless a test cleared
    /// `email.smtp_url`).
    pub mailbox: Arc<SmtpSink>,
    pub config: Config,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Default test config: a fresh data folder, emails to a fresh SMTP
/// receiver ([`TestApp::mailbox`]), everything else as shipped.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with the config adjusted first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mailbox = Arc::new(SmtpSink::start().await);
    let mut config = Config::default();
    // Tests that want the demo turn it on; the others should not see it.
    config.demo.enabled = false;
    config.email.smtp_url = mailbox.url();
    configure(&mut config);
    start(config, data_dir, mailbox).await
}

async fn start(mut config: Config, data_dir: Arc<TempDir>, mailbox: Arc<SmtpSink>) -> TestApp {
    init_logging();
    config.data_dir = PathBuf::from(data_dir.path());
    let application = Application::build(config.clone(), "127.0.0.1:0".parse().unwrap()).await.expect("build app");
    let addr = application.local_addr();
    let state = application.state().clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stop.await;
    }));
    TestApp {
        remote: Remote::new(addr),
        data_dir,
        mailbox,
        config,
        state,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT * 2, server).await.expect("shutdown in time").unwrap();
        }
    }

    /// Stops this server and starts a new one on the same data folder.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        start(self.config.clone(), Arc::clone(&self.data_dir), Arc::clone(&self.mailbox)).await
    }

    /// Creates an approved app; returns its API key.
    pub async fn create_app(&self, name: &str) -> String {
        self.state.apps.create(name, AppStatus::Approved).await.expect("create app").api_key
    }

    /// A client of this server's HTTP and WebSocket API.
    pub fn api(&self) -> &Remote {
        &self.remote
    }

    /// The server's shared handles.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The server's app administration (the CLI's, with live sockets).
    pub fn apps(&self) -> &Apps {
        &self.state.apps
    }

    /// Issues a new key for the app `name`, revoking its others.
    pub async fn rotate_key(&self, name: &str) -> String {
        let app = self.apps().find(name).await.expect("the app exists");
        self.apps().issue_key(&app, false, "test").await.expect("issue key").api_key
    }
}

impl Remote {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, base: format!("http://{addr}"), client: reqwest::Client::builder().timeout(WAIT).build().unwrap() }
    }

    /// A request to `path` carrying `key` (if any) in `X-API-Key`.
    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => builder.header("X-API-Key", key),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(Method::GET, path, Some(key)).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(key)).json(&body).send().await.expect("POST")
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.request(Method::DELETE, path, Some(key)).send().await.expect("DELETE")
    }

    /// Creates a room through the REST API, asserting 201.
    pub async fn create_room(&self, key: &str, name: &str) -> Value {
        let response = self.post("/api/v1/rooms", key, json!({ "name": name })).await;
        assert_eq!(response.status(), 201, "create room {name}");
        response.json().await.unwrap()
    }

    /// Creates a presence room through the REST API, asserting 201.
    pub async fn create_presence_room(&self, key: &str, name: &str) -> Value {
        let response = self.post("/api/v1/rooms", key, json!({ "name": name, "presence": true })).await;
        assert_eq!(response.status(), 201, "create presence room {name}");
        response.json().await.unwrap()
    }

    /// `(id, connections)` of each member of a presence room, as the
    /// presence API lists them.
    pub async fn members(&self, key: &str, room: &str) -> Vec<(String, u64)> {
        let presence = body(self.get(&format!("/api/v1/rooms/{room}/presence"), key).await).await;
        member_roll(&presence["members"])
    }

    /// Publishes `marker` through the REST API and asserts it is the next
    /// frame each of `sockets` gets: nothing (no join, leave or signal)
    /// came before it.
    pub async fn next_is_marker(&self, key: &str, room: &str, sockets: &mut [&mut WsClient], marker: &str) {
        let response = self.post(&format!("/api/v1/rooms/{room}/messages"), key, json!({ "message": marker })).await;
        assert_eq!(response.status(), 201);
        for ws in sockets {
            let frame = ws.next_json().await;
            assert_eq!((frame["type"].as_str(), frame["message"].as_str()), (Some("message"), Some(marker)), "{frame}");
        }
    }

    /// Creates an endpoint through the REST API, asserting 201.
    pub async fn create_endpoint(&self, key: &str, room: &str, permission: &str, meta: Option<Value>) -> Value {
        let mut body = json!({ "permission": permission });
        if let Some(meta) = meta {
            body["meta"] = meta;
        }
        let response = self.post(&format!("/api/v1/rooms/{room}/endpoints"), key, body).await;
        assert_eq!(response.status(), 201, "create endpoint in {room}");
        response.json().await.unwrap()
    }

    /// Opens a WebSocket with an endpoint code, optionally resuming.
    pub async fn connect_ws(&self, code: &str, after_seq: Option<u64>) -> WsClient {
        let query = after_seq.map(|seq| format!("?after_seq={seq}")).unwrap_or_default();
        let url = format!("ws://{}/ws/endpoint/{code}/{query}", self.addr);
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        WsClient { stream }
    }

    /// The HTTP status a WebSocket handshake with `code` is refused with.
    pub async fn ws_refusal(&self, code: &str) -> u16 {
        self.connect_ws_from(code, None).await.err().expect("expected the handshake to be refused")
    }

    /// Opens a WebSocket with an endpoint code as a page at `origin` would
    /// (browsers send their page's `Origin`); the HTTP status of a refusal.
    pub async fn connect_ws_from(&self, code: &str, origin: Option<&str>) -> Result<WsClient, u16> {
        let mut request = format!("ws://{}/ws/endpoint/{code}/", self.addr).into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("answer in time") {
            Ok((stream, _)) => Ok(WsClient { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("expected an HTTP answer to the handshake, got {other}"),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A WebSocket client speaking JSON text frames.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl WsClient {
    /// The next JSON frame from the server, skipping pings and pongs.
    pub async fn next_json(&mut self) -> Value {
        self.next_json_within(WAIT).await
    }

    /// The next JSON frame, waiting at most `limit` for it.
    pub async fn next_json_within(&mut self, limit: Duration) -> Value {
        loop {
            let frame = tokio::time::timeout(limit, self.stream.next())
                .await
                .expect("a frame in time")
                .expect("the connection is open")
                .expect("a valid frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame, which must be a `message`.
    pub async fn next_message(&mut self) -> Value {
        let frame = self.next_json().await;
        assert_eq!(frame["type"], "message", "{frame}");
        frame
    }

    /// Sends `{"message": payload}`.
    pub async fn send_message(&mut self, payload: Value) {
        self.send_text(&json!({ "message": payload }).to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    /// Waits for the server's close frame, skipping anything else.
    pub async fn closed(&mut self) -> Closed {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next()).await.expect("close in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Closed { code: u16::from(frame.code), reason: frame.reason.to_string() }
                }
                Some(Ok(Message::Close(None))) | None => {
                    return Closed { code: u16::from(CloseCode::Status), reason: String::new() }
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket error before close: {err}"),
            }
        }
    }
}

/// `(id, connections)` of each member in a list of Member objects.
pub fn member_roll(members: &Value) -> Vec<(String, u64)> {
    members
        .as_array()
        .expect("a member list")
        .iter()
        .map(|member| (member["id"].as_str().unwrap().to_owned(), member["connections"].as_u64().unwrap()))
        .collect()
}

/// An endpoint's public id.
pub fn public_id(endpoint: &Value) -> String {
    endpoint["id"].as_str().expect("an endpoint id").to_owned()
}

/// A socket of a `read_and_write` endpoint in the room `lobby` of a fresh
/// app, past its welcome.
pub async fn lobby_writer(app: &TestApp) -> WsClient {
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;
    let endpoint = app.api().create_endpoint(&key, "lobby", "read_and_write", None).await;
    let mut ws = app.api().connect_ws(endpoint["code"].as_str().unwrap(), None).await;
    assert_eq!(ws.next_json().await["type"], "welcome");
    ws
}

/// Waits until `key` gets `status` on the rooms list, for 2 s at most: a
/// change made elsewhere (another node, the command line) applies within
/// `auth.change_poll_ms`.
pub async fn until_key_status(api: &Remote, key: &str, status: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while api.get("/api/v1/rooms", key).await.status() != status {
        assert!(std::time::Instant::now() < deadline, "the key never got {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server at `addr` answers `/readyz` with 200 (a real
/// process starting up), for 30 s at most.
pub async fn wait_ready(addr: &str) {
    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    for _ in 0..300 {
        if client.get(format!("http://{addr}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server at {addr} did not become ready");
}

/// Sends a request with `key` and reads its JSON answer, whatever the
/// status (for servers other than a [`TestApp`]: real processes, proxies).
pub async fn send_json(request: RequestBuilder, key: &str) -> Value {
    request.header("x-api-key", key).send().await.expect("request").json().await.expect("JSON body")
}

/// Reads a JSON body.
pub async fn body(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// Asserts the error JSON (`docs/protocol.md#errors`) with the given status and code.
pub async fn assert_error(response: Response, status: u16, code: &str) {
    assert_eq!(response.status(), status, "status");
    let body = body(response).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// The password test accounts sign up with.
pub const PASSWORD: &str = "a long enough password";

/// A browser of the portal: its own cookie jar, the form token once
/// fetched, and the inbox of the app's emails.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
    csrf: String,
    mailbox: Option<Arc<SmtpSink>>,
}

impl Browser {
    /// Opens the portal with an empty cookie jar and fetches a form token.
    pub async fn open(app: &TestApp) -> Self {
        Self::open_at(&app.api().base, Some(Arc::clone(&app.mailbox))).await
    }

    /// Like [`Browser::open`], for the server at `base` (`http://…`)
    /// mailing to `mailbox`, if it mails.
    pub async fn open_at(base: &str, mailbox: Option<Arc<SmtpSink>>) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder().cookie_provider(Arc::clone(&jar)).timeout(WAIT).build().unwrap();
        let mut browser = Self { client, jar, base: base.to_owned(), csrf: String::new(), mailbox };
        browser.refresh().await;
        browser
    }

    /// GETs a page (or a link's URL) as this browser; its status and HTML.
    pub async fn page(&self, url: &str) -> (u16, String) {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.base) };
        let response = self.client.get(url).send().await.expect("GET");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Calls a server function; its JSON answer, or its error text.
    pub async fn call(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        self.send(path, form, None).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], forwarded_for: Option<&str>) -> Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(client) = forwarded_for {
            request = request.header("x-forwarded-for", client);
        }
        request.send().await.expect("request")
    }

    async fn send(&self, path: &str, form: &[(&str, &str)], forwarded_for: Option<&str>) -> Result<Value, String> {
        let response = self.post(path, form, forwarded_for).await;
        let ok = response.status().is_success();
        let text = response.text().await.unwrap();
        if ok {
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        } else {
            Err(text)
        }
    }

    /// Calls a state-changing server function with this session's token.
    pub async fn act(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        self.act_from(None, path, form).await
    }

    /// Like [`Browser::act`], with an `X-Forwarded-For` header naming
    /// `forwarded_for` as the client (as a proxy in front would).
    pub async fn act_from(
        &self,
        forwarded_for: Option<&str>,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Value, String> {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.send(path, &fields, forwarded_for).await
    }

    /// The HTTP answer of a state-changing server function, as it came.
    pub async fn act_raw(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields, None).await
    }

    /// Reads the session again (who is signed in, the form token).
    pub async fn refresh(&mut self) -> Value {
        let session = self.call("/portal/fn/session", &[]).await.expect("the session answers");
        self.csrf = session["csrf"].as_str().expect("a form token").to_owned();
        session
    }

    /// The cookies the browser would send.
    pub fn session_cookie(&self) -> Option<String> {
        let url = self.base.parse().unwrap();
        self.jar.cookies(&url).map(|header| header.to_str().unwrap().to_owned())
    }

    /// Signs up with [`PASSWORD`] and follows the link of the email that
    /// comes, which confirms the address and logs in.
    pub async fn sign_up_and_log_in(&mut self, email: &str) {
        let before = self.mailbox().mails_to(email).len();
        self.act("/portal/fn/sign_up", &[("email", email), ("password", PASSWORD)]).await.expect("sign up");
        let mail = self.mail(email, before + 1).await;
        let link = mail.link("/portal/confirm").expect("a confirmation link");
        self.confirm(&link, PASSWORD).await.expect("the link confirms the address");
    }

    /// The `n`-th email (from 1) the app sent to `to`, waiting for it.
    pub async fn mail(&self, to: &str, n: usize) -> ReceivedMail {
        self.mailbox().mail_to(to, n).await
    }

    /// Where the app's emails go.
    pub fn mailbox(&self) -> &SmtpSink {
        self.mailbox.as_deref().expect("this browser's server mails to a test SMTP receiver")
    }

    /// Confirms an address through the mailed `link` with the account's
    /// `password`, and reads the new session.
    pub async fn confirm(&mut self, link: &str, password: &str) -> Result<(), String> {
        let token = token_of(link);
        self.act("/portal/fn/confirm_email", &[("token", &token), ("password", password)]).await?;
        self.refresh().await;
        Ok(())
    }

    /// Sets a new password through the mailed reset `link`, and reads the
    /// new session.
    pub async fn reset_password(&mut self, link: &str, password: &str) -> Result<(), String> {
        let token = token_of(link);
        self.act("/portal/fn/reset_password", &[("token", &token), ("password", password)]).await?;
        self.refresh().await;
        Ok(())
    }

    /// Logs in and reads the new session.
    pub async fn log_in(&mut self, email: &str, password: &str) -> Result<(), String> {
        self.act("/portal/fn/log_in", &[("email", email), ("password", password)]).await?;
        self.refresh().await;
        Ok(())
    }

    /// Registers an app of the signed-in developer.
    pub async fn register(&self, name: &str) -> Result<Value, String> {
        let form = [("name", name), ("description", ""), ("website", ""), ("intended_use", "a chat for my game")];
        self.act("/portal/fn/register_app", &form).await
    }

    /// Issues a key for an approved app; the key.
    pub async fn issue_key(&self, app: &str) -> Result<String, String> {
        self.act("/portal/fn/issue_key", &[("app", app)]).await.map(|key| key.as_str().unwrap().to_owned())
    }
}

/// The `token` parameter of a mailed link.
pub fn token_of(link: &str) -> String {
    let query = link.split_once('?').map_or("", |(_, query)| query);
    let token = query.split('&').find_map(|pair| pair.strip_prefix("token="));
    token.expect("a token in the link").to_owned()
}

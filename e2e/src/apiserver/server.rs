//! HTTP edge: connection handling (with the pause knob), routing to the store, watch streams.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};

use super::errors::ApiError;
use super::patch::PatchKind;
use super::registry::ResourceInfo;
use super::route::{ResourcePath, Route, parse_path, parse_query};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Filter, PatchRequest, Preconditions, Store, format_rfc3339};

/// Largest request body accepted (the real API server's limit is 3 MiB as well).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Connection-level state, switched by the pause knobs and shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    /// Accept and immediately close connections.
    Refusing,
    /// Accept connections and never answer until resumed (then close them).
    Hanging,
    Stopping,
}

/// State shared by the accept loop, connections, watches and the handle.
pub(crate) struct Shared {
    store: Mutex<Store>,
    changes: watch::Sender<u64>,
    pub(crate) state: watch::Sender<RunState>,
    counters: Mutex<BTreeMap<String, u64>>,
    bookmark_interval: Duration,
    addr: SocketAddr,
    connections: AtomicUsize,
    connections_done: Notify,
}

type Body = Either<Full<Bytes>, WatchBody>;

/// A streaming response body fed by a watch task.
pub(crate) struct WatchBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// Current wall-clock time as RFC 3339.
pub(crate) fn now() -> String {
    format_rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

impl Shared {
    pub(crate) fn new(store: Store, bookmark_interval: Duration, addr: SocketAddr) -> Self {
        let rv = store.resource_version();
        Shared {
            store: Mutex::new(store),
            changes: watch::Sender::new(rv),
            state: watch::Sender::new(RunState::Running),
            counters: Mutex::new(BTreeMap::new()),
            bookmark_interval,
            addr,
            connections: AtomicUsize::new(0),
            connections_done: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a mutation and wakes the watches.
    pub(crate) fn mutate<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let (out, rv) = {
            let mut store = self.lock();
            let out = f(&mut store);
            (out, store.resource_version())
        };
        self.changes.send_replace(rv);
        out
    }

    fn count(&self, verb: &str, plural: Option<&str>) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *counters.entry(verb.to_string()).or_default() += 1;
        if let Some(plural) = plural {
            *counters.entry(format!("{verb} {plural}")).or_default() += 1;
        }
    }

    pub(crate) fn counters(&self) -> BTreeMap<String, u64> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) async fn wait_connections_closed(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.connections_done.notified();
                if self.connections.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
        self.0.connections_done.notify_waiters();
    }
}

/// Accepts connections until the state becomes `Stopping`. `state` must be subscribed before
/// the task is spawned so a stop signalled before its first poll is not missed.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut state: watch::Receiver<RunState>,
) {
    loop {
        if *state.borrow_and_update() == RunState::Stopping {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let current = *state.borrow();
                match current {
                    RunState::Running => {
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        let conn_state = shared.state.subscribe();
                        tokio::spawn(serve_connection(shared.clone(), stream, conn_state));
                    }
                    RunState::Refusing => drop(stream),
                    RunState::Hanging => {
                        let mut st = shared.state.subscribe();
                        tokio::spawn(async move {
                            while *st.borrow_and_update() == RunState::Hanging {
                                if st.changed().await.is_err() {
                                    break;
                                }
                            }
                            drop(stream);
                        });
                    }
                    RunState::Stopping => break,
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    mut state: watch::Receiver<RunState>,
) {
    let _guard = ConnectionGuard(shared.clone());
    let svc_shared = shared.clone();
    let svc = service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    // Apply the state current at the first poll, then follow its changes.
    state.mark_changed();
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let current = *state.borrow_and_update();
                match current {
                    RunState::Running => {}
                    // An outage: drop the connection abruptly, open watches included.
                    RunState::Refusing | RunState::Hanging => break,
                    RunState::Stopping => conn.as_mut().graceful_shutdown(),
                }
            }
        }
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(value.to_string()))));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &err.to_status(),
    )
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if *shared.state.borrow() != RunState::Running {
        return error_response(&ApiError::unavailable("the API server is paused"));
    }
    match dispatch(&shared, req).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err),
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-ferrolb-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "none (in-memory test API server)",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

async fn dispatch(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let route = parse_path(req.uri().path()).ok_or_else(ApiError::no_route)?;
    if !matches!(route, Route::Resource(_)) && req.method() != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not allowed on {}",
            req.method(),
            req.uri().path()
        )));
    }
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match route {
        Route::Health => {
            let mut resp = Response::new(Either::Left(Full::new(Bytes::from_static(b"ok"))));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(resp)
        }
        Route::Version => ok(version_info()),
        Route::CoreApi => {
            shared.count("discovery", None);
            ok(shared
                .lock()
                .registry()
                .api_versions(&shared.addr.to_string()))
        }
        Route::Apis => {
            shared.count("discovery", None);
            ok(shared.lock().registry().api_group_list())
        }
        Route::Group(group) => {
            shared.count("discovery", None);
            let doc = shared.lock().registry().api_group(&group);
            doc.map_or_else(|| Err(ApiError::no_route()), ok)
        }
        Route::Discovery { group, version } => {
            shared.count("discovery", None);
            let doc = shared.lock().registry().api_resource_list(&group, &version);
            doc.map_or_else(|| Err(ApiError::no_route()), ok)
        }
        Route::Resource(path) => resource(shared, req, path).await,
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

fn parse_object(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = if content_type.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))?
    };
    Ok(value)
}

fn flag(q: &std::collections::HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

async fn resource(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: ResourcePath,
) -> Result<Response<Body>, ApiError> {
    let info: ResourceInfo = shared
        .lock()
        .registry()
        .lookup(&path.group, &path.version, &path.plural)
        .cloned()
        .ok_or_else(ApiError::no_route)?;
    if (!info.namespaced && path.namespace.is_some())
        || (info.namespaced && path.namespace.is_none() && path.name.is_some())
    {
        return Err(ApiError::no_route());
    }
    let status = match path.subresource.as_deref() {
        None => false,
        Some("status") if info.status_subresource => true,
        Some(_) => return Err(ApiError::no_route()),
    };
    let q = parse_query(req.uri().query());
    if q.contains_key("dryRun") {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the in-memory test API server",
        ));
    }
    let ns = path.namespace.clone();
    let ns = ns.as_deref();
    let mut filter = Filter {
        gr: info.group_resource(),
        namespace: path.namespace.clone(),
        labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?,
    };
    let watch = path.legacy_watch || flag(&q, "watch");
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let now = now();
    let plural = Some(info.plural.as_str());
    let manager = field_manager(&q, &req);
    let method = req.method().clone();
    match (method, path.name.as_deref()) {
        (Method::GET, name) if watch => {
            shared.count("watch", plural);
            if let Some(name) = name {
                filter
                    .fields
                    .0
                    .push(("metadata.name".into(), true, name.to_string()));
            }
            start_watch(shared, info, filter, &q)
        }
        (Method::GET, None) => {
            shared.count("list", plural);
            let limit = match q.get("limit").filter(|l| !l.is_empty()) {
                Some(l) => Some(
                    l.parse::<usize>()
                        .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
                ),
                None => None,
            };
            let exact = match (
                q.get("resourceVersionMatch").map(String::as_str),
                q.get("resourceVersion"),
            ) {
                (Some("Exact"), Some(rv)) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
                _ => None,
            };
            let cont = q
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(String::as_str);
            let list = shared.lock().list(&info, &filter, limit, cont, exact)?;
            Ok(json_response(StatusCode::OK, &list))
        }
        (Method::GET, Some(name)) => {
            shared.count("get", plural);
            Ok(json_response(
                StatusCode::OK,
                &shared.lock().get(&info, ns, name)?,
            ))
        }
        (Method::POST, None) => {
            shared.count("create", plural);
            let body = parse_object(&content_type, &read_body(req).await?)?;
            let created = shared.mutate(|s| s.create(&info, ns, body, &manager, &now))?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::PUT, Some(name)) => {
            shared.count("update", plural);
            let body = parse_object(&content_type, &read_body(req).await?)?;
            let updated = shared.mutate(|s| {
                if status {
                    s.update_status(&info, ns, name, body, &manager, &now)
                } else {
                    s.update(&info, ns, name, body, &manager, &now)
                }
            })?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (Method::PATCH, Some(name)) => {
            shared.count("patch", plural);
            let kind = PatchKind::from_content_type(&content_type)?;
            let body = read_body(req).await?;
            let preq = PatchRequest {
                kind,
                body: &body,
                field_manager: q.get("fieldManager").map(String::as_str),
                update_manager: &manager,
                force: flag(&q, "force"),
                status,
            };
            let patched = shared.mutate(|s| s.patch(&info, ns, name, preq, &now))?;
            Ok(json_response(StatusCode::OK, &patched))
        }
        (Method::DELETE, Some(name)) => {
            shared.count("delete", plural);
            let body = read_body(req).await?;
            let pre = preconditions(&body)?;
            let deleted = shared.mutate(|s| s.delete(&info, ns, name, &pre, &now))?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        (Method::DELETE, None) => {
            shared.count("deletecollection", plural);
            let list = shared.mutate(|s| s.delete_collection(&info, &filter, &now));
            Ok(json_response(StatusCode::OK, &list))
        }
        (method, _) => Err(ApiError::method_not_allowed(format!(
            "{method} is not allowed on {}",
            if path.name.is_some() {
                "an object"
            } else {
                "a collection"
            }
        ))),
    }
}

/// The manager of a write: the `fieldManager` parameter, else the user agent's product name
/// (what precedes the first `/`), else `unknown`, like the real API server.
fn field_manager(q: &std::collections::HashMap<String, String>, req: &Request<Incoming>) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    req.headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

/// `DeleteOptions.preconditions` from an optional DELETE body.
fn preconditions(body: &[u8]) -> Result<Preconditions, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Preconditions::default());
    }
    let opts: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
    let get = |f: &str| {
        opts.pointer(&format!("/preconditions/{f}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Preconditions {
        resource_version: get("resourceVersion"),
        uid: get("uid"),
    })
}

/// Where a watch starts.
enum Start {
    /// Send the current state as ADDED first.
    Initial,
    /// Replay history after this version.
    After(u64),
}

fn start_watch(
    shared: &Arc<Shared>,
    info: ResourceInfo,
    filter: Filter,
    q: &std::collections::HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let send_initial = flag(q, "sendInitialEvents");
    let bookmarks = flag(q, "allowWatchBookmarks");
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let start = if send_initial || rv.is_empty() || rv == "0" {
        Start::Initial
    } else {
        Start::After(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        )
    };
    let timeout = match q.get("timeoutSeconds").filter(|t| !t.is_empty()) {
        Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid timeoutSeconds {t:?}"))
        })?)),
        None => None,
    };
    let (tx, rx) = mpsc::channel(256);
    let task = WatchTask {
        shared: shared.clone(),
        info,
        filter,
        send_initial,
        bookmarks,
        timeout,
        tx,
    };
    tokio::spawn(task.run(start));
    let mut resp = Response::new(Either::Right(WatchBody(rx)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

struct WatchTask {
    shared: Arc<Shared>,
    info: ResourceInfo,
    filter: Filter,
    send_initial: bool,
    bookmarks: bool,
    timeout: Option<Duration>,
    tx: mpsc::Sender<Bytes>,
}

impl WatchTask {
    async fn send(&self, kind: &str, object: Value) -> bool {
        let mut line = json!({"type": kind, "object": object})
            .to_string()
            .into_bytes();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }

    async fn bookmark(&self, rv: u64, initial_end: bool) -> bool {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": metadata});
        self.send("BOOKMARK", object).await
    }

    async fn run(self, start: Start) {
        let mut changes = self.shared.changes.subscribe();
        let mut state = self.shared.state.subscribe();
        if *state.borrow_and_update() != RunState::Running {
            return;
        }
        let mut cursor = match start {
            Start::Initial => {
                let (items, rv) = self.shared.lock().snapshot(&self.filter);
                for obj in items {
                    if !self.send("ADDED", Store::present(&self.info, &obj)).await {
                        return;
                    }
                }
                if self.send_initial && !self.bookmark(rv, true).await {
                    return;
                }
                rv
            }
            Start::After(rv) => rv,
        };
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        let interval = self.bookmark_interval();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            let batch = self.shared.lock().events_after(cursor);
            match batch {
                Err(err) => {
                    self.send("ERROR", err.to_status()).await;
                    return;
                }
                Ok((events, now)) => {
                    for ev in events {
                        if let Some((kind, obj)) = self.filter.translate(&ev)
                            && !self.send(kind, Store::present(&self.info, &obj)).await
                        {
                            return;
                        }
                    }
                    cursor = now;
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = ticker.tick(), if self.bookmarks => {
                    if !self.bookmark(cursor, false).await {
                        return;
                    }
                }
                _ = sleep_until(deadline) => return,
                changed = state.changed() => {
                    if changed.is_err() || *state.borrow_and_update() != RunState::Running {
                        return;
                    }
                }
                _ = self.tx.closed() => return,
            }
        }
    }

    fn bookmark_interval(&self) -> Duration {
        self.shared.bookmark_interval.max(Duration::from_millis(10))
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

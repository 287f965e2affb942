//! The AdminServer: HTTP on `admin.serverAddress:admin.serverPort`, commands under `admin.commandURL`
//! (default `/commands`), answered as ZooKeeper's Jetty AdminServer answers them.
//!
//! `GET <url>` lists the commands as HTML links; `GET <url>/<name>?k=v` answers pretty JSON with HTTP 200,
//! unknown names included (`"error": "Unknown command: <name>"`).
//! The state comes from the server task: a request sends [`CoreEvent::Admin`] and waits for the rendered
//! [`admin::Response`], as a four-letter word does, so answers never race the state machine.
//!
//! Served with axum (hyper 1) on HTTP/1.1; other methods than GET get 405 (ZooKeeper refuses TRACE).
//! `admin.idleTimeout` is not applied: axum's server keeps an idle keep-alive connection until the client
//! closes it, which costs one task; see docs/operations.md.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::connection::CoreEvent;
use crate::server::admin;

/// Where the AdminServer listens and under which URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminServerConfig {
    /// `admin.serverAddress:admin.serverPort`.
    pub addr: SocketAddr,
    /// `admin.commandURL`.
    pub command_url: String,
}

/// The AdminServer and the metrics exporter, as zoo.cfg configures them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Monitoring {
    /// The AdminServer, unless `admin.enableServer=false`.
    pub admin: Option<AdminServerConfig>,
    /// `metricsProvider.httpPort` on the wildcard address, unless the port is 0 (disabled).
    pub metrics_addr: Option<SocketAddr>,
    /// zoo.cfg as read at startup (the `initial_configuration` command).
    pub initial_config: String,
}

/// Binds and spawns the AdminServer and the metrics exporter that `monitoring` enables; a port that does
/// not bind is logged and skipped. The returned tasks are aborted when the server stops.
pub async fn start(
    monitoring: &Monitoring,
    events: &mpsc::Sender<CoreEvent>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(addr) = monitoring.metrics_addr {
        if let Some(handle) = super::metrics::install_recorder() {
            // Samples are recorded from now on, whether or not the port binds: fold them regularly.
            tasks.push(tokio::spawn(super::metrics::upkeep(handle.clone())));
            if let Some(listener) = super::metrics::bind(addr).await {
                tasks.push(tokio::spawn(super::metrics::serve(
                    listener,
                    handle,
                    events.clone(),
                )));
            }
        }
    }
    if let Some(cfg) = &monitoring.admin {
        if let Some(listener) = bind(cfg.addr).await {
            tasks.push(tokio::spawn(serve(
                listener,
                cfg.command_url.clone(),
                events.clone(),
            )));
        }
    }
    tasks
}

#[derive(Clone)]
struct Admin {
    command_url: String,
    events: mpsc::Sender<CoreEvent>,
}

/// Binds the AdminServer's port; a failure is logged and the server runs without it (as ZooKeeper logs
/// "Problem starting AdminServer" and carries on).
pub async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => {
            tracing::info!("AdminServer on http://{addr}");
            Some(l)
        }
        Err(err) => {
            tracing::warn!("AdminServer port {addr} not bound, AdminServer disabled: {err}");
            None
        }
    }
}

/// The router for `command_url`, answering through `events`.
pub fn router(command_url: &str, events: mpsc::Sender<CoreEvent>) -> Router {
    let base = format!("/{}", command_url.trim_matches('/'));
    let state = Admin {
        command_url: base.clone(),
        events,
    };
    let commands = if base == "/" {
        "/{name}".to_string()
    } else {
        format!("{base}/{{name}}")
    };
    let mut app = Router::new()
        .route(&base, get(listing))
        .route(&commands, get(command));
    if base != "/" {
        app = app.route(&format!("{base}/"), get(listing));
    }
    app.with_state(state)
}

/// Serves the AdminServer until the task is aborted.
pub async fn serve(listener: TcpListener, command_url: String, events: mpsc::Sender<CoreEvent>) {
    if let Err(err) = axum::serve(listener, router(&command_url, events)).await {
        tracing::warn!("AdminServer stopped: {err}");
    }
}

async fn listing(State(admin): State<Admin>) -> Html<String> {
    Html(admin::listing_html(&admin.command_url))
}

async fn command(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let resp = match admin::lookup(&name) {
        None => admin::unknown(&name),
        Some(spec) => {
            let (reply, rx) = oneshot::channel();
            let params: BTreeMap<String, String> = params.into_iter().collect();
            let sent = admin
                .events
                .send(CoreEvent::Admin {
                    command: spec,
                    params,
                    reply,
                })
                .await;
            // A failed send hands the event (and its reply sender) back: drop it before waiting.
            let answer = match sent {
                Ok(()) => rx.await.ok(),
                Err(_) => None,
            };
            match answer {
                Some(resp) => resp,
                None => admin::Response {
                    command: spec.primary.to_string(),
                    error: Some(crate::server::fourlw::NOT_SERVING.trim_end().to_string()),
                    fields: Vec::new(),
                },
            }
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        resp.to_pretty_json(),
    )
        .into_response()
}

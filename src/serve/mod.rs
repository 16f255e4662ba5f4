//! The decision service behind `ruledeck serve`: HTTP/JSON decisions over a deck compiled
//! from files or over a release store's current release, hot-swapped as the store moves,
//! and behavior events through the outreach runtime (`POST /v1/events`).
//!
//! Owns: the async runtime, the listener, the store watcher and graceful shutdown; the
//! routes live in [`api`], what decides in [`deck`], the outreach state in [`events`], the
//! metrics in [`metrics`]. Must not: reach below the engine, release and outreach host APIs
//! (it is a host like any other), or run a decision or an ingestion on an async worker
//! (providers block, commits fsync: both go to the blocking pool).
//! Built only with the `serve` feature; the rest of the library needs no async runtime.

pub mod api;
pub mod auth;
pub mod decision_log;
pub mod deck;
pub mod events;
pub mod metrics;
pub mod providers;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

pub use api::{router, Service};
pub use decision_log::DecisionLog;
pub use deck::{Deck, SharedTags, Snapshot, TagSources};
pub use events::Events;
pub use metrics::Metrics;

/// How often the store's `CURRENT` is read: a new release serves within this (plus its
/// load time).
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How to run the service (beyond what it decides with).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// `--decision-log PATH`: one JSON line per decision (off when `None`).
    pub decision_log: Option<std::path::PathBuf>,
    /// `--decision-log-rotate-bytes`: rotate the log past this size.
    pub decision_log_rotate_bytes: Option<u64>,
    /// `--token-file`: bearer tokens, one a line.
    pub token_file: Option<std::path::PathBuf>,
    /// `--body-timeout-ms`: how long a request body may take (default
    /// [`crate::limits::HTTP_BODY_TIMEOUT_MS`]).
    pub body_timeout_ms: Option<u64>,
    /// `--header-timeout-ms`: how long a request line and headers may take (default
    /// [`crate::limits::HTTP_HEADER_TIMEOUT_MS`]).
    pub header_timeout_ms: Option<u64>,
    /// `--outreach-state DIR`: turns `POST /v1/events` on, with its state in
    /// `DIR/outreach.redb` (off when `None`).
    pub outreach_state: Option<std::path::PathBuf>,
    /// Where event scenes' loaded tags and channel zones come from: the service's
    /// `--providers` and `--tags` (every tag missing when `None`).
    pub outreach_sources: Option<TagSources>,
}

/// Sends the service's logs (`tracing`) to stderr, once per process; `RUST_LOG`-style
/// filtering is not built in: info and above are written.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

/// Serves `deck` until SIGTERM or SIGINT, then drains: requests in flight finish, new
/// connections are refused, and it returns `Ok`. Prints `listening on ADDR` (the bound
/// address, so port 0 works) as the first line of stdout. `metrics` must be the one the
/// deck's [`TagSources`] report to.
pub fn serve(deck: Deck, metrics: Arc<Metrics>, options: Options) -> Result<(), String> {
    init_logging();
    let listen = options.listen.as_str();
    let tokens = match &options.token_file {
        Some(path) => Some(auth::Tokens::load(path)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on `{listen}`: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
        let log = options
            .decision_log
            .as_deref()
            .map(|path| DecisionLog::start(path, options.decision_log_rotate_bytes, None, metrics.clone()));
        let body_timeout =
            Duration::from_millis(options.body_timeout_ms.unwrap_or(crate::limits::HTTP_BODY_TIMEOUT_MS).max(1));
        let inline = !deck.has_remote_providers();
        let sources = options.outreach_sources.clone();
        let sources = sources.unwrap_or_else(|| TagSources { tags: None, providers: None, metrics: metrics.clone() });
        let events = options.outreach_state.clone().map(|dir| Arc::new(Events::new(dir, sources)));
        let service = Arc::new(Service { deck, metrics, log, tokens, body_timeout, inline, events });
        // The first load happens before the address is announced, so a caller that waits
        // for the line finds the store's current release (if it loads) already served. The
        // outreach state is opened then too (when a release is served), so one that cannot
        // be opened stops the service here rather than failing its first events.
        let first = service.clone();
        tokio::task::spawn_blocking(move || {
            first.deck.refresh(&first.metrics);
            match (&first.events, first.deck.snapshot()) {
                (Some(events), Some(snapshot)) => events.open_now(&snapshot),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| format!("cannot load the deck: {e}"))??;
        if matches!(service.deck, Deck::Store(_)) {
            tokio::spawn(watch(service.clone()));
        }
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {addr}");
        let _ = stdout.flush();
        let header_timeout =
            Duration::from_millis(options.header_timeout_ms.unwrap_or(crate::limits::HTTP_HEADER_TIMEOUT_MS).max(1));
        run_connections(listener, router(service.clone()), header_timeout).await;
        if let Some(log) = &service.log {
            log.close();
        }
        tracing::info!("drained; exiting");
        Ok(())
    })
}

/// Accepts connections until SIGTERM or SIGINT, each served by hyper's HTTP/1 with
/// keep-alive, `TCP_NODELAY` (answers are small: no waiting to coalesce them) and a header
/// read timeout (a client that sends its headers slowly is disconnected); then stops
/// accepting and waits for the connections: requests in flight finish, idle ones close.
async fn run_connections(listener: tokio::net::TcpListener, app: axum::Router, header_timeout: Duration) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, typically: back off instead of spinning.
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Polls the store and swaps to each new current release (on the blocking pool: loading
/// reads and hashes the bundle). One refresh at a time.
async fn watch(service: Arc<Service>) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = service.clone();
        let _ = tokio::task::spawn_blocking(move || s.deck.refresh(&s.metrics)).await;
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

//! `ruledeck lsp`: the language server, on stdio.
//!
//! Owns: the protocol loop — reading messages in order, keeping documents in sync (full
//! sync: every change carries the whole text), coalescing edits, and publishing diagnostics.
//! Answers come from [`features`] over the [`world::World`]; the index of each file from
//! [`index`]. Sits on the public front end (`syntax::parse`, `check::check_parsed`, the lexer)
//! and must not reach into the checker's internals or the compiler.
//!
//! Responsiveness: messages are handled one at a time, but before any re-check the server
//! drains every message already queued. Edits in that batch only replace texts; the deck is
//! re-checked once, for the newest text, after the batch (or sooner if a request in the
//! batch needs the current analysis). Requests cancelled while queued are answered with
//! `RequestCancelled` without being computed.

mod features;
mod index;
mod lines;
mod world;

use std::collections::BTreeSet;
use std::error::Error;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use world::World;

pub use features::keywords;

/// The single call site of the formatter: document formatting formats exactly as
/// `ruledeck fmt` does.
fn format_source(name: &str, text: &str) -> Result<String, crate::Errors> {
    crate::fmt::format_source(name, text)
}

/// Runs the server on stdin/stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), Box<dyn Error + Send + Sync>> {
    let (connection, io_threads) = Connection::stdio();
    let result = run(&connection);
    // The writer thread ends only when the last sender is gone.
    drop(connection);
    io_threads.join()?;
    result?;
    Ok(())
}

/// What the server can do, as announced in `initialize`.
fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::FULL),
            save: Some(TextDocumentSyncSaveOptions::Supported(false)),
            ..Default::default()
        })),
        position_encoding: Some(PositionEncodingKind::UTF16),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some([".", " ", "[", ","].map(String::from).to_vec()),
            ..Default::default()
        }),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: SemanticTokensLegend {
                    token_types: features::TOKEN_TYPES.to_vec(),
                    token_modifiers: features::TOKEN_MODIFIERS.to_vec(),
                },
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: Default::default(),
            },
        )),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Runs the protocol over `connection`: the handshake, then messages until `exit`.
pub fn run(connection: &Connection) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (id, params) = connection.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params)?;
    let result = InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo { name: "ruledeck".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
    };
    connection.initialize_finish(id, serde_json::to_value(result)?)?;
    // lsp-server hands messages over one at a time (a rendezvous channel), so a queue of
    // edits would never be visible at once. This pump moves them into an unbounded queue as
    // fast as they are read, so the main loop sees every message that arrived meanwhile.
    let (queue, inbox) = std::sync::mpsc::channel();
    let receiver = connection.receiver.clone();
    std::thread::spawn(move || {
        for message in receiver {
            if queue.send(message).is_err() {
                break;
            }
        }
    });
    let mut server = Server { world: World::default(), out: connection, inbox, shutdown: false };
    #[allow(deprecated)] // `root_uri` is the fallback for clients without workspace folders.
    let roots: Vec<Uri> = match params.workspace_folders {
        Some(folders) if !folders.is_empty() => folders.into_iter().map(|f| f.uri).collect(),
        _ => params.root_uri.into_iter().collect(),
    };
    for root in roots {
        if let Some(path) = world::uri_to_path(&root) {
            server.world.scan(&path);
        }
    }
    server.main_loop()
}

struct Server<'c> {
    world: World,
    out: &'c Connection,
    /// Every message read so far and not yet handled, in order.
    inbox: std::sync::mpsc::Receiver<Message>,
    shutdown: bool,
}

impl Server<'_> {
    fn main_loop(&mut self) -> Result<(), Box<dyn Error + Send + Sync>> {
        // Workspace files found at start-up get their diagnostics before any edit.
        self.publish_dirty()?;
        while let Ok(first) = self.inbox.recv() {
            let mut batch = vec![first];
            batch.extend(self.inbox.try_iter());
            let cancelled: BTreeSet<RequestId> = batch
                .iter()
                .filter_map(|m| match m {
                    Message::Notification(n) if n.method == notif::Cancel::METHOD => {
                        serde_json::from_value::<CancelParams>(n.params.clone()).ok().map(|p| match p.id {
                            NumberOrString::Number(n) => RequestId::from(n),
                            NumberOrString::String(s) => RequestId::from(s),
                        })
                    }
                    _ => None,
                })
                .collect();
            for message in batch {
                match message {
                    Message::Request(r) if cancelled.contains(&r.id) => {
                        self.send(Response::new_err(r.id, ErrorCode::RequestCanceled as i32, "cancelled".into()))?;
                    }
                    Message::Request(r) => self.request(r)?,
                    Message::Notification(n) if n.method == notif::Exit::METHOD => return Ok(()),
                    Message::Notification(n) => self.notification(n)?,
                    Message::Response(_) => {}
                }
            }
            self.publish_dirty()?;
        }
        Ok(())
    }

    fn send(&self, message: impl Into<Message>) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.out.sender.send(message.into())?;
        Ok(())
    }

    /// Re-checks every changed deck once and publishes its files' diagnostics; first tells
    /// the client's log about files left out since the last time.
    fn publish_dirty(&mut self) -> Result<(), Box<dyn Error + Send + Sync>> {
        for message in std::mem::take(&mut self.world.notices) {
            let params = LogMessageParams { typ: MessageType::WARNING, message };
            self.send(Notification::new(notif::LogMessage::METHOD.into(), params))?;
        }
        let decks: Vec<String> = self.world.dirty.iter().cloned().collect();
        for deck in decks {
            let keys = self.world.recheck(&deck);
            self.publish(&keys)?;
        }
        Ok(())
    }

    fn publish(&self, keys: &[String]) -> Result<(), Box<dyn Error + Send + Sync>> {
        for k in keys {
            let doc = &self.world.docs[k];
            let params = PublishDiagnosticsParams {
                uri: doc.uri.clone(),
                diagnostics: doc.diagnostics.clone(),
                version: doc.version,
            };
            self.send(Notification::new(notif::PublishDiagnostics::METHOD.into(), params))?;
        }
        Ok(())
    }

    fn clear(&self, uri: Uri) -> Result<(), Box<dyn Error + Send + Sync>> {
        let params = PublishDiagnosticsParams { uri, diagnostics: Vec::new(), version: None };
        self.send(Notification::new(notif::PublishDiagnostics::METHOD.into(), params))
    }

    fn notification(&mut self, n: Notification) -> Result<(), Box<dyn Error + Send + Sync>> {
        match n.method.as_str() {
            notif::DidOpenTextDocument::METHOD => {
                if let Some(p) = params::<DidOpenTextDocumentParams>(n.params) {
                    self.world.open(p.text_document.uri, p.text_document.text, p.text_document.version);
                }
            }
            notif::DidChangeTextDocument::METHOD => {
                if let Some(p) = params::<DidChangeTextDocumentParams>(n.params) {
                    // Full sync: the last change holds the whole new text.
                    if let Some(change) = p.content_changes.into_iter().last() {
                        self.world.change(&p.text_document.uri, change.text, p.text_document.version);
                    }
                }
            }
            notif::DidCloseTextDocument::METHOD => {
                if let Some(p) = params::<DidCloseTextDocumentParams>(n.params) {
                    if let Some(gone) = self.world.close(&p.text_document.uri) {
                        self.clear(gone)?;
                    }
                }
            }
            notif::DidChangeWatchedFiles::METHOD => {
                if let Some(p) = params::<DidChangeWatchedFilesParams>(n.params) {
                    for change in p.changes {
                        if let Some(gone) = self.world.disk_changed(&change.uri) {
                            self.clear(gone)?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn request(&mut self, r: Request) -> Result<(), Box<dyn Error + Send + Sync>> {
        if r.method == req::Shutdown::METHOD {
            self.shutdown = true;
            return self.send(Response::new_ok(r.id, ()));
        }
        if self.shutdown {
            return self.send(Response::new_err(r.id, ErrorCode::InvalidRequest as i32, "shutting down".into()));
        }
        // Requests are answered from the current text: re-check its deck first if it changed.
        // Completion reads its context from the current text and only names from the indexes,
        // which may lag one edit, so it answers at once (the check follows after the batch).
        if let Some(uri) = request_uri(&r).filter(|_| r.method != req::Completion::METHOD) {
            let keys = self.world.refresh(&world::key(&uri));
            self.publish(&keys)?;
        }
        let w = &self.world;
        let id = r.id.clone();
        let response = match r.method.as_str() {
            req::HoverRequest::METHOD => answer(id, r.params, |p| features::hover(w, &p)),
            req::GotoDefinition::METHOD => answer(id, r.params, |p| features::definition(w, &p)),
            req::References::METHOD => answer(id, r.params, |p| features::references(w, &p)),
            req::Completion::METHOD => answer(id, r.params, |p| features::completion(w, &p)),
            req::PrepareRenameRequest::METHOD => answer(id, r.params, |p| features::prepare_rename(w, &p)),
            req::Rename::METHOD => match serde_json::from_value::<RenameParams>(r.params) {
                Ok(p) => match features::rename(w, &p) {
                    Ok(edit) => Response::new_ok(id, edit),
                    Err(message) => Response::new_err(id, ErrorCode::InvalidRequest as i32, message),
                },
                Err(e) => Response::new_err(id, ErrorCode::InvalidParams as i32, e.to_string()),
            },
            req::Formatting::METHOD => answer(id, r.params, |p| features::formatting(w, &p)),
            req::DocumentSymbolRequest::METHOD => answer(id, r.params, |p| features::document_symbols(w, &p)),
            req::SemanticTokensFullRequest::METHOD => answer(id, r.params, |p| features::semantic_tokens(w, &p)),
            req::CodeActionRequest::METHOD => answer(id, r.params, |p| features::code_actions(w, &p)),
            _ => Response::new_err(id, ErrorCode::MethodNotFound as i32, format!("unsupported request `{}`", r.method)),
        };
        self.send(response)
    }
}

fn params<P: DeserializeOwned>(value: serde_json::Value) -> Option<P> {
    serde_json::from_value(value).ok()
}

/// Decodes the parameters, runs `f`, and wraps its answer (or the decoding error).
fn answer<P: DeserializeOwned, R: Serialize>(
    id: RequestId,
    value: serde_json::Value,
    f: impl FnOnce(P) -> R,
) -> Response {
    match serde_json::from_value::<P>(value) {
        Ok(p) => Response::new_ok(id, f(p)),
        Err(e) => Response::new_err(id, ErrorCode::InvalidParams as i32, e.to_string()),
    }
}

/// The document a request is about (every request this server answers names one).
fn request_uri(r: &Request) -> Option<Uri> {
    let doc = r.params.get("textDocument")?;
    serde_json::from_value(doc.get("uri")?.clone()).ok()
}

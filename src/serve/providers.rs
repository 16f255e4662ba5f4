//! The tag providers of `--providers FILE.toml`: `file`, `http`, `redis` and `package`.
//!
//! Owns: reading and validating the configuration (every error names the file, line, column
//! and field), and each kind's [`Provider`]: one call per batch, one result per query in
//! order, a timeout or failure answered as [`Loaded::Failed`] for every query of the batch
//! (the engine makes those tags unknown, and unknown never grants). Must not: cache (the
//! engine caches per each tag's `cache`), decide, or run on an async worker (providers
//! block; decisions run on the blocking pool, and the engine calls the remote ones of one
//! suspension in parallel).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use toml::Spanned;

use crate::engine::{Loaded, Provider, TagQuery, TagsFile};
use crate::limits::{MAX_DATA_FILE_BYTES, MAX_PROVIDERS_FILE_BYTES, MAX_PROVIDER_ANSWER_BYTES};

/// Idle redis connections kept per provider (more are opened under load and closed after).
const MAX_REDIS_IDLE_CONNECTIONS: usize = 64;

/// `timeout_ms` when a remote provider's table gives none.
pub const DEFAULT_TIMEOUT_MS: u64 = 50;

/// The providers a `--providers` file configures, by the name tags give in `from "…"`.
pub struct Providers {
    /// Name → provider, in name order.
    pub named: BTreeMap<String, Arc<dyn Provider>>,
    /// The file they came from (for messages).
    pub path: PathBuf,
}

impl Providers {
    /// Provider names `program`'s tags load from that this configuration does not give, as
    /// messages naming the tag (sorted, so output is stable).
    pub fn missing_for(&self, program: &crate::Program) -> Vec<String> {
        let mut missing: Vec<String> = program
            .provider_names()
            .filter(|(_, provider)| !self.named.contains_key(*provider))
            .map(|(tag, provider)| {
                format!(
                    "tag `{tag}` loads from provider `{provider}`, which `{}` does not configure (it has: {}); add a \
                     `[providers.{provider}]` table",
                    self.path.display(),
                    if self.named.is_empty() {
                        "none".to_string()
                    } else {
                        self.named.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    }
                )
            })
            .collect();
        missing.sort();
        missing
    }
}

/// Every field any kind takes; which apply is checked per kind, so a misplaced field is an
/// error naming it, and an unknown one is refused by serde with its position.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    kind: Spanned<String>,
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    expires: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    providers: BTreeMap<String, Spanned<RawProvider>>,
}

/// A place in the configuration file, rendered `FILE:LINE:COL`.
struct Place<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Place<'_> {
    fn at(&self, offset: usize) -> String {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{col}", self.path.display())
    }

    fn error<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl std::fmt::Display,
    ) -> Result<T, String> {
        Err(format!("{}: `{field}`: {message}", self.at(span.start)))
    }
}

/// Reads and validates a `--providers` file and builds its providers. Relative `path`s are
/// relative to the file's directory. Nothing is connected yet: a remote source that is down
/// makes its tags unknown at request time, it does not stop the service from starting.
pub fn load(path: &Path) -> Result<Providers, String> {
    let bytes = crate::files::read_bounded(path, MAX_PROVIDERS_FILE_BYTES).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| format!("`{}`: the file is not valid UTF-8", path.display()))?;
    let place = Place { path, text: &text };
    let raw: RawFile = toml::from_str(&text).map_err(|e| match e.span() {
        Some(span) => format!("{}: {}", place.at(span.start), e.message()),
        None => format!("{}: {}", path.display(), e.message()),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut named: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
    for (name, table) in raw.providers {
        let span = table.span();
        let table = table.into_inner();
        let field = |f: &str| format!("providers.{name}.{f}");
        let kind = table.kind.get_ref().as_str();
        let allowed: &[&str] = match kind {
            "file" => &["path", "timeout_ms"],
            "http" => &["url", "timeout_ms"],
            "redis" => &["url", "key", "timeout_ms"],
            "package" => &["path", "expires", "timeout_ms"],
            other => {
                return place.error(
                    table.kind.span(),
                    &field("kind"),
                    format!("unknown provider kind `{other}`; the kinds are `file`, `http`, `redis` and `package`"),
                )
            }
        };
        let given = [
            ("path", table.path.as_ref().map(Spanned::span)),
            ("url", table.url.as_ref().map(Spanned::span)),
            ("key", table.key.as_ref().map(Spanned::span)),
            ("expires", table.expires.as_ref().map(Spanned::span)),
        ];
        for (f, s) in given {
            if let Some(s) = s {
                if !allowed.contains(&f) {
                    return place.error(
                        s,
                        &field(f),
                        format!("a `{kind}` provider has no `{f}`; it takes {}", list(allowed)),
                    );
                }
            }
        }
        let required = |f: &str, v: &Option<Spanned<String>>| -> Result<(String, std::ops::Range<usize>), String> {
            match v {
                Some(v) => Ok((v.get_ref().clone(), v.span())),
                None => place.error(span.clone(), &field(f), format!("a `{kind}` provider needs `{f}`")),
            }
        };
        let timeout = match &table.timeout_ms {
            Some(t) if *t.get_ref() == 0 || *t.get_ref() > 60_000 => {
                return place.error(t.span(), &field("timeout_ms"), "must be between 1 and 60000 milliseconds")
            }
            Some(t) => Duration::from_millis(*t.get_ref()),
            None => Duration::from_millis(DEFAULT_TIMEOUT_MS),
        };
        let provider: Arc<dyn Provider> = match kind {
            "file" => {
                let (p, s) = required("path", &table.path)?;
                let file = base.join(p);
                let bytes = crate::files::read_bounded(&file, MAX_DATA_FILE_BYTES)
                    .or_else(|e| place.error(s.clone(), &field("path"), e))?;
                let doc = crate::engine::parse_json(&bytes)
                    .or_else(|e| place.error(s.clone(), &field("path"), format!("`{}`: {e}", file.display())))?;
                let tags = TagsFile::from_json(doc)
                    .or_else(|e| place.error(s, &field("path"), format!("`{}`: {e}", file.display())))?;
                Arc::new(tags)
            }
            "http" => {
                let (url, s) = required("url", &table.url)?;
                check_http_url(&url).or_else(|e| place.error(s, &field("url"), e))?;
                Arc::new(HttpProvider::new(name.clone(), url, timeout))
            }
            "redis" => {
                let (url, s) = required("url", &table.url)?;
                if !url.starts_with("redis://") {
                    return place.error(s, &field("url"), "a redis URL starts with `redis://` (TLS is not built in)");
                }
                let client = redis::Client::open(url.as_str())
                    .or_else(|e| place.error(s, &field("url"), format!("not a redis URL: {e}")))?;
                let (key, ks) = match &table.key {
                    Some(k) => (k.get_ref().clone(), k.span()),
                    None => ("{key}".to_string(), span.clone()),
                };
                if key.matches("{key}").count() != 1 {
                    return place.error(
                        ks,
                        &field("key"),
                        "the key template must contain `{key}` exactly once, e.g. \"user:{key}\"",
                    );
                }
                Arc::new(RedisProvider::new(name.clone(), client, key, timeout))
            }
            "package" => {
                let (p, s) = required("path", &table.path)?;
                let file = base.join(p);
                let keys = read_package(&file).or_else(|e| place.error(s, &field("path"), e))?;
                let expires = match &table.expires {
                    None => None,
                    Some(e) => match crate::time::parse_date(e.get_ref()) {
                        // Served through the whole day it names.
                        Some(day) => Some(day + 86_400),
                        None => {
                            return place.error(
                                e.span(),
                                &field("expires"),
                                format!("`{}` is not a date; write it `YYYY-MM-DD`, e.g. \"2026-12-31\"", e.get_ref()),
                            )
                        }
                    },
                };
                Arc::new(PackageProvider { keys, expires_at: expires })
            }
            _ => unreachable!("kinds were checked above"),
        };
        named.insert(name, provider);
    }
    Ok(Providers { named, path: path.to_path_buf() })
}

fn list(fields: &[&str]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// `http://HOST[:PORT]/PATH`: the scheme, a host, and a port that is a number.
fn check_http_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Err("https is not built in; call the tag service over http:// (e.g. through a local TLS proxy)".into());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("`{url}` is not an http:// URL, e.g. \"http://127.0.0.1:9100/tags\""));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no host, e.g. \"http://127.0.0.1:9100/tags\""));
    }
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(format!("`{url}`: the port `{port}` is not a number from 0 to 65535"));
        }
    }
    Ok(())
}

/// A user package: one key a line; blank lines and `#` comments are skipped.
fn read_package(path: &Path) -> Result<HashSet<String>, String> {
    let bytes = crate::files::read_bounded(path, MAX_DATA_FILE_BYTES).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| format!("`{}` is not valid UTF-8", path.display()))?;
    let mut keys = HashSet::new();
    for line in text.lines() {
        let key = line.trim();
        if !key.is_empty() && !key.starts_with('#') {
            keys.insert(key.to_string());
        }
    }
    Ok(keys)
}

/// `package`: whether the key is in the package (`true`) or not (`false`), until the day
/// after `expires`; from then on the package is not served and its tags are missing.
pub struct PackageProvider {
    keys: HashSet<String>,
    /// The first instant it is no longer served.
    expires_at: Option<i64>,
}

impl Provider for PackageProvider {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        self.load_at(queries, None)
    }

    fn load_at(&self, queries: &[TagQuery<'_>], now: Option<i64>) -> Vec<Loaded> {
        if let Some(expires_at) = self.expires_at {
            let now = now.unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
            });
            if now >= expires_at {
                return vec![Loaded::Missing; queries.len()];
            }
        }
        queries.iter().map(|q| Loaded::Value(Value::Bool(self.keys.contains(q.key)))).collect()
    }
}

/// `http`: one POST per batch, `{"queries": [{"tag", "entity", "field", "key"}, …]}`,
/// answered `{"values": [...]}` in order (`null`: no value). A pooled keep-alive agent.
pub struct HttpProvider {
    name: String,
    url: String,
    agent: ureq::Agent,
    timeout: Duration,
}

impl HttpProvider {
    fn new(name: String, url: String, timeout: Duration) -> HttpProvider {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            // As many idle keep-alive connections as decisions can run at once.
            .max_idle_connections_per_host(64)
            .build();
        HttpProvider { name, url, agent, timeout }
    }

    fn call(&self, queries: &[TagQuery<'_>]) -> Result<Vec<Loaded>, String> {
        let body = json!({
            "queries": queries
                .iter()
                .map(|q| json!({"tag": q.tag, "entity": q.entity, "field": q.field, "key": q.key}))
                .collect::<Vec<_>>()
        });
        let response =
            match self.agent.post(&self.url).set("Content-Type", "application/json").send_string(&body.to_string()) {
                Ok(r) => r,
                Err(ureq::Error::Status(code, _)) => return Err(format!("answered HTTP {code}")),
                Err(ureq::Error::Transport(t)) => {
                    let text = t.to_string();
                    return Err(if text.contains("timed out") || text.contains("Timeout") {
                        format!("timed out after {} ms", self.timeout.as_millis())
                    } else {
                        text
                    });
                }
            };
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(MAX_PROVIDER_ANSWER_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the answer: {e}"))?;
        if bytes.len() > MAX_PROVIDER_ANSWER_BYTES {
            return Err(format!("the answer is larger than {MAX_PROVIDER_ANSWER_BYTES} bytes"));
        }
        let doc = crate::engine::parse_json(&bytes).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let Some(Value::Array(values)) = doc.get("values") else {
            return Err("the answer is not {\"values\": [...]}".into());
        };
        if values.len() != queries.len() {
            return Err(format!("the answer has {} values for {} queries", values.len(), queries.len()));
        }
        Ok(values.iter().map(|v| if v.is_null() { Loaded::Missing } else { Loaded::Value(v.clone()) }).collect())
    }
}

impl Provider for HttpProvider {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        match self.call(queries) {
            Ok(results) => results,
            Err(e) => vec![Loaded::Failed(format!("provider `{}` ({}): {e}", self.name, self.url)); queries.len()],
        }
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// `redis`: a hash per entity key (`key = "user:{key}"`), fields are the tag fields; one
/// pipelined round trip per batch (one `HMGET` per key in the batch). Values are read as
/// JSON when they parse as JSON (`12`, `true`, `["a","b"]`, `"12"`), otherwise as text
/// (`active`, `2026-11-01T00:00:00Z`).
pub struct RedisProvider {
    name: String,
    client: redis::Client,
    key: String,
    timeout: Duration,
    /// Idle connections. A connection that failed or timed out is dropped, never put back:
    /// its late reply could otherwise answer the next batch.
    idle: Mutex<Vec<redis::Connection>>,
}

impl RedisProvider {
    fn new(name: String, client: redis::Client, key: String, timeout: Duration) -> RedisProvider {
        RedisProvider { name, client, key, timeout, idle: Mutex::new(Vec::new()) }
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let c = self.client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    fn call(&self, queries: &[TagQuery<'_>]) -> redis::RedisResult<Vec<Loaded>> {
        // One HMGET per distinct key, in first-seen order; remember where each answer goes.
        let mut keys: Vec<(String, Vec<usize>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, q) in queries.iter().enumerate() {
            let name = self.key.replacen("{key}", q.key, 1);
            let at = *index.entry(name.clone()).or_insert_with(|| {
                keys.push((name, Vec::new()));
                keys.len() - 1
            });
            keys[at].1.push(i);
        }
        let mut pipe = redis::pipe();
        for (name, members) in &keys {
            let cmd = pipe.cmd("HMGET").arg(name);
            for &i in members {
                cmd.arg(queries[i].field);
            }
        }
        let mut conn = self.connection()?;
        let replies: Vec<Vec<Option<String>>> = pipe.query(&mut conn)?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_REDIS_IDLE_CONNECTIONS {
            idle.push(conn);
        }
        drop(idle);
        let mut results = vec![Loaded::Missing; queries.len()];
        for ((_, members), reply) in keys.iter().zip(replies) {
            for (&i, value) in members.iter().zip(reply) {
                results[i] = match value {
                    None => Loaded::Missing,
                    Some(text) => Loaded::Value(serde_json::from_str(&text).unwrap_or(Value::String(text))),
                };
            }
        }
        Ok(results)
    }
}

impl Provider for RedisProvider {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        match self.call(queries) {
            Ok(results) => results,
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("timed out after {} ms", self.timeout.as_millis())
                } else {
                    e.to_string()
                };
                vec![Loaded::Failed(format!("provider `{}` (redis): {why}", self.name)); queries.len()]
            }
        }
    }

    fn is_remote(&self) -> bool {
        true
    }
}

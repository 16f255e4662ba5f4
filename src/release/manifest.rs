//! The manifest of a release and how it is computed from a checked, compiled deck.
//!
//! Owns: the manifest format (JSON, one file per release), content hashes of instances,
//! rules and tags, and version assignment: an instance keeps its version while its content
//! does, takes back an earlier version when its content returns to it, else max + 1.
//! Must not: touch the file system (that is [`super::store`]'s).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::check::status::Baseline;
use crate::compile::content;
use crate::compile::program::Program;
use crate::syntax::ast::Status;
use crate::Checked;

/// Version of the manifest format; readers refuse others.
pub const MANIFEST_FORMAT: u32 = 1;

/// One release: what it holds and where it came from. Write-once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The release number (monotonic, never reused).
    pub release: u64,
    /// `"release"` or `"rollback"`.
    pub kind: String,
    /// For a rollback: the release whose content it brings back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
    /// The release that was current when this one was published.
    pub parent: Option<u64>,
    /// RFC 3339, UTC.
    pub time: String,
    /// The note given at publishing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// SHA-256 of the bundle's bytes, hex; the bundle is `bundles/HASH.rdb`.
    pub hash: String,
    /// SHA-256 over every instance, rule and tag entry: equal content, equal digest.
    pub content: String,
    /// By `scene.instance`.
    pub instances: BTreeMap<String, InstanceEntry>,
    /// Instances added, changed or removed against the parent.
    pub changed: Vec<String>,
    /// Content hash of each rule.
    pub rules: BTreeMap<String, String>,
    /// Every declared tag: content hash and status.
    pub tags: BTreeMap<String, TagEntry>,
    /// What each tag feeds: rules (directly or through others), strategies, instances, tests.
    pub usage: BTreeMap<String, super::refs::Refs>,
    /// Fingerprints of the deck's items, for judging tag status against this release.
    pub items: Vec<String>,
    /// Every (content hash → version) pair any release up to this one gave each instance.
    pub known_versions: BTreeMap<String, BTreeMap<String, u64>>,
    /// SHA-256 of this manifest's compact JSON with this field empty (set by the store).
    #[serde(default)]
    pub checksum: String,
}

/// An instance's content and version in one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceEntry {
    /// SHA-256 of the instance's canonical compiled content, hex.
    pub content: String,
    /// Its version: the same for the same content, max + 1 for new content.
    pub version: u64,
}

/// A tag's content and status in one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagEntry {
    /// SHA-256 of the declaration (status excluded), hex.
    pub content: String,
    /// `online`, `draft` or `disabled`.
    pub status: String,
}

impl Manifest {
    /// The baseline the checker judges tag status against.
    pub fn baseline(&self) -> Baseline {
        Baseline { release: self.release, items: self.items.iter().cloned().collect() }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Online => "online",
        Status::Draft => "draft",
        Status::Disabled => "disabled",
    }
}

/// The manifest a release of this deck would have, against `parent` (the current release).
/// The number, time and note are left for the store to fill in.
pub fn plan(checked: &Checked, program: &Program, items: &[String], hash: &str, parent: Option<&Manifest>) -> Manifest {
    let mut instances = BTreeMap::new();
    let mut known = parent.map(|p| p.known_versions.clone()).unwrap_or_default();
    for (si, scene) in program.scenes.iter().enumerate() {
        for (ii, inst) in scene.instances.iter().enumerate() {
            let name = format!("{}.{}", scene.name, inst.name);
            let text = content::instance_content(program, si, ii).unwrap_or_default();
            let hash = sha256_hex(text.as_bytes());
            let table = known.entry(name.clone()).or_default();
            let version = match table.get(&hash) {
                Some(&v) => v,
                None => {
                    let v = table.values().max().map_or(1, |m| m + 1);
                    table.insert(hash.clone(), v);
                    v
                }
            };
            instances.insert(name, InstanceEntry { content: hash, version });
        }
    }
    let rules = (0..program.rules.len())
        .map(|r| {
            let text = content::rule_content(program, r).unwrap_or_default();
            (program.rules[r].name.clone(), sha256_hex(text.as_bytes()))
        })
        .collect();
    let tags = checked
        .deck
        .tags
        .iter()
        .map(|t| {
            let text = program.tag(&t.name).and_then(|(i, _)| content::tag_content(program, i as usize));
            let entry = TagEntry {
                content: sha256_hex(text.unwrap_or_default().as_bytes()),
                status: status_text(t.status).to_string(),
            };
            (t.name.clone(), entry)
        })
        .collect();
    let mut m = Manifest {
        format: MANIFEST_FORMAT,
        release: 0,
        kind: "release".into(),
        rollback_of: None,
        parent: parent.map(|p| p.release),
        time: String::new(),
        note: None,
        hash: hash.to_string(),
        content: String::new(),
        instances,
        changed: Vec::new(),
        rules,
        tags,
        usage: super::refs::usage(checked),
        items: items.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect(),
        known_versions: known,
        checksum: String::new(),
    };
    m.content = content_digest(&m);
    m.changed = changed_against(&m, parent);
    m
}

/// The digest of everything a release holds that decisions or tag status depend on.
pub fn content_digest(m: &Manifest) -> String {
    let mut h = Sha256::new();
    for (name, i) in &m.instances {
        h.update(format!("instance {name} {}\n", i.content));
    }
    for (name, r) in &m.rules {
        h.update(format!("rule {name} {r}\n"));
    }
    for (name, t) in &m.tags {
        h.update(format!("tag {name} {} {}\n", t.content, t.status));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Instances whose content differs from `parent`'s (added, changed or removed), sorted.
pub fn changed_against(m: &Manifest, parent: Option<&Manifest>) -> Vec<String> {
    let empty = BTreeMap::new();
    let old = parent.map_or(&empty, |p| &p.instances);
    let mut names: BTreeSet<&String> = m.instances.keys().collect();
    names.extend(old.keys());
    names
        .into_iter()
        .filter(|n| m.instances.get(*n).map(|i| &i.content) != old.get(*n).map(|i| &i.content))
        .cloned()
        .collect()
}

//! The answers to editor requests, computed from the [`World`].
//!
//! Owns: hover, definition, references, completion, rename, document symbols, semantic
//! tokens, quick fixes and formatting. Every list is returned in a fixed order (by file, then
//! position, or by label) so answers are deterministic. Must not: mutate documents.

use std::sync::OnceLock;

use lsp_types::*;

use super::index::{Def, Occ, OutlineKind, SymbolId};
use super::world::{key, Doc, World};
use crate::check::types::Type;
use crate::syntax::lexer::{self, Token};

/// The grammar, the one source of truth for which words are keywords and which are reserved.
const GRAMMAR: &str = include_str!("../../grammar/ruledeck.pest");

/// Every keyword (`kw_*` rule of the grammar), sorted.
pub fn keywords() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: Vec<String> = GRAMMAR
            .lines()
            .filter_map(|l| l.strip_prefix("kw_"))
            .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim().to_string()))
            .collect();
        words.sort();
        words.dedup();
        words
    })
}

const TYPE_NAMES: &[&str] = &["int", "float", "text", "bool", "time"];

fn doc_at<'w>(world: &'w World, uri: &Uri) -> Option<(String, &'w Doc)> {
    let k = key(uri);
    world.docs.get(&k).map(|d| (k, d))
}

/// The occurrence under the cursor in a document whose index is current.
fn occ_at<'w>(world: &'w World, pos: &TextDocumentPositionParams) -> Option<(String, &'w Doc, &'w Occ)> {
    let (k, doc) = doc_at(world, &pos.text_document.uri)?;
    let offset = doc.lines.offset(&doc.text, pos.position);
    let occ = doc.fresh_index()?.occ_at(offset)?;
    Some((k, doc, occ))
}

/// Definitions of `id` in the deck, in file order; `fresh` keeps only current indexes.
fn defs<'w>(world: &'w World, k: &str, id: &SymbolId, fresh: bool) -> Vec<(&'w Doc, &'w Def)> {
    world
        .deck_docs(k)
        .filter(|d| !fresh || d.fresh)
        .flat_map(|d| d.index.defs.iter().filter(|x| &x.id == id).map(move |x| (d, x)))
        .collect()
}

pub fn hover(world: &World, params: &HoverParams) -> Option<Hover> {
    let (k, doc, occ) = occ_at(world, &params.text_document_position_params)?;
    let (_, def) = defs(world, &k, &occ.id, false).into_iter().next()?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: def.hover.clone() }),
        range: Some(doc.range(occ.span)),
    })
}

pub fn definition(world: &World, params: &GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
    let (k, _, occ) = occ_at(world, &params.text_document_position_params)?;
    let locations: Vec<Location> = defs(world, &k, &occ.id, true)
        .into_iter()
        .map(|(d, def)| Location { uri: d.uri.clone(), range: d.range(def.name_span) })
        .collect();
    (!locations.is_empty()).then_some(GotoDefinitionResponse::Array(locations))
}

/// Every occurrence of `id` in the deck's current indexes, in file and position order.
fn occurrences<'w>(world: &'w World, k: &str, id: &SymbolId) -> Vec<(&'w Doc, &'w Occ)> {
    world
        .deck_docs(k)
        .filter_map(|d| d.fresh_index().map(|i| (d, i)))
        .flat_map(|(d, i)| i.occs.iter().filter(|o| &o.id == id).map(move |o| (d, o)))
        .collect()
}

pub fn references(world: &World, params: &ReferenceParams) -> Option<Vec<Location>> {
    let (k, _, occ) = occ_at(world, &params.text_document_position)?;
    let include = params.context.include_declaration;
    Some(
        occurrences(world, &k, &occ.id)
            .into_iter()
            .filter(|(_, o)| include || !o.is_def)
            .map(|(d, o)| Location { uri: d.uri.clone(), range: d.range(o.span) })
            .collect(),
    )
}

fn renamable(id: &SymbolId) -> bool {
    matches!(id, SymbolId::Rule(_) | SymbolId::Strategy(..) | SymbolId::Tag(_))
}

pub fn prepare_rename(world: &World, params: &TextDocumentPositionParams) -> Option<PrepareRenameResponse> {
    let (_, doc, occ) = occ_at(world, params)?;
    if !renamable(&occ.id) {
        return None;
    }
    Some(PrepareRenameResponse::RangeWithPlaceholder {
        range: doc.range(occ.name_span),
        placeholder: occ.id.name().to_string(),
    })
}

/// Whether `name` is an identifier the grammar accepts as a name (not a reserved word):
/// asked of the parser itself rather than of a second copy of its rules.
fn is_name(name: &str) -> bool {
    let bump = bumpalo::Bump::new();
    let ok_chars = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok_chars && crate::syntax::parse(&bump, 0, &format!("rule custom {name} = true")).is_ok()
}

pub fn rename(world: &World, params: &RenameParams) -> Result<Option<WorkspaceEdit>, String> {
    let Some((k, _, occ)) = occ_at(world, &params.text_document_position) else { return Ok(None) };
    if !renamable(&occ.id) {
        return Err("only rules, strategies and tags can be renamed".into());
    }
    // A tag may be renamed by its name or its full dotted name; the entity stays.
    let mut new = params.new_name.trim();
    if let SymbolId::Tag(full) = &occ.id {
        let entity = full.split('.').next().unwrap_or("");
        if let Some(rest) = new.strip_prefix(entity).and_then(|r| r.strip_prefix('.')) {
            new = rest;
        }
    }
    if !is_name(new) {
        return Err(format!(
            "`{new}` is not a name: use letters, digits and `_`, not starting with a digit, and not a keyword"
        ));
    }
    let target = match &occ.id {
        SymbolId::Rule(_) => SymbolId::Rule(new.to_string()),
        SymbolId::Strategy(s, i, _) => SymbolId::Strategy(s.clone(), i.clone(), new.to_string()),
        SymbolId::Tag(full) => SymbolId::Tag(format!("{}.{new}", full.split('.').next().unwrap_or(""))),
        _ => unreachable!("renamable ids only"),
    };
    if target == occ.id {
        return Ok(None);
    }
    if new == "default" && matches!(target, SymbolId::Strategy(..)) {
        return Err("`default` names an instance's default decision".into());
    }
    if let Some((d, _)) = defs(world, &k, &target, false).into_iter().next() {
        return Err(format!("`{new}` is already defined (in {}); pick another name", d.file_name()));
    }
    if let Some(stale) = world.deck_docs(&k).find(|d| !d.fresh) {
        return Err(format!("{} does not parse; fix its syntax errors first so every use is found", stale.file_name()));
    }
    let mut changes = Vec::new();
    for doc in world.deck_docs(&k) {
        let edits: Vec<OneOf<TextEdit, AnnotatedTextEdit>> = occurrences(world, &k, &occ.id)
            .into_iter()
            .filter(|(d, _)| std::ptr::eq(*d, doc))
            .map(|(d, o)| OneOf::Left(TextEdit { range: d.range(o.name_span), new_text: new.to_string() }))
            .collect();
        if !edits.is_empty() {
            changes.push(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier { uri: doc.uri.clone(), version: doc.version },
                edits,
            });
        }
    }
    Ok(Some(WorkspaceEdit { document_changes: Some(DocumentChanges::Edits(changes)), ..Default::default() }))
}

pub fn document_symbols(world: &World, params: &DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
    let (_, doc) = doc_at(world, &params.text_document.uri)?;
    #[allow(deprecated)] // `deprecated` is a required field of the struct.
    fn convert(doc: &Doc, o: &super::index::Outline) -> DocumentSymbol {
        let kind = match o.kind {
            OutlineKind::Entity => SymbolKind::CLASS,
            OutlineKind::Tag => SymbolKind::FIELD,
            OutlineKind::Rule => SymbolKind::FUNCTION,
            OutlineKind::Layer => SymbolKind::NAMESPACE,
            OutlineKind::Scene => SymbolKind::MODULE,
            OutlineKind::Instance => SymbolKind::STRUCT,
            OutlineKind::Strategy => SymbolKind::METHOD,
            OutlineKind::Experiment => SymbolKind::EVENT,
            OutlineKind::Group => SymbolKind::ENUM_MEMBER,
            OutlineKind::Test => SymbolKind::OBJECT,
        };
        DocumentSymbol {
            name: o.name.clone(),
            detail: None,
            kind,
            tags: None,
            deprecated: None,
            range: doc.range(o.span),
            selection_range: doc.range(o.name_span),
            children: (!o.children.is_empty()).then(|| o.children.iter().map(|c| convert(doc, c)).collect()),
        }
    }
    // A file that does not parse shows its last outline only while it still fits the text.
    let index = doc.fresh_index()?;
    Some(DocumentSymbolResponse::Nested(index.outline.iter().map(|o| convert(doc, o)).collect()))
}

pub fn code_actions(world: &World, params: &CodeActionParams) -> Option<CodeActionResponse> {
    let (_, doc) = doc_at(world, &params.text_document.uri)?;
    let r = params.range;
    let overlaps = |a: &Range| !(a.end < r.start || r.end < a.start);
    let actions = doc
        .fixes
        .iter()
        .filter(|f| overlaps(&f.range))
        .map(|f| {
            let edit = TextEdit { range: f.range, new_text: f.replacement.clone() };
            CodeActionOrCommand::CodeAction(CodeAction {
                title: format!("Replace with `{}`", f.replacement),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![f.diagnostic.clone()]),
                edit: Some(WorkspaceEdit {
                    document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                        text_document: OptionalVersionedTextDocumentIdentifier {
                            uri: doc.uri.clone(),
                            version: doc.version,
                        },
                        edits: vec![OneOf::Left(edit)],
                    }])),
                    ..Default::default()
                }),
                is_preferred: Some(true),
                ..Default::default()
            })
        })
        .collect();
    Some(actions)
}

/// Document formatting through the formatter. A file that does not parse is left as it is
/// (its diagnostics already say why).
pub fn formatting(world: &World, params: &DocumentFormattingParams) -> Option<Vec<TextEdit>> {
    let (_, doc) = doc_at(world, &params.text_document.uri)?;
    let formatted = super::format_source(&doc.name(), &doc.text).ok()?;
    if formatted == doc.text {
        return Some(Vec::new());
    }
    let end = doc.lines.position(&doc.text, doc.text.len() as u32);
    Some(vec![TextEdit { range: Range { start: Position::new(0, 0), end }, new_text: formatted }])
}

// ---------------------------------------------------------------------------------------
// Semantic tokens
// ---------------------------------------------------------------------------------------

/// The legend: index = token type number in the encoded stream.
pub const TOKEN_TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::TYPE,
    SemanticTokenType::CLASS,       // entities
    SemanticTokenType::PARAMETER,   // request keys
    SemanticTokenType::PROPERTY,    // tags
    SemanticTokenType::FUNCTION,    // rules
    SemanticTokenType::NAMESPACE,   // scenes and layers
    SemanticTokenType::STRUCT,      // instances
    SemanticTokenType::METHOD,      // strategies
    SemanticTokenType::EVENT,       // experiments
    SemanticTokenType::ENUM_MEMBER, // enum members and groups
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::VARIABLE, // any other name
];
pub const TOKEN_MODIFIERS: &[SemanticTokenModifier] = &[SemanticTokenModifier::DECLARATION];

fn symbol_token(id: &SymbolId) -> u32 {
    match id {
        SymbolId::Entity(_) => 2,
        SymbolId::Key(_) => 3,
        SymbolId::Tag(_) => 4,
        SymbolId::Rule(_) => 5,
        SymbolId::Layer(_) | SymbolId::Scene(_) | SymbolId::Event(_) => 6,
        SymbolId::Instance(..) => 7,
        SymbolId::Strategy(..) => 8,
        SymbolId::Experiment(_) => 9,
        SymbolId::Group(..) | SymbolId::Member(..) => 10,
    }
}

/// Semantic tokens from the lexer's lossless token stream, names classified by the file's
/// index (a file that does not parse gets lexical classes only).
pub fn semantic_tokens(world: &World, params: &SemanticTokensParams) -> Option<SemanticTokensResult> {
    let (_, doc) = doc_at(world, &params.text_document.uri)?;
    let text = doc.text.as_str();
    // Name tokens by their start offset: the innermost occurrence that starts there.
    let mut names: std::collections::HashMap<u32, (u32, bool)> = std::collections::HashMap::new();
    if let Some(index) = doc.fresh_index() {
        for o in &index.occs {
            // A tag path's name part; its entity part has its own occurrence.
            names.insert(o.name_span.start, (symbol_token(&o.id), o.is_def));
        }
    }
    let keywords = keywords();
    let mut data = Vec::new();
    let (mut prev_line, mut prev_start) = (0u32, 0u32);
    let mut push = |start: usize, end: usize, ty: u32, modifiers: u32| {
        // One token per line: clients need not support multi-line tokens.
        let mut from = start;
        for piece in text[start..end].split_inclusive('\n') {
            let len = piece.trim_end_matches(['\n', '\r']).encode_utf16().count() as u32;
            let pos = doc.lines.position(text, from as u32);
            from += piece.len();
            if len == 0 {
                continue;
            }
            let delta_line = pos.line - prev_line;
            let delta_start = if delta_line == 0 { pos.character - prev_start } else { pos.character };
            data.push(SemanticToken {
                delta_line,
                delta_start,
                length: len,
                token_type: ty,
                token_modifiers_bitset: modifiers,
            });
            (prev_line, prev_start) = (pos.line, pos.character);
        }
    };
    for (token, range) in lexer::tokens(text) {
        let Ok(token) = token else { continue };
        let ty = match token {
            Token::Whitespace => continue,
            Token::LineComment | Token::BlockComment => 13,
            Token::Text => 11,
            Token::Int | Token::Float | Token::Percent | Token::Duration | Token::Time => 12,
            Token::Ident => {
                if let Some(&(ty, def)) = names.get(&(range.start as u32)) {
                    push(range.start, range.end, ty, def as u32);
                    continue;
                }
                let word = &text[range.clone()];
                if TYPE_NAMES.contains(&word) {
                    1
                } else if keywords.binary_search_by(|k| k.as_str().cmp(word)).is_ok() {
                    0
                } else {
                    15
                }
            }
            Token::EqEq
            | Token::NotEq
            | Token::LtEq
            | Token::GtEq
            | Token::Lt
            | Token::Gt
            | Token::Plus
            | Token::Minus
            | Token::Star
            | Token::Slash
            | Token::PercentSign
            | Token::Arrow
            | Token::FatArrow
            | Token::DotDot => 14,
            _ => continue,
        };
        push(range.start, range.end, ty, 0);
    }
    Some(SemanticTokensResult::Tokens(SemanticTokens { result_id: None, data }))
}

// ---------------------------------------------------------------------------------------
// Completion
// ---------------------------------------------------------------------------------------

/// How far back completion looks for its context (a condition rarely spans more).
const CONTEXT_BYTES: usize = 4096;

/// Tag declarations of the deck (current or last parsed), by full name, sorted.
fn tags(world: &World, k: &str) -> Vec<Def> {
    let mut out: Vec<Def> = world
        .deck_docs(k)
        .flat_map(|d| d.index.defs.iter())
        .filter(|d| matches!(d.id, SymbolId::Tag(_)))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

fn item(label: &str, kind: CompletionItemKind, detail: Option<String>) -> CompletionItem {
    CompletionItem { label: label.to_string(), kind: Some(kind), detail, ..Default::default() }
}

pub fn completion(world: &World, params: &CompletionParams) -> Option<CompletionResponse> {
    let (k, doc) = doc_at(world, &params.text_document_position.text_document.uri)?;
    let text = doc.text.as_str();
    let offset = doc.lines.offset(text, params.text_document_position.position) as usize;
    let mut from = offset.saturating_sub(CONTEXT_BYTES);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    // Start at a line start so the window does not begin inside a token.
    let from = text[from..offset].find('\n').map_or(from, |i| if from == 0 { 0 } else { from + i + 1 });
    let window = &text[from..offset];
    let mut toks: Vec<(Token, &str)> =
        lexer::tokens(window).filter_map(|(t, r)| t.ok().map(|t| (t, &window[r]))).collect();
    // The word being typed is not context.
    if toks.last().is_some_and(|(t, _)| *t == Token::Ident)
        && window.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    {
        toks.pop();
    }
    let ends_with_space = toks.last().is_some_and(|(t, _)| *t == Token::Whitespace);
    let toks: Vec<(Token, &str)> = toks.into_iter().filter(|(t, _)| !t.is_trivia()).collect();
    let n = toks.len();
    let tok = |back: usize| (back < n).then(|| toks[n - 1 - back]);
    let tags = tags(world, &k);
    let tag_def = |name: &str| tags.iter().find(|d| d.id == SymbolId::Tag(name.to_string()));
    let mut items = Vec::new();

    // `user.` → the entity's tags.
    if let (Some((Token::Dot, _)), Some((Token::Ident, entity))) = (tok(0), tok(1)) {
        for t in &tags {
            let SymbolId::Tag(full) = &t.id else { continue };
            if full.split_once('.').is_some_and(|(e, _)| e == entity) {
                let ty = match &t.ty {
                    Some(Type::Enum(_)) => Some(format!("enum({})", t.members.join(", "))),
                    other => other.as_ref().map(type_name),
                };
                items.push(item(t.id.name(), CompletionItemKind::FIELD, ty));
            }
        }
        return Some(CompletionResponse::Array(items));
    }
    // The tag a comparison's subject names, given the tokens that end before the operator.
    let tag_before = |back: usize| match (tok(back), tok(back + 1), tok(back + 2)) {
        (Some((Token::Ident, name)), Some((Token::Dot, _)), Some((Token::Ident, entity))) => {
            tag_def(&format!("{entity}.{name}"))
        }
        _ => None,
    };
    // `user.tier == ` or `user.tier in [a, ` → the enum's members.
    let mut enum_tag = match tok(0) {
        Some((Token::EqEq | Token::NotEq, _)) => tag_before(1),
        _ => None,
    };
    if enum_tag.is_none() {
        // Walk back over `[ a, b, ` to `in` / `not in`.
        let mut back = 0;
        while let Some((t, _)) = tok(back) {
            match t {
                Token::Comma | Token::Ident if back > 0 || t == Token::Comma => back += 1,
                _ => break,
            }
        }
        if let (Some((Token::LBracket, _)), Some((Token::Ident, "in"))) = (tok(back), tok(back + 1)) {
            let subject = if matches!(tok(back + 2), Some((Token::Ident, "not"))) { back + 3 } else { back + 2 };
            enum_tag = tag_before(subject);
        }
    }
    if let Some(def) = enum_tag.filter(|d| !d.members.is_empty()) {
        for m in &def.members {
            let SymbolId::Tag(tag) = &def.id else { continue };
            items.push(item(m, CompletionItemKind::ENUM_MEMBER, Some(format!("member of {tag}"))));
        }
        return Some(CompletionResponse::Array(items));
    }
    // `user.tier ` → the operators its type allows.
    if ends_with_space {
        if let Some(ty) = tag_before(0).and_then(|d| d.ty.clone()) {
            for op in ty.allowed_ops() {
                items.push(item(op.as_str(), CompletionItemKind::OPERATOR, Some(type_name(&ty))));
            }
            return Some(CompletionResponse::Array(items));
        }
    }
    // At the start of a condition: rules, and the entities whose tags may follow.
    let condition_start = match tok(0) {
        Some((Token::Ident, w)) => matches!(w, "when" | "and" | "or" | "not"),
        Some((Token::Eq | Token::LParen, _)) => true,
        _ => false,
    };
    if condition_start {
        let mut rules: Vec<&Def> = world
            .deck_docs(&k)
            .flat_map(|d| d.index.defs.iter())
            .filter(|d| matches!(d.id, SymbolId::Rule(_)))
            .collect();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        rules.dedup_by(|a, b| a.id == b.id);
        for r in rules {
            items.push(item(r.id.name(), CompletionItemKind::FUNCTION, Some("rule".into())));
        }
        let mut entities: Vec<&str> = tags.iter().filter_map(|t| t.id.name_entity()).collect();
        entities.dedup();
        for e in entities {
            items.push(item(e, CompletionItemKind::MODULE, Some("tags of this entity follow `.`".into())));
        }
        return Some(CompletionResponse::Array(items));
    }
    Some(CompletionResponse::Array(items))
}

/// `int`, `enum(…)`, `list<text>`: a type as the docs write it (enum members are not known here).
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Enum(_) => "enum".to_string(),
        Type::List(inner) => format!("list<{}>", type_name(inner)),
        other => other.to_string(),
    }
}

impl SymbolId {
    /// A tag's entity part.
    fn name_entity(&self) -> Option<&str> {
        match self {
            SymbolId::Tag(full) => full.split_once('.').map(|(e, _)| e),
            _ => None,
        }
    }
}

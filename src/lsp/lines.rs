//! Byte offsets ↔ protocol positions (line, UTF-16 code unit), as LSP requires.
//!
//! Owns: the line table of one document text and the two conversions. Spans everywhere else
//! stay byte ranges; only the protocol edge speaks UTF-16.

use lsp_types::{Position, Range};

use crate::source::Span;

#[derive(Debug, Clone)]
pub struct Lines {
    starts: Vec<u32>,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0u32];
        starts.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        Lines { starts }
    }

    /// The position of byte `offset` (clamped to the text, and back to a char boundary).
    pub fn position(&self, text: &str, offset: u32) -> Position {
        let mut offset = (offset as usize).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s as usize <= offset) - 1;
        let start = self.starts[line] as usize;
        let character = text[start..offset].encode_utf16().count() as u32;
        Position { line: line as u32, character }
    }

    pub fn range(&self, text: &str, span: Span) -> Range {
        Range { start: self.position(text, span.start), end: self.position(text, span.end) }
    }

    /// The byte offset of `pos`. A column past the line's end means the line's end; a line
    /// past the last means the end of the text; a column inside a surrogate pair rounds down.
    pub fn offset(&self, text: &str, pos: Position) -> u32 {
        let Some(&start) = self.starts.get(pos.line as usize) else { return text.len() as u32 };
        let start = start as usize;
        let end = self.starts.get(pos.line as usize + 1).map_or(text.len(), |&s| s as usize - 1);
        let mut units = 0u32;
        for (i, c) in text[start..end].char_indices() {
            if units + c.len_utf16() as u32 > pos.character {
                return (start + i) as u32;
            }
            units += c.len_utf16() as u32;
        }
        end as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_count_surrogate_pairs_twice() {
        let text = "a\n// 风险 😀 x\nend";
        let lines = Lines::new(text);
        let x = text.find('x').unwrap() as u32;
        // "// " 3 + "风险" 2 + " " 1 + "😀" 2 + " " 1 = 9
        assert_eq!(lines.position(text, x), Position { line: 1, character: 9 });
        assert_eq!(lines.offset(text, Position { line: 1, character: 9 }), x);
        assert_eq!(lines.offset(text, Position { line: 1, character: 99 }), text.find("\nend").unwrap() as u32);
        assert_eq!(lines.offset(text, Position { line: 9, character: 0 }), text.len() as u32);
    }
}

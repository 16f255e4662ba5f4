//! Syntax details not covered by a fixture of their own.

/// The reserved words, as docs/language.md lists them: each is refused as a name, and each
/// with a letter added is an ordinary name (the keyword rules end at a word boundary).
use ruledeck::syntax::RESERVED_WORDS as RESERVED;

fn deck(rule_name: &str) -> String {
    format!("entity user key uid\ntag user.a: int from \"p\"\nrule user {rule_name} = user.a > 1\n")
}

#[test]
fn reserved_words_are_not_names() {
    for word in RESERVED {
        assert!(ruledeck::check(&[("deck.rule", &deck(word))]).is_err(), "`{word}` was accepted as a rule name");
        for name in [format!("{word}x"), format!("{word}_1"), format!("x{word}")] {
            let result = ruledeck::check(&[("deck.rule", &deck(&name))]);
            assert!(
                result.is_ok(),
                "`{name}` was refused: {}",
                result.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
}

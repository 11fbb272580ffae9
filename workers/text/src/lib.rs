//! Text handling shared by the encoder (query translation), the query stage
//! and ingest (lexical terms): what language a text is in, Chinese →
//! English translation with a model pack's table, and the words a subtitle
//! cue or a query is indexed and matched by.
//!
//! Chinese has no spaces, so both translation and terms start from jieba's
//! word segmentation; its dictionary is compiled into the binary and loaded
//! once per process, on first use.

pub mod language;
pub mod terms;
pub mod translate;

use std::sync::OnceLock;

use jieba_rs::Jieba;

/// The process-wide Chinese word segmenter (loading it takes ~0.2 s).
fn segmenter() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Unicode compatibility forms folded (NFKC): full-width Latin letters and
/// digits, common in Chinese text, become ASCII ("Ｘ９" is "X9").
fn normalise(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfkc().collect()
}

/// A CJK ideograph (unified, extension A or compatibility).
fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF)
}

/// Splits text into maximal runs of Han characters and of everything else,
/// in order: `(true, "海边")`, `(false, " tabby ")`.
fn script_runs(text: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let han = is_han(first);
        let end = rest
            .char_indices()
            .find(|&(_, c)| is_han(c) != han)
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some((han, run))
    })
}

/// The words of a non-Han run: letters and digits, apostrophes inside words.
fn latin_words(run: &str) -> impl Iterator<Item = &str> {
    run.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_alternate_between_han_and_the_rest() {
        let runs: Vec<_> = script_runs("一只 tabby 猫!").collect();
        assert_eq!(
            runs,
            vec![
                (true, "一只"),
                (false, " tabby "),
                (true, "猫"),
                (false, "!")
            ]
        );
        assert_eq!(script_runs("").count(), 0);
        let words: Vec<_> = latin_words(" it's a tabby-cat, 2 ").collect();
        assert_eq!(words, vec!["it's", "a", "tabby", "cat", "2"]);
    }
}

//! Chinese → English query translation with a model pack's word table, so an
//! English text encoder can answer Chinese queries (and index Chinese
//! subtitle cues).
//!
//! The table (`zh_en.tsv`, built from CC-CEDICT by
//! `deploy/models/zh_en_table.py`) maps a headword, simplified or
//! traditional, to the English words it is searched as; an empty entry is a
//! function word and is dropped. A query is translated word by word:
//!
//! 1. Han runs are segmented by jieba, without guessing unknown words (HMM
//!    off), so every word jieba returns is in its dictionary or one character;
//! 2. at each word, the longest table entry that starts there and ends on a
//!    word boundary wins, so dictionary phrases ("自行车", traditional
//!    "海邊" that jieba splits into characters) translate whole;
//! 3. a word the table lacks is covered by its longest entries, left to
//!    right, and characters with no entry are dropped;
//! 4. Latin-script words and numbers stay as they are ("一只 tabby 猫" is
//!    "tabby cat"; full-width "Ｘ９" is "X9").

use std::collections::HashMap;
use std::path::Path;

use super::{latin_words, normalise, script_runs, segmenter};

/// Longest headword considered when joining words into phrases, in characters.
const MAX_PHRASE_CHARS: usize = 8;

#[derive(Debug)]
pub struct Translator {
    /// Headword → English ("" for words that are dropped).
    table: HashMap<String, String>,
}

impl Translator {
    /// Reads a table: `headword<TAB>english` lines, `#` comments.
    pub fn load(path: &Path) -> Result<Translator, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read translation table {}: {e}", path.display()))?;
        Translator::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Translator, String> {
        let mut table = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((head, english)) = line.split_once('\t') else {
                return Err(format!("line {}: expected headword<TAB>english", n + 1));
            };
            table.insert(head.to_string(), english.trim().to_string());
        }
        if table.is_empty() {
            return Err("the translation table is empty".into());
        }
        Ok(Translator { table })
    }

    /// The English text to search for `text`, or `None` when it has no Han
    /// characters or nothing in it translates.
    pub fn translate(&self, text: &str) -> Option<String> {
        let text = normalise(text);
        let mut out: Vec<&str> = Vec::new();
        let mut any_han = false;
        for (han, run) in script_runs(&text) {
            if han {
                any_han = true;
                self.translate_han(run, &mut out);
            } else {
                out.extend(latin_words(run));
            }
        }
        (any_han && !out.is_empty()).then(|| out.join(" "))
    }

    fn translate_han<'a>(&'a self, run: &str, out: &mut Vec<&'a str>) {
        let words = segmenter().cut(run, false);
        let mut i = 0;
        while i < words.len() {
            let start = words[i].byte_start;
            // The longest phrase of whole words starting here that the table has.
            let phrase = (i..words.len())
                .take_while(|&j| words[j].end - words[i].start <= MAX_PHRASE_CHARS)
                .filter_map(|j| Some((j, self.table.get(&run[start..words[j].byte_end])?)))
                .last();
            match phrase {
                Some((last, english)) => {
                    push_words(out, english);
                    i = last + 1;
                }
                None => {
                    self.cover(words[i].word, out);
                    i += 1;
                }
            }
        }
    }

    /// Greedy longest-entry cover of a word the table does not have.
    fn cover<'a>(&'a self, word: &str, out: &mut Vec<&'a str>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let start = chars[i].0;
            let longest = (i + 1..=chars.len().min(i + MAX_PHRASE_CHARS))
                .rev()
                .find_map(|end| {
                    let stop = chars.get(end).map_or(word.len(), |c| c.0);
                    Some((end, self.table.get(&word[start..stop])?))
                });
            match longest {
                Some((end, english)) => {
                    push_words(out, english);
                    i = end;
                }
                None => i += 1,
            }
        }
    }
}

fn push_words<'a>(out: &mut Vec<&'a str>, english: &'a str) {
    if !english.is_empty() {
        out.push(english);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translator() -> Translator {
        Translator::parse(
            "# test table\n\
             一杯\ta cup of\n咖啡\tcoffee\n人\tperson\n一个\t\n在\t\n海边\tseaside\n\
             海邊\tseaside\n跳舞\tdance\n自行车\tbicycle\n黑色\tblack\n猫\tcat\n一只\t\n\
             靠\tlean against\n墙\twall\n的\t\n",
        )
        .unwrap()
    }

    #[test]
    fn queries_translate_word_by_word() {
        let t = translator();
        assert_eq!(t.translate("一杯咖啡").as_deref(), Some("a cup of coffee"));
        assert_eq!(
            t.translate("一个人在海边跳舞").as_deref(),
            Some("person seaside dance")
        );
        assert_eq!(
            t.translate("靠在墙上的黑色自行车").as_deref(),
            Some("lean against wall black bicycle")
        );
    }

    #[test]
    fn traditional_phrases_and_latin_words_survive() {
        let t = translator();
        // jieba's dictionary is simplified: the table's traditional headword
        // still translates the phrase whole.
        assert_eq!(t.translate("海邊跳舞").as_deref(), Some("seaside dance"));
        assert_eq!(t.translate("一只 tabby 猫").as_deref(), Some("tabby cat"));
        assert_eq!(t.translate("黑色的Ｘ９").as_deref(), Some("black X9"));
    }

    #[test]
    fn nothing_to_translate_is_none() {
        let t = translator();
        assert_eq!(t.translate("a black bicycle"), None);
        assert_eq!(t.translate("的"), None);
    }

    #[test]
    fn malformed_tables_are_refused() {
        assert!(Translator::parse("# only a comment\n").is_err());
        assert!(Translator::parse("猫 cat\n").is_err());
    }
}

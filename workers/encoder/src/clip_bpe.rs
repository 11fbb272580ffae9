//! OpenAI CLIP's byte-level BPE tokenizer, as open_clip's `SimpleTokenizer`
//! runs it, so that a CLIP-family pack sees exactly the ids it was trained
//! on. The vocabulary is rebuilt from the gzipped merges file the manifest
//! names (`bpe_simple_vocab_16e6.txt.gz` or the fixture packs' tiny one):
//! 256 byte symbols, the same with `</w>`, one token per merge, then
//! `<start_of_text>` and `<end_of_text>`.
//!
//! open_clip cleans text with `ftfy.fix_text`; we have no ftfy, so
//! [`clean`] reimplements the parts of it that change ordinary queries
//! (HTML entities, ligatures, full-width forms, curly quotes, control
//! characters, NFC) and leaves out mojibake repair, which needs ftfy's
//! statistical model and only matters for text that was already decoded
//! wrongly.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::modelpack::ModelPack;

/// open_clip reads at most this many merges (`49152 - 256 - 2`), which with
/// 512 byte symbols and 2 special tokens gives CLIP's 49408 ids.
const MAX_MERGES: usize = 49152 - 256 - 2;
const SOT: &str = "<start_of_text>";
const EOT: &str = "<end_of_text>";
/// Distinct words kept in the BPE cache; the cache is cleared when full so a
/// stream of unique junk queries cannot grow memory without bound.
const CACHE_LIMIT: usize = 100_000;

/// CLIP's BPE tokenizer for one model pack.
pub struct ClipTokenizer {
    /// Vocabulary id of each byte as a word-internal symbol...
    byte_ids: [u32; 256],
    /// ...and as the last symbol of a word (`</w>` appended).
    byte_end_ids: [u32; 256],
    /// (left id, right id) → (merge rank, id of the merged symbol).
    merges: HashMap<(u32, u32), (u32, u32)>,
    pattern: Regex,
    sot_id: u32,
    eot_id: u32,
    context_length: usize,
    lowercase: bool,
    /// Byte-encoded word → its ids. Behind a mutex because `encode` takes
    /// `&self`; the text tower calls it from one thread, so it is uncontended.
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl ClipTokenizer {
    /// Loads the merges file named by `text.bpe_vocab` and checks that the
    /// vocabulary it implies matches the manifest's `sot_id` and `eot_id`.
    pub fn from_manifest(pack: &ModelPack) -> Result<ClipTokenizer, String> {
        let spec = &pack.manifest.text;
        let name = spec
            .bpe_vocab
            .as_deref()
            .ok_or("clip_bpe tokenizer: the manifest names no text.bpe_vocab")?;
        let sot_id = spec
            .sot_id
            .ok_or("clip_bpe tokenizer: text.sot_id missing")?;
        let eot_id = spec
            .eot_id
            .ok_or("clip_bpe tokenizer: text.eot_id missing")?;
        let context_length = spec
            .context_length
            .ok_or("clip_bpe tokenizer: text.context_length missing")?;
        let path = pack.file(name);
        let mut text = String::new();
        flate2::read::GzDecoder::new(
            std::fs::File::open(&path)
                .map_err(|e| format!("cannot open BPE vocabulary {}: {e}", path.display()))?,
        )
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read BPE vocabulary {}: {e}", path.display()))?;
        let tokenizer = ClipTokenizer::from_merges(&text, context_length, spec.lowercase)
            .map_err(|e| format!("BPE vocabulary {}: {e}", path.display()))?;
        if (tokenizer.sot_id, tokenizer.eot_id) != (sot_id, eot_id) {
            return Err(format!(
                "BPE vocabulary {} gives sot/eot ids {}/{}, but the manifest says {sot_id}/{eot_id}",
                path.display(),
                tokenizer.sot_id,
                tokenizer.eot_id
            ));
        }
        Ok(tokenizer)
    }

    /// Builds the tokenizer from the decompressed merges file: a header line,
    /// then one `left right` merge per line, best first.
    pub fn from_merges(
        text: &str,
        context_length: usize,
        lowercase: bool,
    ) -> Result<ClipTokenizer, String> {
        if context_length < 2 {
            return Err(format!(
                "context_length {context_length} leaves no room for start and end tokens"
            ));
        }
        let byte_chars = bytes_to_unicode();
        // Python builds `encoder = dict(zip(vocab, range(len(vocab))))`: a
        // string listed twice keeps its last id. `insert` does the same.
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut next_id = 0u32;
        let mut push = |vocab: &mut HashMap<String, u32>, token: String| {
            vocab.insert(token, next_id);
            next_id += 1;
        };
        for &(_, c) in &byte_chars {
            push(&mut vocab, c.to_string());
        }
        for &(_, c) in &byte_chars {
            push(&mut vocab, format!("{c}</w>"));
        }
        // The real file holds more lines than open_clip uses; the fixture's
        // ends with a newline, whose empty line is not a merge.
        let pairs: Vec<(&str, &str)> = text
            .split('\n')
            .skip(1)
            .filter(|line| !line.trim().is_empty())
            .take(MAX_MERGES)
            .enumerate()
            .map(|(i, line)| {
                let mut parts = line.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(b), None) => Ok((a, b)),
                    _ => Err(format!("merge {} is not two symbols: {line:?}", i + 1)),
                }
            })
            .collect::<Result<_, _>>()?;
        for (a, b) in &pairs {
            push(&mut vocab, format!("{a}{b}"));
        }
        push(&mut vocab, SOT.to_string());
        push(&mut vocab, EOT.to_string());
        let id = |token: &str| -> Result<u32, String> {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| format!("merge symbol {token:?} is not in the vocabulary"))
        };
        let mut merges = HashMap::with_capacity(pairs.len());
        for (rank, (a, b)) in pairs.iter().enumerate() {
            // A repeated merge keeps its last rank, as Python's dict does.
            merges.insert((id(a)?, id(b)?), (rank as u32, id(&format!("{a}{b}"))?));
        }
        let mut byte_ids = [0u32; 256];
        let mut byte_end_ids = [0u32; 256];
        for &(byte, c) in &byte_chars {
            byte_ids[byte as usize] = id(&c.to_string())?;
            byte_end_ids[byte as usize] = id(&format!("{c}</w>"))?;
        }
        // open_clip's pattern; its IGNORECASE only matters for the
        // contractions when the pack does not lower-case.
        let pattern = Regex::new(&format!(
            r"(?i){SOT}|{EOT}|'s|'t|'re|'ve|'m|'ll|'d|\p{{L}}+|\p{{N}}|[^\s\p{{L}}\p{{N}}]+"
        ))
        .map_err(|e| format!("pre-tokenizer pattern: {e}"))?;
        Ok(ClipTokenizer {
            byte_ids,
            byte_end_ids,
            merges,
            pattern,
            sot_id: id(SOT)?,
            eot_id: id(EOT)?,
            context_length,
            lowercase,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `[sot, tokens..., eot]`, cut to `context_length` with the last kept
    /// token replaced by eot (as open_clip does); not padded.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut cleaned = whitespace_clean(&clean(text));
        if self.lowercase {
            cleaned = cleaned.to_lowercase();
        }
        let mut ids = vec![self.sot_id];
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for piece in self.pattern.find_iter(&cleaned) {
            let piece = piece.as_str();
            match piece {
                SOT => ids.push(self.sot_id),
                EOT => ids.push(self.eot_id),
                _ => {
                    if let Some(cached) = cache.get(piece) {
                        ids.extend_from_slice(cached);
                        continue;
                    }
                    let word = self.bpe(piece.as_bytes());
                    ids.extend_from_slice(&word);
                    if cache.len() >= CACHE_LIMIT {
                        cache.clear();
                    }
                    cache.insert(piece.to_string(), word);
                }
            }
        }
        ids.push(self.eot_id);
        if ids.len() > self.context_length {
            ids.truncate(self.context_length);
            ids[self.context_length - 1] = self.eot_id;
        }
        ids
    }

    /// Merges one pre-token's bytes: repeatedly join every occurrence of the
    /// best-ranked adjacent pair, as `SimpleTokenizer.bpe` does, but on ids
    /// instead of strings.
    fn bpe(&self, bytes: &[u8]) -> Vec<u32> {
        let Some((&last, rest)) = bytes.split_last() else {
            return Vec::new();
        };
        let mut word: Vec<u32> = rest.iter().map(|&b| self.byte_ids[b as usize]).collect();
        word.push(self.byte_end_ids[last as usize]);
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|pair| self.merges.get(&(pair[0], pair[1])).map(|m| (m.0, pair)))
                .min_by_key(|(rank, _)| *rank);
            let Some((_, pair)) = best else { break };
            let (first, second) = (pair[0], pair[1]);
            let merged = self.merges[&(first, second)].1;
            let mut next = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if word[i] == first && i + 1 < word.len() && word[i + 1] == second {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(word[i]);
                    i += 1;
                }
            }
            word = next;
        }
        word
    }
}

/// GPT-2/CLIP's reversible byte → printable character table: printable
/// Latin-1 bytes map to themselves, the rest to U+0100 upwards. In table
/// order, which is also vocabulary order.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    for (n, b) in (0..=255u8).filter(|&b| !printable(b)).enumerate() {
        table.push((b, char::from_u32(256 + n as u32).expect("valid code point")));
    }
    table
}

/// open_clip's `basic_clean`: `ftfy.fix_text`, then `html.unescape` twice,
/// then strip. See the module comment for which ftfy fixes are kept.
fn clean(text: &str) -> String {
    // ftfy decodes entities only when the text does not look like HTML
    // markup, and only the unambiguous ones ending in ';'.
    let mut text = if text.contains('<') {
        text.to_string()
    } else {
        html_unescape(text, true)
    };
    text = text
        .chars()
        .filter_map(|c| -> Option<Box<dyn Iterator<Item = char>>> {
            match c {
                // fix_latin_ligatures
                'Ĳ' => Some(Box::new("IJ".chars())),
                'ĳ' => Some(Box::new("ij".chars())),
                'ŉ' => Some(Box::new("ʼn".chars())),
                'Ǳ' => Some(Box::new("DZ".chars())),
                'ǲ' => Some(Box::new("Dz".chars())),
                'ǳ' => Some(Box::new("dz".chars())),
                'Ǆ' => Some(Box::new("DŽ".chars())),
                'ǅ' => Some(Box::new("Dž".chars())),
                'ǆ' => Some(Box::new("dž".chars())),
                'Ǉ' => Some(Box::new("LJ".chars())),
                'ǈ' => Some(Box::new("Lj".chars())),
                'ǉ' => Some(Box::new("lj".chars())),
                'Ǌ' => Some(Box::new("NJ".chars())),
                'ǋ' => Some(Box::new("Nj".chars())),
                'ǌ' => Some(Box::new("nj".chars())),
                'ﬀ' => Some(Box::new("ff".chars())),
                'ﬁ' => Some(Box::new("fi".chars())),
                'ﬂ' => Some(Box::new("fl".chars())),
                'ﬃ' => Some(Box::new("ffi".chars())),
                'ﬄ' => Some(Box::new("ffl".chars())),
                'ﬅ' => Some(Box::new("ſt".chars())),
                'ﬆ' => Some(Box::new("st".chars())),
                // fix_character_width: full-width ASCII, half-width kana...
                '\u{3000}' => Some(Box::new(std::iter::once(' '))),
                '\u{FF01}'..='\u{FFEF}' => Some(Box::new(std::iter::once(c).nfkc())),
                // uncurl_quotes
                '\u{02BC}' | '\u{2018}'..='\u{201B}' => Some(Box::new(std::iter::once('\''))),
                '\u{201C}'..='\u{201F}' => Some(Box::new(std::iter::once('"'))),
                // remove_control_chars (tabs and line breaks stay: they are
                // whitespace and collapse below)
                '\u{0}'..='\u{8}'
                | '\u{B}'
                | '\u{E}'..='\u{1F}'
                | '\u{7F}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFC}' => None,
                _ => Some(Box::new(std::iter::once(c))),
            }
        })
        .flatten()
        .collect();
    text = text.nfc().collect();
    text = html_unescape(&html_unescape(&text, false), false);
    text.trim_matches(is_python_space).to_string()
}

/// `" ".join(text.split())`: Python's `str.split()` also splits on the
/// information separators U+001C..U+001F, which Rust does not count as
/// whitespace.
fn whitespace_clean(text: &str) -> String {
    text.split(is_python_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// ISO-8859-1 entity names for U+00A0..U+00FF, in code point order. With
/// `&amp; &lt; &gt; &quot;` these are HTML's legacy entities, which Python's
/// `html.unescape` also decodes without a trailing ';'.
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Entities that need the ';': a common subset of HTML5's 2231 names
/// (typography that shows up in scraped captions). Unknown names are left
/// as they are, which is also what Python does with invalid ones.
const OTHER_ENTITIES: [(&str, &str); 22] = [
    ("apos", "'"),
    ("ndash", "\u{2013}"),
    ("mdash", "\u{2014}"),
    ("lsquo", "\u{2018}"),
    ("rsquo", "\u{2019}"),
    ("sbquo", "\u{201A}"),
    ("ldquo", "\u{201C}"),
    ("rdquo", "\u{201D}"),
    ("bdquo", "\u{201E}"),
    ("hellip", "\u{2026}"),
    ("bull", "\u{2022}"),
    ("trade", "\u{2122}"),
    ("euro", "\u{20AC}"),
    ("dagger", "\u{2020}"),
    ("Dagger", "\u{2021}"),
    ("permil", "\u{2030}"),
    ("lsaquo", "\u{2039}"),
    ("rsaquo", "\u{203A}"),
    ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"),
    ("thinsp", "\u{2009}"),
    ("hearts", "\u{2665}"),
];

fn legacy_entity(name: &str) -> Option<String> {
    match name {
        "amp" | "AMP" => Some("&".into()),
        "lt" | "LT" => Some("<".into()),
        "gt" | "GT" => Some(">".into()),
        "quot" | "QUOT" => Some("\"".into()),
        "COPY" => Some("©".into()),
        "REG" => Some("®".into()),
        _ => LATIN1_ENTITIES.iter().position(|&n| n == name).map(|i| {
            char::from_u32(0xA0 + i as u32)
                .expect("Latin-1")
                .to_string()
        }),
    }
}

/// Python's `html.unescape` (numeric references with its replacements for
/// invalid ones; named entities as far as the tables above go). With
/// `semicolon_only`, names must end in ';' (ftfy's stricter variant).
fn html_unescape(text: &str, semicolon_only: bool) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match unescape_one(after, semicolon_only) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the reference at the start of `s` (just after '&'): the text
/// and how many bytes of `s` it used.
fn unescape_one(s: &str, semicolon_only: bool) -> Option<(String, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix, prefix) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (num, 10, 1),
        };
        let len = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        if len == 0 {
            return None;
        }
        let semicolon = usize::from(digits[len..].starts_with(';'));
        let value = u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX);
        return Some((numeric_reference(value), prefix + len + semicolon));
    }
    let len = s
        .find(['\t', '\n', '\x0C', ' ', '<', '&', '#', ';'])
        .unwrap_or(s.len());
    let name = &s[..len];
    let named = || {
        legacy_entity(name).or_else(|| {
            OTHER_ENTITIES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    };
    if s[len..].starts_with(';')
        && let Some(value) = named()
    {
        return Some((value, len + 1));
    }
    if semicolon_only {
        return None;
    }
    // Without ';' Python takes the longest legacy entity that prefixes the
    // name ("&copy2024" is "©2024").
    (1..=len.min(32))
        .rev()
        .filter(|&n| name.is_char_boundary(n))
        .find_map(|n| legacy_entity(&name[..n]).map(|v| (v, n)))
}

/// A numeric character reference as the HTML5 spec (and Python) decode it.
fn numeric_reference(value: u32) -> String {
    // Windows-1252 code points that HTML treats as such when written as
    // &#128;..&#159;.
    const CP1252: [(u32, char); 27] = [
        (0x80, '\u{20AC}'),
        (0x82, '\u{201A}'),
        (0x83, '\u{0192}'),
        (0x84, '\u{201E}'),
        (0x85, '\u{2026}'),
        (0x86, '\u{2020}'),
        (0x87, '\u{2021}'),
        (0x88, '\u{02C6}'),
        (0x89, '\u{2030}'),
        (0x8A, '\u{0160}'),
        (0x8B, '\u{2039}'),
        (0x8C, '\u{0152}'),
        (0x8E, '\u{017D}'),
        (0x91, '\u{2018}'),
        (0x92, '\u{2019}'),
        (0x93, '\u{201C}'),
        (0x94, '\u{201D}'),
        (0x95, '\u{2022}'),
        (0x96, '\u{2013}'),
        (0x97, '\u{2014}'),
        (0x98, '\u{02DC}'),
        (0x99, '\u{2122}'),
        (0x9A, '\u{0161}'),
        (0x9B, '\u{203A}'),
        (0x9C, '\u{0153}'),
        (0x9E, '\u{017E}'),
        (0x9F, '\u{0178}'),
    ];
    if let Some(&(_, c)) = CP1252.iter().find(|(v, _)| *v == value) {
        return c.to_string();
    }
    if value == 0 || (0xD800..=0xDFFF).contains(&value) || value > 0x10FFFF {
        return '\u{FFFD}'.to_string();
    }
    // Python drops the references the spec calls parse errors: C0/C1
    // controls (except whitespace) and non-characters.
    let invalid = matches!(value, 0x1..=0x8 | 0xB | 0xE..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF)
        || (value & 0xFFFE) == 0xFFFE;
    if invalid {
        return String::new();
    }
    char::from_u32(value).map(String::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A merges file in the real format: "a b" → "ab", "ab c</w>" → "abc</w>".
    const TINY: &str = "#version: 0.2\na b\nab c</w>\nc a\n";

    #[test]
    fn byte_table_is_a_bijection_in_gpt2_order() {
        let table = bytes_to_unicode();
        assert_eq!(table.len(), 256);
        assert_eq!(table[0], (b'!', '!'));
        // The first non-printable byte (0x00) comes right after the 188
        // printable ones and maps to U+0100.
        assert_eq!(table[188], (0, '\u{100}'));
        let mut chars: Vec<char> = table.iter().map(|(_, c)| *c).collect();
        chars.sort();
        chars.dedup();
        assert_eq!(chars.len(), 256);
    }

    #[test]
    fn merges_apply_by_rank_and_specials_come_last() {
        let tok = ClipTokenizer::from_merges(TINY, 77, true).unwrap();
        assert_eq!((tok.sot_id, tok.eot_id), (515, 516));
        // "abc" → a b c</w> → ab c</w> → abc</w> (merge 1 = id 513).
        assert_eq!(tok.encode("ABC"), vec![515, 513, 516]);
        // The merge "c a" does not apply to "ca": its last symbol is "a</w>".
        let c = tok.byte_ids[b'c' as usize];
        let a_end = tok.byte_end_ids[b'a' as usize];
        assert_eq!(tok.encode("ca"), vec![515, c, a_end, 516]);
    }

    #[test]
    fn long_texts_end_with_eot() {
        let tok = ClipTokenizer::from_merges(TINY, 5, true).unwrap();
        let ids = tok.encode("abc abc abc abc abc abc");
        assert_eq!(ids, vec![515, 513, 513, 513, 516]);
        assert_eq!(tok.encode(""), vec![515, 516]);
    }

    #[test]
    fn cleaning_follows_ftfy_and_html_unescape() {
        assert_eq!(
            whitespace_clean(&clean("  Tom &amp;amp; Jerry\t&lt;3 &copy2024 ")),
            "Tom & Jerry <3 ©2024"
        );
        assert_eq!(clean("“ﬁne” ＡＢＣ１"), "\"fine\" ABC1");
        assert_eq!(clean("cafe\u{301}"), "café");
        assert_eq!(clean("&#x41;&#65&#128;&#0;"), "AA€\u{FFFD}");
        assert_eq!(clean("a&unknown;b & c"), "a&unknown;b & c");
    }

    #[test]
    fn bad_merge_files_are_refused() {
        assert!(ClipTokenizer::from_merges("#v\na b c\n", 77, true).is_err());
        assert!(ClipTokenizer::from_merges("#v\nzz q\n", 77, true).is_err());
    }
}

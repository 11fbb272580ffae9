//! The lexical match of a text query against subtitle cues: an exact name
//! or phrase said in a video is found even where the embedding misses it
//! (a Chinese cue, a person's name, a product code).
//!
//! Both sides are reduced to terms by `vidseek_text::terms`. A cue's lexical
//! confidence is the share of the query's weight it contains, each term
//! weighted by its BM25 inverse document frequency over this shard's cues
//! (rare words count more; a word in every cue counts little), squared so
//! that a partial match stays well below a full one, and scaled so a full
//! match of every query word reads as a confident hit:
//!
//! `confidence = FULL_MATCH · (Σ idf(matched) / Σ idf(query))²`
//!
//! Text read from the picture (OCR) is matched by its coverage itself, not
//! squared: there a misread character costs a line the terms around it, so
//! a partial match is more often the line than another text (bench/ocr:
//! phrase R@1 0.71 → 0.79, where 钥匙 read as "钼起" and 需要 as "击要" had
//! lost to shots).
//!
//! The ranker keeps the better of this and the cue's vector confidence.

/// Confidence of a cue that contains every query term.
const FULL_MATCH: f32 = 0.95;

/// A query's terms with their weights in one shard.
pub struct LexicalQuery<'q> {
    weighted: Vec<(&'q str, f32)>,
    total: f32,
}

impl<'q> LexicalQuery<'q> {
    /// Weighs `terms` by their document frequency among a shard's
    /// `documents` cues; `None` when there is nothing to match.
    pub fn new(
        terms: &'q [String],
        documents: u32,
        document_frequency: impl Fn(&str) -> u32,
    ) -> Option<LexicalQuery<'q>> {
        if terms.is_empty() || documents == 0 {
            return None;
        }
        let n = documents as f32;
        let weighted: Vec<(&str, f32)> = terms
            .iter()
            .map(|t| {
                let df = document_frequency(t) as f32;
                (t.as_str(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
            })
            .collect();
        let total = weighted.iter().map(|(_, w)| w).sum();
        Some(LexicalQuery { weighted, total })
    }

    /// The lexical confidence of a segment with these terms (0 for shots);
    /// `recognised` for text read from the picture (see the module docs).
    pub fn confidence(&self, segment_terms: &[impl AsRef<str>], recognised: bool) -> f32 {
        if segment_terms.is_empty() {
            return 0.0;
        }
        let matched: f32 = self
            .weighted
            .iter()
            .filter(|(term, _)| segment_terms.iter().any(|t| t.as_ref() == *term))
            .map(|(_, w)| w)
            .sum();
        let coverage = matched / self.total;
        if recognised {
            FULL_MATCH * coverage
        } else {
            FULL_MATCH * coverage * coverage
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(terms: &[&str]) -> Vec<String> {
        terms.iter().map(|t| t.to_string()).collect()
    }

    /// Weighs `terms` over `cues` as a shard does.
    fn query<'q>(terms: &'q [String], cues: &[Vec<String>]) -> Option<LexicalQuery<'q>> {
        let documents = cues.iter().filter(|c| !c.is_empty()).count() as u32;
        LexicalQuery::new(terms, documents, |term| {
            cues.iter().filter(|c| c.iter().any(|t| t == term)).count() as u32
        })
    }

    #[test]
    fn full_matches_beat_partial_ones_and_rare_words_weigh_more() {
        let cues = [
            cue(&["zhivago", "doctor"]),
            cue(&["doctor", "house"]),
            cue(&["doctor", "garden"]),
            cue(&[]),
        ];
        let terms = vec!["doctor".to_string(), "zhivago".to_string()];
        let weighed = query(&terms, &cues).expect("cues have terms");
        let full = weighed.confidence(&cues[0], false);
        let common_word_only = weighed.confidence(&cues[1], false);
        assert!((full - FULL_MATCH).abs() < 1e-6, "{full}");
        assert!(common_word_only < 0.1, "{common_word_only}");
        assert_eq!(weighed.confidence(&cues[3], false), 0.0);

        let rare_only = query(&terms, &cues)
            .unwrap()
            .confidence(&["zhivago".to_string()], false);
        assert!(
            rare_only > common_word_only * 4.0,
            "{rare_only} vs {common_word_only}"
        );
        // Read from the picture, the same partial match counts for more
        // (linear, not squared), a full one the same.
        let recognised = weighed.confidence(&["zhivago".to_string()], true);
        assert!(
            (recognised - (rare_only * FULL_MATCH).sqrt()).abs() < 1e-6,
            "{recognised} vs {rare_only}"
        );
        assert!(recognised > rare_only);
        assert!((weighed.confidence(&cues[0], true) - FULL_MATCH).abs() < 1e-6);
    }

    #[test]
    fn nothing_to_match_is_none() {
        let cues = [cue(&["a"])];
        assert!(query(&[], &cues).is_none());
        let shots = [cue(&[])];
        assert!(query(&["cat".to_string()], &shots).is_none());
    }
}

//! The lexical match of a text query against subtitle cues: an exact name
//! or phrase said in a video is found even where the embedding misses it
//! (a Chinese cue, a person's name, a product code).
//!
//! Both sides are reduced to terms by `crate::text::terms`. A cue's lexical
//! confidence is the share of the query's weight it contains, each term
//! weighted by its BM25 inverse document frequency over this shard's cues
//! (rare words count more; a word in every cue counts little), squared so
//! that a partial match stays well below a full one, and scaled so a full
//! match of every query word reads as a confident hit:
//!
//! `confidence = FULL_MATCH · (Σ idf(matched) / Σ idf(query))²`
//!
//! The ranker keeps the better of this and the cue's vector confidence.

use std::collections::HashMap;

use vidseek_protocol::rank::SegmentRecord;

/// Confidence of a cue that contains every query term.
const FULL_MATCH: f32 = 0.95;

/// A query's terms with their weights in one shard.
pub struct LexicalQuery<'q> {
    weighted: Vec<(&'q str, f32)>,
    total: f32,
}

impl<'q> LexicalQuery<'q> {
    /// Weighs `terms` by their document frequency among the cues of
    /// `segments`; `None` when there is nothing to match.
    pub fn new<'a>(
        terms: &'q [String],
        segments: impl Iterator<Item = &'a SegmentRecord>,
    ) -> Option<LexicalQuery<'q>> {
        if terms.is_empty() {
            return None;
        }
        let mut document_frequency: HashMap<&str, u32> =
            terms.iter().map(|t| (t.as_str(), 0)).collect();
        let mut documents = 0u32;
        for segment in segments.filter(|s| !s.terms.is_empty()) {
            documents += 1;
            for term in &segment.terms {
                if let Some(count) = document_frequency.get_mut(term.as_str()) {
                    *count += 1;
                }
            }
        }
        if documents == 0 {
            return None;
        }
        let n = documents as f32;
        let weighted: Vec<(&str, f32)> = terms
            .iter()
            .map(|t| {
                let df = document_frequency[t.as_str()] as f32;
                (t.as_str(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
            })
            .collect();
        let total = weighted.iter().map(|(_, w)| w).sum();
        Some(LexicalQuery { weighted, total })
    }

    /// The lexical confidence of a segment with these terms (0 for shots).
    pub fn confidence(&self, segment_terms: &[String]) -> f32 {
        if segment_terms.is_empty() {
            return 0.0;
        }
        let matched: f32 = self
            .weighted
            .iter()
            .filter(|(term, _)| segment_terms.iter().any(|t| t == term))
            .map(|(_, w)| w)
            .sum();
        let coverage = matched / self.total;
        FULL_MATCH * coverage * coverage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::rank::{SegmentKind, SegmentMeta};

    fn cue(index: u32, terms: &[&str]) -> SegmentRecord {
        SegmentRecord {
            meta: SegmentMeta {
                segment_id: format!("v-{index}"),
                video_id: "v".into(),
                video_name: "v.mp4".into(),
                index,
                start: 0.0,
                end: 1.0,
                kind: SegmentKind::Subtitle,
                text: None,
            },
            text_vector: vec![1.0],
            image_vector: None,
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn full_matches_beat_partial_ones_and_rare_words_weigh_more() {
        let cues = [
            cue(0, &["zhivago", "doctor"]),
            cue(1, &["doctor", "house"]),
            cue(2, &["doctor", "garden"]),
            cue(3, &[]),
        ];
        let terms = vec!["doctor".to_string(), "zhivago".to_string()];
        let query = LexicalQuery::new(&terms, cues.iter()).expect("cues have terms");
        let full = query.confidence(&cues[0].terms);
        let common_word_only = query.confidence(&cues[1].terms);
        assert!((full - FULL_MATCH).abs() < 1e-6, "{full}");
        assert!(common_word_only < 0.1, "{common_word_only}");
        assert_eq!(query.confidence(&cues[3].terms), 0.0);

        let rare_only = LexicalQuery::new(&terms, cues.iter())
            .unwrap()
            .confidence(&["zhivago".to_string()]);
        assert!(
            rare_only > common_word_only * 4.0,
            "{rare_only} vs {common_word_only}"
        );
    }

    #[test]
    fn nothing_to_match_is_none() {
        let cues = [cue(0, &["a"])];
        assert!(LexicalQuery::new(&[], cues.iter()).is_none());
        let shots = [cue(0, &[])];
        assert!(LexicalQuery::new(&["cat".to_string()], shots.iter()).is_none());
    }
}

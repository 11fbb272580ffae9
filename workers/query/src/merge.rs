//! Merging shards' top-k lists into the overall top-k, turning ranked
//! segments into the public hits (with media URLs).

use vidseek_protocol::query::{SearchHit, play_url, thumbnail_url};
use vidseek_protocol::rank::RankedSegment;

use vidseek_ranker::index::sort_best_first;

/// The best `k` segments seen so far across shards.
pub struct Merged {
    k: usize,
    best: Vec<RankedSegment>,
}

impl Merged {
    pub fn new(k: usize) -> Merged {
        Merged {
            k,
            best: Vec::with_capacity(2 * k),
        }
    }

    /// Adds one shard's answer. Each shard's list is its own top-k, so the
    /// top-k of the union of all lists is the global top-k.
    pub fn add(&mut self, hits: Vec<RankedSegment>) {
        self.best.extend(hits);
        sort_best_first(&mut self.best);
        self.best.truncate(self.k);
    }

    pub fn hits(&self) -> Vec<SearchHit> {
        self.best
            .iter()
            .map(|ranked| {
                let meta = &ranked.meta;
                SearchHit {
                    video_id: meta.video_id.clone(),
                    video_name: meta.video_name.clone(),
                    segment_id: meta.segment_id.clone(),
                    start: meta.start,
                    end: meta.end,
                    score: ranked.score,
                    kind: meta.kind,
                    text: meta.text.clone(),
                    thumbnail_url: thumbnail_url(&meta.video_id, meta.index),
                    play_url: play_url(&meta.video_id),
                    more_in_video: ranked.more_in_video,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::rank::{SegmentKind, SegmentMeta};

    fn ranked(video: &str, index: u32, score: f32) -> RankedSegment {
        RankedSegment {
            meta: SegmentMeta {
                segment_id: format!("{video}-{index}"),
                video_id: video.into(),
                video_name: format!("{video}.mp4"),
                index,
                start: index as f64,
                end: index as f64 + 1.0,
                kind: SegmentKind::Shot,
                text: None,
            },
            score,
            more_in_video: None,
        }
    }

    #[test]
    fn merging_shard_lists_keeps_the_global_best() {
        let mut merged = Merged::new(3);
        merged.add(vec![
            ranked("a", 0, 0.9),
            ranked("a", 1, 0.5),
            ranked("a", 2, 0.1),
        ]);
        assert_eq!(merged.hits().len(), 3);
        merged.add(vec![ranked("b", 0, 0.7), ranked("b", 1, 0.6)]);
        let hits = merged.hits();
        let ids: Vec<&str> = hits.iter().map(|h| h.segment_id.as_str()).collect();
        assert_eq!(ids, vec!["a-0", "b-0", "b-1"]);
        assert_eq!(hits[1].thumbnail_url, "/media/thumbs/b/0.jpg");
        assert_eq!(hits[1].play_url, "/media/videos/b");
    }
}

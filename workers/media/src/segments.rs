//! Shots → segments: the units that get embedded, ranked and shown.

/// Longest segment ingest makes by default: long enough for a thumbnail to
/// represent it, short enough that a hit lands near the moment searched for.
pub const DEFAULT_MAX_SEGMENT_SECS: f64 = 10.0;

/// Shots shorter than this (transition slivers, flashes that slipped through)
/// are merged into a neighbour; they are too short to watch or to embed.
pub const MIN_SEGMENT_SECS: f64 = 1.0;

/// A time range of a video, `start` inclusive, `end` exclusive, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Index of the shot (after sliver merging) the segment belongs to;
    /// windows of one long shot share it.
    pub shot: usize,
}

impl Segment {
    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// The longest segment `plan_segments` makes for `max_len`.
pub(crate) fn effective_max_len(max_len: f64) -> f64 {
    if max_len.is_finite() && max_len > 0.0 {
        max_len
    } else {
        DEFAULT_MAX_SEGMENT_SECS
    }
}

/// Shots shorter than this are merged into a neighbour by `plan_segments`
/// (for an effective `max_len`); no segment is shorter unless the video is.
pub(crate) fn shortest_shot(max_len: f64) -> f64 {
    MIN_SEGMENT_SECS.min(max_len / 2.0)
}

/// Turns cut times into segments that tile `[0, duration)` exactly.
///
/// Cuts outside `(0, duration)` are ignored; shots shorter than
/// [`MIN_SEGMENT_SECS`] (or half of `max_len`, if that is smaller) are merged
/// into their shorter neighbour; shots longer than `max_len` are split into
/// windows of `max_len` from the shot's start while more than one and a
/// half `max_len` is left, and the rest into one or two equal windows (see
/// [`long_shot_windows`]): no window is longer than `max_len` or shorter
/// than half of it, and a shot's first windows are known before it ends.
///
/// A non-positive `max_len` means [`DEFAULT_MAX_SEGMENT_SECS`].
pub fn plan_segments(duration: f64, cuts: &[f64], max_len: f64) -> Vec<Segment> {
    if !(duration.is_finite() && duration > 0.0) {
        return Vec::new();
    }
    let max_len = effective_max_len(max_len);
    let min_len = shortest_shot(max_len);

    let mut bounds: Vec<f64> = cuts
        .iter()
        .copied()
        .filter(|t| t.is_finite() && *t > 0.0 && *t < duration)
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    bounds.insert(0, 0.0);
    bounds.push(duration);

    // Merge the shortest sliver first so that a run of slivers ends up as
    // one shot instead of being swallowed piecemeal by one side.
    while bounds.len() > 2 {
        let (shortest, len) = (0..bounds.len() - 1)
            .map(|i| (i, bounds[i + 1] - bounds[i]))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("at least one shot");
        if len >= min_len {
            break;
        }
        let last = bounds.len() - 2;
        let left = (shortest > 0).then(|| bounds[shortest] - bounds[shortest - 1]);
        let right = (shortest < last).then(|| bounds[shortest + 2] - bounds[shortest + 1]);
        // Removing bounds[i] joins shot i-1 and i; bounds[i+1] joins i and i+1.
        let remove = match (left, right) {
            (Some(l), Some(r)) if l <= r => shortest,
            (Some(_), None) => shortest,
            _ => shortest + 1,
        };
        bounds.remove(remove);
    }

    let mut segments = Vec::new();
    for (shot, pair) in bounds.windows(2).enumerate() {
        let (start, end) = (pair[0], pair[1]);
        let whole = long_shot_windows(end - start, max_len);
        let mut first = start;
        for k in 0..whole {
            let next = start + max_len * (k + 1) as f64;
            segments.push(Segment {
                start: first,
                end: next,
                shot,
            });
            first = next;
        }
        // The epsilon keeps a 10.000000001 s rest from becoming 2 windows.
        let pieces = ((end - first) / max_len - 1e-9).ceil().max(1.0) as usize;
        let step = (end - first) / pieces as f64;
        for k in 0..pieces {
            let s = first + step * k as f64;
            // The last window ends exactly on the shot's end, not on a sum of
            // rounded steps.
            let e = if k + 1 == pieces {
                end
            } else {
                first + step * (k + 1) as f64
            };
            segments.push(Segment {
                start: s,
                end: e,
                shot,
            });
        }
    }
    segments
}

/// How many whole `max_len` windows open a shot at least `length` seconds
/// long: those with more than 1.5·`max_len` after them. They are the same
/// whatever the shot's final length, so a shot still in progress can be
/// planned that far (the analysis hands them to the encoder while the
/// decode goes on). The rest, over half of `max_len` and at most 1.5 of
/// it, makes one window, or two equal ones over `max_len`: none is
/// shorter than half of `max_len`, and a window is final once the decode
/// is half a window past its end.
pub(crate) fn long_shot_windows(length: f64, max_len: f64) -> usize {
    // The epsilon keeps exactly 1.5·max_len after a window from counting.
    ((length - 1.5 * max_len - 1e-9) / max_len).ceil().max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(segs: &[Segment]) -> Vec<(f64, f64)> {
        segs.iter()
            .map(|s| {
                (
                    (s.start * 1000.0).round() / 1000.0,
                    (s.end * 1000.0).round() / 1000.0,
                )
            })
            .collect()
    }

    fn assert_tiles(segs: &[Segment], duration: f64) {
        assert_eq!(segs.first().unwrap().start, 0.0);
        assert_eq!(segs.last().unwrap().end, duration);
        for w in segs.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
    }

    #[test]
    fn bikes_shots_become_segments() {
        let cuts = [1.2, 3.04, 5.48, 7.48, 9.68];
        let segs = plan_segments(10.0, &cuts, 10.0);
        // The 0.32 s tail after the last cut joins the shot before it.
        assert_eq!(
            ranges(&segs),
            vec![
                (0.0, 1.2),
                (1.2, 3.04),
                (3.04, 5.48),
                (5.48, 7.48),
                (7.48, 10.0)
            ]
        );
        assert_tiles(&segs, 10.0);
    }

    #[test]
    fn long_shots_split_into_equal_windows() {
        let segs = plan_segments(35.0, &[5.0], 10.0);
        assert_eq!(
            ranges(&segs),
            vec![(0.0, 5.0), (5.0, 15.0), (15.0, 25.0), (25.0, 35.0)]
        );
        // Whole windows while more than 1.5·max_len is left; the rest in
        // two equal ones when it is over max_len.
        let segs = plan_segments(25.0, &[], 10.0);
        assert_eq!(ranges(&segs), vec![(0.0, 10.0), (10.0, 17.5), (17.5, 25.0)]);
        assert!(
            plan_segments(47.0, &[], 10.0)
                .iter()
                .all(|s| (5.0..=10.0).contains(&s.duration())),
            "no window over max_len or under half of it"
        );
        assert!(segs.iter().all(|s| s.shot == 0));
        assert_tiles(&segs, 25.0);
        // ...and in one when it is not.
        assert_eq!(
            ranges(&plan_segments(28.0, &[], 10.0)),
            vec![(0.0, 10.0), (10.0, 20.0), (20.0, 28.0)]
        );
        // Whole windows are those with more than 1.5·max_len after them.
        let counts: Vec<usize> = [5.0, 15.0, 15.5, 25.0, 25.5, 100.0]
            .iter()
            .map(|&length| long_shot_windows(length, 10.0))
            .collect();
        assert_eq!(counts, [0, 0, 1, 1, 2, 9]);
        // Exactly max_len stays whole.
        assert_eq!(plan_segments(20.0, &[], 10.0).len(), 2);
    }

    #[test]
    fn slivers_merge_into_the_shorter_neighbour() {
        let segs = plan_segments(10.0, &[3.0, 3.2, 8.0], 10.0);
        // 3.0..3.2 joins 0..3 (3 s) rather than 3.2..8 (4.8 s).
        assert_eq!(ranges(&segs), vec![(0.0, 3.2), (3.2, 8.0), (8.0, 10.0)]);
        // A run of slivers (a flicker) becomes one piece.
        let segs = plan_segments(10.0, &[4.0, 4.2, 4.4, 4.6, 4.8], 10.0);
        assert!(
            segs.iter().all(|s| s.duration() >= MIN_SEGMENT_SECS),
            "{segs:?}"
        );
        assert_tiles(&segs, 10.0);
        // A leading sliver joins the first real shot.
        assert_eq!(
            ranges(&plan_segments(10.0, &[0.1, 5.0], 10.0)),
            vec![(0.0, 5.0), (5.0, 10.0)]
        );
    }

    #[test]
    fn odd_inputs_are_tolerated() {
        assert!(plan_segments(0.0, &[1.0], 10.0).is_empty());
        assert!(plan_segments(f64::NAN, &[], 10.0).is_empty());
        // Out-of-range, duplicate and unsorted cuts.
        let segs = plan_segments(6.0, &[4.0, -1.0, 2.0, 2.0, 9.0, f64::NAN], 0.0);
        assert_eq!(ranges(&segs), vec![(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]);
        // A video shorter than the shortest segment is one segment.
        assert_eq!(ranges(&plan_segments(0.4, &[0.2], 10.0)), vec![(0.0, 0.4)]);
        assert_eq!(plan_segments(5.0, &[1.0, 2.5], 10.0)[2].shot, 2);
    }
}

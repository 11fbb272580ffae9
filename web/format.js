// Small pure formatting helpers, importable from Node for unit tests.

/** Seconds as `mm:ss.s` (or `h:mm:ss.s` past an hour). */
export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--.-';
  const tenths = Math.round(seconds * 10);
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths % 36000) / 600);
  const s = (tenths % 600) / 10;
  const ss = s.toFixed(1).padStart(4, '0');
  const mm = String(m).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A 0..1 confidence as a whole percentage, clamped. */
export function scorePercent(score) {
  if (!Number.isFinite(score)) return 0;
  return Math.round(Math.min(1, Math.max(0, score)) * 100);
}

/** Base64 of raw bytes (no `data:` prefix), chunked so big images do not overflow the call stack. */
export function bytesToBase64(bytes) {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/** Where a segment sits on a timeline of `duration` seconds, as CSS percentages. */
export function timelineSpan(start, end, duration) {
  if (!(duration > 0)) return { left: 0, width: 0 };
  const clamp = (x) => Math.min(1, Math.max(0, x / duration));
  const left = clamp(start);
  const width = Math.max(clamp(end) - left, 0);
  return { left: left * 100, width: width * 100 };
}

/**
 * The heat strip of a video: its timeline cut where any segment starts or
 * ends, each piece scored by the best segment covering it (shots and text
 * segments overlap), neighbours with the same best segment merged. Pieces no
 * segment covers are left out. `segments` are `{segment_id, start, end, score}`.
 */
export function heatIntervals(segments) {
  const scored = segments.filter((s) => Number.isFinite(s.score) && s.end > s.start);
  const cuts = [...new Set(scored.flatMap((s) => [s.start, s.end]))].sort((a, b) => a - b);
  const pieces = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [start, end] = [cuts[i], cuts[i + 1]];
    let best = null;
    for (const s of scored) {
      if (s.start <= start && s.end >= end && (!best || s.score > best.score)) best = s;
    }
    if (!best) continue;
    const last = pieces.at(-1);
    if (last && last.segment_id === best.segment_id && last.end === start) last.end = end;
    else pieces.push({ start, end, score: best.score, segment_id: best.segment_id });
  }
  return pieces;
}

// Cool to hot, readable on light and dark panels: low scores recede, high ones stand out.
const HEAT_STOPS = [
  [0, [49, 54, 149]],
  [0.25, [69, 117, 180]],
  [0.45, [116, 173, 209]],
  [0.6, [254, 224, 144]],
  [0.75, [253, 174, 97]],
  [0.9, [244, 109, 67]],
  [1, [215, 48, 39]],
];

/** The colour of a 0..1 score on the heat strip, as `rgb(r, g, b)`. */
export function heatColor(score) {
  const x = Number.isFinite(score) ? Math.min(1, Math.max(0, score)) : 0;
  let i = 1;
  while (i < HEAT_STOPS.length - 1 && HEAT_STOPS[i][0] < x) i++;
  const [x0, c0] = HEAT_STOPS[i - 1];
  const [x1, c1] = HEAT_STOPS[i];
  const f = x1 > x0 ? (x - x0) / (x1 - x0) : 0;
  const [r, g, b] = c0.map((v, k) => Math.round(v + (c1[k] - v) * f));
  return `rgb(${r}, ${g}, ${b})`;
}

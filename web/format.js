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

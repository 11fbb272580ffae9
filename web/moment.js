// The page's address carries what is on screen: the text query (`q`), and
// the video playing (`v`) with its position in whole seconds (`t`) and the
// result it was opened from (`s`, a segment id). Reloading
// or sharing the address reopens the same results and plays from the same
// second. Image queries cannot travel in an address, so they clear it.
// Importable from Node (no DOM at import time) for the module tests.

/** The moment an address names: `{ text, video, time, segment }`, each possibly null. */
export function readMoment(href) {
  const params = new URL(href).searchParams;
  const text = params.get('q')?.trim() || null;
  const video = params.get('v') || null;
  const seconds = params.get('t') === null ? NaN : Number(params.get('t'));
  return {
    text,
    video,
    time: video && Number.isFinite(seconds) && seconds >= 0 ? seconds : null,
    segment: (video && params.get('s')) || null,
  };
}

/** `href` with the moment's parameters replaced (others, and the path, kept). */
export function withMoment(href, { text = null, video = null, time = null, segment = null }) {
  const url = new URL(href);
  for (const key of ['q', 'v', 't', 's']) url.searchParams.delete(key);
  if (text) url.searchParams.set('q', text);
  if (video) {
    url.searchParams.set('v', video);
    if (time !== null) url.searchParams.set('t', String(Math.floor(time)));
    if (segment !== null) url.searchParams.set('s', String(segment));
  }
  return url.href;
}

/** Rows of the results for export: what a spreadsheet or a script needs, with a link to each moment. */
export function exportRows(results, { text, pageHref }) {
  return results.map((result, index) => ({
    rank: index + 1,
    video_id: result.video_id,
    video_name: result.video_name || '',
    segment_id: result.segment_id,
    kind: result.kind || 'shot',
    start: result.start,
    end: result.end,
    score: result.score,
    text: result.text || '',
    link: withMoment(pageHref, { text, video: result.video_id, time: result.start, segment: result.segment_id }),
  }));
}

const CSV_COLUMNS = ['rank', 'video_id', 'video_name', 'segment_id', 'kind', 'start', 'end', 'score', 'text', 'link'];

/** RFC 4180 CSV with a header row; every field quoted when it needs to be. */
export function toCsv(rows) {
  const field = (value) => {
    const s = String(value ?? '');
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [CSV_COLUMNS, ...rows.map((row) => CSV_COLUMNS.map((c) => row[c]))]
    .map((cells) => cells.map(field).join(','))
    .join('\r\n')
    .concat('\r\n');
}

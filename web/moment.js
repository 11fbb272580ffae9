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

// Besides the moment, the address carries a "more like this" query (`like`,
// a segment id) and the search filters: `video` (repeatable), `from`/`to`
// (seconds), `kind` (repeatable), `min` (minimum score, 0..1) and
// `group=video`, named as in GET /api/v1/search where they exist there.
const SEARCH_KEYS = ['like', 'video', 'from', 'to', 'kind', 'min', 'group'];
export const KINDS = ['shot', 'subtitle', 'ocr'];

/** No filter at all. */
export function noFilters() {
  return { videos: [], from: null, to: null, kinds: [], minScore: null, group: false };
}

/** The "more like this" segment and the filters an address names. */
export function readSearch(href) {
  const params = new URL(href).searchParams;
  const seconds = (name) => {
    const raw = params.get(name);
    const value = raw === null || raw.trim() === '' ? NaN : Number(raw);
    return Number.isFinite(value) && value >= 0 ? value : null;
  };
  const min = seconds('min');
  return {
    like: params.get('like') || null,
    filters: {
      videos: [...new Set(params.getAll('video').flatMap((v) => v.split(',')).filter(Boolean))],
      from: seconds('from'),
      to: seconds('to'),
      kinds: [...new Set(params.getAll('kind').filter((k) => KINDS.includes(k)))],
      minScore: min !== null && min <= 1 ? min : null,
      group: params.get('group') === 'video',
    },
  };
}

/** `href` with the "more like this" segment and the filters replaced (others kept). */
export function withSearch(href, { like = null, filters = noFilters() }) {
  const url = new URL(href);
  for (const key of SEARCH_KEYS) url.searchParams.delete(key);
  if (like) url.searchParams.set('like', like);
  for (const video of filters.videos ?? []) url.searchParams.append('video', video);
  if (filters.from !== null && filters.from !== undefined) url.searchParams.set('from', String(filters.from));
  if (filters.to !== null && filters.to !== undefined) url.searchParams.set('to', String(filters.to));
  for (const kind of filters.kinds ?? []) url.searchParams.append('kind', kind);
  if (filters.minScore) url.searchParams.set('min', String(filters.minScore));
  if (filters.group) url.searchParams.set('group', 'video');
  return url.href;
}

/** The filters as fields of a search body (JSON, WebSocket): only those set. */
export function filterFields(filters) {
  const fields = {};
  if (filters.videos?.length) fields.videos = [...filters.videos];
  if (filters.from !== null && filters.from !== undefined) fields.from = filters.from;
  if (filters.to !== null && filters.to !== undefined) fields.to = filters.to;
  if (filters.kinds?.length) fields.kinds = [...filters.kinds];
  if (filters.minScore) fields.min_score = filters.minScore;
  if (filters.group) fields.group = 'video';
  return fields;
}

/** How many filters are set (grouping counts as one), for the panel's summary. */
export function countFilters(filters) {
  return Object.keys(filterFields(filters)).length;
}

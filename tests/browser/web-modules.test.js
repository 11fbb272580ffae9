// Fast checks of the page's pure modules and markup; no server, no browser.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bytesToBase64, formatTime, heatColor, heatIntervals, scorePercent, timelineSpan } from '../../web/format.js';
import { STRINGS, initialLanguage, setLanguage, t } from '../../web/i18n.js';
import { countFilters, exportRows, filterFields, noFilters, readMoment, readSearch, toCsv, withMoment, withSearch } from '../../web/moment.js';
import { seedPageFor } from './lib/seed-server.js';
import { REPO_ROOT } from './lib/stack.js';

const WEB = path.join(REPO_ROOT, 'web');
const readWeb = (name) => fs.readFileSync(path.join(WEB, name), 'utf8');

test('formatTime renders mm:ss.s and h:mm:ss.s', () => {
  assert.equal(formatTime(0), '00:00.0');
  assert.equal(formatTime(3.24), '00:03.2');
  assert.equal(formatTime(59.96), '01:00.0');
  assert.equal(formatTime(125.5), '02:05.5');
  assert.equal(formatTime(3725.25), '1:02:05.3');
  assert.equal(formatTime(NaN), '--:--.-');
  assert.equal(formatTime(-1), '--:--.-');
});

test('scorePercent clamps a 0..1 confidence', () => {
  assert.equal(scorePercent(0.876), 88);
  assert.equal(scorePercent(1.3), 100);
  assert.equal(scorePercent(-0.2), 0);
  assert.equal(scorePercent(undefined), 0);
});

test('timelineSpan places a segment as percentages of the duration', () => {
  const near = (actual, expected) => {
    for (const key of ['left', 'width']) {
      assert.ok(Math.abs(actual[key] - expected[key]) < 1e-9, `${key}: ${actual[key]} vs ${expected[key]}`);
    }
  };
  near(timelineSpan(2, 4, 10), { left: 20, width: 20 });
  near(timelineSpan(9, 12, 10), { left: 90, width: 10 }); // clipped at the end
  near(timelineSpan(1, 2, 0), { left: 0, width: 0 }); // unknown duration
});

test('bytesToBase64 matches Node for sizes around the chunk boundary', () => {
  for (const size of [0, 1, 2, 3, 0x8000 - 1, 0x8000, 0x8000 * 3 + 7]) {
    const bytes = new Uint8Array(size).map((_, i) => (i * 131 + 7) & 0xff);
    assert.equal(bytesToBase64(bytes), Buffer.from(bytes).toString('base64'), `size ${size}`);
  }
});

test('English and Chinese have the same keys and the same placeholders', () => {
  const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(STRINGS.zh).sort(), Object.keys(STRINGS.en).sort());
  for (const [key, english] of Object.entries(STRINGS.en)) {
    assert.deepEqual(placeholders(STRINGS.zh[key]), placeholders(english), key);
  }
});

test('the language comes from the stored choice, else the browser, else English', () => {
  assert.equal(initialLanguage('zh', ['en-US']), 'zh');
  assert.equal(initialLanguage(null, ['zh-CN', 'en']), 'zh');
  assert.equal(initialLanguage(null, ['fr-FR', 'en-GB']), 'en');
  assert.equal(initialLanguage('xx', []), 'en');
  const storage = new Map();
  const fake = { setItem: (k, v) => storage.set(k, v) };
  setLanguage('zh', { storage: fake, root: null });
  assert.equal(t('status.done', { count: 3, ms: 12 }), '3 个结果，用时 12 毫秒');
  assert.equal(storage.get('vidseek.lang'), 'zh');
  setLanguage('en', { storage: fake, root: null });
  assert.equal(t('status.done', { count: 3, ms: 12 }), '3 results in 12 ms');
  assert.equal(t('no.such.key'), 'no.such.key');
});

test('every translated element in the page names a known string', () => {
  const html = readWeb('index.html');
  const keys = [...html.matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(keys.length > 10);
  for (const key of keys) assert.ok(key in STRINGS.en, `index.html uses unknown string ${key}`);
  for (const file of fs.readdirSync(WEB).filter((f) => f.endsWith('.js'))) {
    for (const m of readWeb(file).matchAll(/\bt\('([\w.]+)'/g)) {
      assert.ok(m[1] in STRINGS.en, `${file} uses unknown string ${m[1]}`);
    }
  }
});

test('the page carries the test hooks the browser tests and users rely on', () => {
  const markup = ['index.html', 'search.js', 'library.js', 'player.js'].map(readWeb).join('\n');
  for (const id of [
    'search-input',
    'search-button',
    'image-input',
    'shard-progress',
    'result-card',
    'player',
    'timeline',
    'library-tab',
    'upload-input',
    'video-row',
    'status-line',
  ]) {
    assert.ok(markup.includes(`testid = '${id}'`) || markup.includes(`data-testid="${id}"`), `no data-testid ${id}`);
  }
});

test('the page loads nothing from other origins (users may be offline)', () => {
  for (const file of fs.readdirSync(WEB)) {
    if (!/\.(html|css|js)$/.test(file)) continue;
    const text = readWeb(file).replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '');
    assert.doesNotMatch(text, /(src|href)=["']?(https?:)?\/\//i, `${file} references another origin`);
    assert.doesNotMatch(text, /@import\s+url\(["']?https?:/i, `${file} imports remote CSS`);
  }
});

test('the seed page fixture changes only in its three base URLs', () => {
  const original = fs.readFileSync(path.join(REPO_ROOT, 'tests/fixtures/seed_page/index.html'), 'utf8');
  const served = seedPageFor('http://127.0.0.1:9');
  const before = original.split('\n');
  const after = served.split('\n');
  assert.equal(after.length, before.length);
  const changed = before.flatMap((line, i) => (line === after[i] ? [] : [after[i]]));
  assert.deepEqual(changed, [
    'var TEXT_BASE = "http://127.0.0.1:9";',
    'var IMAGE_BASE = "http://127.0.0.1:9";',
    'var LIBRARY_BASE = "http://127.0.0.1:9";',
  ]);
});

test('a moment round-trips through the address, other parameters kept', () => {
  const href = withMoment('http://host:8080/?lang=zh#top', { text: '一个人 & a bike', video: 'v1', time: 12.9, segment: 'v1-3' });
  assert.deepEqual(readMoment(href), { text: '一个人 & a bike', video: 'v1', time: 12, segment: 'v1-3' });
  assert.equal(new URL(href).searchParams.get('lang'), 'zh');
  assert.equal(new URL(href).hash, '#top');
  // Clearing the moment removes its parameters; a time without a video means nothing.
  assert.equal(withMoment(href, {}), 'http://host:8080/?lang=zh#top');
  assert.deepEqual(readMoment('http://h/?t=5&s=x&q=%20'), { text: null, video: null, time: null, segment: null });
  assert.deepEqual(readMoment('http://h/?v=a&t=-3'), { text: null, video: 'a', time: null, segment: null });
  assert.deepEqual(readMoment('http://h/?v=a'), { text: null, video: 'a', time: null, segment: null });
});

test('exported rows link to their moment and CSV quotes what needs quoting', () => {
  const results = [
    { video_id: 'v1', video_name: 'a, "b"', segment_id: 's1', kind: 'subtitle', start: 3.5, end: 6, score: 0.9, text: 'line\ntwo' },
    { video_id: 'v2', segment_id: 's2', start: 0, end: 2, score: 0.5 },
  ];
  const rows = exportRows(results, { text: 'bike', pageHref: 'http://h/' });
  assert.equal(rows[0].link, 'http://h/?q=bike&v=v1&t=3&s=s1');
  assert.equal(rows[1].kind, 'shot');
  assert.equal(rows[1].rank, 2);
  const lines = toCsv(rows).split('\r\n');
  assert.equal(lines[0], 'rank,video_id,video_name,segment_id,kind,start,end,score,text,link');
  assert.equal(lines[1], '1,v1,"a, ""b""",s1,subtitle,3.5,6,0.9,"line\ntwo",http://h/?q=bike&v=v1&t=3&s=s1');
  assert.equal(lines.at(-1), '');
});

test('the heat strip takes the best segment covering each piece of the timeline', () => {
  const pieces = heatIntervals([
    { segment_id: 's0', start: 0, end: 4, score: 0.2 },
    { segment_id: 's1', start: 4, end: 8, score: 0.7 },
    { segment_id: 'c0', start: 3, end: 5, score: 0.5 }, // a subtitle cue across the cut
    { segment_id: 's2', start: 10, end: 12, score: 0.1 }, // after a gap no segment covers
  ]);
  assert.deepEqual(pieces, [
    { start: 0, end: 3, score: 0.2, segment_id: 's0' },
    { start: 3, end: 4, score: 0.5, segment_id: 'c0' },
    { start: 4, end: 8, score: 0.7, segment_id: 's1' },
    { start: 10, end: 12, score: 0.1, segment_id: 's2' },
  ]);
  assert.deepEqual(heatIntervals([]), []);
  assert.deepEqual(heatIntervals([{ segment_id: 'x', start: 1, end: 1, score: 1 }]), [], 'empty segments are skipped');
});

test('heat colours run from cool to hot and clamp', () => {
  assert.equal(heatColor(0), 'rgb(49, 54, 149)');
  assert.equal(heatColor(1), 'rgb(215, 48, 39)');
  assert.equal(heatColor(2), heatColor(1));
  assert.equal(heatColor(-1), heatColor(0));
  assert.equal(heatColor(NaN), heatColor(0));
  // Warmth: red minus blue.
  const warmth = (score) => {
    const [r, , b] = heatColor(score).match(/\d+/g).map(Number);
    return r - b;
  };
  assert.ok(warmth(0.3) < warmth(0.6) && warmth(0.6) < warmth(0.85), 'higher scores are warmer');
});

test('filters and "more like this" round-trip through the address, the moment kept', () => {
  const filters = { videos: ['v1', 'v 2'], from: 5, to: 12.5, kinds: ['shot', 'ocr'], minScore: 0.4, group: true };
  const moment = withMoment('http://h/?lang=zh', { text: 'a cat', video: 'v1', time: 3, segment: 'v1-0' });
  const href = withSearch(moment, { like: 'v1-4', filters });
  assert.deepEqual(readSearch(href), { like: 'v1-4', filters });
  assert.deepEqual(readMoment(href), { text: 'a cat', video: 'v1', time: 3, segment: 'v1-0' });
  assert.equal(withSearch(href, { like: null, filters: noFilters() }), moment, 'clearing leaves the rest as it was');
  // As the API spells them: comma-separated videos work too; nonsense is dropped.
  assert.deepEqual(readSearch('http://h/?video=a,b&video=c&from=x&to=-1&kind=scene&kind=subtitle&min=3').filters, {
    videos: ['a', 'b', 'c'],
    from: null,
    to: null,
    kinds: ['subtitle'],
    minScore: null,
    group: false,
  });
  assert.deepEqual(filterFields(filters), {
    videos: ['v1', 'v 2'],
    from: 5,
    to: 12.5,
    kinds: ['shot', 'ocr'],
    min_score: 0.4,
    group: 'video',
  });
  assert.deepEqual(filterFields(noFilters()), {});
  assert.equal(countFilters(filters), 6);
  assert.equal(countFilters({ ...noFilters(), from: 0 }), 1, 'from 0 is a filter');
});

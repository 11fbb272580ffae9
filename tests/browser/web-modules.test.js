// Fast checks of the page's pure modules and markup; no server, no browser.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bytesToBase64, formatTime, scorePercent, timelineSpan } from '../../web/format.js';
import { STRINGS, initialLanguage, setLanguage, t } from '../../web/i18n.js';
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

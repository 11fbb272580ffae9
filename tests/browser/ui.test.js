// End-to-end browser tests against the real stack: the vidseek page (text and
// image search with streamed partials, playback, timeline, library, upload,
// delete, language, empty and error states) and the seed design's page on the
// seed-compatible routes.
//
// Needs: a built `vidseek` (VIDSEEK_BIN, default target/debug/vidseek), real
// media (VIDSEEK_TEST_PHOTOS and/or VIDSEEK_TEST_VIDEO), ffmpeg, Debian's
// chromium, and whatever `vidseek up` needs (VIDSEEK_MODEL_PACK,
// ORT_DYLIB_PATH, NATS_SERVER_BIN are passed through).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS_DIR, launchBrowser, screenshot } from './lib/browser.js';
import { frameAt, phoneSized, reencodedCopy, shortCopy, syntheticClip, testMedia, writeTemp } from './lib/media.js';
import { serveSeedPage } from './lib/seed-server.js';
import { SHARDS, api, ingestAndWait, segmentsOf, shardOf, startStack, waitUntilReady } from './lib/stack.js';

// Seconds of slack between a segment's bounds and the player's position
// (the browser seeks to the nearest decodable frame).
const TOLERANCE_S = 0.3;
const testid = (id) => `[data-testid="${id}"]`;

const media = testMedia();
let stack;
let seed; // the seed design's page, served from an origin of its own
let browser;
let workDir;
const ingested = new Map(); // source path -> video record

before(
  async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vidseek-browser-media-'));
    const roots = [...new Set([...media.videos.map((v) => path.dirname(v)), workDir])];
    // A token is set so that the page's 401 → token prompt path runs for real;
    // the seed page's origin is allowed the way the README tells users to.
    seed = await serveSeedPage();
    stack = await startStack({
      mediaRoots: roots,
      token: randomBytes(12).toString('hex'),
      corsOrigins: [seed.origin],
    });
    seed.pointAt(stack.baseUrl);
    const records = await Promise.all(media.videos.map((file) => ingestAndWait(stack, file)));
    media.videos.forEach((file, i) => ingested.set(file, records[i]));

    // Every shard must own a video, or the first shard to answer might have
    // nothing to show and "results appear while shards are still answering"
    // would not be tested. Unrelated synthetic clips fill the empty shards.
    const owned = () => new Set([...ingested.values()].map((v) => shardOf(v.video_id)));
    for (let n = 0; owned().size < SHARDS; n++) {
      assert.ok(n < 12, `could not give every one of ${SHARDS} shards a video: ${JSON.stringify([...ingested.values()])}`);
      const clip = syntheticClip(workDir, n);
      ingested.set(clip, await ingestAndWait(stack, clip));
    }
    browser = await launchBrowser();
  },
  { timeout: 600_000 },
);

after(async () => {
  if (stack) {
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS_DIR, 'vidseek.log'), stack.log.join('\n'));
  }
  await browser?.close();
  await stack?.stop();
  await seed?.close();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

const videoIdOf = (file) => String(ingested.get(file).video_id);

/** Record every state the results list and shard progress pass through (a partial can last a millisecond). */
async function recordSearchStates(page) {
  await page.evaluate(() => {
    const list = document.querySelector('[data-testid="results"]');
    const bar = document.querySelector('[data-testid="shard-progress"]');
    window.searchStates = [];
    const record = () => {
      const last = window.searchStates.at(-1);
      const now = {
        state: list.dataset.state,
        done: Number(bar.dataset.shardsDone),
        total: Number(bar.dataset.shardsTotal),
        cards: list.querySelectorAll('[data-testid="result-card"]').length,
        progressText: bar.hidden ? '' : bar.textContent.trim(),
        top: list.querySelector('[data-testid="result-card"]')?.dataset.segmentId ?? null,
      };
      if (JSON.stringify(last) !== JSON.stringify(now)) window.searchStates.push(now);
    };
    new MutationObserver(record).observe(document.getElementById('view-search'), {
      subtree: true,
      childList: true,
      attributes: true,
      characterData: true,
    });
  });
}

/** The recorded states show results while some shards had not answered, before the final list. */
function assertPartialBeforeDone(states) {
  const firstDone = states.findIndex((s) => s.state === 'done');
  assert.ok(firstDone >= 0, `never reached done: ${JSON.stringify(states)}`);
  const partials = states
    .slice(0, firstDone)
    .filter((s) => s.state === 'partial' && s.total === SHARDS && s.done < s.total && s.cards > 0);
  assert.ok(
    partials.length > 0,
    `no results were shown while shards were still answering (partial with done < total and cards): ${JSON.stringify(states)}`,
  );
  assert.match(partials[0].progressText, /^\d+\/\d+/, 'shard progress reads like "1/2 shards"');
}

async function waitForFinalResults(page) {
  await page.locator(`${testid('results')}[data-state="done"], ${testid('results')}[data-state="error"]`).waitFor();
  const state = await page.getAttribute(testid('results'), 'data-state');
  assert.equal(state, 'done', `search ended in state ${state}: ${await page.textContent(testid('status-line'))}`);
  const cards = page.locator(testid('result-card'));
  assert.ok((await cards.count()) > 0, `no result cards; status: ${await page.textContent(testid('status-line'))}`);
  return cards;
}

async function resultsOf(cards) {
  return cards.evaluateAll((els) =>
    els.map((el) => ({
      start: Number(el.dataset.start),
      end: Number(el.dataset.end),
      videoId: el.dataset.videoId,
      segmentId: el.dataset.segmentId,
      score: Number(el.dataset.score),
    })),
  );
}

/** Every card shows a loaded thumbnail, the video name, the time range and a score bar. */
async function assertCardsComplete(page) {
  await page.waitForFunction(() =>
    [...document.querySelectorAll('[data-testid="result-card"] img')].every((img) => img.complete && img.naturalWidth > 0),
  );
  const cards = await page.locator(testid('result-card')).evaluateAll((els) =>
    els.map((el) => ({
      name: el.querySelector('.name').textContent,
      range: el.querySelector('.range').textContent,
      fill: el.querySelector('.score-fill').style.width,
      score: Number(el.dataset.score),
    })),
  );
  assert.ok(cards.length <= 10, `at most 10 results, got ${cards.length}`);
  for (const card of cards) {
    assert.ok(card.name.trim().length > 0, 'card names its video');
    assert.match(card.range, /^\d\d:\d\d\.\d – \d\d:\d\d\.\d$/);
    assert.equal(card.fill, `${Math.round(Math.min(1, Math.max(0, card.score)) * 100)}%`, 'score bar matches the score');
  }
  for (let i = 1; i < cards.length; i++) assert.ok(cards[i - 1].score >= cards[i].score, 'results sorted by score');
}

/** Wait until the player has settled inside [start, end] (with tolerance). */
async function expectPlayerWithin(page, start, end) {
  try {
    await page.waitForFunction(
      ([lo, hi]) => {
        const player = document.querySelector('[data-testid="player"]');
        return player.readyState >= 1 && !player.seeking && player.currentTime >= lo && player.currentTime <= hi;
      },
      [start - TOLERANCE_S, end + TOLERANCE_S],
      { timeout: 20_000, polling: 'raf' },
    );
  } catch (error) {
    const state = await page.evaluate(() => {
      const p = document.querySelector('[data-testid="player"]');
      return { currentTime: p.currentTime, readyState: p.readyState, src: p.currentSrc, error: p.error?.message };
    });
    throw new Error(`player never landed in [${start}, ${end}]: ${JSON.stringify(state)}\n${error.message}`);
  }
}

async function expectTimelineHighlights(page, segmentId) {
  const active = page.locator(`${testid('timeline')} .marker.active`);
  await active.waitFor();
  assert.equal(await active.count(), 1, 'exactly one highlighted segment on the timeline');
  assert.equal(await active.getAttribute('data-segment-id'), segmentId);
  assert.equal(await page.getAttribute(testid('timeline'), 'data-active-segment-id'), segmentId);
}

async function expectNoSidewaysScroll(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what} is ${overflow}px wider than a ${page.viewportSize().width}px screen`);
}

/**
 * The query picture and where its answer lies: a frame of the photos video
 * (VIDSEEK_TEST_PHOTOS), else the thumbnail of a shot in the middle of the
 * other test video.
 */
async function queryImage() {
  if (media.imageAt) {
    const { video, time, start, end } = media.imageAt;
    return { file: frameAt(video, time, workDir), videoId: videoIdOf(video), time, start, end };
  }
  const [file] = media.videos;
  const segments = await segmentsOf(stack, videoIdOf(file));
  const shots = segments.filter((s) => s.kind === 'shot' && s.thumbnail_url);
  assert.ok(shots.length > 0, `the test video has no shot with a thumbnail: ${JSON.stringify(segments)}`);
  const shot = shots[Math.floor(shots.length / 2)];
  const response = await fetch(new URL(shot.thumbnail_url, `${stack.baseUrl}/`));
  assert.equal(response.status, 200, `thumbnail ${shot.thumbnail_url}`);
  const type = response.headers.get('content-type') || '';
  const ext = type.includes('png') ? 'png' : type.includes('webp') ? 'webp' : 'jpg';
  const image = writeTemp(workDir, `query.${ext}`, Buffer.from(await response.arrayBuffer()));
  const time = (shot.start + shot.end) / 2;
  return { file: image, videoId: videoIdOf(file), time, start: shot.start, end: shot.end };
}

function assertImageAnswer(results, picture) {
  const [top] = results;
  assert.equal(top.videoId, picture.videoId, `top result is from the picture's video: ${JSON.stringify(results)}`);
  assert.ok(
    top.start <= picture.time + TOLERANCE_S && top.end >= picture.time - TOLERANCE_S,
    `top result [${top.start}, ${top.end}] contains the picture's time ${picture.time}: ${JSON.stringify(results)}`,
  );
}

test('text search shows results while shards answer, then plays the clicked segment with the timeline highlighted', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await recordSearchStates(page);
  // Enter in the search box searches (no button click).
  await page.fill(testid('search-input'), media.textQuery);
  await page.press(testid('search-input'), 'Enter');
  const cards = await waitForFinalResults(page);
  assertPartialBeforeDone(await page.evaluate(() => window.searchStates));
  assert.match(await page.textContent(testid('status-line')), /\d+ results? in \d+ ms/);
  await assertCardsComplete(page);

  const results = await resultsOf(cards);
  if (media.textAnswer) {
    const answerId = videoIdOf(media.textAnswer.video);
    const { start, end } = media.textAnswer;
    const rank = results.findIndex((r) => r.videoId === answerId && r.start < end && r.end > start);
    assert.ok(rank >= 0 && rank < 3, `"${media.textQuery}" finds ${start}–${end} s of the photos in the top 3: ${JSON.stringify(results)}`);
  }
  await page.locator(testid('search-input')).blur(); // no focus ring in the picture
  await screenshot(page, '01-search-results');

  // Click the first result: the player plays its video from the segment's start.
  const first = cards.first();
  const [segment] = results;
  assert.ok(segment.end > segment.start, `segment has a time range: ${JSON.stringify(segment)}`);
  await first.click();
  await expectPlayerWithin(page, segment.start, segment.end);
  await expectTimelineHighlights(page, segment.segmentId);
  assert.equal(await first.evaluate((el) => el.classList.contains('playing')), true, 'the playing card is marked');

  // The other segments of the video are markers on the timeline.
  const segments = await segmentsOf(stack, segment.videoId);
  await page.waitForFunction(
    (count) => document.querySelectorAll('[data-testid="timeline"] .marker').length >= count,
    segments.length,
  );
  const markerIds = await page
    .locator(`${testid('timeline')} .marker`)
    .evaluateAll((els) => els.map((el) => el.dataset.segmentId).sort());
  assert.deepEqual(markerIds, segments.map((s) => String(s.segment_id)).sort(), 'one timeline marker per segment of the video');
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  await screenshot(page, '02-playback');

  // Clicking another segment's marker plays from there and moves the highlight.
  const other = segments.find((s) => String(s.segment_id) !== segment.segmentId && (s.end <= segment.start || s.start >= segment.end));
  assert.ok(other, `the video has a segment apart from ${segment.segmentId}: ${JSON.stringify(segments)}`);
  await page.click(`${testid('timeline')} .marker[data-segment-id="${other.segment_id}"]`);
  await expectPlayerWithin(page, other.start, other.end);
  await expectTimelineHighlights(page, String(other.segment_id));

  // Phone width: the player comes first, nothing sticks out sideways.
  await page.setViewportSize({ width: 375, height: 812 });
  await expectNoSidewaysScroll(page, 'the search page');
  const playerBox = await page.locator(testid('player')).boundingBox();
  assert.ok(playerBox.width > 300, `the player uses the phone's width (${playerBox.width}px)`);
  await screenshot(page, '03-phone', { fullPage: true });
  await page.close();
});

test('image search (file input) finds where the picture came from; Enter on a focused card plays it', async () => {
  const picture = await queryImage();
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await recordSearchStates(page);
  await page.setInputFiles(testid('image-input'), picture.file);
  const cards = await waitForFinalResults(page);
  assertPartialBeforeDone(await page.evaluate(() => window.searchStates));
  assert.equal(await page.isVisible(testid('image-chip')), true, 'the query picture is shown');
  await assertCardsComplete(page);
  const results = await resultsOf(cards);
  assertImageAnswer(results, picture);
  await screenshot(page, '04-image-search');

  // Keyboard only: Tab reaches the cards, Enter plays.
  const first = cards.first();
  await first.focus();
  assert.equal(await first.evaluate((el) => el === document.activeElement), true);
  await page.keyboard.press('Enter');
  await expectPlayerWithin(page, results[0].start, results[0].end);
  await expectTimelineHighlights(page, results[0].segmentId);
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  await screenshot(page, '05-image-playback');
  await page.close();
});

test('a phone-sized photo is reduced in the browser before it is sent, and still finds its moment', async () => {
  const picture = await queryImage();
  const photo = phoneSized(picture.file, workDir);
  const photoBytes = fs.statSync(photo).size;
  assert.ok(photoBytes > 2 * 1024 * 1024, `the test photo is phone-sized: ${photoBytes} bytes`);
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));
  await page.setInputFiles(testid('image-input'), photo);
  const cards = await waitForFinalResults(page);
  assertImageAnswer(await resultsOf(cards), { ...picture, file: photo });
  const query = sent.find((payload) => payload.includes('"image_base64"'));
  assert.ok(query, 'the search went over the socket as an image query');
  // A ≤ 1024 px JPEG of ≤ 700 KiB, base64 in JSON: well under one NATS message.
  assert.ok(query.length < 1024 * 1024, `sent ${query.length} bytes for a ${photoBytes}-byte photo`);
  await page.close();
});

/** A File in the page made from a file on disk, for synthetic drop and paste events. */
async function fileHandle(page, file, type) {
  const base64 = fs.readFileSync(file).toString('base64');
  return page.evaluateHandle(
    ([data, name, mime]) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name, { type: mime }));
      return transfer;
    },
    [base64, path.basename(file), type],
  );
}

test('an image dropped on the page or pasted searches with it', async () => {
  const picture = await queryImage();
  const type = picture.file.endsWith('.png') ? 'image/png' : 'image/jpeg';
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);

  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));

  // Drag and drop onto the search box.
  const dropped = await fileHandle(page, picture.file, type);
  await page.dispatchEvent(testid('search-form'), 'dragenter', { dataTransfer: dropped });
  assert.equal(await page.evaluate(() => document.getElementById('search-form').classList.contains('dragging')), true);
  await page.dispatchEvent(testid('search-form'), 'drop', { dataTransfer: dropped });
  let cards = await waitForFinalResults(page);
  assertImageAnswer(await resultsOf(cards), picture);
  assert.ok(sent.some((payload) => payload.includes('"image_base64"')), 'the search went over the socket as an image query');

  // Clear, then paste (Ctrl+V) the same picture.
  await page.click('#image-clear');
  assert.equal(await page.isVisible(testid('image-chip')), false);
  await page.evaluate(() => {
    document.querySelector('[data-testid="results"]').dataset.state = 'idle';
  });
  const pasted = await fileHandle(page, picture.file, type);
  await page.evaluate((transfer) => {
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
  }, pasted);
  cards = await waitForFinalResults(page);
  assertImageAnswer(await resultsOf(cards), picture);
  assert.equal(await page.isVisible(testid('image-chip')), true);
  await page.close();
});

test('search reconnects a dropped socket, and falls back to HTTP without one', async () => {
  // First: the first socket is dropped at once; the page reconnects and streams over the new one.
  const page = await browser.newPage();
  let connections = 0;
  await page.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    connections++;
    if (connections === 1) ws.close();
    else ws.connectToServer();
  });
  await page.goto(stack.baseUrl);
  await recordSearchStates(page);
  await page.fill(testid('search-input'), media.textQuery);
  await page.press(testid('search-input'), 'Enter');
  await waitForFinalResults(page);
  assert.ok(connections >= 2, `the page reconnected (${connections} sockets)`);
  assertPartialBeforeDone(await page.evaluate(() => window.searchStates));
  await page.close();

  // Then: no socket ever works; the same search goes over GET /api/v1/search.
  const offline = await browser.newPage();
  await offline.routeWebSocket(/\/api\/v1\/ws$/, (ws) => ws.close());
  await offline.goto(stack.baseUrl);
  const httpSearch = offline.waitForRequest((r) => r.url().includes('/api/v1/search?text='));
  await offline.fill(testid('search-input'), media.textQuery);
  await offline.press(testid('search-input'), 'Enter');
  await httpSearch;
  await waitForFinalResults(offline);
  await assertCardsComplete(offline);
  await offline.close();
});

test('empty, error and unreachable-server states say what happened', async () => {
  const page = await browser.newPage();
  // The socket answers as a server would: nothing found for "nothing", an error for "fail".
  await page.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    ws.onMessage((raw) => {
      const message = JSON.parse(String(raw));
      if (message.text === 'nothing') {
        ws.send(JSON.stringify({ type: 'partial', id: message.id, shards_done: 1, shards_total: 2, results: [] }));
        ws.send(JSON.stringify({ type: 'done', id: message.id, took_ms: 3, shards_done: 2, shards_total: 2, results: [] }));
      } else {
        ws.send(JSON.stringify({ type: 'error', id: message.id, code: 'unavailable', message: 'no encoder answered' }));
      }
    });
  });
  await page.route('**/api/v1/videos', (route) =>
    route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"NATS is down"}}' }),
  );
  await page.goto(stack.baseUrl);

  await page.fill(testid('search-input'), 'nothing');
  await page.press(testid('search-input'), 'Enter');
  await page.locator(`${testid('results')}[data-state="done"]`).waitFor({ state: 'attached' });
  assert.equal(await page.locator(testid('result-card')).count(), 0);
  assert.match(await page.textContent(testid('status-line')), /No matches for “nothing”/);

  await page.fill(testid('search-input'), 'fail');
  await page.press(testid('search-input'), 'Enter');
  await page.locator(`${testid('results')}[data-state="error"]`).waitFor({ state: 'attached' });
  assert.match(await page.textContent(testid('status-line')), /Search failed: no encoder answered/);
  assert.equal(await page.getAttribute(testid('status-line'), 'data-tone'), 'error');

  await page.click(testid('library-tab'));
  await page.waitForFunction(() => document.querySelector('[data-testid="library-status"]').textContent.includes('NATS is down'));
  assert.match(await page.textContent(testid('library-status')), /Could not load the library: NATS is down/);
  await screenshot(page, '06-error-state');

  // An empty library says so, on both views.
  await page.unroute('**/api/v1/videos');
  await page.route('**/api/v1/videos', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: '{"videos":[]}' }));
  // The bare page: reloading would search again for the query in the address.
  await page.goto(stack.baseUrl);
  assert.match(await page.textContent('#search-intro'), /library is empty/);
  await page.click(testid('library-tab'));
  await page.waitForFunction(() => /No videos yet/.test(document.querySelector('[data-testid="library-status"]').textContent));
  await page.close();
});

function timestampSeconds(timestamp) {
  const text = String(timestamp).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const parts = text.split(':').map(Number);
  assert.ok(parts.every(Number.isFinite), `unreadable timestamp ${JSON.stringify(timestamp)}`);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

async function seedResults(page) {
  const items = page.locator('#results .item:not([data-old])');
  await items.first().waitFor({ timeout: 30_000 });
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#results .item img')].every((img) => img.complete && img.naturalWidth > 0),
  );
  assert.equal(await page.textContent('#message'), '', 'no error message on the seed page');
  const links = await page.locator('#results .item a').evaluateAll((as) => as.map((a) => a.href));
  assert.ok(links.length > 0 && links.length <= 10, `1..10 results, got ${links.length}`);
  return links.map((href) => {
    const url = new URL(href);
    assert.equal(url.pathname, '/video_player', href);
    return { href, id: url.searchParams.get('id'), timestamp: timestampSeconds(url.searchParams.get('timestamp')) };
  });
}

/** Follow a seed result's link; the gateway's player page plays from the timestamp. */
async function followSeedLink(page, links, pick, name) {
  await page.locator('#results .item a').nth(pick).click();
  await page.waitForURL(/\/video_player\?/);
  await page.locator('video').first().waitFor({ state: 'attached' });
  await page.waitForFunction(
    (ts) => {
      const v = document.querySelector('video');
      return v && v.readyState >= 1 && !v.seeking && v.currentTime >= ts - 0.3 && v.currentTime <= ts + 1.5;
    },
    links[pick].timestamp,
    { timeout: 20_000, polling: 'raf' },
  );
  await screenshot(page, name);
}

test('the seed design page works against the gateway with only its base URLs changed', async () => {
  const page = await browser.newPage();
  try {
    // Text: /text_query, then /video_library per id, covers and /video_player links.
    await page.goto(seed.url);
    await page.fill('#text', media.textQuery);
    await page.press('#text', 'Enter');
    let links = await seedResults(page);
    // The same segments as the API's answer (ties may order differently), each with its start as the timestamp.
    const answer = await api(stack, `/api/v1/search?text=${encodeURIComponent(media.textQuery)}&k=20`);
    const starts = new Map(answer.results.map((r) => [String(r.segment_id), r.start]));
    for (const link of links) {
      assert.ok(starts.has(link.id), `seed result ${link.id} is among the API's top 20: ${JSON.stringify(answer.results)}`);
      assert.ok(Math.abs(link.timestamp - starts.get(link.id)) < 0.01, `timestamp of ${link.id} is its start`);
    }
    await screenshot(page, '07-seed-page');
    // The latest start, so that "plays from there" is not trivially 0 s.
    let pick = links.findIndex((l) => l.timestamp === Math.max(...links.map((x) => x.timestamp)));
    await followSeedLink(page, links, pick, '08-seed-player-text');

    // Image: POST /image_query with form field `image`.
    const picture = await queryImage();
    await page.goto(seed.url);
    await page.setInputFiles('#image', picture.file);
    await page.click('#image_search');
    links = await seedResults(page);
    const top = await api(stack, `/video_library?id=${encodeURIComponent(links[0].id)}`);
    assert.ok(
      Math.abs(timestampSeconds(top.timestamp) - picture.start) < picture.end - picture.start,
      `the top image result starts in the picture's segment: ${JSON.stringify(top)}`,
    );
    pick = links.findIndex((l) => l.timestamp === Math.max(...links.map((x) => x.timestamp)));
    await followSeedLink(page, links, pick, '09-seed-player-image');
  } finally {
    await page.close();
  }
});

test('library shows videos as ready; a dropped upload shows progress, asks for the token, ingests live, then delete', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await page.click(testid('library-tab'));
  for (const record of ingested.values()) {
    const row = page.locator(`${testid('video-row')}[data-video-id="${record.video_id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'ready');
    assert.match(await row.locator(testid('video-status')).textContent(), /ready/);
  }
  await screenshot(page, '10-library');
  await page.setViewportSize({ width: 375, height: 812 });
  await expectNoSidewaysScroll(page, 'the library');
  await screenshot(page, '10-library-phone', { fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // Slow the upload down so its progress bar is seen moving.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 256 * 1024,
  });
  await page.evaluate(() => {
    window.uploadFractions = [];
    window.ingestStates = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target.matches?.('progress[data-testid="upload-progress"]')) window.uploadFractions.push(r.target.value);
      }
    }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, attributeFilter: ['value'] });
    new MutationObserver(() => {
      for (const row of document.querySelectorAll('[data-testid="video-row"]')) {
        const entry = `${row.dataset.videoId} ${row.dataset.status}`;
        if (!window.ingestStates.includes(entry)) window.ingestStates.push(entry);
      }
    }).observe(document.getElementById('video-rows'), { subtree: true, childList: true, attributes: true });
  });

  const upload = shortCopy(media.videos.at(-1), workDir);
  const known = [...ingested.values()].map((v) => String(v.video_id));
  // Dropped on the upload area (the file chooser path is the same code after the `change` event).
  const dropped = await fileHandle(page, upload, 'video/mp4');
  await page.dispatchEvent(testid('upload-drop'), 'dragenter', { dataTransfer: dropped });
  assert.equal(await page.evaluate(() => document.getElementById('upload-drop').classList.contains('dragging')), true);
  await page.dispatchEvent(testid('upload-drop'), 'drop', { dataTransfer: dropped });
  // The server wants a token for uploads: the page asks for it and retries.
  await page.locator(testid('token-dialog')).waitFor();
  await page.fill(testid('token-input'), stack.token);
  await page.keyboard.press('Enter');
  const item = page.locator(testid('upload-item')).first();
  await item.locator(testid('upload-progress')).waitFor();
  // For the picture only: catch the bar mid-way (the assertion on progress is below).
  await page
    .waitForFunction(
      () => {
        const bar = document.querySelector('[data-testid="upload-progress"]');
        return bar.value > 0 && bar.value < 1;
      },
      null,
      { polling: 'raf', timeout: 10_000 },
    )
    .catch(() => {});
  await screenshot(page, '11-uploading');
  await page
    .locator(`${testid('upload-item')}[data-state="done"], ${testid('upload-item')}[data-state="error"]`)
    .first()
    .waitFor({ timeout: 60_000 });
  assert.equal(await item.getAttribute('data-state'), 'done', await item.textContent());
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const fractions = await page.evaluate(() => window.uploadFractions);
  assert.ok(fractions.some((f) => f > 0 && f < 1), `upload progress moved through values between 0 and 1: ${fractions}`);
  assert.equal(fractions.at(-1), 1);

  // The new video appears and goes through ingest to ready, live (the page polls while something is busy).
  const uploadedId = await page
    .waitForFunction(
      (knownIds) => {
        const rows = [...document.querySelectorAll('[data-testid="video-row"]')];
        return rows.map((r) => r.dataset.videoId).find((id) => !knownIds.includes(id)) || null;
      },
      known,
      { timeout: 30_000 },
    )
    .then((handle) => handle.jsonValue());
  await screenshot(page, '12-library-ingesting');
  await waitUntilReady(stack, uploadedId);
  const newRow = page.locator(`${testid('video-row')}[data-video-id="${uploadedId}"]`);
  await page.locator(`${testid('video-row')}[data-video-id="${uploadedId}"][data-status="ready"]`).waitFor({ timeout: 30_000 });
  const states = await page.evaluate(() => window.ingestStates);
  assert.ok(
    states.some((s) => s === `${uploadedId} queued` || s === `${uploadedId} processing`),
    `the page showed the upload before it was ready: ${states}`,
  );
  await screenshot(page, '13-library-uploaded');

  // Delete asks for confirmation (a second click), then the row goes away.
  await newRow.locator(testid('delete-button')).click();
  assert.match(await newRow.locator(testid('delete-button')).textContent(), /Really delete/);
  await newRow.locator(testid('delete-button')).click();
  await newRow.waitFor({ state: 'detached', timeout: 15_000 });
  const { videos } = await api(stack, '/api/v1/videos');
  assert.ok(!videos.some((v) => String(v.video_id) === uploadedId), 'deleted video is gone from the API');
  await page.close();
});

test('language switch changes the UI strings, is remembered, and a Chinese query says what it was searched as', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await page.selectOption(testid('lang-select'), 'zh');
  assert.equal(await page.textContent(testid('search-button')), '搜索');
  await page.reload();
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(await page.textContent(testid('library-tab')), '视频库');
  await page.fill(testid('search-input'), media.textQuery);
  await page.press(testid('search-input'), 'Enter');
  await waitForFinalResults(page);
  assert.match(await page.textContent(testid('status-line')), /个结果/);
  await screenshot(page, '14-search-zh');

  // The default pack translates Chinese queries: the page says what was searched.
  await page.fill(testid('search-input'), '一杯咖啡');
  await page.press(testid('search-input'), 'Enter');
  const cards = await waitForFinalResults(page);
  const searchedAs = page.locator(testid('query-translation'));
  await searchedAs.waitFor({ state: 'visible', timeout: 5_000 });
  assert.match(await searchedAs.textContent(), /已译为英文搜索：“.*coffee.*”/);
  assert.equal(await searchedAs.getAttribute('data-language'), 'zh');
  assert.equal(await page.isHidden(testid('search-warnings')), true, 'a translated query raises no warning');
  if (media.imageAt) {
    // The photos video shows the coffee cup at 8–12 s.
    const [top] = await resultsOf(cards);
    assert.ok(top.start < 12 && top.end > 8, `一杯咖啡 finds the coffee first: ${JSON.stringify(top)}`);
  }
  // Let the cards' arrival animation finish: this picture is in the README.
  await page.waitForTimeout(500);
  await screenshot(page, '15-search-zh-translated');

  // A language with no translation path is still warned about, and the line goes away.
  await page.fill(testid('search-input'), '海辺で踊る人');
  await page.press(testid('search-input'), 'Enter');
  await page.locator(`${testid('results')}[data-state="done"], ${testid('results')}[data-state="error"]`).waitFor();
  const warning = page.locator(`${testid('search-warnings')} li[data-code="language_unsupported"]`);
  await warning.waitFor({ timeout: 5_000 });
  assert.ok((await warning.textContent()).trim().length > 0, 'the warning says something');
  assert.equal(await searchedAs.isHidden(), true, 'no "searched as" line for an untranslated query');
  await page.selectOption(testid('lang-select'), 'en');
  await page.close();
});

test('the address reopens a query and its playing moment; arrows, Enter and Esc drive the results; results export', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await page.fill(testid('search-input'), media.textQuery);
  await page.press(testid('search-input'), 'Enter');
  const cards = await waitForFinalResults(page);
  const results = await resultsOf(cards);
  assert.equal(new URL(page.url()).searchParams.get('q'), media.textQuery, 'the address carries the query');

  // Keyboard: the arrow key moves from the first card to the second, Enter plays it.
  assert.ok(results.length >= 2, `two results to move between: ${JSON.stringify(results)}`);
  await cards.first().focus();
  await page.keyboard.press('ArrowDown');
  assert.equal(await cards.nth(1).evaluate((el) => el === document.activeElement), true, 'ArrowDown focuses the next result');
  await page.keyboard.press('Enter');
  const second = results[1];
  await expectPlayerWithin(page, second.start, second.end);
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  await page.waitForFunction((video) => new URL(location.href).searchParams.get('v') === video, second.videoId);
  const shared = new URL(page.url());
  const secondT = Number(shared.searchParams.get('t'));
  assert.equal(shared.searchParams.get('s'), second.segmentId, 'the address names the result played');
  assert.ok(Math.abs(secondT - Math.floor(second.start)) <= 1, `t=${secondT} is where the segment starts (${second.start})`);

  // Export: the CSV has a header and one row per card, each linking to its moment.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(testid('export-csv'))]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\r\n');
  assert.equal(csv[0].split(',')[1], 'video_id');
  assert.equal(csv.length, results.length + 1, `one CSV row per result: ${csv.join(' | ')}`);
  assert.ok(csv[2].includes(`v=${encodeURIComponent(second.videoId)}`), `row 2 links to its video: ${csv[2]}`);

  // Esc closes the player and gives focus back to the result that was playing.
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('[data-testid="player"]').getAttribute('src'));
  assert.equal(await cards.nth(1).evaluate((el) => el === document.activeElement), true, 'focus returns to the played result');
  assert.equal(new URL(page.url()).searchParams.get('v'), null, 'a closed player leaves the address');

  // The shared address, opened fresh: same query, same results, playing from the same second.
  const reopened = await browser.newPage();
  await reopened.goto(shared.href);
  const again = await resultsOf(await waitForFinalResults(reopened));
  assert.equal(await reopened.inputValue(testid('search-input')), media.textQuery);
  assert.deepEqual(again.map((r) => r.segmentId), results.map((r) => r.segmentId), 'the same results');
  await expectPlayerWithin(reopened, secondT, secondT + 1);
  assert.equal(
    await reopened.evaluate(() => document.querySelector('[data-testid="player"]').currentSrc.includes('/media/videos/')),
    true,
  );
  await expectTimelineHighlights(reopened, second.segmentId);
  await reopened.close();
  await page.close();
});

// Searching beyond a list: the heat strip, more like this, filters, grouping
// and text with a picture. A second, re-encoded copy of the test media is
// ingested for these (after the tests above, whose answers assume one copy).

const COFFEE = { start: 8, end: 12 }; // the coffee photo in the photos video
const CAT = { start: 4, end: 8 };
const ROCKET = { start: 12, end: 16 };
const overlaps = (r, range) => r.start < range.end && r.end > range.start;

let copyIngest = null;
/** The photos video (else the other test video) again, smaller and re-encoded: another video showing the same pictures. */
function secondCopy() {
  copyIngest ??= (async () => {
    const source = media.photos ?? media.videos[0];
    const copy = reencodedCopy(source, workDir);
    ingested.set(copy, await ingestAndWait(stack, copy));
    return { source, copy, sourceId: videoIdOf(source), copyId: videoIdOf(copy) };
  })();
  return copyIngest;
}

async function search(page, text) {
  await page.fill(testid('search-input'), text);
  await page.press(testid('search-input'), 'Enter');
  return resultsOf(await waitForFinalResults(page));
}

/** Wait for the next final answer after `action` (the list goes back to searching first). */
async function researched(page, action) {
  await page.evaluate(() => {
    document.querySelector('[data-testid="results"]').dataset.state = 'stale-for-test';
  });
  await action();
  return resultsOf(await waitForFinalResults(page));
}

/** The heat strip's cells once it has drawn the scores of `videoId` for the query `text` (else any). */
async function heatCells(page, videoId, text = null) {
  const forText = text === null ? '' : `[data-query-text="${text}"]`;
  await page.locator(`${testid('heat-strip')}[data-state="ready"][data-video-id="${videoId}"]${forText} .heat-cell`).first().waitFor();
  return page.locator(`${testid('heat-strip')} .heat-cell`).evaluateAll((els) =>
    els.map((el) => ({
      start: Number(el.dataset.start),
      end: Number(el.dataset.end),
      score: Number(el.dataset.score),
      segmentId: el.dataset.segmentId,
      label: el.getAttribute('aria-label'),
      background: el.style.background,
    })),
  );
}

/** The cells agree with the scores API: each piece has the best score of the segments covering it, and they cover every segment. */
function assertHeatMatchesScores(cells, scores) {
  assert.ok(cells.length > 0, 'the strip has cells');
  for (const cell of cells) {
    const covering = scores.segments.filter((s) => s.start <= cell.start && s.end >= cell.end);
    assert.ok(covering.length > 0, `cell ${JSON.stringify(cell)} is covered by a segment`);
    const best = Math.max(...covering.map((s) => s.score));
    assert.ok(Math.abs(cell.score - best) < 1e-6, `cell ${JSON.stringify(cell)} has the best covering score ${best}`);
    assert.match(cell.label, /^\d\d:\d\d\.\d – \d\d:\d\d\.\d.*\d+%$/, 'each cell says its time and score');
  }
  for (const segment of scores.segments.filter((s) => s.end > s.start)) {
    assert.ok(
      cells.some((c) => c.start < segment.end && c.end > segment.start),
      `segment ${segment.segment_id} is on the strip`,
    );
  }
}

const hottest = (cells) => cells.reduce((top, c) => (c.score > top.score ? c : top));

test('the heat strip shows the API scores of the playing video for the query, follows a new query, and a click seeks there', async () => {
  // With the photos video the answers are known: the coffee at 8–12 s, the cat at 4–8 s.
  const [first, second] = media.photos ? ['a cup of coffee', 'a cat'] : [media.textQuery, 'a cup of coffee'];
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  const results = await search(page, first);
  const pick = media.photos ? results.findIndex((r) => r.videoId === videoIdOf(media.photos) && overlaps(r, COFFEE)) : 0;
  assert.ok(pick >= 0, `the coffee shot is among the results: ${JSON.stringify(results)}`);
  const played = results[pick];
  const videoId = played.videoId;
  await page.locator(testid('result-card')).nth(pick).click();
  await expectPlayerWithin(page, played.start, played.end);

  const scoresOf = (text) => api(stack, `/api/v1/videos/${encodeURIComponent(videoId)}/scores?text=${encodeURIComponent(text)}`);
  let cells = await heatCells(page, videoId, first);
  assertHeatMatchesScores(cells, await scoresOf(first));
  if (media.photos) assert.ok(overlaps(hottest(cells), COFFEE), `the strip is hottest at the coffee: ${JSON.stringify(hottest(cells))}`);
  assert.ok(cells.some((c) => c.background !== cells[0].background), 'cells are coloured by their score');

  // A click on the strip, away from the segment playing, plays from the point clicked.
  const target = cells.find((c) => (c.end <= played.start - 1 || c.start >= played.end + 1) && c.end - c.start >= 1);
  assert.ok(target, `a cell away from ${played.start}–${played.end}: ${JSON.stringify(cells)}`);
  const box = await page.locator(`${testid('heat-strip')} .heat-cell[data-start="${target.start}"]`).boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await expectPlayerWithin(page, target.start, target.end);

  // A new query redraws the strip for the same video.
  await search(page, second);
  cells = await heatCells(page, videoId, second);
  assertHeatMatchesScores(cells, await scoresOf(second));
  if (media.photos) assert.ok(overlaps(hottest(cells), CAT), `after "a cat" the strip is hottest at the cat: ${JSON.stringify(hottest(cells))}`);

  // In Chinese, for the README: 一杯咖啡 (a cup of coffee) lights up the coffee again.
  await page.selectOption(testid('lang-select'), 'zh');
  await search(page, '一杯咖啡');
  cells = await heatCells(page, videoId, '一杯咖啡');
  if (media.photos) assert.ok(overlaps(hottest(cells), COFFEE), `一杯咖啡 is hottest at the coffee: ${JSON.stringify(hottest(cells))}`);
  // From the keyboard: the strip's one tab stop is its best match, and Enter plays from there.
  const best = page.locator(`${testid('heat-strip')} .heat-cell[tabindex="0"]`);
  assert.equal(await best.count(), 1, 'one tab stop on the strip');
  assert.equal(Number(await best.getAttribute('data-start')), hottest(cells).start, 'the tab stop is the best match');
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  await page.evaluate(() => {
    document.querySelector('[data-testid="player"]').currentTime = 0;
  });
  await best.focus();
  await page.keyboard.press('Enter');
  await expectPlayerWithin(page, hottest(cells).start, hottest(cells).end);
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  await page.locator(testid('search-input')).blur();
  await page.waitForTimeout(500);
  await screenshot(page, '16-heat-strip-zh');
  await page.selectOption(testid('lang-select'), 'en'); // the choice is remembered for the next pages
  await page.close();
});

test('more like this, from a result card and from the playing moment, finds the same picture in the other copy first', async () => {
  const { sourceId, copyId } = await secondCopy();
  const page = await browser.newPage();
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));
  await page.goto(stack.baseUrl);
  const query = media.photos ? 'a cup of coffee' : media.textQuery;
  const results = await search(page, query);
  // The copy's segment to start from: its coffee shot (else its best result).
  const from = results.findIndex((r) => r.videoId === copyId && (!media.photos || overlaps(r, COFFEE)));
  assert.ok(from >= 0, `the copy is among the results for "${query}": ${JSON.stringify(results)}`);
  const start = results[from];
  const likes = await researched(page, () =>
    page.locator(`${testid('results')} > li`).nth(from).locator(testid('more-like-this')).click(),
  );
  assert.ok(sent.some((p) => JSON.parse(p).like === start.segmentId), `searched over the socket with like: ${sent}`);
  assert.equal(likes[0].videoId, sourceId, `the top match is in the other copy: ${JSON.stringify(likes)}`);
  assert.ok(
    likes[0].start < start.end && likes[0].end > start.start,
    `the top match [${likes[0].start}, ${likes[0].end}] is the same moment as [${start.start}, ${start.end}]`,
  );
  assert.ok(!likes.some((r) => r.segmentId === start.segmentId), 'the segment itself is left out');
  assert.equal(await page.isVisible(testid('like-chip')), true, 'the page says what it searched like');
  assert.equal(new URL(page.url()).searchParams.get('like'), start.segmentId, 'the address carries the query');

  // From the player: play the top match, then "more like this moment" finds the copy's segment first.
  await page.locator(testid('result-card')).first().click();
  await expectPlayerWithin(page, likes[0].start, likes[0].end);
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  const back = await researched(page, () => page.click(testid('player-more-like')));
  assert.equal(back[0].videoId, copyId, `more like the playing moment finds the copy first: ${JSON.stringify(back)}`);
  assert.ok(back[0].start < likes[0].end && back[0].end > likes[0].start, `the same moment: ${JSON.stringify(back[0])}`);
  // The heat strip scores the video against the like query too.
  const cells = await heatCells(page, sourceId);
  assert.ok(cells.length > 0);
  await page.close();
});

/** Set inputs' values (`[selector, value]` pairs; booleans check boxes) as a person would, with one `change` at the end. */
async function setInputs(page, pairs) {
  await page.evaluate((list) => {
    let input;
    for (const [selector, value] of list) {
      input = document.querySelector(selector);
      if (typeof value === 'boolean') input.checked = value;
      else input.value = String(value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, pairs);
}
const setRange = (page, selector, value) => setInputs(page, [[selector, value]]);

test('filters (videos, time range, kind, minimum score) change the results and travel in the address', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  const query = media.photos ? 'a cup of coffee' : media.textQuery;
  const unfiltered = await search(page, query);
  // Another video than the best match's (bikes, with the photos).
  const otherFile = [...ingested.keys()].find((file) => videoIdOf(file) !== unfiltered[0].videoId);
  const otherId = videoIdOf(otherFile);

  // Only in one video: every result is from it, and there are still several.
  await page.click(`${testid('filters')} summary`);
  await page.locator(`${testid('filter-video')}[value="${otherId}"]`).waitFor();
  let results = await researched(page, () => page.check(`${testid('filter-video')}[value="${otherId}"]`));
  const segments = await segmentsOf(stack, otherId);
  assert.ok(results.length >= Math.min(3, segments.length), `a filtered search still fills the list: ${JSON.stringify(results)}`);
  assert.ok(results.every((r) => r.videoId === otherId), `only that video: ${JSON.stringify(results)}`);
  assert.match(await page.textContent(testid('filters-summary')), /1 active/);
  assert.deepEqual(new URL(page.url()).searchParams.getAll('video'), [otherId], 'the address carries the filter');

  // The address reopens the same filtered search.
  const reopened = await browser.newPage();
  await reopened.goto(page.url());
  const again = await resultsOf(await waitForFinalResults(reopened));
  assert.deepEqual(again.map((r) => r.segmentId), results.map((r) => r.segmentId), 'the same filtered results');
  assert.equal(await reopened.isChecked(`${testid('filter-video')}[value="${otherId}"]`), true);
  await reopened.close();

  // A part of the video: results overlap it (with the photos: after the coffee, 8–12 s).
  const longest = Math.max(...(await segmentsOf(stack, unfiltered[0].videoId)).map((s) => s.end));
  const [from, to] = media.photos ? [12, 40] : [Math.floor(longest / 2), Math.ceil(longest) + 10];
  results = await researched(page, async () => {
    await setInputs(page, [
      [`${testid('filter-video')}[value="${otherId}"]`, false],
      [testid('filter-from'), from],
      [testid('filter-to'), to],
    ]);
  });
  assert.ok(results.length > 0, `results in ${from}–${to} s`);
  assert.ok(results.every((r) => r.end > from && r.start < to), `results overlap ${from}–${to} s: ${JSON.stringify(results)}`);
  assert.notDeepEqual(results.map((r) => r.segmentId), unfiltered.map((r) => r.segmentId), 'the time range changed the results');

  // Minimum score: nothing below it.
  const min = Math.max(0.05, Math.round(((results[0].score + results.at(-1).score) / 2) * 20) / 20);
  const above = await researched(page, () => setRange(page, testid('filter-min'), min));
  assert.ok(above.length > 0 && above.every((r) => r.score >= min - 1e-6), `scores ≥ ${min}: ${JSON.stringify(above)}`);
  assert.equal(new URL(page.url()).searchParams.get('min'), String(min));
  await page.locator(`${testid('filters')} summary`).evaluate((el) => el.scrollIntoView());
  await page.waitForTimeout(500); // the cards' arrival animation
  await screenshot(page, '17-filters');

  // Kind of match: subtitles only (the photos video has a subtitle file; any video has shots).
  const kind = media.photos ? 'subtitle' : 'shot';
  await researched(page, () => page.click(testid('filters-clear')));
  const kinds = await researched(page, () => page.check(testid(`filter-kind-${kind}`)));
  const shown = await page.locator(`${testid('result-card')} .kind`).evaluateAll((els) => els.map((el) => el.dataset.kind));
  assert.ok(shown.length > 0, `${kind} matches exist`);
  assert.ok(shown.every((k) => k === kind), `${kind} only: ${shown}`);
  assert.equal(kinds.length, shown.length);
  if (media.photos) assert.notDeepEqual(kinds.map((r) => r.segmentId), unfiltered.map((r) => r.segmentId), 'the kind changed the results');

  // Phone width: the panel fits.
  await page.setViewportSize({ width: 375, height: 812 });
  await expectNoSidewaysScroll(page, 'the search page with filters open');
  await page.close();
});

test('one result per video shows "n more in this video", which opens the rest of that video', async () => {
  await secondCopy();
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  const query = media.photos ? 'a cup of coffee' : media.textQuery;
  const ungrouped = await search(page, query);
  const perVideo = new Map();
  for (const r of ungrouped) perVideo.set(r.videoId, (perVideo.get(r.videoId) ?? 0) + 1);
  assert.ok([...perVideo.values()].some((n) => n > 1), `some video has several results ungrouped: ${JSON.stringify(ungrouped)}`);

  await page.click(`${testid('filters')} summary`);
  const grouped = await researched(page, () => page.check(testid('filter-group')));
  const videos = grouped.map((r) => r.videoId);
  assert.equal(new Set(videos).size, videos.length, `one card per video: ${JSON.stringify(grouped)}`);
  assert.ok(grouped.length > 1, 'several videos');
  assert.equal(new URL(page.url()).searchParams.get('group'), 'video');
  const more = page.locator(`${testid('more-in-video')}:visible`);
  assert.ok((await more.count()) > 0, 'a card says how many more its video has');
  assert.match(await more.first().textContent(), /^\d+ more in this video$/);
  await page.locator(testid('search-input')).blur();
  await page.waitForTimeout(500); // the cards' arrival animation
  await screenshot(page, '18-grouped');

  // "n more in this video": that video's results, ungrouped.
  const item = page.locator(`${testid('results')} > li`).filter({ has: page.locator(`${testid('more-in-video')}:visible`) }).first();
  const videoId = await item.locator(testid('result-card')).getAttribute('data-video-id');
  const rest = await researched(page, () => item.locator(testid('more-in-video')).click());
  assert.ok(rest.length > 1 && rest.every((r) => r.videoId === videoId), `the rest of ${videoId}: ${JSON.stringify(rest)}`);
  assert.equal(await page.isChecked(testid('filter-group')), false, 'grouping is off');
  await page.close();
});

test('words and a picture search together, and the slider moves the answer between them', async () => {
  const picture = await queryImage(); // the rocket, with the photos video
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));
  const words = media.photos ? 'a cat' : media.textQuery;
  await page.fill(testid('search-input'), words);
  await page.setInputFiles(testid('image-input'), picture.file);
  await waitForFinalResults(page);
  assert.equal(await page.isVisible(testid('combine-row')), true, 'the slider is shown');
  const both = sent.map((p) => JSON.parse(p)).find((m) => m.text === words && m.image_base64);
  assert.ok(both, 'one search with the words and the picture');
  assert.equal(both.image_weight, 0.5);

  const toWords = await researched(page, () => setRange(page, testid('image-weight'), 0));
  const toPicture = await researched(page, () => setRange(page, testid('image-weight'), 1));
  assert.notDeepEqual(toWords.map((r) => r.segmentId), toPicture.map((r) => r.segmentId), 'the slider changes the results');
  assert.ok(sent.some((p) => JSON.parse(p).image_weight === 1), 'the weight was sent');
  if (media.photos) {
    assert.ok(overlaps(toWords[0], CAT), `all words: the cat first: ${JSON.stringify(toWords[0])}`);
    assert.ok(overlaps(toPicture[0], ROCKET), `all picture: the rocket first: ${JSON.stringify(toPicture[0])}`);
  }
  await researched(page, () => setRange(page, testid('image-weight'), 0.5));
  await page.locator(testid('search-input')).blur();
  await page.waitForTimeout(500); // the cards' arrival animation
  await screenshot(page, '19-words-and-picture');
  await page.close();
});

test('no uncaught errors in any page', () => {
  assert.deepEqual(browser.pageErrors, []);
});

// End-to-end browser tests against the real stack: the vidseek page (text and
// image search with streamed partials, playback, timeline, library, upload,
// delete, language) and the seed design's page on the seed-compatible routes.
//
// Needs: a built `vidseek` (VIDSEEK_BIN, default target/debug/vidseek), a real
// video (VIDSEEK_TEST_VIDEO), ffmpeg, Debian's chromium, and whatever
// `vidseek up` needs (VIDSEEK_MODEL_PACK, ORT_DYLIB_PATH are passed through).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS_DIR, launchBrowser, screenshot } from './lib/browser.js';
import { distractorClip, shortCopy, writeTemp } from './lib/media.js';
import { serveSeedPage } from './lib/seed-server.js';
import { api, ingestAndWait, startStack, testVideo, waitUntilReady } from './lib/stack.js';

const TEXT_QUERY = process.env.VIDSEEK_TEST_QUERY || 'a person riding a bicycle';
// Seconds of slack between a segment's bounds and the player's position.
const TOLERANCE_S = 0.5;
const testid = (id) => `[data-testid="${id}"]`;

let stack;
let browser;
let workDir;
let video; // the ingested test video's record
let distractor;

before(
  async () => {
    const source = testVideo();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vidseek-browser-media-'));
    const clip = distractorClip(workDir);
    // A token is set so that the page's 401 → token prompt path runs for real.
    stack = await startStack({ mediaRoots: [path.dirname(source), workDir], token: randomBytes(12).toString('hex') });
    [video, distractor] = await Promise.all([ingestAndWait(stack, source), ingestAndWait(stack, clip)]);
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
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

/** Record every state the results list and shard progress pass through (a partial can last a millisecond). */
async function recordSearchStates(page) {
  await page.evaluate(() => {
    const list = document.querySelector('[data-testid="results"]');
    const bar = document.querySelector('[data-testid="shard-progress"]');
    window.searchStates = [];
    const record = () =>
      window.searchStates.push({
        state: list.dataset.state,
        done: Number(bar.dataset.shardsDone),
        total: Number(bar.dataset.shardsTotal),
        cards: list.querySelectorAll('[data-testid="result-card"]').length,
        progressText: bar.hidden ? '' : bar.textContent.trim(),
      });
    new MutationObserver(record).observe(document.getElementById('view-search'), {
      subtree: true,
      childList: true,
      attributes: true,
      characterData: true,
    });
  });
}

async function waitForFinalResults(page) {
  await page.locator(`${testid('results')}[data-state="done"], ${testid('results')}[data-state="error"]`).waitFor();
  const state = await page.getAttribute(testid('results'), 'data-state');
  assert.equal(state, 'done', `search ended in state ${state}: ${await page.textContent(testid('status-line'))}`);
  const cards = page.locator(testid('result-card'));
  assert.ok((await cards.count()) > 0, `no result cards; status: ${await page.textContent(testid('status-line'))}`);
  return cards;
}

async function cardData(card) {
  return card.evaluate((el) => ({
    start: Number(el.dataset.start),
    end: Number(el.dataset.end),
    videoId: el.dataset.videoId,
    segmentId: el.dataset.segmentId,
  }));
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

/** The query image: VIDSEEK_TEST_IMAGE, else the thumbnail of a shot in the middle of the test video. */
async function queryImage() {
  if (process.env.VIDSEEK_TEST_IMAGE) return { file: process.env.VIDSEEK_TEST_IMAGE, segmentId: null };
  const segments = await api(stack, `/api/v1/videos/${encodeURIComponent(video.video_id)}/segments`);
  const shots = segments.filter((s) => s.kind === 'shot' && s.thumbnail_url);
  assert.ok(shots.length > 0, `the test video has no shot with a thumbnail: ${JSON.stringify(segments)}`);
  const shot = shots[Math.floor(shots.length / 2)];
  const response = await fetch(new URL(shot.thumbnail_url, `${stack.baseUrl}/`));
  assert.equal(response.status, 200, `thumbnail ${shot.thumbnail_url}`);
  const type = response.headers.get('content-type') || '';
  const ext = type.includes('png') ? 'png' : type.includes('webp') ? 'webp' : 'jpg';
  const file = writeTemp(workDir, `query.${ext}`, Buffer.from(await response.arrayBuffer()));
  return { file, segmentId: String(shot.segment_id) };
}

test('text search streams partial results, then plays the clicked segment with the timeline highlighted', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await recordSearchStates(page);
  await page.fill(testid('search-input'), TEXT_QUERY);
  await page.press(testid('search-input'), 'Enter');
  const cards = await waitForFinalResults(page);

  const states = await page.evaluate(() => window.searchStates);
  const partials = states.filter((s) => s.state === 'partial' && s.total > 0 && s.done < s.total);
  assert.ok(partials.length > 0, `no partial state (fewer shards than all) was shown: ${JSON.stringify(states)}`);
  assert.match(partials[0].progressText, /^\d+\/\d+/, 'shard progress reads like "1/2 shards"');
  assert.match(await page.textContent(testid('status-line')), /\d+ results? in \d+ ms/);
  await screenshot(page, '01-search-results');

  const first = cards.first();
  const segment = await cardData(first);
  assert.ok(segment.end > segment.start, `segment has a time range: ${JSON.stringify(segment)}`);
  await first.click();
  await expectPlayerWithin(page, segment.start, segment.end);
  await expectTimelineHighlights(page, segment.segmentId);

  // The other segments of the video are markers; clicking one seeks there.
  const segments = await api(stack, `/api/v1/videos/${encodeURIComponent(segment.videoId)}/segments`);
  const markers = page.locator(`${testid('timeline')} .marker`);
  await page.waitForFunction(
    (count) => document.querySelectorAll('[data-testid="timeline"] .marker').length >= count,
    segments.length,
  );
  assert.equal(await markers.count(), segments.length, 'one timeline marker per segment of the video');
  await page.evaluate(() => document.querySelector('[data-testid="player"]').pause());
  await screenshot(page, '02-playback');

  const other = segments.find(
    (s) => s.kind === 'shot' && String(s.segment_id) !== segment.segmentId && (s.end <= segment.start || s.start >= segment.end),
  );
  if (other) {
    await page.click(`${testid('timeline')} .marker[data-segment-id="${other.segment_id}"]`);
    await expectPlayerWithin(page, other.start, other.end);
    await expectTimelineHighlights(page, String(other.segment_id));
  }

  // Phone width: nothing sticks out sideways.
  await page.setViewportSize({ width: 375, height: 812 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a 375px screen`);
  await screenshot(page, '03-phone', { fullPage: true });
  await page.close();
});

test('image search finds the video the picture came from; Enter on a card plays it', async () => {
  const { file, segmentId } = await queryImage();
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await page.setInputFiles(testid('image-input'), file);
  const cards = await waitForFinalResults(page);
  await screenshot(page, '04-image-search');

  const results = await cards.evaluateAll((els) => els.map((el) => ({ video: el.dataset.videoId, segment: el.dataset.segmentId })));
  assert.equal(results[0].video, String(video.video_id), `top result is from the picture's video: ${JSON.stringify(results)}`);
  if (segmentId) {
    const rank = results.findIndex((r) => r.segment === segmentId);
    assert.ok(rank >= 0 && rank < 3, `the picture's own segment ${segmentId} ranks in the top 3: ${JSON.stringify(results)}`);
  }

  // Keyboard: a result card takes focus and Enter plays it.
  const first = cards.first();
  const segment = await cardData(first);
  await first.focus();
  await page.keyboard.press('Enter');
  await expectPlayerWithin(page, segment.start, segment.end);
  await expectTimelineHighlights(page, segment.segmentId);
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
  await page.fill(testid('search-input'), TEXT_QUERY);
  await page.press(testid('search-input'), 'Enter');
  await waitForFinalResults(page);
  assert.ok(connections >= 2, `the page reconnected (${connections} sockets)`);
  const states = await page.evaluate(() => window.searchStates);
  assert.ok(states.some((s) => s.state === 'partial'), 'results streamed over the reconnected socket');
  await page.close();

  // Then: no socket ever works; the same search goes over GET /api/v1/search.
  const offline = await browser.newPage();
  await offline.routeWebSocket(/\/api\/v1\/ws$/, (ws) => ws.close());
  await offline.goto(stack.baseUrl);
  const httpSearch = offline.waitForRequest((r) => r.url().includes('/api/v1/search?text='));
  await offline.fill(testid('search-input'), TEXT_QUERY);
  await offline.press(testid('search-input'), 'Enter');
  await httpSearch;
  await waitForFinalResults(offline);
  await offline.close();
});

function timestampSeconds(timestamp) {
  const text = String(timestamp).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const parts = text.split(':').map(Number);
  assert.ok(parts.every(Number.isFinite), `unreadable timestamp ${JSON.stringify(timestamp)}`);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

test('the seed design page works against the gateway with only its base URLs changed', async () => {
  const seed = await serveSeedPage(stack.baseUrl);
  const page = await browser.newPage();
  try {
    await page.goto(seed.url);
    await page.fill('#text', TEXT_QUERY);
    await page.click('#text_search');
    const covers = page.locator('#results .item img');
    await covers.first().waitFor({ timeout: 30_000 });
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#results .item img')].every((img) => img.complete && img.naturalWidth > 0),
    );
    const links = await page.locator('#results .item a').evaluateAll((as) => as.map((a) => a.href));
    assert.ok(links.length > 0 && links.length <= 10, `1..10 results, got ${links.length}`);
    for (const link of links) assert.match(link, /\/video_player\?id=[^&]+&timestamp=/);
    assert.equal(await page.textContent('#message'), '', 'no error message on the seed page');
    await screenshot(page, '05-seed-page');

    // Image query through /image_query (multipart field `image`).
    const { file } = await queryImage();
    await page.evaluate(() => document.querySelectorAll('#results .item').forEach((el) => el.setAttribute('data-old', '')));
    await page.setInputFiles('#image', file);
    await page.click('#image_search');
    await page.locator('#results .item:not([data-old]) img').first().waitFor({ timeout: 30_000 });

    // Follow a link (the latest start, so that "plays from there" is not trivially 0 s):
    // the gateway's player page plays from the timestamp.
    const hrefs = await page.locator('#results .item a').evaluateAll((as) => as.map((a) => a.href));
    const stamps = hrefs.map((href) => timestampSeconds(new URL(href).searchParams.get('timestamp')));
    const pick = stamps.indexOf(Math.max(...stamps));
    const timestamp = stamps[pick];
    await page.locator('#results .item a').nth(pick).click();
    await page.waitForURL(/\/video_player\?/);
    const player = page.locator('video').first();
    await player.waitFor({ state: 'attached' });
    await page.waitForFunction(
      (ts) => {
        const v = document.querySelector('video');
        return v && v.readyState >= 1 && !v.seeking && Math.abs(v.currentTime - ts) <= 1.0;
      },
      timestamp,
      { timeout: 20_000, polling: 'raf' },
    );
    await screenshot(page, '06-seed-player');
  } finally {
    await page.close();
    await seed.close();
  }
});

test('library shows the ingested video as ready; upload shows progress, asks for the token, then delete', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await page.click(testid('library-tab'));
  const row = page.locator(`${testid('video-row')}[data-video-id="${video.video_id}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'ready');
  assert.match(await row.locator(testid('video-status')).textContent(), /ready/);
  await screenshot(page, '07-library');
  await page.setViewportSize({ width: 375, height: 812 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `library is ${overflow}px wider than a 375px screen`);
  await screenshot(page, '07-library-phone', { fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // Slow the upload down so its progress bar is seen moving.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 128 * 1024,
  });
  await page.evaluate(() => {
    window.uploadFractions = [];
    new MutationObserver((records) => {
      for (const r of records) if (r.target.matches?.('progress[data-testid="upload-progress"]')) window.uploadFractions.push(r.target.value);
    }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, attributeFilter: ['value'] });
  });

  const upload = shortCopy(testVideo(), workDir);
  const known = new Set([String(video.video_id), String(distractor.video_id)]);
  await page.setInputFiles(testid('upload-input'), upload);
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
  await screenshot(page, '08-uploading');
  await page.locator(`${testid('upload-item')}[data-state="done"], ${testid('upload-item')}[data-state="error"]`).first().waitFor({ timeout: 60_000 });
  assert.equal(await item.getAttribute('data-state'), 'done', await item.textContent());
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const fractions = await page.evaluate(() => window.uploadFractions);
  assert.ok(fractions.some((f) => f > 0 && f < 1), `upload progress moved through values between 0 and 1: ${fractions}`);
  assert.equal(fractions.at(-1), 1);

  // The new video appears and goes through ingest to ready.
  const uploadedId = await page.waitForFunction(
    (knownIds) => {
      const rows = [...document.querySelectorAll('[data-testid="video-row"]')];
      return rows.map((r) => r.dataset.videoId).find((id) => !knownIds.includes(id)) || null;
    },
    [...known],
    { timeout: 30_000 },
  ).then((handle) => handle.jsonValue());
  await screenshot(page, '09-library-ingesting');
  await waitUntilReady(stack, uploadedId);
  const newRow = page.locator(`${testid('video-row')}[data-video-id="${uploadedId}"]`);
  await page.locator(`${testid('video-row')}[data-video-id="${uploadedId}"][data-status="ready"]`).waitFor({ timeout: 30_000 });
  await screenshot(page, '10-library-uploaded');

  // Delete asks for confirmation (a second click), then the row goes away.
  await newRow.locator(testid('delete-button')).click();
  await newRow.locator(testid('delete-button')).click();
  await newRow.waitFor({ state: 'detached', timeout: 15_000 });
  const { videos } = await api(stack, '/api/v1/videos');
  assert.ok(!videos.some((v) => String(v.video_id) === uploadedId), 'deleted video is gone from the API');
  await page.close();
});

test('language switch changes the UI strings and is remembered', async () => {
  const page = await browser.newPage();
  await page.goto(stack.baseUrl);
  await page.selectOption(testid('lang-select'), 'zh');
  assert.equal(await page.textContent(testid('search-button')), '搜索');
  await page.reload();
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(await page.textContent(testid('library-tab')), '视频库');
  await page.fill(testid('search-input'), TEXT_QUERY);
  await page.press(testid('search-input'), 'Enter');
  await waitForFinalResults(page);
  assert.match(await page.textContent(testid('status-line')), /个结果/);
  await screenshot(page, '11-search-zh');
  await page.selectOption(testid('lang-select'), 'en');
  await page.close();
});

test('no uncaught errors in any page', () => {
  assert.deepEqual(browser.pageErrors, []);
});

// Starts the real vidseek stack (`vidseek up`: nats-server, gateway, workers)
// on random loopback ports with a fresh data directory, and talks to its
// HTTP API for set-up (ingest, polling). One stack per test file.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BROWSER_TESTS_DIR = path.resolve(HERE, '..');
export const REPO_ROOT = path.resolve(BROWSER_TESTS_DIR, '../..');

const seconds = (name, fallback) => Number(process.env[name] || fallback) * 1000;
const READY_TIMEOUT_MS = seconds('VIDSEEK_READY_TIMEOUT_S', 120);
const INGEST_TIMEOUT_MS = seconds('VIDSEEK_INGEST_TIMEOUT_S', 300);
const LOG_LINES_KEPT = 400;

export function vidseekBinary() {
  const bin = process.env.VIDSEEK_BIN || path.resolve(BROWSER_TESTS_DIR, '../../target/debug/vidseek');
  if (!fs.existsSync(bin)) {
    throw new Error(`vidseek binary not found at ${bin}: build it (cargo build -p vidseek) or set VIDSEEK_BIN`);
  }
  return bin;
}

/** Ranker shards of the test stack: more than one, so that partial results are a real state. */
export const SHARDS = 2;

/**
 * The shard that owns a video: FNV-1a of the id modulo the shard count, as
 * protocol/src/sharding.rs spells it (every process must agree on it, so it
 * is part of the wire contract between the ingest and the rankers).
 */
export function shardOf(videoId, shards = SHARDS) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(String(videoId), 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(hash % BigInt(shards));
}

/**
 * Spawn `vidseek up` and wait for its `vidseek ready: URL` line.
 * `mediaRoots`: directories the server may ingest server-side paths from.
 */
export async function startStack({ mediaRoots = [], token = '', corsOrigins = [] } = {}) {
  const bin = vidseekBinary();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vidseek-browser-'));
  const env = {
    ...process.env,
    VIDSEEK_HTTP_ADDR: '127.0.0.1:0',
    VIDSEEK_NATS_ADDR: '127.0.0.1:0',
    VIDSEEK_DATA_DIR: dataDir,
    VIDSEEK_SAMPLES: '0',
    VIDSEEK_SHARDS: String(SHARDS),
  };
  if (mediaRoots.length > 0) env.VIDSEEK_MEDIA_ROOTS = mediaRoots.join(':');
  if (corsOrigins.length > 0) env.VIDSEEK_CORS_ORIGINS = corsOrigins.join(',');
  else delete env.VIDSEEK_CORS_ORIGINS;
  // Each run gets its own embedded nats-server: an external one would share state between runs.
  delete env.VIDSEEK_NATS_URL;
  if (token) env.VIDSEEK_API_TOKEN = token;
  else delete env.VIDSEEK_API_TOKEN;

  // Own process group, so stopping it also stops the nats-server and workers it started.
  const child = spawn(bin, ['up'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const log = [];
  const remember = (stream) => (line) => {
    log.push(`[${stream}] ${line}`);
    if (log.length > LOG_LINES_KEPT) log.shift();
  };
  const stderr = readline.createInterface({ input: child.stderr });
  stderr.on('line', remember('stderr'));
  const stdout = readline.createInterface({ input: child.stdout });
  stdout.on('line', remember('stdout'));

  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  const onExit = () => killGroup('SIGKILL');
  process.on('exit', onExit);

  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stack = {
    dataDir,
    token,
    log,
    baseUrl: null,
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        killGroup('SIGTERM');
        const timer = setTimeout(() => killGroup('SIGKILL'), 10000);
        await exited;
        clearTimeout(timer);
      }
      killGroup('SIGKILL'); // anything of the group that outlived the parent
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };

  const tail = () => log.slice(-60).join('\n');
  try {
    stack.baseUrl = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`vidseek up printed no "vidseek ready:" line within ${READY_TIMEOUT_MS / 1000} s\n${tail()}`)),
        READY_TIMEOUT_MS,
      );
      // The line may come on either stream (it is a log line as much as an answer).
      const onLine = (line) => {
        const match = /vidseek ready: (https?:\/\/[^\s,)]+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1].replace(/\/$/, ''));
        }
      };
      stdout.on('line', onLine);
      stderr.on('line', onLine);
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`vidseek up exited (code ${code}, signal ${signal}) before it was ready\n${tail()}`));
      });
    });
    const health = await fetch(`${stack.baseUrl}/healthz`);
    if (health.status !== 200) throw new Error(`/healthz answered ${health.status} after "vidseek ready"`);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

/** JSON request to the stack; throws with the body on a non-2xx answer. */
export async function api(stack, route, options = {}) {
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  if (stack.token) headers.Authorization = `Bearer ${stack.token}`;
  const method = options.method || 'GET';
  let response;
  for (let attempt = 1; ; attempt++) {
    try {
      response = await fetch(`${stack.baseUrl}${route}`, { ...options, headers });
      break;
    } catch (error) {
      // A pooled keep-alive connection the server had just closed: a GET may simply be sent again.
      if (method !== 'GET' || attempt >= 3) throw new Error(`${method} ${route}: ${error.message} (${error.cause?.code ?? error.cause})`);
    }
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} → ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Ingest a server-side file and wait until it is searchable. Returns the video record. */
export async function ingestAndWait(stack, file) {
  const { video_id: videoId, status } = await api(stack, '/api/v1/videos', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ path: file }),
  });
  if (!videoId) throw new Error(`POST /api/v1/videos gave no video_id (status ${status})`);
  return waitUntilReady(stack, videoId);
}

/** A video's segments (the gateway answers `{"segments": [...]}`; a bare list is read too). */
export async function segmentsOf(stack, videoId) {
  const answer = await api(stack, `/api/v1/videos/${encodeURIComponent(videoId)}/segments`);
  const segments = Array.isArray(answer) ? answer : answer?.segments;
  if (!Array.isArray(segments)) throw new Error(`segments of ${videoId}: unexpected answer ${JSON.stringify(answer)}`);
  return segments;
}

export async function waitUntilReady(stack, videoId) {
  const deadline = Date.now() + INGEST_TIMEOUT_MS;
  let video;
  while (Date.now() < deadline) {
    video = await api(stack, `/api/v1/videos/${encodeURIComponent(videoId)}`);
    if (video.status === 'ready') return video;
    if (video.status === 'failed') throw new Error(`ingest of ${videoId} failed: ${video.error}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`video ${videoId} not ready after ${INGEST_TIMEOUT_MS / 1000} s; last: ${JSON.stringify(video)}`);
}

// Serves the seed design's page (tests/fixtures/seed_page/index.html) from an
// origin of its own, with its three base URL constants pointed at the gateway,
// the only change that page is allowed.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { REPO_ROOT } from './stack.js';

const SEED_PAGE = path.join(REPO_ROOT, 'tests/fixtures/seed_page/index.html');
const BASE_CONSTANT = /^(var (TEXT|IMAGE|LIBRARY)_BASE = )"[^"]*";$/gm;

export function seedPageFor(gatewayBase) {
  const original = fs.readFileSync(SEED_PAGE, 'utf8');
  let replaced = 0;
  const page = original.replace(BASE_CONSTANT, (_whole, prefix) => {
    replaced++;
    return `${prefix}${JSON.stringify(gatewayBase)};`;
  });
  if (replaced !== 3) throw new Error(`expected 3 base URL constants in ${SEED_PAGE}, found ${replaced}`);
  return page;
}

/**
 * Start the page's server on a random loopback port; resolves to
 * { url, origin, pointAt(gatewayBase), close }. The origin is known before
 * the gateway starts, so the gateway can be told to allow it
 * (VIDSEEK_CORS_ORIGINS); `pointAt` then sets the page's base URLs.
 */
export async function serveSeedPage() {
  let html = null;
  const server = http.createServer((req, res) => {
    if (html && (req.url === '/' || req.url.startsWith('/?'))) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(html);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    url: `${origin}/`,
    origin,
    pointAt: (gatewayBase) => {
      html = seedPageFor(gatewayBase);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections(); // the browser's keep-alive sockets would hold close() open
      }),
  };
}

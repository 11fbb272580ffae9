// Talking to the gateway: JSON over HTTP (with the optional API token), the
// upload with progress, and the search WebSocket that streams partial top-10s.

import { t } from './i18n.js';

const TOKEN_KEY = 'vidseek.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Asks the person for a token; set by the app (a dialog). Resolves to a token or null. */
let askToken = async () => null;
export function setTokenPrompt(prompt) {
  askToken = prompt;
}

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function authHeaders() {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let pendingPrompt = null;

/** Ask for a token after a 401 (one dialog however many requests failed); true when the caller should retry. */
async function renewToken() {
  pendingPrompt ??= askToken().finally(() => {
    pendingPrompt = null;
  });
  const token = await pendingPrompt;
  if (!token) return false;
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    return false;
  }
  return true;
}

/** The gateway's `{"error": {"code", "message"}}` body as an ApiError. */
function errorFromBody(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) {
      return new ApiError(status, body.error.code ?? String(status), body.error.message);
    }
  } catch {
    // Not JSON (a proxy's error page): fall through to a generic message.
  }
  return new ApiError(status, String(status), t('error.http', { status }));
}

/** fetch + JSON + error body + one token prompt on 401. */
export async function apiFetch(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(path, {
        ...options,
        headers: { Accept: 'application/json', ...authHeaders(), ...(options.headers || {}) },
      });
    } catch {
      throw new ApiError(0, 'network', t('error.network'));
    }
    if (response.status === 401 && attempt < 2 && (await renewToken())) continue;
    const text = await response.text();
    if (!response.ok) throw errorFromBody(response.status, text);
    return text ? JSON.parse(text) : null;
  }
}

/**
 * Multipart upload through XMLHttpRequest, for its upload progress events.
 * `onProgress(fraction)` gets 0..1; resolves to the JSON answer.
 */
export function uploadVideo(file, subtitles, onProgress) {
  const attempt = () =>
    new Promise((resolve, reject) => {
      const form = new FormData();
      form.append('file', file, file.name);
      if (subtitles) form.append('subtitles', subtitles, subtitles.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/v1/videos');
      xhr.setRequestHeader('Accept', 'application/json');
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener('load', () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          try {
            resolve(JSON.parse(xhr.responseText));
          } catch {
            resolve(null);
          }
        } else {
          reject(errorFromBody(xhr.status, xhr.responseText));
        }
      });
      xhr.addEventListener('error', () => reject(new ApiError(0, 'network', t('error.network'))));
      xhr.send(form);
    });
  return (async () => {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        // A server that refuses a big upload for want of a token may answer 401 and close
        // the connection before the browser has sent the file, which the browser reports as
        // a network error. Ask again with an empty body: 401 means a token is needed.
        if (error.status === 0 && (await needsToken())) error.status = 401;
        if (error.status === 401 && tries < 2 && (await renewToken())) {
          onProgress(0);
          continue;
        }
        throw error;
      }
    }
  })();
}

/** Whether adding a video is refused for want of a (valid) token; no side effects. */
async function needsToken() {
  try {
    const response = await fetch('/api/v1/videos', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
      body: '{}',
    });
    return response.status === 401;
  } catch {
    return false;
  }
}

/**
 * One-shot search over plain HTTP, for when the WebSocket is down. `body` has
 * the fields of a WebSocket search (text, image_base64, like, filters, k):
 * without a picture it goes as GET parameters, with one as a JSON body.
 */
export async function searchOverHttp(body) {
  if (body.image_base64 === undefined) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(body)) {
      if (key === 'videos') for (const video of value) params.append('video', video);
      else if (key === 'kinds') for (const kind of value) params.append('kind', kind);
      else params.set(key, String(value));
    }
    return apiFetch(`/api/v1/search?${params}`);
  }
  return apiFetch('/api/v1/search', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * The search socket. Keeps itself connected (reconnecting with backoff when
 * it drops) and hands every server message to `onMessage`. `send` returns
 * false when the socket is not open, so the caller can fall back to HTTP.
 */
export class SearchSocket {
  constructor({ onMessage, onStateChange }) {
    this.onMessage = onMessage;
    this.onStateChange = onStateChange;
    this.socket = null;
    this.retryDelay = 250;
    this.retryTimer = null;
    this.connect();
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.retryTimer);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.retryDelay = 250;
      this.onStateChange('open');
    });
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onStateChange('closed');
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, 8000);
  }

  /** Wait up to `ms` for the socket to open; true when it is open. */
  async ready(ms) {
    if (this.isOpen) return true;
    if (!this.socket) this.connect();
    const socket = this.socket;
    if (!socket) return false;
    return new Promise((resolve) => {
      const done = (ok) => {
        clearTimeout(timer);
        socket.removeEventListener('open', onOpen);
        socket.removeEventListener('close', onClose);
        resolve(ok);
      };
      const onOpen = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(this.isOpen), ms);
      socket.addEventListener('open', onOpen);
      socket.addEventListener('close', onClose);
    });
  }

  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }
}

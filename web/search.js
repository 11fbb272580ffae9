// The search view: text, image, text-and-image and "more like this" queries,
// the filters and grouping, streamed partial results over the WebSocket (HTTP
// when the socket is down), and the result cards.

import { SearchSocket, apiFetch, searchOverHttp } from './api.js';
import { bytesToBase64, formatTime, scorePercent } from './format.js';
import { countFilters, exportRows, filterFields, noFilters, toCsv } from './moment.js';
import { reduceForUpload } from './query-image.js';
import { t } from './i18n.js';

const K = 10;
// A query that gets no `done` in this long is reported as failed rather than spinning forever.
const QUERY_DEADLINE_MS = 30000;

export class SearchView {
  /**
   * `onPlay(result)` plays a result; `onQuery({ text, like, filters })` is
   * told of each new query (text null for a picture) or change of filters and
   * `onResults(results)` of each final answer, so the page's address can
   * follow them; `onQueryFields(fields)` gets the query as search fields
   * (text, image_base64, image_weight, like) once they are known, for the
   * player's heat strip.
   */
  constructor({ onPlay, onQuery = () => {}, onResults = () => {}, onQueryFields = () => {} }) {
    this.onPlay = onPlay;
    this.onQuery = onQuery;
    this.onResults = onResults;
    this.onQueryFields = onQueryFields;
    this.form = document.getElementById('search-form');
    this.input = document.getElementById('search-input');
    this.imageInput = document.getElementById('image-input');
    this.imageChip = document.getElementById('image-chip');
    this.imagePreview = document.getElementById('image-preview');
    this.imageChipLabel = document.getElementById('image-chip-label');
    this.statusLine = document.getElementById('status-line');
    this.shardProgress = document.getElementById('shard-progress');
    this.list = document.getElementById('results');
    this.intro = document.getElementById('search-intro');
    this.warnings = document.getElementById('search-warnings');
    this.translationLine = document.getElementById('query-translation');
    this.exportTools = document.getElementById('results-export');
    this.likeChip = document.getElementById('like-chip');
    this.likeChipLabel = document.getElementById('like-chip-label');
    this.combineRow = document.getElementById('combine-row');
    this.weightInput = document.getElementById('image-weight');
    this.weightValue = document.getElementById('image-weight-value');
    this.filtersPanel = document.getElementById('filters');
    this.filtersSummary = document.getElementById('filters-summary');
    this.filterVideos = document.getElementById('filter-videos');
    this.filterFrom = document.getElementById('filter-from');
    this.filterTo = document.getElementById('filter-to');
    this.filterMin = document.getElementById('filter-min');
    this.filterMinValue = document.getElementById('filter-min-value');
    this.filterGroup = document.getElementById('filter-group');
    this.kindBoxes = [...document.querySelectorAll('input[name="filter-kind"]')];

    this.sequence = 0;
    this.active = null; // { id, query, deadline } of the query whose answers we still show
    this.imageFile = null;
    this.cards = new Map(); // segment_id -> card element, reused so updates animate instead of flashing
    this.playingSegment = null;
    this.status = null; // { key, vars } so a language switch can re-render it
    this.shownWarnings = [];
    this.shownTranslation = null;
    this.filters = noFilters();
    this.videos = []; // the library, for the video filter
    this.shownLike = null;

    this.socket = new SearchSocket({
      onMessage: (message) => this.handleMessage(message),
      onStateChange: (state) => this.handleSocketState(state),
    });
    this.bindEvents();
  }

  bindEvents() {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (text && this.imageFile) {
        this.search({ text, imageFile: this.imageFile, weight: this.imageWeight() });
      } else if (text) {
        this.search({ text });
      } else if (this.imageFile) {
        this.search({ imageFile: this.imageFile });
      } else {
        this.input.focus();
      }
    });
    this.imageInput.addEventListener('change', () => {
      const file = this.imageInput.files[0];
      if (file) this.useImage(file);
    });
    document.getElementById('image-clear').addEventListener('click', () => {
      this.clearImage();
      this.input.focus();
    });
    this.input.addEventListener('input', () => this.showCombine());
    // The slider reads out the picture's share while it moves, and asks again when let go.
    this.weightInput.addEventListener('input', () => this.showCombine());
    this.weightInput.addEventListener('change', () => {
      const query = this.active?.query;
      if (query?.text !== undefined && query.imageFile) this.search({ ...query, weight: this.imageWeight() });
    });
    document.getElementById('like-clear').addEventListener('click', () => {
      this.showLike(null);
      this.onQuery({ text: null, like: null, filters: this.filters });
      this.input.focus();
    });

    // Filters: any change asks the current query again.
    this.filterMin.addEventListener('input', () => {
      this.filterMinValue.textContent = `${scorePercent(Number(this.filterMin.value))}%`;
    });
    this.filtersPanel.querySelector('.filters-body').addEventListener('change', () => this.applyFilters(this.readFilters()));
    document.getElementById('filters-clear').addEventListener('click', () => this.applyFilters(noFilters()));
    this.filtersPanel.addEventListener('toggle', () => {
      if (this.filtersPanel.open) this.refreshVideos();
    });

    // Drag and drop an image anywhere on the search view.
    const view = document.getElementById('view-search');
    let depth = 0;
    view.addEventListener('dragenter', (event) => {
      if (!hasFiles(event)) return;
      depth++;
      this.form.classList.add('dragging');
    });
    view.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) this.form.classList.remove('dragging');
    });
    view.addEventListener('dragover', (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
    view.addEventListener('drop', (event) => {
      depth = 0;
      this.form.classList.remove('dragging');
      const file = event.dataTransfer?.files?.[0];
      if (!file) return;
      event.preventDefault();
      this.useImage(file);
    });

    this.list.addEventListener('click', (event) => {
      const action = event.target.closest('[data-action]');
      if (action) {
        const result = action.closest('li')?.querySelector('[data-testid="result-card"]')?._result;
        if (!result) return;
        if (action.dataset.action === 'like') this.searchLike(result, result.video_name || result.video_id);
        if (action.dataset.action === 'more-in-video') {
          // The rest of that video: its results only, ungrouped.
          this.filtersPanel.open = true;
          this.applyFilters({ ...this.filters, videos: [String(result.video_id)], group: false });
        }
        return;
      }
      const card = event.target.closest('[data-testid="result-card"]');
      if (card) this.play(card);
    });
    // Arrow keys move between results (Enter or Space plays the focused one: cards are buttons).
    this.list.addEventListener('keydown', (event) => {
      const cards = [...this.cards.values()];
      const at = cards.indexOf(event.target.closest('[data-testid="result-card"]'));
      if (at < 0) return;
      const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
      const to = { Home: 0, End: cards.length - 1 }[event.key] ?? (step === undefined ? null : at + step);
      if (to === null || to < 0 || to >= cards.length) return;
      event.preventDefault();
      cards[to].focus();
    });
    document.getElementById('export-json').addEventListener('click', () => this.exportResults('json'));
    document.getElementById('export-csv').addEventListener('click', () => this.exportResults('csv'));
  }

  /** Download the results shown as JSON or CSV, each row with a link that reopens its moment. */
  exportResults(format) {
    const text = this.active?.query?.text ?? null;
    const rows = exportRows(
      [...this.cards.values()].map((card) => card._result),
      { text, pageHref: location.href },
    );
    const body = format === 'csv' ? toCsv(rows) : `${JSON.stringify({ query: text, results: rows }, null, 2)}\n`;
    const type = format === 'csv' ? 'text/csv;charset=utf-8' : 'application/json';
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([body], { type }));
    link.download = `vidseek-results.${format}`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  /** A pasted image (Ctrl+V anywhere on the search view) becomes the query. */
  handlePaste(event) {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    if (!item) return;
    event.preventDefault();
    this.useImage(item.getAsFile());
  }

  useImage(file) {
    if (!file.type.startsWith('image/')) {
      this.setStatus('status.notImage', { name: file.name }, 'error');
      return;
    }
    this.imageFile = file;
    if (this.imagePreview.src) URL.revokeObjectURL(this.imagePreview.src);
    this.imagePreview.src = URL.createObjectURL(file);
    this.imageChip.hidden = false;
    this.showCombine();
    // Words already typed and a picture: search with both.
    const text = this.input.value.trim();
    this.search(text ? { text, imageFile: file, weight: this.imageWeight() } : { imageFile: file });
  }

  imageWeight() {
    return Number(this.weightInput.value);
  }

  /** The words-and-picture slider: shown with a picture, live when there are words too. */
  showCombine() {
    const both = Boolean(this.imageFile && this.input.value.trim());
    this.combineRow.hidden = !this.imageFile;
    this.combineRow.classList.toggle('both', both);
    if (this.imageFile) {
      const name = this.imageFile.name || 'image';
      this.imageChipLabel.textContent = t(both ? 'search.imageAndWords' : 'search.imageQuery', { name });
    }
    const pct = scorePercent(this.imageWeight());
    this.weightValue.textContent = t('combine.value', { words: 100 - pct, pct });
  }

  /** Search for more like a segment (a result, or the moment playing), with the filters set. */
  searchLike(segment, name) {
    this.input.value = '';
    this.clearImage();
    this.search({
      like: String(segment.segment_id),
      likeLabel: { name, start: segment.start, end: segment.end },
    });
  }

  /** The chip saying which segment "more like this" searches from. */
  showLike(query) {
    this.shownLike = query?.like ? query : null;
    this.likeChip.hidden = !this.shownLike;
    if (!this.shownLike) return;
    const label = this.shownLike.likeLabel;
    this.likeChipLabel.textContent = label
      ? t('like.chip', { name: label.name, start: formatTime(label.start), end: formatTime(label.end) })
      : t('like.chipUnknown', { id: this.shownLike.like });
  }

  /** The filters as the panel's controls show them. */
  readFilters() {
    const seconds = (input) => (input.value.trim() === '' || !(Number(input.value) >= 0) ? null : Number(input.value));
    return {
      videos: [...this.filterVideos.querySelectorAll('input:checked')].map((box) => box.value),
      from: seconds(this.filterFrom),
      to: seconds(this.filterTo),
      kinds: this.kindBoxes.filter((box) => box.checked).map((box) => box.value),
      minScore: Number(this.filterMin.value) > 0 ? Number(this.filterMin.value) : null,
      group: this.filterGroup.checked,
    };
  }

  /** Show `filters` in the panel (from the address, or "n more in this video"), without searching. */
  setFilters(filters) {
    this.filters = { ...noFilters(), ...filters };
    this.filterFrom.value = this.filters.from ?? '';
    this.filterTo.value = this.filters.to ?? '';
    for (const box of this.kindBoxes) box.checked = this.filters.kinds.includes(box.value);
    this.filterMin.value = String(this.filters.minScore ?? 0);
    this.filterMinValue.textContent = `${scorePercent(this.filters.minScore ?? 0)}%`;
    this.filterGroup.checked = this.filters.group;
    this.renderVideoFilter();
    const active = countFilters(this.filters);
    this.filtersSummary.textContent = active ? t('filters.active', { n: active }) : '';
    if (active) this.filtersPanel.open = true;
  }

  /** New filters: shown, put in the address, and the current query asked again. */
  applyFilters(filters) {
    this.setFilters(filters);
    const query = this.active?.query;
    if (query) this.search(query);
    else this.onQuery({ text: null, like: null, filters: this.filters });
  }

  /** The library's videos, for the video filter. */
  setVideos(videos) {
    const next = videos.map((v) => ({ id: String(v.video_id), name: v.name || String(v.video_id) }));
    // The library polls while something ingests: redraw only on a change, so a box being clicked stays put.
    if (JSON.stringify(next) === JSON.stringify(this.videos)) return;
    this.videos = next;
    this.renderVideoFilter();
  }

  refreshVideos() {
    apiFetch('/api/v1/videos')
      .then((answer) => this.setVideos(answer?.videos ?? []))
      .catch(() => {});
  }

  renderVideoFilter() {
    const chosen = new Set(this.filters.videos);
    // Videos named by the address but not (or not yet) in the library stay choosable.
    const known = new Set(this.videos.map((v) => v.id));
    const videos = [...this.videos, ...[...chosen].filter((id) => !known.has(id)).map((id) => ({ id, name: id }))];
    if (videos.length === 0) {
      const empty = document.createElement('span');
      empty.className = 'hint';
      empty.textContent = t('filters.noVideos');
      this.filterVideos.replaceChildren(empty);
      return;
    }
    this.filterVideos.replaceChildren(
      ...videos.map((video) => {
        const label = document.createElement('label');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.value = video.id;
        box.checked = chosen.has(video.id);
        box.dataset.testid = 'filter-video';
        label.append(box, ` ${video.name}`);
        return label;
      }),
    );
  }

  clearImage() {
    this.imageFile = null;
    this.imageInput.value = '';
    this.imageChip.hidden = true;
    this.showCombine();
    if (this.imagePreview.src) {
      URL.revokeObjectURL(this.imagePreview.src);
      this.imagePreview.removeAttribute('src');
    }
  }

  async search(query) {
    const id = `q${++this.sequence}`;
    this.cancelActive();
    this.active = { id, query };
    this.intro.hidden = true;
    this.list.dataset.state = 'searching';
    this.list.setAttribute('aria-busy', 'true');
    this.list.classList.add('stale');
    this.showShards(0, null);
    this.showWarnings([]);
    this.showTranslation(null);
    this.exportTools.hidden = true;
    this.setStatus('status.searching');
    this.showLike(query);
    this.onQuery({ text: query.text ?? null, like: query.like ?? null, filters: this.filters });

    const fields = await queryFields(query);
    if (this.active?.id !== id) return; // a newer query started while the image was read
    this.onQueryFields(fields);
    this.active.body = { ...fields, ...filterFields(this.filters), k: K };
    const message = { type: 'search', id, ...this.active.body };

    if ((await this.socket.ready(1500)) && this.active?.id === id && this.socket.send(message)) {
      this.active.sent = true;
      this.active.deadline = setTimeout(() => {
        if (this.active?.id === id) this.fail({ message: t('error.timeout', { s: QUERY_DEADLINE_MS / 1000 }) });
      }, QUERY_DEADLINE_MS);
      return;
    }
    if (this.active?.id === id) this.searchOverHttp(id, this.active.body);
  }

  async searchOverHttp(id, body) {
    try {
      const answer = await searchOverHttp(body);
      if (this.active?.id !== id) return;
      this.finish(answer.results || [], answer.took_ms, answer.warnings, answer.query_translation);
    } catch (error) {
      if (this.active?.id === id) this.fail(error);
    }
  }

  /** A newer query replaces the one in flight: tell the server to stop working on it. */
  cancelActive() {
    const previous = this.active;
    if (!previous) return;
    clearTimeout(previous.deadline);
    if (previous.sent && ['searching', 'partial'].includes(this.list.dataset.state)) {
      this.socket.send({ type: 'cancel', id: previous.id });
    }
  }

  handleMessage(message) {
    // The server could not read a message at all (so it could not name its id):
    // that can only be the query waiting for an answer.
    const waiting = ['searching', 'partial'].includes(this.list.dataset.state);
    const unaddressed = message.type === 'error' && !message.id && this.active?.sent && waiting;
    // Answers to an older query (the person typed a new one) are dropped.
    if (!this.active || (message.id !== this.active.id && !unaddressed)) return;
    switch (message.type) {
      case 'partial':
        this.renderResults(message.results || []);
        this.showShards(message.shards_done, message.shards_total);
        this.list.dataset.state = 'partial';
        this.setStatus('status.partial', {
          done: message.shards_done,
          total: message.shards_total,
          count: (message.results || []).length,
        });
        break;
      case 'done':
        this.finish(message.results || [], message.took_ms, message.warnings, message.query_translation);
        break;
      case 'error':
        this.fail(message);
        break;
      default:
        break;
    }
  }

  handleSocketState(state) {
    if (state !== 'closed') return;
    // The query in flight will never get its `done` on this socket: ask again over HTTP.
    const pending = this.active;
    const waiting = ['searching', 'partial'].includes(this.list.dataset.state);
    if (pending && pending.deadline !== undefined && waiting) {
      clearTimeout(pending.deadline);
      pending.deadline = undefined;
      this.setStatus('status.offline');
      this.searchOverHttp(pending.id, pending.body);
    }
  }

  finish(results, tookMs, warnings = [], translation = null) {
    clearTimeout(this.active?.deadline);
    this.renderResults(results);
    this.showWarnings(warnings);
    this.showTranslation(translation);
    const total = Number(this.shardProgress.dataset.shardsTotal);
    if (total > 0) this.showShards(total, total);
    this.shardProgress.hidden = true;
    this.list.dataset.state = 'done';
    this.list.setAttribute('aria-busy', 'false');
    this.exportTools.hidden = results.length === 0;
    this.onResults(results);
    const ms = Math.round(tookMs ?? 0);
    if (results.length === 0) {
      const query = this.active?.query;
      if (query?.text !== undefined) this.setStatus('status.none', { query: query.text }, 'empty');
      else if (query?.like !== undefined) this.setStatus('status.noneLike', {}, 'empty');
      else this.setStatus('status.noneImage', {}, 'empty');
    } else if (results.length === 1) {
      this.setStatus('status.doneOne', { ms });
    } else {
      this.setStatus('status.done', { count: results.length, ms });
    }
  }

  fail(error) {
    clearTimeout(this.active?.deadline);
    this.shardProgress.hidden = true;
    this.list.dataset.state = 'error';
    this.list.setAttribute('aria-busy', 'false');
    this.list.classList.remove('stale');
    this.setStatus('status.error', { message: error.message || error.code || '?' }, 'error');
  }

  /**
   * Things the server wants the person to know about an answer (the model
   * pack does not cover the query's language, …): known codes in the page's
   * language, anything else in the server's words.
   */
  showWarnings(warnings = []) {
    this.shownWarnings = warnings;
    this.warnings.replaceChildren(
      ...warnings.map((warning) => {
        const item = document.createElement('li');
        const key = `warning.${warning.code}`;
        const known = t(key) !== key;
        item.textContent = known ? t(key) : warning.message || warning.code;
        if (known && warning.message) item.title = warning.message;
        item.dataset.code = warning.code || '';
        return item;
      }),
    );
    this.warnings.hidden = warnings.length === 0;
  }

  /** "Searched as …": the text the pack searched for a translated query. */
  showTranslation(translation) {
    this.shownTranslation = translation || null;
    const line = this.translationLine;
    line.hidden = !translation;
    line.textContent = translation ? t('search.translated', { text: translation.text }) : '';
    line.dataset.language = translation?.language || '';
  }

  showShards(done, total) {
    const bar = this.shardProgress;
    bar.hidden = false;
    bar.dataset.shardsDone = String(done);
    bar.dataset.shardsTotal = total == null ? '' : String(total);
    bar.setAttribute('aria-valuenow', String(done));
    if (total) bar.setAttribute('aria-valuemax', String(total));
    bar.querySelector('.shard-fill').style.width = total ? `${(100 * done) / total}%` : '0%';
    bar.querySelector('.shard-text').textContent = total ? t('shards.progress', { done, total }) : '…';
    bar.classList.toggle('indeterminate', !total);
  }

  setStatus(key, vars = {}, tone = 'info') {
    this.status = { key, vars, tone };
    this.statusLine.textContent = t(key, vars);
    this.statusLine.dataset.tone = tone;
  }

  /** Re-render everything that carries text after a language switch. */
  retranslate() {
    if (this.status) this.setStatus(this.status.key, this.status.vars, this.status.tone);
    const bar = this.shardProgress;
    if (!bar.hidden && bar.dataset.shardsTotal) {
      this.showShards(Number(bar.dataset.shardsDone), Number(bar.dataset.shardsTotal));
    }
    for (const card of this.cards.values()) fillCard(card, card._result);
    this.showWarnings(this.shownWarnings);
    this.showTranslation(this.shownTranslation);
    this.showCombine();
    this.showLike(this.shownLike);
    this.setFilters(this.filters);
  }

  /** Replace the list with `results`, reusing cards of segments already shown. */
  renderResults(results) {
    this.list.classList.remove('stale');
    const next = new Map();
    results.forEach((result, index) => {
      let card = this.cards.get(result.segment_id);
      const fresh = !card;
      if (fresh) card = createItem();
      card._result = result;
      fillCard(card, result, index);
      card.classList.toggle('playing', result.segment_id === this.playingSegment);
      const item = card.parentElement;
      this.list.append(item); // appending in order also reorders reused items
      if (fresh) {
        item.classList.add('fresh');
        item.addEventListener('animationend', () => item.classList.remove('fresh'), { once: true });
      }
      next.set(result.segment_id, card);
    });
    for (const [segmentId, card] of this.cards) {
      if (!next.has(segmentId)) card.parentElement.remove();
    }
    this.cards = next;
  }

  play(card) {
    const result = card._result;
    this.playingSegment = result.segment_id;
    for (const other of this.cards.values()) other.classList.toggle('playing', other === card);
    this.onPlay(result);
  }

  markPlaying(segmentId) {
    this.playingSegment = segmentId;
    for (const [id, card] of this.cards) card.classList.toggle('playing', id === segmentId);
  }

  setIntro(key) {
    this.intro.textContent = t(key);
    this.intro.dataset.i18n = key;
  }
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes('Files');
}

/** The search fields of a query: text, a picture (reduced, base64), both with a weight, or `like`. */
async function queryFields(query) {
  if (query.like !== undefined) return { like: query.like };
  const fields = {};
  if (query.text !== undefined) fields.text = query.text;
  if (query.imageFile) {
    // Kept on the query, so asking it again (new filters, another weight) does not re-read the picture.
    query.upload ??= await reduceForUpload(query.imageFile);
    query.imageBase64 ??= bytesToBase64(new Uint8Array(await query.upload.arrayBuffer()));
    fields.image_base64 = query.imageBase64;
    if (fields.text !== undefined) fields.image_weight = query.weight ?? 0.5;
  }
  return fields;
}

/** A result's list item: the card (a button that plays it) and its own buttons beside it. */
function createItem() {
  const item = document.createElement('li');
  const card = createCard();
  const actions = document.createElement('span');
  actions.className = 'card-actions';
  const like = document.createElement('button');
  like.type = 'button';
  like.dataset.action = 'like';
  like.dataset.testid = 'more-like-this';
  actions.append(like);
  const more = document.createElement('button');
  more.type = 'button';
  more.className = 'more-in-video';
  more.dataset.action = 'more-in-video';
  more.dataset.testid = 'more-in-video';
  more.hidden = true;
  item.append(card, actions, more);
  return card;
}

function createCard() {
  const card = document.createElement('button');
  card.type = 'button';
  card.className = 'card';
  card.dataset.testid = 'result-card';
  card.innerHTML = `
    <span class="thumb"><img alt="" loading="lazy" decoding="async"><span class="rank"></span><span class="range"></span></span>
    <span class="card-body">
      <span class="name"></span>
      <span class="kind"></span>
      <span class="subtitle"></span>
      <span class="score"><span class="score-bar"><span class="score-fill"></span></span><span class="score-text"></span></span>
    </span>`;
  const img = card.querySelector('img');
  img.addEventListener('error', () => img.classList.add('broken'));
  img.addEventListener('load', () => img.classList.remove('broken'));
  return card;
}

function fillCard(card, result, index) {
  const start = formatTime(result.start);
  const end = formatTime(result.end);
  const pct = scorePercent(result.score);
  card.dataset.start = String(result.start);
  card.dataset.end = String(result.end);
  card.dataset.videoId = String(result.video_id);
  card.dataset.segmentId = String(result.segment_id);
  card.dataset.score = String(result.score);
  card.setAttribute('aria-label', `${t('result.play', { name: result.video_name, start, end })}. ${t('result.score', { pct })}`);
  const img = card.querySelector('img');
  if (result.thumbnail_url && img.getAttribute('src') !== result.thumbnail_url) img.src = result.thumbnail_url;
  if (index !== undefined) card.querySelector('.rank').textContent = String(index + 1);
  card.querySelector('.range').textContent = `${start} – ${end}`;
  card.querySelector('.name').textContent = result.video_name || result.video_id;
  const kind = card.querySelector('.kind');
  // Subtitles and text read from the picture (ocr) show their text below.
  const kindKey = ['subtitle', 'ocr'].includes(result.kind) ? result.kind : 'shot';
  kind.textContent = t(`result.kind.${kindKey}`);
  kind.dataset.kind = result.kind || 'shot';
  const subtitle = card.querySelector('.subtitle');
  subtitle.textContent = result.text ? `“${result.text}”` : '';
  subtitle.hidden = !result.text;
  card.querySelector('.score-fill').style.width = `${pct}%`;
  card.querySelector('.score-text').textContent = `${pct}%`;
  card.querySelector('.score').title = t('result.score', { pct });
  const item = card.parentElement;
  const like = item.querySelector('[data-action="like"]');
  like.textContent = `≈ ${t('like.button')}`;
  like.setAttribute('aria-label', t('like.buttonAria', { name: result.video_name || result.video_id, start, end }));
  const moreCount = Number(result.more_in_video) || 0;
  const more = item.querySelector('[data-action="more-in-video"]');
  more.hidden = moreCount === 0;
  item.classList.toggle('grouped', moreCount > 0);
  card.dataset.moreInVideo = String(moreCount);
  more.textContent = moreCount === 1 ? t('group.moreOne') : t('group.more', { n: moreCount });
  more.setAttribute('aria-label', t('group.moreAria', { name: result.video_name || result.video_id, n: moreCount }));
}

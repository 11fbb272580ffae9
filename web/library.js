// The library view: every video with its ingest status and live progress,
// uploads with a progress bar, and delete.

import { apiFetch, uploadVideo } from './api.js';
import { formatTime } from './format.js';
import { t } from './i18n.js';

const POLL_MS = 1000;
const CONFIRM_MS = 4000;

export class LibraryView {
  constructor({ onPlay, onChange }) {
    this.onPlay = onPlay;
    this.onChange = onChange;
    this.rows = document.getElementById('video-rows');
    this.status = document.getElementById('library-status');
    this.uploads = document.getElementById('uploads');
    this.uploadInput = document.getElementById('upload-input');
    this.subtitleInput = document.getElementById('subtitle-input');
    this.drop = document.getElementById('upload-drop');

    this.videos = [];
    this.visible = false;
    this.pollTimer = null;
    this.loaded = false;
    this.inflight = null; // the one library request in flight
    this.again = false; // another refresh was asked for meanwhile
    this.lastStatus = null;
    this.bindEvents();
  }

  bindEvents() {
    this.uploadInput.addEventListener('change', () => {
      for (const file of this.uploadInput.files) this.upload(file);
      this.uploadInput.value = '';
    });
    const form = document.getElementById('upload-form');
    form.addEventListener('submit', (event) => event.preventDefault());
    for (const type of ['dragenter', 'dragover']) {
      this.drop.addEventListener(type, (event) => {
        event.preventDefault();
        this.drop.classList.add('dragging');
      });
    }
    this.drop.addEventListener('dragleave', () => this.drop.classList.remove('dragging'));
    this.drop.addEventListener('drop', (event) => {
      event.preventDefault();
      this.drop.classList.remove('dragging');
      for (const file of event.dataTransfer?.files || []) this.upload(file);
    });
    this.rows.addEventListener('click', (event) => {
      const button = event.target.closest('button');
      const row = event.target.closest('tr');
      if (!button || !row) return;
      const video = this.videos.find((v) => String(v.video_id) === row.dataset.videoId);
      if (!video) return;
      if (button.dataset.action === 'delete') this.confirmDelete(button, video);
      if (button.dataset.action === 'play') this.onPlay(video);
    });
  }

  show(visible) {
    this.visible = visible;
    if (visible) this.refresh();
    else clearTimeout(this.pollTimer);
  }

  /** Reload the list now; concurrent calls collapse into one more load after the current one. */
  refresh() {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = this.load().finally(() => {
      this.inflight = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
    return this.inflight;
  }

  async load() {
    clearTimeout(this.pollTimer);
    if (!this.loaded) this.setStatus('library.loading');
    try {
      const answer = await apiFetch('/api/v1/videos');
      this.videos = answer?.videos ?? [];
      this.loaded = true;
      this.render();
      this.setStatus(this.videos.length === 0 ? 'library.empty' : null);
      this.onChange(this.videos);
    } catch (error) {
      this.setStatus('library.loadFailed', { message: error.message }, 'error');
    }
    const busy = this.videos.some((v) => v.status === 'queued' || v.status === 'processing');
    clearTimeout(this.pollTimer);
    if (busy && this.visible) this.pollTimer = setTimeout(() => this.refresh(), POLL_MS);
  }

  setStatus(key, vars = {}, tone = 'info') {
    this.lastStatus = key ? { key, vars, tone } : null;
    this.status.textContent = key ? t(key, vars) : '';
    this.status.dataset.tone = tone;
  }

  render() {
    const existing = new Map([...this.rows.children].map((row) => [row.dataset.videoId, row]));
    for (const video of this.videos) {
      const id = String(video.video_id);
      let row = existing.get(id);
      if (!row) row = createRow(id);
      existing.delete(id);
      fillRow(row, video);
      this.rows.append(row);
    }
    for (const stale of existing.values()) stale.remove();
  }

  upload(file) {
    const item = document.createElement('li');
    item.dataset.testid = 'upload-item';
    item.innerHTML = `<span class="upload-text"></span>
      <progress data-testid="upload-progress" max="1" value="0"></progress>`;
    const text = item.querySelector('.upload-text');
    const bar = item.querySelector('progress');
    this.uploads.prepend(item);
    const subtitles = this.subtitleInput.files[0] || null;
    this.subtitleInput.value = '';
    const show = (fraction) => {
      bar.value = fraction;
      text.textContent = t('library.uploading', { name: file.name, pct: Math.round(fraction * 100) });
    };
    show(0);
    uploadVideo(file, subtitles, show)
      .then(() => {
        bar.value = 1;
        item.dataset.state = 'done';
        text.textContent = t('library.uploaded', { name: file.name });
        this.refresh();
      })
      .catch((error) => {
        item.dataset.state = 'error';
        text.textContent = t('library.uploadFailed', { name: file.name, message: error.message });
      });
  }

  confirmDelete(button, video) {
    if (button.dataset.confirming !== 'true') {
      button.dataset.confirming = 'true';
      button.textContent = t('library.confirmDelete');
      button.classList.add('danger');
      setTimeout(() => {
        if (!button.isConnected) return;
        button.dataset.confirming = 'false';
        button.textContent = t('library.delete');
        button.classList.remove('danger');
      }, CONFIRM_MS);
      return;
    }
    button.disabled = true;
    apiFetch(`/api/v1/videos/${encodeURIComponent(video.video_id)}`, { method: 'DELETE' })
      .then(() => {
        this.setStatus('library.deleted', { name: video.name });
        this.refresh();
      })
      .catch((error) => {
        button.disabled = false;
        this.setStatus('library.deleteFailed', { name: video.name, message: error.message }, 'error');
      });
  }

  retranslate() {
    this.render();
    if (this.lastStatus) this.setStatus(this.lastStatus.key, this.lastStatus.vars, this.lastStatus.tone);
  }
}

function createRow(id) {
  const row = document.createElement('tr');
  row.dataset.testid = 'video-row';
  row.dataset.videoId = id;
  row.innerHTML = `
    <th scope="row"><div class="video-name"><span class="name"></span>
      <progress class="ingest-progress" data-testid="ingest-progress" max="1"></progress>
      <span class="error"></span></div></th>
    <td><span class="badge" data-testid="video-status"></span></td>
    <td class="duration"></td>
    <td class="segments"></td>
    <td class="actions">
      <button type="button" data-action="play" class="secondary"></button>
      <button type="button" data-action="delete" data-testid="delete-button" class="secondary"></button>
    </td>`;
  return row;
}

function fillRow(row, video) {
  row.dataset.status = video.status;
  row.querySelector('.name').textContent = video.name || video.video_id;
  const busy = video.status === 'queued' || video.status === 'processing';
  const progress = row.querySelector('progress');
  progress.hidden = !busy;
  if (video.status === 'processing' && Number.isFinite(video.progress)) progress.value = video.progress;
  else progress.removeAttribute('value'); // queued: indeterminate
  const error = row.querySelector('.error');
  error.textContent = video.error || '';
  error.hidden = !video.error;
  const badge = row.querySelector('.badge');
  const pct = video.status === 'processing' && Number.isFinite(video.progress) ? ` ${Math.round(video.progress * 100)}%` : '';
  badge.textContent = `${t(`status.${video.status}`)}${pct}`;
  badge.dataset.status = video.status;
  row.querySelector('.duration').textContent = video.duration == null ? '–' : formatTime(video.duration);
  row.querySelector('.segments').textContent =
    video.status !== 'ready'
      ? '–'
      : video.segment_count === 1
        ? t('library.segmentsOne')
        : t('library.segments', { count: video.segment_count ?? 0 });
  const play = row.querySelector('[data-action="play"]');
  play.textContent = t('library.play');
  play.hidden = video.status !== 'ready';
  const del = row.querySelector('[data-action="delete"]');
  if (del.dataset.confirming !== 'true') del.textContent = t('library.delete');
  del.setAttribute('aria-label', `${t('library.delete')} ${video.name || video.video_id}`);
}

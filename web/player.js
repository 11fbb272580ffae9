// The player: plays a result's video from the segment's start, and draws the
// video's timeline with every segment as a marker (the chosen one
// highlighted); clicking a marker or the track seeks. Above the timeline, the
// heat strip shows how well every moment of the video matches the current
// query, from the scores the rankers give (GET/POST /api/v1/videos/{id}/scores);
// clicking it seeks there.

import { apiFetch } from './api.js';
import { formatTime, heatColor, heatIntervals, scorePercent, timelineSpan } from './format.js';
import { t } from './i18n.js';

export class Player {
  /**
   * `onMoment({ video, time, segment })` hears where playback is (whole
   * seconds; all null once the player is closed), so the page's address can follow.
   * `onMoreLike(segment, videoName)` searches for more like the moment playing.
   */
  constructor({ onStatus, onSegmentChange, onMoment = () => {}, onMoreLike = () => {} }) {
    this.onStatus = onStatus;
    this.onMoreLike = onMoreLike;
    this.onSegmentChange = onSegmentChange;
    this.onMoment = onMoment;
    this.reportedSecond = null;
    this.video = document.getElementById('player');
    this.panel = document.getElementById('player-panel');
    this.empty = document.getElementById('player-empty');
    this.title = document.getElementById('player-title');
    this.segmentLabel = document.getElementById('player-segment');
    this.timeline = document.getElementById('timeline');
    this.markers = document.getElementById('timeline-markers');
    this.playhead = document.getElementById('timeline-playhead');
    this.heat = document.getElementById('heat-strip');
    this.heatCells = document.getElementById('heat-cells');
    this.heatCaption = document.getElementById('heat-caption');
    this.moreLike = document.getElementById('player-more-like');

    this.query = null; // the current query as search fields, for the heat strip
    this.queryVersion = 0;
    this.heatScores = null; // { videoId, version, segments (null while loading), error }

    this.current = null; // { videoId, name, playUrl, segment: {segment_id, start, end} }
    this.duration = null;
    this.segments = [];
    this.videoInfo = new Map(); // video_id -> Promise<{ duration, segments }>
    this.pendingSeek = null;

    this.video.addEventListener('loadedmetadata', () => {
      if (!(this.duration > 0) && Number.isFinite(this.video.duration)) {
        this.duration = this.video.duration;
        this.renderTimeline();
      }
      this.applyPendingSeek();
    });
    this.video.addEventListener('timeupdate', () => {
      this.updatePlayhead();
      this.reportMoment();
    });
    this.video.addEventListener('seeked', () => this.updatePlayhead());
    this.video.addEventListener('error', () => {
      if (!this.current) return;
      const message = this.video.error?.message || `media error ${this.video.error?.code ?? ''}`;
      this.onStatus('status.playError', { name: this.current.name, message }, 'error');
    });
    this.timeline.addEventListener('click', (event) => {
      const marker = event.target.closest('.marker');
      if (marker) {
        const segment = this.segments.find((s) => String(s.segment_id) === marker.dataset.segmentId);
        if (segment) this.selectSegment(segment);
        return;
      }
      if (!(this.duration > 0) || !this.current) return;
      const box = this.timeline.getBoundingClientRect();
      this.seek(((event.clientX - box.left) / box.width) * this.duration);
    });
    this.heat.addEventListener('click', (event) => {
      const duration = this.heatDuration();
      if (!(duration > 0) || !this.current) return;
      const cell = event.target.closest('.heat-cell');
      // From the keyboard (Enter on a cell) there is no pointer position: jump to the cell's start.
      const box = this.heat.getBoundingClientRect();
      const time =
        event.detail === 0 && cell ? Number(cell.dataset.start) : ((event.clientX - box.left) / box.width) * duration;
      this.seek(Math.min(time, duration));
      const playing = this.video.play();
      if (playing) playing.catch(() => {});
    });
    this.heat.addEventListener('keydown', (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      const cells = [...this.heatCells.children];
      const at = cells.indexOf(event.target);
      if (!step || at < 0 || !cells[at + step]) return;
      event.preventDefault();
      event.target.tabIndex = -1;
      cells[at + step].tabIndex = 0;
      cells[at + step].focus();
    });
    this.moreLike.addEventListener('click', () => {
      const segment = this.segmentAt(this.video.currentTime);
      if (segment) this.onMoreLike(segment, this.current.name);
    });
  }

  /** The segment playing at `time`: a shot covering it, else any segment covering it, else the one chosen. */
  segmentAt(time) {
    const covering = this.segments.filter((s) => s.start <= time && time < s.end);
    const chosen = this.current?.segment?.segment_id != null ? this.current.segment : null;
    return covering.find((s) => s.kind === 'shot') ?? covering[0] ?? chosen;
  }

  /** The query the heat strip scores against (search fields), or null: a new one redraws it. */
  setQuery(fields) {
    this.query = fields;
    this.queryVersion++;
    this.refreshHeat();
  }

  refreshHeat() {
    const videoId = this.current?.videoId;
    const version = this.queryVersion;
    if (!videoId || !this.query) {
      this.heatScores = null;
      this.renderHeat();
      return;
    }
    if (this.heatScores?.videoId === videoId && this.heatScores.version === version) {
      this.renderHeat();
      return;
    }
    this.heatScores = { videoId, version, segments: null, error: null };
    this.renderHeat();
    const path = `/api/v1/videos/${encodeURIComponent(videoId)}/scores`;
    const query = this.query;
    // Text and `like` fit in the address; a picture goes in a JSON body.
    const answer =
      query.image_base64 === undefined
        ? apiFetch(`${path}?${new URLSearchParams(query)}`)
        : apiFetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(query) });
    answer
      .then((scores) => {
        if (this.heatScores?.videoId !== videoId || this.heatScores.version !== version) return;
        this.heatScores.segments = scores?.segments ?? [];
        this.renderHeat();
      })
      .catch((error) => {
        if (this.heatScores?.videoId !== videoId || this.heatScores.version !== version) return;
        this.heatScores.error = error.message || String(error);
        this.renderHeat();
      });
  }

  /** The length the heat strip spans: the timeline's, else the end of the last scored segment. */
  heatDuration() {
    if (this.duration > 0) return this.duration;
    return Math.max(0, ...(this.heatScores?.segments ?? []).map((s) => s.end));
  }

  renderHeat() {
    const scores = this.heatScores;
    this.heat.hidden = !scores || !this.current;
    this.heatCaption.hidden = this.heat.hidden;
    this.heatCells.replaceChildren();
    if (!scores) return;
    this.heat.dataset.videoId = scores.videoId;
    // Which query the strip shows (a picture is not named), for tests and styling.
    this.heat.dataset.queryText = this.query?.text ?? '';
    this.heat.dataset.queryLike = this.query?.like ?? '';
    this.heat.dataset.state = scores.error ? 'error' : scores.segments ? 'ready' : 'loading';
    const label = scores.error ? t('heat.failed', { message: scores.error }) : scores.segments ? t('heat.label') : t('heat.loading');
    this.heat.setAttribute('aria-label', label);
    this.heat.title = label;
    const duration = this.heatDuration();
    if (!scores.segments || !(duration > 0)) return;
    const pieces = heatIntervals(scores.segments);
    const best = pieces.reduce((top, piece) => (!top || piece.score > top.score ? piece : top), null);
    for (const piece of pieces) {
      const { left, width } = timelineSpan(piece.start, piece.end, duration);
      const cell = document.createElement('button');
      cell.type = 'button';
      cell.className = 'heat-cell';
      cell.dataset.testid = 'heat-cell';
      cell.dataset.start = String(piece.start);
      cell.dataset.end = String(piece.end);
      cell.dataset.score = String(piece.score);
      cell.dataset.segmentId = String(piece.segment_id);
      cell.style.left = `${left}%`;
      cell.style.width = `${width}%`;
      cell.style.background = heatColor(piece.score);
      const text = t('heat.cell', {
        start: formatTime(piece.start),
        end: formatTime(piece.end),
        pct: scorePercent(piece.score),
      });
      cell.setAttribute('aria-label', text);
      cell.title = text;
      // One tab stop for the whole strip, on the best match; arrows move along it.
      cell.tabIndex = piece === best ? 0 : -1;
      this.heatCells.append(cell);
    }
  }

  /** Play `result` (a search result) from its segment's start. */
  play(result) {
    const sameVideo = this.current && this.current.videoId === result.video_id;
    this.current = {
      videoId: result.video_id,
      name: result.video_name || result.video_id,
      playUrl: result.play_url,
      segment: { segment_id: result.segment_id, start: result.start, end: result.end, kind: result.kind },
    };
    this.panel.classList.add('has-video');
    this.empty.hidden = true;
    this.title.textContent = this.current.name;
    this.showSegmentLabel();
    this.reportedSecond = null;

    const wanted = new URL(result.play_url, location.href).href;
    if (this.video.currentSrc !== wanted && this.video.src !== wanted) {
      this.pendingSeek = result.start;
      this.video.src = wanted;
    } else {
      this.pendingSeek = result.start;
      if (this.video.readyState >= HTMLMediaElement.HAVE_METADATA) this.applyPendingSeek();
    }
    if (!sameVideo) {
      this.duration = null;
      this.segments = [];
    }
    this.reportMoment();
    this.renderTimeline();
    this.refreshHeat();
    this.loadVideoInfo(result.video_id).then((info) => {
      if (this.current?.videoId !== result.video_id) return;
      if (info.duration > 0) this.duration = info.duration;
      this.segments = info.segments;
      this.renderTimeline();
    });
    if (window.matchMedia('(max-width: 900px)').matches) this.panel.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  /** Tell the page where playback is, once per whole second (a pending seek counts as the position). */
  reportMoment() {
    if (!this.current) return;
    const second = Math.floor(this.pendingSeek ?? this.video.currentTime);
    if (second === this.reportedSecond) return;
    this.reportedSecond = second;
    this.moreLike.setAttribute('aria-label', t('like.playerAria', { time: formatTime(second) }));
    this.onMoment({ video: this.current.videoId, time: second, segment: this.current.segment?.segment_id ?? null });
  }

  /** Stop playing and empty the player (Esc). Returns whether anything was open. */
  close() {
    if (!this.current) return false;
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.current = null;
    this.pendingSeek = null;
    this.reportedSecond = null;
    this.duration = null;
    this.segments = [];
    this.panel.classList.remove('has-video');
    this.empty.hidden = false;
    this.title.textContent = '';
    this.showSegmentLabel();
    this.renderTimeline();
    this.refreshHeat();
    this.updatePlayhead();
    this.onSegmentChange(null);
    this.onMoment({ video: null, time: null, segment: null });
    return true;
  }

  applyPendingSeek() {
    if (this.pendingSeek === null) return;
    const start = this.pendingSeek;
    this.pendingSeek = null;
    this.video.currentTime = start;
    const playing = this.video.play();
    // Autoplay may be refused (no user gesture); the position is still right and the controls work.
    if (playing) playing.catch(() => {});
  }

  seek(seconds) {
    this.video.currentTime = Math.max(0, seconds);
    this.updatePlayhead();
  }

  selectSegment(segment) {
    if (!this.current) return;
    this.current.segment = segment;
    this.showSegmentLabel();
    this.renderTimeline();
    this.seek(segment.start);
    const playing = this.video.play();
    if (playing) playing.catch(() => {});
    this.onSegmentChange(segment.segment_id);
    this.reportedSecond = null;
    this.reportMoment();
  }

  showSegmentLabel() {
    const segment = this.current?.segment;
    this.segmentLabel.textContent =
      segment && segment.segment_id != null
        ? t('player.segment', { start: formatTime(segment.start), end: formatTime(segment.end) })
      : '';
  }

  loadVideoInfo(videoId) {
    if (!this.videoInfo.has(videoId)) {
      const id = encodeURIComponent(videoId);
      const info = Promise.all([
        apiFetch(`/api/v1/videos/${id}`).catch(() => null),
        apiFetch(`/api/v1/videos/${id}/segments`).catch(() => null),
      ]).then(([video, segments]) => ({
        duration: video?.duration ?? null,
        segments: Array.isArray(segments) ? segments : segments?.segments ?? [],
      }));
      this.videoInfo.set(videoId, info);
      // A failed lookup should be retried next time, not cached.
      info.then((value) => {
        if (value.segments.length === 0) this.videoInfo.delete(videoId);
      });
    }
    return this.videoInfo.get(videoId);
  }

  /** Forget cached segments (the library changed). */
  invalidate(videoId) {
    this.videoInfo.delete(videoId);
  }

  renderTimeline() {
    const active = this.current?.segment;
    const known = active && active.segment_id != null;
    this.timeline.dataset.activeSegmentId = known ? String(active.segment_id) : '';
    this.timeline.dataset.activeStart = known ? String(active.start) : '';
    this.timeline.dataset.activeEnd = known ? String(active.end) : '';
    this.markers.replaceChildren();
    if (!this.current || !(this.duration > 0)) return;

    // The active segment is drawn even if the segment list has not arrived (or failed).
    // A whole video played from the library has no active segment.
    const hasActive = active && active.segment_id != null;
    const segments =
      !hasActive || this.segments.some((s) => s.segment_id === active.segment_id) ? this.segments : [...this.segments, active];
    // Text segments (subtitle cues, text read from the picture) share the second lane.
    const isText = (segment) => segment.kind === 'subtitle' || segment.kind === 'ocr';
    const hasSubtitles = segments.some(isText);
    this.timeline.classList.toggle('two-lanes', hasSubtitles);
    for (const segment of segments) {
      const { left, width } = timelineSpan(segment.start, segment.end, this.duration);
      const marker = document.createElement('button');
      marker.type = 'button';
      marker.className = `marker ${isText(segment) ? 'lane-subtitle' : 'lane-shot'}`;
      marker.dataset.testid = 'timeline-marker';
      marker.dataset.segmentId = String(segment.segment_id);
      marker.dataset.start = String(segment.start);
      marker.dataset.end = String(segment.end);
      marker.style.left = `${left}%`;
      marker.style.width = `max(${width}%, 4px)`;
      const label = t('timeline.marker', { start: formatTime(segment.start), end: formatTime(segment.end) });
      marker.setAttribute('aria-label', label);
      marker.title = label;
      if (hasActive && segment.segment_id === active.segment_id) {
        marker.classList.add('active');
        marker.setAttribute('aria-current', 'true');
      }
      this.markers.append(marker);
    }
    this.updatePlayhead();
    this.renderHeat();
  }

  updatePlayhead() {
    if (!(this.duration > 0)) {
      this.playhead.hidden = true;
      return;
    }
    const time = this.video.currentTime;
    this.playhead.hidden = false;
    this.playhead.style.left = `${Math.min(100, (100 * time) / this.duration)}%`;
    for (const marker of this.markers.children) {
      marker.classList.toggle('current', time >= Number(marker.dataset.start) && time < Number(marker.dataset.end));
    }
  }

  retranslate() {
    this.showSegmentLabel();
    this.renderTimeline();
  }
}

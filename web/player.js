// The player: plays a result's video from the segment's start, and draws the
// video's timeline with every segment as a marker (the chosen one
// highlighted); clicking a marker or the track seeks.

import { apiFetch } from './api.js';
import { formatTime, timelineSpan } from './format.js';
import { t } from './i18n.js';

export class Player {
  /**
   * `onMoment({ video, time, segment })` hears where playback is (whole
   * seconds; all null once the player is closed), so the page's address can follow.
   */
  constructor({ onStatus, onSegmentChange, onMoment = () => {} }) {
    this.onStatus = onStatus;
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

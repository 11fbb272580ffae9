// Entry point of the vidseek page: wires the search view, the player and the
// library together, and owns the tabs, the language switch and the token dialog.

import { apiFetch, setTokenPrompt } from './api.js';
import { initialLanguage, language, setLanguage, storedLanguage } from './i18n.js';
import { LibraryView } from './library.js';
import { noFilters, readMoment, readSearch, withMoment, withSearch } from './moment.js';
import { Player } from './player.js';
import { SearchView } from './search.js';

setLanguage(initialLanguage(storedLanguage(), navigator.languages || [navigator.language]));

// The address follows the query, the filters and the playing moment (see moment.js).
let moment = readMoment(location.href);
let searched = readSearch(location.href); // { like, filters }
function showAddress() {
  const href = withSearch(withMoment(location.href, moment), searched);
  if (href !== location.href) history.replaceState(null, '', href);
}
function showMoment(change) {
  moment = { ...moment, ...change };
  showAddress();
}
// A moment named by the address when the page opened, played once its query answers.
let momentToReopen = moment.video ? { video: moment.video, time: moment.time ?? 0, segment: moment.segment } : null;

const player = new Player({
  onStatus: (key, vars, tone) => search.setStatus(key, vars, tone),
  onSegmentChange: (segmentId) => search.markPlaying(segmentId),
  onMoment: (playing) => showMoment(playing),
  onMoreLike: (segment, name) => search.searchLike(segment, name),
});
const search = new SearchView({
  onPlay: (result) => player.play(result),
  onQuery: ({ text, like, filters }) => {
    searched = { like, filters: filters ?? noFilters() };
    showMoment({ text, video: null, time: null, segment: null });
  },
  onQueryFields: (fields) => player.setQuery(fields),
  onResults: (results) => {
    if (!momentToReopen) return;
    const reopened = momentIn(results, momentToReopen);
    momentToReopen = null;
    player.play(reopened);
    search.markPlaying(reopened.segment_id);
  },
});

/**
 * What to play for a moment: the result it was opened from (else one of its
 * video covering `time`, else the whole video), from `time`. The address
 * holds whole seconds, so a segment starting within that second plays from
 * its own start.
 */
function momentIn(results, { video, time, segment }) {
  const inVideo = results.filter((r) => r.video_id === video);
  const covering =
    inVideo.find((r) => String(r.segment_id) === segment && r.start < time + 1 && time < r.end) ??
    inVideo.find((r) => r.start < time + 1 && time < r.end);
  if (covering) return { ...covering, start: Math.floor(covering.start) === time ? covering.start : time };
  return {
    video_id: video,
    video_name: inVideo[0]?.video_name ?? video,
    play_url: `/media/videos/${encodeURIComponent(video)}`,
    segment_id: null,
    start: time,
    end: 0,
  };
}

const library = new LibraryView({
  onPlay: (video) => {
    showView('search');
    player.play({
      video_id: video.video_id,
      video_name: video.name,
      // The video record names no media URL; the gateway serves every video here (protocol::query::play_url).
      play_url: video.play_url || `/media/videos/${encodeURIComponent(video.video_id)}`,
      segment_id: null,
      start: 0,
      end: 0,
    });
  },
  onChange: (videos) => {
    search.setVideos(videos);
    for (const video of videos) if (video.status !== 'ready') player.invalidate(video.video_id);
    if (search.list.dataset.state === 'idle') {
      search.setIntro(videos.length === 0 ? 'search.introEmptyLibrary' : 'search.intro');
    }
  },
});

// Tabs (ARIA tab pattern: arrow keys move between tabs, Tab moves into the panel).
const tabs = [...document.querySelectorAll('[role="tab"]')];
function showView(name) {
  for (const tab of tabs) {
    const selected = tab.dataset.view === name;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    document.getElementById(tab.getAttribute('aria-controls')).hidden = !selected;
  }
  library.show(name === 'library');
  document.body.dataset.view = name;
}
for (const tab of tabs) {
  tab.addEventListener('click', () => showView(tab.dataset.view));
  tab.addEventListener('keydown', (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    next.focus();
    showView(next.dataset.view);
  });
}

// Language switch.
const langSelect = document.getElementById('lang-select');
langSelect.value = language();
langSelect.addEventListener('change', () => {
  setLanguage(langSelect.value);
  search.retranslate();
  player.retranslate();
  library.retranslate();
});

// Pasting an image anywhere on the search view searches with it.
document.addEventListener('paste', (event) => {
  if (document.body.dataset.view === 'search') search.handlePaste(event);
});

// The token dialog, shown when an action answers 401.
const dialog = document.getElementById('token-dialog');
const tokenInput = document.getElementById('token-input');
setTokenPrompt(
  () =>
    new Promise((resolve) => {
      tokenInput.value = '';
      dialog.addEventListener(
        'close',
        () => resolve(dialog.returnValue === 'ok' && tokenInput.value.trim() ? tokenInput.value.trim() : null),
        { once: true },
      );
      dialog.showModal();
      tokenInput.focus();
    }),
);

// Esc closes the player (a dialog handles its own Esc) and puts focus back on the results or the search box.
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || dialog.open || document.body.dataset.view !== 'search') return;
  const playing = search.list.querySelector('.card.playing') || search.list.querySelector('.card');
  if (!player.close()) return;
  (playing || document.getElementById('search-input')).focus();
});

showView('search');
const searchInput = document.getElementById('search-input');
searchInput.focus();
search.setFilters(searched.filters);
if (moment.text) {
  searchInput.value = moment.text;
  search.search({ text: moment.text });
} else if (searched.like) {
  search.search({ like: searched.like });
} else if (momentToReopen) {
  // A moment without a query: just play it.
  player.play(momentIn([], momentToReopen));
  momentToReopen = null;
}

// Tell a first-time user with an empty library where to start.
apiFetch('/api/v1/videos')
  .then((answer) => {
    search.setVideos(answer?.videos ?? []);
    if ((answer?.videos ?? []).length === 0 && search.list.dataset.state === 'idle') {
      search.setIntro('search.introEmptyLibrary');
    }
  })
  .catch(() => {});

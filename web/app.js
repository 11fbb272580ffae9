// Entry point of the vidseek page: wires the search view, the player and the
// library together, and owns the tabs, the language switch and the token dialog.

import { apiFetch, setTokenPrompt } from './api.js';
import { initialLanguage, language, setLanguage, storedLanguage } from './i18n.js';
import { LibraryView } from './library.js';
import { Player } from './player.js';
import { SearchView } from './search.js';

setLanguage(initialLanguage(storedLanguage(), navigator.languages || [navigator.language]));

const player = new Player({
  onStatus: (key, vars, tone) => search.setStatus(key, vars, tone),
  onSegmentChange: (segmentId) => search.markPlaying(segmentId),
});
const search = new SearchView({ onPlay: (result) => player.play(result) });
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

showView('search');
document.getElementById('search-input').focus();

// Tell a first-time user with an empty library where to start.
apiFetch('/api/v1/videos')
  .then((answer) => {
    if ((answer?.videos ?? []).length === 0 && search.list.dataset.state === 'idle') {
      search.setIntro('search.introEmptyLibrary');
    }
  })
  .catch(() => {});

// UI strings in English and Chinese. Elements carry `data-i18n="key"` (text),
// `data-i18n-placeholder`, `data-i18n-title` or `data-i18n-aria-label`;
// `applyTranslations` fills them, and code calls `t(key, vars)` for
// messages it builds itself. Importable from Node (no DOM at import time) so
// the browser test suite can check that both languages have the same keys.

export const STRINGS = {
  en: {
    'app.title': 'vidseek',
    'app.tagline': 'Find the moment in your videos by words or by a picture',
    'tab.search': 'Search',
    'tab.library': 'Library',
    'lang.label': 'Language',
    'search.label': 'Describe what you are looking for',
    'search.placeholder': 'e.g. a person riding a bicycle',
    'search.button': 'Search',
    'search.image': 'Image',
    'search.imageTitle': 'Search with a picture (or drop / paste one here)',
    'search.imageClear': 'Remove image',
    'search.imageQuery': 'Searching by image: {name}',
    'search.imageAndWords': 'Searching by image and words: {name}',
    'search.dropHint': 'Drop an image to search with it',
    'search.translated': 'Searched as “{text}”',
    'search.intro': 'Type a description and press Enter, or drop in a picture. Results stream in as each shard answers.',
    'search.introEmptyLibrary': 'The library is empty: add a video in the Library tab first.',
    'status.connecting': 'Connecting…',
    'status.searching': 'Searching…',
    'status.partial': '{done}/{total} shards answered, {count} results so far',
    'status.done': '{count} results in {ms} ms',
    'status.doneOne': '1 result in {ms} ms',
    'status.none': 'No matches for “{query}”. Try other words or a picture.',
    'status.noneImage': 'No matches for this picture.',
    'status.error': 'Search failed: {message}',
    'status.offline': 'Live connection lost; reconnecting. Searches use plain HTTP meanwhile.',
    'status.notImage': '“{name}” is not an image.',
    'status.playError': 'Could not play {name}: {message}',
    'shards.progress': '{done}/{total} shards',
    'shards.label': 'Shards answered',
    'results.label': 'Results',
    'result.score': 'Score {pct}%',
    'result.kind.shot': 'shot',
    'result.kind.subtitle': 'subtitle',
    'result.kind.ocr': 'text in picture',
    'result.play': 'Play {name} from {start} to {end}',
    'player.title': 'Player',
    'player.empty': 'Pick a result to play it here.',
    'player.segment': 'Segment {start} – {end}',
    'like.button': 'More like this',
    'like.buttonAria': 'More like this: {name} {start} – {end}',
    'like.player': 'More like this moment',
    'like.playerAria': 'More like the moment playing now ({time})',
    'like.chip': 'More like {name} {start} – {end}',
    'like.chipUnknown': 'More like segment {id}',
    'like.clear': 'Stop searching for more like this',
    'status.noneLike': 'Nothing else like this segment.',
    'group.more': '{n} more in this video',
    'group.moreOne': '1 more in this video',
    'group.moreAria': 'Show only results in {name} ({n} more)',
    'combine.label': 'Words and picture',
    'combine.words': 'words',
    'combine.picture': 'picture',
    'combine.aria': 'Weight of the picture against the words',
    'combine.hint': 'Type words too to search with both.',
    'combine.value': '{words}% words · {pct}% picture',
    'heat.caption': 'Match with the query along the video',
    'heat.low': 'low',
    'heat.high': 'high',
    'filters.title': 'Filters',
    'filters.active': '{n} active',
    'filters.videos': 'Only in these videos',
    'filters.noVideos': 'No videos yet.',
    'filters.time': 'Part of the video (seconds)',
    'filters.from': 'from',
    'filters.to': 'to',
    'filters.kinds': 'Kind of match',
    'filters.minScore': 'Minimum score',
    'filters.group': 'One result per video',
    'filters.clear': 'Clear filters',
    'heat.label': 'How well each moment of this video matches the query; click to jump there',
    'heat.cell': '{start} – {end}: score {pct}%',
    'heat.loading': 'Scoring this video…',
    'heat.failed': 'Could not score this video: {message}',
    'export.label': 'Export results:',
    'timeline.label': 'Segments of this video',
    'timeline.marker': 'Seek to {start} – {end}',
    'library.title': 'Video library',
    'library.upload': 'Add a video',
    'library.dropHint': 'Drop a video file here, or',
    'library.choose': 'choose a file',
    'library.subtitles': 'Subtitles (.srt/.vtt, optional)',
    'library.uploading': 'Uploading {name}: {pct}%',
    'library.uploaded': 'Uploaded {name}; it is queued for processing.',
    'library.uploadFailed': 'Upload of {name} failed: {message}',
    'library.empty': 'No videos yet. Add one above.',
    'library.loading': 'Loading the library…',
    'library.loadFailed': 'Could not load the library: {message}',
    'library.col.name': 'Video',
    'library.col.status': 'Status',
    'library.col.duration': 'Duration',
    'library.col.segments': 'Segments',
    'library.col.actions': 'Actions',
    'library.play': 'Play',
    'library.delete': 'Delete',
    'library.confirmDelete': 'Really delete?',
    'library.deleted': 'Deleted {name}.',
    'library.deleteFailed': 'Could not delete {name}: {message}',
    'library.segments': '{count} segments',
    'library.segmentsOne': '1 segment',
    'status.queued': 'queued',
    'status.processing': 'processing',
    'status.ready': 'ready',
    'status.failed': 'failed',
    'auth.title': 'Access token required',
    'auth.body': 'This server needs an API token for this action (VIDSEEK_API_TOKEN). Paste it here; it is kept for this browser tab only.',
    'auth.label': 'Token',
    'auth.ok': 'Continue',
    'auth.cancel': 'Cancel',
    'auth.denied': 'Token required',
    'error.network': 'The server could not be reached.',
    'error.http': 'The server answered {status}.',
    'error.timeout': 'no answer within {s} s',
    'warning.language_unsupported': 'The installed model pack does not understand this language well, so these results may be poor. Try the query in English, or install a multilingual model pack.',
  },
  zh: {
    'app.title': 'vidseek',
    'app.tagline': '用文字或图片找到视频中的那一刻',
    'tab.search': '搜索',
    'tab.library': '视频库',
    'lang.label': '语言',
    'search.label': '描述你要找的画面',
    'search.placeholder': '例如：一个人在骑自行车',
    'search.button': '搜索',
    'search.image': '图片',
    'search.imageTitle': '以图搜索（也可以拖放或粘贴图片）',
    'search.imageClear': '移除图片',
    'search.imageQuery': '以图搜索：{name}',
    'search.imageAndWords': '以图片和文字搜索：{name}',
    'search.dropHint': '松开鼠标，用这张图片搜索',
    'search.translated': '已译为英文搜索：“{text}”',
    'search.intro': '输入描述并按回车，或拖入一张图片。各分片一有回答，结果就会显示出来。',
    'search.introEmptyLibrary': '视频库是空的：请先在“视频库”页添加视频。',
    'status.connecting': '正在连接…',
    'status.searching': '正在搜索…',
    'status.partial': '已有 {done}/{total} 个分片回答，目前 {count} 个结果',
    'status.done': '{count} 个结果，用时 {ms} 毫秒',
    'status.doneOne': '1 个结果，用时 {ms} 毫秒',
    'status.none': '没有与“{query}”匹配的片段。换个说法或用图片试试。',
    'status.noneImage': '没有与这张图片匹配的片段。',
    'status.error': '搜索失败：{message}',
    'status.offline': '实时连接已断开，正在重连；期间改用普通 HTTP 搜索。',
    'status.notImage': '“{name}”不是图片。',
    'status.playError': '无法播放 {name}：{message}',
    'shards.progress': '{done}/{total} 个分片',
    'shards.label': '已回答的分片',
    'results.label': '搜索结果',
    'result.score': '得分 {pct}%',
    'result.kind.shot': '镜头',
    'result.kind.subtitle': '字幕',
    'result.kind.ocr': '画面文字',
    'result.play': '播放 {name}，{start} 至 {end}',
    'player.title': '播放器',
    'player.empty': '选择一个结果在这里播放。',
    'player.segment': '片段 {start} – {end}',
    'like.button': '找相似',
    'like.buttonAria': '找与此相似的片段：{name} {start} – {end}',
    'like.player': '找与此刻相似的',
    'like.playerAria': '找与正在播放的这一刻（{time}）相似的片段',
    'like.chip': '与 {name} {start} – {end} 相似',
    'like.chipUnknown': '与片段 {id} 相似',
    'like.clear': '停止查找相似片段',
    'status.noneLike': '没有其他与此片段相似的内容。',
    'group.more': '本视频还有 {n} 个',
    'group.moreOne': '本视频还有 1 个',
    'group.moreAria': '只显示 {name} 中的结果（还有 {n} 个）',
    'combine.label': '文字与图片',
    'combine.words': '文字',
    'combine.picture': '图片',
    'combine.aria': '图片相对文字的权重',
    'combine.hint': '再输入文字即可同时用两者搜索。',
    'combine.value': '文字 {words}% · 图片 {pct}%',
    'heat.caption': '沿视频与查询的匹配程度',
    'heat.low': '低',
    'heat.high': '高',
    'filters.title': '筛选',
    'filters.active': '{n} 项生效',
    'filters.videos': '只在这些视频中',
    'filters.noVideos': '还没有视频。',
    'filters.time': '视频中的时间段（秒）',
    'filters.from': '从',
    'filters.to': '到',
    'filters.kinds': '匹配类型',
    'filters.minScore': '最低得分',
    'filters.group': '每个视频一个结果',
    'filters.clear': '清除筛选',
    'heat.label': '本视频每一刻与查询的匹配程度；点击跳到那里',
    'heat.cell': '{start} – {end}：得分 {pct}%',
    'heat.loading': '正在为本视频评分…',
    'heat.failed': '无法为本视频评分：{message}',
    'export.label': '导出结果：',
    'timeline.label': '本视频的片段',
    'timeline.marker': '跳到 {start} – {end}',
    'library.title': '视频库',
    'library.upload': '添加视频',
    'library.dropHint': '把视频文件拖到这里，或',
    'library.choose': '选择文件',
    'library.subtitles': '字幕（.srt/.vtt，可选）',
    'library.uploading': '正在上传 {name}：{pct}%',
    'library.uploaded': '{name} 已上传，正在排队处理。',
    'library.uploadFailed': '{name} 上传失败：{message}',
    'library.empty': '还没有视频。请在上方添加。',
    'library.loading': '正在加载视频库…',
    'library.loadFailed': '无法加载视频库：{message}',
    'library.col.name': '视频',
    'library.col.status': '状态',
    'library.col.duration': '时长',
    'library.col.segments': '片段',
    'library.col.actions': '操作',
    'library.play': '播放',
    'library.delete': '删除',
    'library.confirmDelete': '确定删除？',
    'library.deleted': '已删除 {name}。',
    'library.deleteFailed': '无法删除 {name}：{message}',
    'library.segments': '{count} 个片段',
    'library.segmentsOne': '1 个片段',
    'status.queued': '排队中',
    'status.processing': '处理中',
    'status.ready': '就绪',
    'status.failed': '失败',
    'auth.title': '需要访问令牌',
    'auth.body': '此服务器的这个操作需要 API 令牌（VIDSEEK_API_TOKEN）。请粘贴令牌；它只保存在当前标签页。',
    'auth.label': '令牌',
    'auth.ok': '继续',
    'auth.cancel': '取消',
    'auth.denied': '需要令牌',
    'error.network': '无法连接服务器。',
    'error.http': '服务器返回 {status}。',
    'error.timeout': '{s} 秒内没有回答',
    'warning.language_unsupported': '当前安装的模型包不能很好地理解这种语言，结果可能不准确。请尝试用英文搜索，或安装多语言模型包。',
  },
};

export const LANGUAGES = Object.keys(STRINGS);
const STORAGE_KEY = 'vidseek.lang';

let current = 'en';

/** The language to start with: the stored choice, else the browser's. */
export function initialLanguage(stored, navigatorLanguages) {
  if (stored && STRINGS[stored]) return stored;
  for (const tag of navigatorLanguages || []) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (STRINGS[base]) return base;
  }
  return 'en';
}

export function language() {
  return current;
}

/** Look up `key` in the current language and fill `{name}` placeholders. */
export function t(key, vars = {}) {
  const template = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

const ATTRIBUTE_BINDINGS = [
  ['i18nPlaceholder', 'placeholder'],
  ['i18nTitle', 'title'],
  ['i18nAriaLabel', 'aria-label'],
];

export function applyTranslations(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [dataKey, attribute] of ATTRIBUTE_BINDINGS) {
    const selector = `[data-${dataKey.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
    for (const el of root.querySelectorAll(selector)) el.setAttribute(attribute, t(el.dataset[dataKey]));
  }
}

/** Switch language, remember the choice and re-render static strings. */
export function setLanguage(lang, { storage = globalThis.localStorage, root = globalThis.document } = {}) {
  current = STRINGS[lang] ? lang : 'en';
  try {
    storage?.setItem(STORAGE_KEY, current);
  } catch {
    // Private mode or disabled storage: the choice lasts for this page only.
  }
  if (root) {
    root.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
    applyTranslations(root);
  }
  return current;
}

export function storedLanguage(storage = globalThis.localStorage) {
  try {
    return storage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

// Test media made at run time from the real test video with ffmpeg (which the
// stack needs anyway): a short copy to upload, and an unrelated clip so that
// an image query has something to beat.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function ffmpeg(args) {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The first `seconds` of `video`, stream-copied (no re-encode). */
export function shortCopy(video, dir, seconds = 3) {
  const out = path.join(dir, `${path.basename(video, path.extname(video))}-short.mp4`);
  ffmpeg(['-i', video, '-t', String(seconds), '-c', 'copy', '-an', out]);
  return out;
}

/** A few seconds of a synthetic fractal zoom: nothing like street footage. */
export function distractorClip(dir) {
  const out = path.join(dir, 'mandelbrot.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'mandelbrot=size=320x240:rate=10', '-t', '4', '-pix_fmt', 'yuv420p', out]);
  return out;
}

export function writeTemp(dir, name, bytes) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

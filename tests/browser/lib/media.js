// Test media: the real sample videos named by the environment, plus what the
// tests make from them at run time with ffmpeg (which the stack needs anyway):
// a query picture cut from a frame, a short copy to upload, and unrelated
// synthetic clips that give every ranker shard something to rank.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function ffmpeg(args) {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function existing(name) {
  const file = process.env[name];
  if (!file) return null;
  if (!fs.existsSync(file)) throw new Error(`${name}=${file} does not exist`);
  return path.resolve(file);
}

/**
 * What the tests search. With VIDSEEK_TEST_PHOTOS (the sample slideshow: one
 * captioned photo per 4 s, the cat at 4–8 s) the queries have a known right
 * answer; VIDSEEK_TEST_VIDEO alone (any real clip) still exercises every path.
 */
export function testMedia() {
  const photos = existing('VIDSEEK_TEST_PHOTOS');
  const video = existing('VIDSEEK_TEST_VIDEO');
  if (!photos && !video) {
    throw new Error(
      'set VIDSEEK_TEST_PHOTOS (the sample photos.mp4) and/or VIDSEEK_TEST_VIDEO (a real video, e.g. bikes.mp4); `make test` sets both',
    );
  }
  const videos = [...new Set([photos, video].filter(Boolean))];
  if (photos) {
    return {
      videos,
      photos,
      textQuery: process.env.VIDSEEK_TEST_QUERY || 'a cat',
      // Where the right answer to the text query lies in the photos video (the cat: 4–8 s).
      textAnswer: process.env.VIDSEEK_TEST_QUERY ? null : { video: photos, start: 4, end: 8 },
      // The query picture is the frame at this time (the rocket: 12–16 s).
      imageAt: { video: photos, time: 14, start: 12, end: 16 },
    };
  }
  return {
    videos,
    photos: null,
    textQuery: process.env.VIDSEEK_TEST_QUERY || 'a person riding a bicycle',
    textAnswer: null,
    imageAt: null, // a thumbnail of the ingested video is used instead
  };
}

/** The frame of `video` at `seconds` as a PNG. */
export function frameAt(video, seconds, dir) {
  const out = path.join(dir, `${path.basename(video, path.extname(video))}-${seconds}s.png`);
  ffmpeg(['-ss', String(seconds), '-i', video, '-frames:v', '1', out]);
  return out;
}

/**
 * `image` scaled up to `width` px with film grain, as a high-quality JPEG: a
 * phone-sized photo (several MB) of the same scene.
 */
export function phoneSized(image, dir, width = 4000) {
  const out = path.join(dir, `${path.basename(image, path.extname(image))}-${width}px.jpg`);
  ffmpeg(['-i', image, '-vf', `scale=${width}:-2:flags=bicubic,noise=alls=12:allf=t`, '-q:v', '2', out]);
  return out;
}

/** The first `seconds` of `video`, stream-copied (no re-encode). */
export function shortCopy(video, dir, seconds = 3) {
  const out = path.join(dir, `${path.basename(video, path.extname(video))}-short.mp4`);
  ffmpeg(['-i', video, '-t', String(seconds), '-c', 'copy', '-an', out]);
  return out;
}

/** `video` again, smaller and re-encoded: another file showing the same pictures. */
export function reencodedCopy(video, dir) {
  const out = path.join(dir, `${path.basename(video, path.extname(video))}-small.mp4`);
  ffmpeg(['-i', video, '-vf', 'scale=320:-2', '-c:v', 'libx264', '-crf', '30', '-an', out]);
  return out;
}

const SYNTHETIC = [
  ['mandelbrot', 'mandelbrot=size=320x240:rate=10'],
  ['life', 'life=size=320x240:rate=10:mold=10:ratio=0.1:death_color=#c83232'],
  ['cellauto', 'cellauto=size=320x240:rate=10:rule=110'],
  ['testsrc2', 'testsrc2=size=320x240:rate=10'],
  ['smptebars', 'smptehdbars=size=320x240:rate=10'],
  ['gradients', 'gradients=size=320x240:rate=10'],
  ['rgbtest', 'rgbtestsrc=size=320x240:rate=10'],
  ['sierpinski', 'sierpinski=size=320x240:rate=10'],
];

/** The n-th synthetic clip (a few seconds of generated video, nothing like the real footage). */
export function syntheticClip(dir, n) {
  const [name, source] = SYNTHETIC[n % SYNTHETIC.length];
  const out = path.join(dir, `${name}-${n}.mp4`);
  ffmpeg(['-f', 'lavfi', '-i', source, '-t', '4', '-pix_fmt', 'yuv420p', out]);
  return out;
}

export function writeTemp(dir, name, bytes) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

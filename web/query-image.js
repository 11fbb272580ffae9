// Query pictures are reduced in the browser before they are sent, to what the
// server would reduce them to anyway (see docs/ARCHITECTURE.md, query path):
// a phone photo of several megabytes becomes a JPEG of at most 1024 px a
// side, so the upload is quick even on a slow link.

/** Longest side of a reduced picture, as on the server. */
export const MAX_SIDE = 1024;
/** Pictures already this small (and within MAX_SIDE) are sent as they are. */
const SMALL_BYTES = 700 * 1024;

/** The size `width` x `height` scales down to so that no side exceeds `maxSide`. */
export function fitWithin(width, height, maxSide = MAX_SIDE) {
  const scale = Math.min(1, maxSide / Math.max(width, height, 1));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * `file` as a JPEG of at most MAX_SIDE px a side, upright (the browser applies
 * the EXIF orientation) and with transparency on white, as the encoder sees
 * it. Small pictures, and any the browser cannot decode, are returned as they
 * are: the server checks and reduces them itself.
 */
export async function reduceForUpload(file) {
  if (typeof createImageBitmap !== 'function') return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return file;
  }
  try {
    const { width, height } = fitWithin(bitmap.width, bitmap.height);
    if (width === bitmap.width && height === bitmap.height && file.size <= SMALL_BYTES) return file;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d');
    context.fillStyle = '#fff';
    context.fillRect(0, 0, width, height);
    context.imageSmoothingQuality = 'high';
    context.drawImage(bitmap, 0, 0, width, height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.9));
    if (!blob) return file;
    const name = `${(file.name || 'query-image').replace(/\.[^.]*$/, '')}.jpg`;
    return new File([blob], name, { type: 'image/jpeg' });
  } finally {
    bitmap.close();
  }
}

"""End-to-end ingest of a 720p clip through `vidseek up` (decode once for
cuts and frames, thumbnails, JPEG frames to the encoder over NATS, segment
log) beside a plain `ffmpeg -i FILE -f null -` decode of the same file and
the media side alone (`ingest_bench`: no encoder), alternated in one run.

Usage: e2e.py VIDSEEK_BIN MEDIA_BENCH [--clip FILE] [--repeat N] [--out-dir DIR]
Writes DIR/ingest.json (with the media side's figures) and DIR/ingest.md."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import stack  # noqa: E402  (bench/stack.py)


def clip_720p(samples, cache):
    """bigbuckbunny.mp4 (1280x720, 5 s) looped to 30 s without re-encoding."""
    out = os.path.join(cache, "bigbuckbunny-720p-30s.mp4")
    if not os.path.exists(out):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "5", "-i",
                        os.path.join(samples, "bigbuckbunny.mp4"), "-t", "30", "-an",
                        "-c", "copy", "-y", out + ".tmp.mp4"], check=True)
        os.replace(out + ".tmp.mp4", out)
    return out


def plain_decode(clip):
    started = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", clip, "-f", "null", "-"], check=True)
    return time.perf_counter() - started


def ingest_once(http, clip, ocr=None):
    """Seconds from the ingest request to the video being ready (`ocr`: the
    request's OCR mode; None is the stack's default, VIDSEEK_OCR)."""
    started = time.perf_counter()
    body = {"path": clip} if ocr is None else {"path": clip, "ocr": ocr}
    video = stack.post_json(f"{http}/api/v1/videos", body)["video_id"]
    while True:
        record = stack.get_json(f"{http}/api/v1/videos/{video}")
        if record["status"] == "ready":
            return time.perf_counter() - started, record
        if record["status"] == "failed":
            raise SystemExit(f"ingest failed: {record.get('error')}")
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("media_bench")
    parser.add_argument("--clip")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out-dir", default="bench/results")
    parser.add_argument("--data", default=".vidseek")
    args = parser.parse_args()
    clip = os.path.abspath(args.clip or clip_720p(os.path.join(args.data, "samples"),
                                                  os.path.join(args.data, "cache", "bench")))
    duration = float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", clip],
        check=True, capture_output=True, text=True).stdout)

    work = tempfile.mkdtemp(prefix="vidseek-ingest-bench-")
    media_json = os.path.join(work, "media.json")
    try:
        # The media side alone (best of N, with its own yardstick), first.
        subprocess.run([args.media_bench, clip, "--repeat", str(args.repeat), "--out", media_json],
                       check=True, stdout=subprocess.DEVNULL)
        media = json.load(open(media_json))
        child, http, _, _ = stack.start(args.binary, work, shards=1,
                                     media_root=os.path.dirname(clip), name="ingest")
        try:
            decode, e2e, record = [], [], None
            for _ in range(args.repeat):
                decode.append(plain_decode(clip))
                # Each round ingests a fresh copy: the same bytes are the same video.
                copy = os.path.join(os.path.dirname(clip), f"round-{len(e2e)}-{os.getpid()}.mp4")
                shutil.copyfile(clip, copy)
                with open(copy, "ab") as f:
                    f.write(os.urandom(16))  # a different id, the same video stream
                try:
                    seconds, record = ingest_once(http, copy)
                finally:
                    os.remove(copy)
                e2e.append(seconds)
            # OCR's share: the same ingest with OCR off (bench/ocr measures OCR itself).
            copy = os.path.join(os.path.dirname(clip), f"no-ocr-{os.getpid()}.mp4")
            shutil.copyfile(clip, copy)
            with open(copy, "ab") as f:
                f.write(os.urandom(16))
            try:
                no_ocr, _ = ingest_once(http, copy, ocr="off")
            finally:
                os.remove(copy)
        finally:
            stack.stop(child)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best_decode, best_e2e = min(decode), min(e2e)
    media_wall = media["media_pipeline"]["wall_s"] if "media_pipeline" in media else None
    result = {
        "clip": os.path.basename(clip), "duration_s": duration, "cores": os.cpu_count(),
        "segments": record["segment_count"] if record else None,
        "plain_decode_s": best_decode, "end_to_end_s": best_e2e,
        "plain_decode_video_s_per_s": duration / best_decode,
        "end_to_end_video_s_per_s": duration / best_e2e,
        "end_to_end_over_plain_decode": best_decode / best_e2e,
        "target_end_to_end_over_plain_decode": 0.5,
        "media_side": media,
    }
    result["end_to_end_without_ocr_s"] = no_ocr
    result["ocr_share_of_wall"] = max(0.0, 1.0 - no_ocr / best_e2e)
    if media_wall:
        # What the stack adds to the media side with OCR off: encoding, NATS,
        # the catalog and the log (an upper bound on the encoder's share).
        result["encoder_share_of_wall"] = max(0.0, (no_ocr - media_wall) / best_e2e)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "ingest.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = [
        "# Ingest bench", "",
        f"{result['clip']} ({duration:.1f} s of 1280x720), {os.cpu_count()} cores, best of {args.repeat}.", "",
        "| | seconds | video-s per wall-s | vs plain decode |", "|---|---|---|---|",
        f"| `ffmpeg -i FILE -f null -` | {best_decode:.2f} | {duration / best_decode:.1f} | 1.00x |",
    ]
    if media_wall:
        lines.append(f"| media side alone (one decode: cuts, frames, thumbnails) | {media_wall:.2f} | "
                     f"{duration / media_wall:.1f} | {best_decode / media_wall:.2f}x |")
    captions = media.get("media_pipeline_with_caption_ocr")
    if captions:
        lines.append(f"| media side with the caption band read by OCR (same decode) | {captions['wall_s']:.2f} | "
                     f"{duration / captions['wall_s']:.1f} | {best_decode / captions['wall_s']:.2f}x |")
    lines.append(f"| end to end through `vidseek up` (+ encoding, segment log) | {best_e2e:.2f} | "
                 f"{duration / best_e2e:.1f} | {best_decode / best_e2e:.2f}x (target 0.5x) |")
    lines += ["", f"OCR's share of the end-to-end wall time (default VIDSEEK_OCR=captions): "
              f"{100 * result['ocr_share_of_wall']:.0f} % (the same ingest with `\"ocr\": \"off\"`: {no_ocr:.2f} s)."]
    if media_wall:
        lines += ["", f"Encoder's share of the end-to-end wall time: at most "
                  f"{100 * result['encoder_share_of_wall']:.0f} % (end to end with OCR off, minus the "
                  "media side alone: encoding, NATS, catalog and segment log)."]
    with open(os.path.join(args.out_dir, "ingest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Retrieval-quality benchmark: vidseek against a seed-style baseline on real media.

Media: photo cut-outs ("stamps") from Debian's tuxpaint-stamps-default, each
with its own caption file (English plus zh_CN). A fixed, seeded sample is
composited onto a plain white 640x480 background, 2 s per stamp, and joined
into themed clips (one clip per theme). The ground truth of a stamp is
(clip, start, end).

Queries, per stamp: its English caption, its zh_CN caption, and an image
(the stamp cropped to its central 70 % and rescaled to half size).

System under test: the real embedded stack (`vidseek up`), ingesting the clips
by path and answering `GET/POST /api/v1/search` with k=10.

Seed-style baseline (the original design, rebuilt fairly with the same
models): text queries are matched only against each video's *text
description* (title plus a one-line theme description, the kind of metadata
a seed library held per video; no per-frame captions), embedded with the
same all-MiniLM-L6-v2 text.onnx from the pack; every segment of a video
inherits its video's score (ties broken uniformly at random, counted as the
exact expectation). Image queries are matched against EfficientNet-Lite0
`features` (the pack's image.onnx) of one keyframe per segment (the middle
frame), by cosine. Both use vidseek's own segments, so only the matching
differs.

A hit is a result on the right clip whose [start, end] overlaps the stamp's
interval by more than OVERLAP_MIN seconds. R@k = share of queries with a hit
in the top k. Results: JSON (see --out) and a table on stdout.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "deploy", "models"))
import packlib as P  # noqa: E402  (TextEncoder, preprocess, ort_session: the pack's Python twins)

DEB_PACKAGE = "tuxpaint-stamps-default"
STAMPS_SUBDIR = "usr/share/tuxpaint/stamps"
FRAME_W, FRAME_H = 640, 480
STAMP_FILL = 0.85  # the stamp is scaled to fit this share of the frame
SECONDS_PER_STAMP = 2
FPS = 25
OVERLAP_MIN = 0.1
CROP = 0.70
QUERY_SCALE = 0.5
KS = (1, 5, 10)
# The reported sample: 16 stamps per themed clip drawn with this seed.
PER_CLIP = 16
SEED = 20261128

# Themed clips: (file stem, description the seed library holds, top-level
# stamp categories). The `symbols` category (letters, notes, flags, coins,
# shapes) is left out: it is not photos of things.
THEMES = [
    ("animals", "Animals: photos of mammals, birds, fish, insects and reptiles.", ["animals"]),
    ("food_and_plants", "Food and plants: photos of fruit, vegetables, dishes, flowers and trees.",
     ["food", "plants"]),
    ("town_and_vehicles", "Town and vehicles: photos of buildings, streets, cars, trains, boats and aircraft.",
     ["town", "vehicles", "military"]),
    ("home_and_hobbies", "Home and hobbies: photos of household objects, clothes, toys, tools and sports gear.",
     ["household", "hobbies", "clothes", "sports", "medical"]),
    ("seasons_and_space", "Seasons, people and space: photos of holidays, weather, people, planets and spacecraft.",
     ["seasonal", "space", "people", "naturalforces"]),
]

CJK = re.compile(r"[\u4e00-\u9fff]")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# media
# --------------------------------------------------------------------------

def fetch_stamps(cache):
    """Extracted stamps directory, downloading the .deb into cache when needed."""
    root = os.path.join(cache, "stamps-deb", STAMPS_SUBDIR)
    if os.path.isdir(root):
        return root
    os.makedirs(cache, exist_ok=True)
    debs = [f for f in os.listdir(cache) if f.startswith(DEB_PACKAGE + "_") and f.endswith(".deb")]
    if not debs:
        log(f"downloading {DEB_PACKAGE} (.deb, ~161 MB) with apt-get download")
        subprocess.run(["apt-get", "download", DEB_PACKAGE], cwd=cache, check=True,
                       stdout=subprocess.DEVNULL)
        debs = [f for f in os.listdir(cache) if f.startswith(DEB_PACKAGE + "_") and f.endswith(".deb")]
    tmp = os.path.join(cache, "stamps-deb.extracting")
    subprocess.run(["rm", "-rf", tmp], check=True)
    subprocess.run(["dpkg-deb", "-x", os.path.join(cache, sorted(debs)[-1]), tmp], check=True)
    os.rename(tmp, os.path.join(cache, "stamps-deb"))
    return root


def read_caption(txt):
    lines = open(txt, encoding="utf-8", errors="replace").read().splitlines()
    en = lines[0].strip() if lines else ""
    zh = ""
    for line in lines[1:]:
        if line.startswith("zh_CN"):
            zh = line.split("=", 1)[1].strip() if "=" in line else ""
            break
    return en, zh


def eligible_stamps(root):
    """{category: [(png, en, zh)]} for stamps with distinct English and Chinese captions."""
    by_cat, seen_en, seen_zh = {}, {}, {}
    for dp, _, fs in sorted(os.walk(root)):
        for f in sorted(fs):
            if not f.endswith(".png"):
                continue
            png = os.path.join(dp, f)
            txt = png[:-4] + ".txt"
            if not os.path.exists(txt):
                continue
            en, zh = read_caption(txt)
            if not en or not CJK.search(zh):
                continue
            cat = os.path.relpath(dp, root).split(os.sep)[0]
            by_cat.setdefault(cat, []).append((png, en, zh))
            seen_en[en.lower()] = seen_en.get(en.lower(), 0) + 1
            seen_zh[zh] = seen_zh.get(zh, 0) + 1
    # A caption shared by two stamps cannot have one right answer: drop both.
    return {c: [s for s in v if seen_en[s[1].lower()] == 1 and seen_zh[s[2]] == 1]
            for c, v in by_cat.items()}


def split_stamps(root, per_clip, seed):
    """The reported sample and the development split, from one draw.

    Returns (clips, development, eligible): clips = [(stem, description,
    stamps)] as the bench reports them; development = [(stem, stamps)], the
    theme's other eligible stamps, the only ones a tuner may look at
    (deploy/models/explore_bridge.py); eligible = count over all categories."""
    pool = eligible_stamps(root)
    rng = random.Random(seed)
    clips, development = [], []
    for stem, desc, cats in THEMES:
        cands = sorted(s for c in cats for s in pool.get(c, []))
        if len(cands) < per_clip:
            raise SystemExit(f"theme {stem}: only {len(cands)} eligible stamps")
        drawn = rng.sample(cands, per_clip)
        taken = set(drawn)
        clips.append((stem, desc, drawn))
        development.append((stem, [s for s in cands if s not in taken]))
    return clips, development, sum(len(v) for v in pool.values())


def sample_stamps(root, per_clip, seed):
    clips, _, eligible = split_stamps(root, per_clip, seed)
    return clips, eligible


def on_white(png):
    im = Image.open(png).convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, im).convert("RGB")


def frame_for(png, fill=STAMP_FILL, shift=(0.0, 0.0)):
    """The stamp on a white frame, scaled to `fill` of it; `shift` moves it by
    shares of the frame (the tuner's moving-camera views; the bench uses the
    defaults)."""
    im = on_white(png)
    s = min(FRAME_W * fill / im.width, FRAME_H * fill / im.height)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    frame = Image.new("RGB", (FRAME_W, FRAME_H), (255, 255, 255))
    frame.paste(im, ((FRAME_W - im.width) // 2 + round(shift[0] * FRAME_W),
                     (FRAME_H - im.height) // 2 + round(shift[1] * FRAME_H)))
    return frame


def query_image(png):
    """The stamp's central CROP share, rescaled by QUERY_SCALE, as PNG bytes."""
    im = on_white(png)
    w, h = im.size
    cw, ch = max(1, round(w * CROP)), max(1, round(h * CROP))
    l, t = (w - cw) // 2, (h - ch) // 2
    im = im.crop((l, t, l + cw, t + ch))
    # Small stamps (coins are ~60 px) are kept at least 48 px on their short side.
    s = max(QUERY_SCALE, 48 / min(cw, ch))
    im = im.resize((max(1, round(cw * s)), max(1, round(ch * s))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def build_clips(clips, media_dir):
    """Writes one mp4 per theme; returns the ground truth per stamp."""
    os.makedirs(media_dir, exist_ok=True)
    truth = []
    for stem, desc, stamps in clips:
        frames_dir = os.path.join(media_dir, f".{stem}.frames")
        os.makedirs(frames_dir, exist_ok=True)
        for i, (png, _, _) in enumerate(stamps):
            frame_for(png).save(os.path.join(frames_dir, f"{i:03d}.png"))
        out = os.path.join(media_dir, f"{stem}.mp4")
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
             "-framerate", f"1/{SECONDS_PER_STAMP}", "-i", os.path.join(frames_dir, "%03d.png"),
             "-vf", f"fps={FPS},format=yuv420p", "-c:v", "libx264", "-preset", "veryfast",
             "-g", str(FPS * 2), "-t", str(SECONDS_PER_STAMP * len(stamps)), out],
            check=True)
        subprocess.run(["rm", "-rf", frames_dir], check=True)
        for i, (png, en, zh) in enumerate(stamps):
            truth.append({"video": out, "stem": stem, "start": float(i * SECONDS_PER_STAMP),
                          "end": float((i + 1) * SECONDS_PER_STAMP), "png": png, "en": en, "zh": zh,
                          "stamp": os.path.relpath(png, os.path.dirname(os.path.dirname(png)))})
    return truth


def probe_duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "default=nw=1:nk=1", path], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


# --------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------

class Stack:
    def __init__(self, binary, data_dir, media_dir, log_path):
        env = dict(os.environ)
        env.update(VIDSEEK_DATA_DIR=data_dir, VIDSEEK_HTTP_ADDR="127.0.0.1:0",
                   VIDSEEK_NATS_ADDR="127.0.0.1:0", VIDSEEK_SAMPLES="0",
                   VIDSEEK_MEDIA_ROOTS=media_dir)
        env.pop("VIDSEEK_NATS_URL", None)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([binary, "up"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.url = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.write(line)
                self.log.flush()
                m = re.search(r"vidseek ready: (http://[0-9.]+:\d+)", line)
                if m and not ready.is_set():
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(300) or self.url is None:
            self.stop()
            raise SystemExit(f"vidseek up did not become ready; see {log_path}")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            return json.load(r)

    def post_json(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def post_image(self, path, data):
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                f"filename=\"q.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + data + \
            f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(self.url + path, data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)


# --------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------

def overlaps(a0, a1, b0, b1, strict=False):
    """Result [a0,a1) against stamp [b0,b1). Strict: the stamp fills at least half of the result
    (a segment that merged several stamps then counts for none of them)."""
    ov = min(a1, b1) - max(a0, b0)
    return ov >= 0.5 * (a1 - a0) if strict else ov > OVERLAP_MIN


def recall_from_ranks(first_hits, n):
    """first_hits: 1-based rank of the first correct result (None = none in top 10)."""
    out = {f"r{k}": round(sum(1 for r in first_hits if r is not None and r <= k) / n, 4) for k in KS}
    out["n"] = n
    return out


def expected_recall(scores, relevant, ks=KS):
    """Exact expected R@k for one query when ties are broken uniformly at random."""
    order = sorted(set(scores.tolist()), reverse=True)
    res = {}
    for k in ks:
        miss, pos = 1.0, 0
        for s in order:
            grp = np.flatnonzero(scores == s)
            g = len(grp)
            r = int(relevant[grp].sum())
            m = max(0, min(k - pos, g))
            if m and r:
                miss *= math.comb(g - r, m) / math.comb(g, m)
            pos += g
            if pos >= k:
                break
        res[k] = 1.0 - miss
    return res


def mean_expected(rows):
    n = len(rows)
    out = {f"r{k}": round(sum(r[k] for r in rows) / n, 4) for k in KS}
    out["n"] = n
    return out


def middle_frames(video, segs):
    """RGB arrays of the frame at the middle of each segment."""
    frames = []
    for s in segs:
        t = (s["start"] + s["end"]) / 2
        out = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", f"{t:.3f}", "-i", video,
                              "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
                             check=True, capture_output=True).stdout
        frames.append(np.asarray(Image.open(io.BytesIO(out)).convert("RGB")))
    return frames


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("VIDSEEK_BIN", os.path.join(REPO, "target/release/vidseek")))
    ap.add_argument("--pack", default=os.environ.get("VIDSEEK_MODEL_PACK"))
    ap.add_argument("--cache", required=True, help="where the .deb and its extraction are kept")
    ap.add_argument("--work", required=True, help="scratch directory (clips, stack data dir)")
    ap.add_argument("--out", required=True, help="JSON results file")
    ap.add_argument("--per-clip", type=int, default=PER_CLIP)
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args()
    if not a.pack:
        raise SystemExit("VIDSEEK_MODEL_PACK (or --pack) is not set; source .vidseek/env")
    t0 = time.time()
    timings = {}

    root = fetch_stamps(a.cache)
    clips, n_eligible = sample_stamps(root, a.per_clip, a.seed)
    media_dir = os.path.join(a.work, "media")
    truth = build_clips(clips, media_dir)
    videos = {}
    for stem, desc, stamps in clips:
        path = os.path.join(media_dir, f"{stem}.mp4")
        videos[path] = {"stem": stem, "description": desc, "duration": probe_duration(path),
                        "stamps": len(stamps)}
    timings["media_s"] = round(time.time() - t0, 1)
    log(f"media: {len(truth)} stamps in {len(videos)} clips ({timings['media_s']} s)")

    # ---------------- vidseek
    t1 = time.time()
    stack = Stack(a.bin, os.path.join(a.work, "data"), media_dir, os.path.join(a.work, "vidseek.log"))
    try:
        timings["stack_start_s"] = round(time.time() - t1, 1)
        t2 = time.time()
        ids = {}
        for path in videos:
            ids[stack.post_json("/api/v1/videos", {"path": path})["video_id"]] = path
        pending = set(ids)
        while pending:
            for vid in list(pending):
                st = stack.get(f"/api/v1/videos/{vid}")
                if st["status"] == "failed":
                    raise SystemExit(f"ingest failed for {ids[vid]}: {st.get('error')}")
                if st["status"] == "ready":
                    pending.discard(vid)
            time.sleep(0.5)
        timings["ingest_s"] = round(time.time() - t2, 1)
        log(f"ingest: {timings['ingest_s']} s")
        segments = {}
        for vid, path in ids.items():
            listed = stack.get(f"/api/v1/videos/{vid}/segments")
            if isinstance(listed, dict):
                listed = listed.get("segments", [])
            segs = [s for s in listed if s.get("kind", "shot") == "shot"]
            segments[path] = sorted(segs, key=lambda s: s["start"])
            videos[path]["video_id"] = vid
            videos[path]["segments"] = len(segs)
        # "ready" means stored in the segment log; the rankers replay it a moment later.
        # Wait until a k=100 search sees every segment (min_score is 0, so all come back).
        total = sum(len(v) for v in segments.values())
        deadline = time.time() + 60
        while len(stack.get("/api/v1/search?text=a+photo&k=100")["results"]) < min(total, 100):
            if time.time() > deadline:
                raise SystemExit("the rankers did not index every segment within 60 s")
            time.sleep(0.2)
        vid_of = {v: p for v, p in ids.items()}

        def first_hit(results, t, strict=False):
            for rank, r in enumerate(results, 1):
                if vid_of.get(r["video_id"]) == t["video"] and \
                        overlaps(r["start"], r["end"], t["start"], t["end"], strict):
                    return rank
            return None

        ranks = {"text_en": [], "text_zh": [], "image": []}
        strict_ranks = {"text_en": [], "text_zh": [], "image": []}
        lat = {"text_en": [], "text_zh": [], "image": []}
        warned = {"text_en": 0, "text_zh": 0, "image": 0}
        per_query = []
        t3 = time.time()
        for t in truth:
            row = {"stamp": t["stamp"], "video": t["stem"], "start": t["start"]}
            for kind, do in (
                ("text_en", lambda: stack.get("/api/v1/search?" + urllib.parse.urlencode({"text": t["en"], "k": 10}))),
                ("text_zh", lambda: stack.get("/api/v1/search?" + urllib.parse.urlencode({"text": t["zh"], "k": 10}))),
                ("image", lambda: stack.post_image("/api/v1/search?k=10", query_image(t["png"]))),
            ):
                q0 = time.time()
                resp = do()
                lat[kind].append(time.time() - q0)
                if any(w.get("code") == "language_unsupported" for w in resp.get("warnings", [])):
                    warned[kind] += 1
                r = first_hit(resp["results"], t)
                ranks[kind].append(r)
                strict_ranks[kind].append(first_hit(resp["results"], t, strict=True))
                row[kind] = r
            per_query.append(row)
        timings["queries_s"] = round(time.time() - t3, 1)
    finally:
        stack.stop()

    vidseek = {k: recall_from_ranks(v, len(truth)) for k, v in ranks.items()}
    vidseek_strict = {k: recall_from_ranks(v, len(truth)) for k, v in strict_ranks.items()}
    for k in vidseek:
        vidseek[k]["language_unsupported_warnings"] = warned[k]
        vidseek[k]["latency_ms_p50"] = round(1000 * float(np.median(lat[k])), 1)

    # ---------------- seed-style baseline over the same segments
    t4 = time.time()
    enc = P.TextEncoder(a.pack, threads=2)
    seg_list = [(p, s) for p in videos for s in segments[p]]
    seg_video = np.array([list(videos).index(p) for p, _ in seg_list])
    desc_vecs = enc.encode([f"{videos[p]['stem']}.mp4. {videos[p]['description']}" for p in videos])
    man = json.load(open(os.path.join(a.pack, "manifest.json")))
    img = man["image"]
    sess = P.ort_session(os.path.join(a.pack, img["onnx"]), threads=2)

    def feats(rgbs):
        x = np.stack([P.preprocess(r, img["size"], img["mean"], img["std"]) for r in rgbs]).astype(np.float32)
        out = []
        for s in range(0, len(x), 16):
            out.append(sess.run([img["features_output"]], {img["input"]: x[s:s + 16]})[0])
        f = np.concatenate(out)
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)

    key_rgbs = []
    for p in videos:
        key_rgbs += middle_frames(p, segments[p])
    seg_feats = feats(key_rgbs)

    def relevant_mask(t, strict=False):
        return np.array([p == t["video"] and overlaps(s["start"], s["end"], t["start"], t["end"], strict)
                         for p, s in seg_list])

    base = {"text_en": [], "text_zh": [], "image": []}
    base_strict = {"text_en": [], "text_zh": [], "image": []}
    for kind, field in (("text_en", "en"), ("text_zh", "zh")):
        qv = enc.encode([t[field] for t in truth])
        sims = qv @ desc_vecs.T  # [queries, videos]
        for i, t in enumerate(truth):
            scores = np.round(sims[i][seg_video], 6)
            base[kind].append(expected_recall(scores, relevant_mask(t)))
            base_strict[kind].append(expected_recall(scores, relevant_mask(t, True)))
    qf = feats([np.asarray(Image.open(io.BytesIO(query_image(t["png"]))).convert("RGB")) for t in truth])
    isims = qf @ seg_feats.T
    for i, t in enumerate(truth):
        base["image"].append(expected_recall(np.round(isims[i], 6), relevant_mask(t)))
        base_strict["image"].append(expected_recall(np.round(isims[i], 6), relevant_mask(t, True)))
    seed = {k: mean_expected(v) for k, v in base.items()}
    seed_strict = {k: mean_expected(v) for k, v in base_strict.items()}
    timings["baseline_s"] = round(time.time() - t4, 1)
    timings["total_s"] = round(time.time() - t0, 1)

    # Segmentation: how cleanly did ingest cut the clips into one shot per stamp?
    exact = 0
    for t in truth:
        exact += any(abs(s["start"] - t["start"]) < 0.25 and abs(s["end"] - t["end"]) < 0.25
                     for s in segments[t["video"]])
    result = {
        "dataset": {
            "source": f"Debian {DEB_PACKAGE} (photo cut-outs with caption files; 'symbols' left out)",
            "seed": a.seed, "stamps": len(truth), "clips": len(videos), "eligible_stamps": n_eligible,
            "seconds_per_stamp": SECONDS_PER_STAMP, "frame": f"{FRAME_W}x{FRAME_H} white background",
            "image_query": f"central {int(CROP * 100)}% crop, rescaled x{QUERY_SCALE}",
            "hit": f"right clip and [start,end] overlaps the stamp's interval by > {OVERLAP_MIN} s",
            "segments": sum(len(v) for v in segments.values()),
            "stamps_with_exact_segment": exact,
            "videos": [{k: v[k] for k in ("stem", "description", "duration", "stamps", "segments")}
                       for v in videos.values()],
        },
        "vidseek": vidseek,
        "vidseek_strict": vidseek_strict,
        "seed_baseline_strict": seed_strict,
        "strict_hit": "as 'hit', and the stamp fills at least half of the returned segment",
        "seed_baseline": dict(seed, design=(
            "text: all-MiniLM-L6-v2 (pack text.onnx) of the query vs each video's description "
            "('<file>.mp4. <theme sentence>'), every segment inherits its video's score, ties broken "
            "uniformly at random (exact expectation); image: EfficientNet-Lite0 features (pack image.onnx) "
            "of each segment's middle frame, cosine")),
        "timings": timings,
        "per_query": per_query,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)

    print(f"\nretrieval quality: {len(truth)} stamps in {len(videos)} clips, "
          f"{result['dataset']['segments']} segments ({exact} stamps with an exact segment)")
    print(f"{'query':10s} {'system':14s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s}")
    for kind in ("text_en", "text_zh", "image"):
        for name, res in (("vidseek", vidseek), ("seed-style", seed)):
            r = res[kind]
            print(f"{kind:10s} {name:14s} {r['r1']:6.3f} {r['r5']:6.3f} {r['r10']:6.3f}")
    print("strict hits (the stamp fills at least half of the returned segment):")
    for kind in ("text_en", "text_zh", "image"):
        for name, res in (("vidseek", vidseek_strict), ("seed-style", seed_strict)):
            r = res[kind]
            print(f"{kind:10s} {name:14s} {r['r1']:6.3f} {r['r5']:6.3f} {r['r10']:6.3f}")
    print(f"timings: {timings}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

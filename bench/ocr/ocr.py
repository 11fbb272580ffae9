#!/usr/bin/env python3
"""Burned-in caption OCR on real footage (bench/ocr/README.md).

Each sample clip in .vidseek/samples is looped to 24 s and gets 8 caption
lines burned in at known times (Chinese and English; three Debian CJK fonts;
three sizes; white with a 2 or 3 px outline, white with a drop shadow only,
yellow with an outline). Then, in one run:

* OCR alone (`ocr_bench`, the settings ingest uses): character error rate
  of each line's best-overlapping recognised cue (a missed line counts 1.0),
  start/end timing error, spurious cues, and cost in video-seconds per
  wall-second;
* the real stack (`vidseek up`, OCR `captions`): every Chinese line is
  searched by a phrase from it; R@1 counts the top result being an `ocr`
  segment of the right clip overlapping the line, and its boundaries are
  checked against the line's within 0.5 s.

Usage: ocr.py VIDSEEK_BIN OCR_BENCH [--data .vidseek] [--out-dir bench/results]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import stack  # noqa: E402  (bench/stack.py)

CLIP_SECS = 24
LINE_SECS = 2.2
GAP_SECS = 0.8
FONTS = {
    "zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "microhei": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "uming": "/usr/share/fonts/truetype/arphic/uming.ttc",
}
STYLES = {
    "outline2": "fontcolor=white:borderw=2:bordercolor=black",
    "outline3": "fontcolor=white:borderw=3:bordercolor=black",
    "shadow": "fontcolor=white:shadowcolor=black@0.9:shadowx=2:shadowy=2",
    "yellow": "fontcolor=0xffe040:borderw=2:bordercolor=black",
}
SIZES = {"small": 16, "medium": 12, "large": 10}  # font size = frame height / N
# (line, query phrase): phrases are what a viewer remembers, not the whole line.
CHINESE = [
    ("今天天气很好我们去公园骑自行车", "公园骑自行车"),
    ("厨房里有一碗热腾腾的面条", "热腾腾的面条"),
    ("图书馆明天早上九点开门", "图书馆开门"),
    ("他在火车站等了两个小时", "火车站等了两个小时"),
    ("这只小猫喜欢睡在窗台上", "小猫睡在窗台上"),
    ("我们应该早点出发避开堵车", "避开堵车"),
    ("山顶的风景比照片还要漂亮", "山顶的风景"),
    ("请把桌子上的钥匙递给我", "桌子上的钥匙"),
    ("外面下雨了记得带伞", "下雨了记得带伞"),
    ("这家餐厅的饺子特别好吃", "餐厅的饺子"),
    ("孩子们在操场上踢足球", "操场上踢足球"),
    ("医生说你需要多休息几天", "需要多休息"),
    ("飞机因为大雾推迟起飞", "大雾推迟起飞"),
    ("妈妈在阳台上种了很多花", "阳台上种花"),
    ("博物馆里有一件古老的瓷器", "古老的瓷器"),
    ("我们在湖边看日落", "湖边看日落"),
    ("老师把作业留在了讲台上", "作业留在讲台上"),
    ("超市的牛奶已经卖完了", "牛奶卖完了"),
    ("晚上的音乐会八点开始", "音乐会八点开始"),
    ("他骑着摩托车穿过小镇", "摩托车穿过小镇"),
    ("冬天的河面结了厚厚的冰", "河面结冰"),
    ("朋友送给我一本旧地图", "一本旧地图"),
    ("花园里的樱桃树开花了", "樱桃树开花"),
    ("船长说明天海上有大风", "海上有大风"),
]
ENGLISH = [
    "The ferry leaves at seven sharp",
    "Keep the lantern away from the hay",
    "Nobody saw the comet last night",
    "Her violin was left on the train",
    "Turn left after the old bakery",
    "The bridge is closed for repairs",
    "We found a fossil near the river",
    "Quiet please the baby is sleeping",
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def probe(path):
    out = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
               "stream=width,height", "-of", "csv=p=0", path], capture_output=True, text=True).stdout
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def plan(clips):
    """[(clip, [line dicts])]: 6 Chinese and 2 English lines per clip, styles rotating."""
    fonts, styles, sizes = list(FONTS), list(STYLES), list(SIZES)
    zh, en = list(CHINESE), list(ENGLISH)
    out, n = [], 0
    for clip in clips:
        lines = []
        for slot in range(8):
            start = 0.6 + slot * (LINE_SECS + GAP_SECS)
            chinese = slot not in (2, 6) and bool(zh)
            text, phrase = zh.pop(0) if chinese else (en.pop(0), None)
            lines.append(dict(start=round(start, 2), end=round(start + LINE_SECS, 2), text=text,
                              phrase=phrase, language="zh" if chinese else "en",
                              font=fonts[n % len(fonts)], style=styles[(n // 3) % len(styles)],
                              size=sizes[(n // 2) % len(sizes)]))
            n += 1
        out.append((clip, lines))
    return out


def render(source, lines, out, work):
    w, h = probe(source)
    # Tiny clips (176x144) are shown at CIF, as a player would scale them.
    scale = "scale=352:288," if h < 200 else ""
    h = 288 if h < 200 else h
    filters = []
    for i, line in enumerate(lines):
        text_file = os.path.join(work, f"{os.path.basename(out)}.{i}.txt")
        with open(text_file, "w") as f:
            f.write(line["text"])
        filters.append(
            f"drawtext=fontfile={FONTS[line['font']]}:textfile={text_file}:{STYLES[line['style']]}:"
            f"fontsize={h // SIZES[line['size']]}:x=(w-tw)/2:y=h-th-{h // 14}:"
            f"enable='between(t,{line['start']},{line['end']})'")
    run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop", "-1", "-i", source,
         "-t", str(CLIP_SECS), "-an", "-vf", scale + ",".join(filters),
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", out])


def levenshtein(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a):
        diag, row[0] = row[0], i + 1
        for j, y in enumerate(b):
            above = row[j + 1]
            row[j + 1] = min(above + 1, row[j] + 1, diag + (x != y))
            diag = above
    return row[-1]


def squash(text):
    return "".join(text.split())


def overlap(a0, a1, b0, b1):
    return min(a1, b1) - max(a0, b0)


def score_ocr(lines, cues):
    """Per line: CER of the best-overlapping cue and its timing errors."""
    rows = []
    for line in lines:
        best = max(cues, key=lambda c: overlap(c["start"], c["end"], line["start"], line["end"]),
                   default=None)
        if best is None or overlap(best["start"], best["end"], line["start"], line["end"]) <= 0:
            rows.append(dict(line, recognised=None, cer=1.0))
            continue
        truth = squash(line["text"])
        cer = min(1.0, levenshtein(squash(best["text"]), truth) / len(truth))
        rows.append(dict(line, recognised=best["text"], cer=cer,
                         start_error=abs(best["start"] - line["start"]),
                         end_error=abs(best["end"] - line["end"])))
    spurious = sum(1 for c in cues
                   if all(overlap(c["start"], c["end"], l["start"], l["end"]) <= 0 for l in lines))
    return rows, spurious


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def summary(rows):
    timed = [r for r in rows if r.get("recognised") is not None]
    errors = [e for r in timed for e in (r["start_error"], r["end_error"])]
    return {
        "lines": len(rows),
        "cer": round(mean(r["cer"] for r in rows), 4),
        "exact_lines": sum(1 for r in rows if r["cer"] == 0),
        "missed_lines": len(rows) - len(timed),
        "boundary_error_mean_s": round(mean(errors), 3) if errors else None,
        "boundaries_within_0_5_s": round(sum(1 for e in errors if e <= 0.5) / len(errors), 4) if errors else None,
    }


def search(http, phrase):
    url = f"{http}/api/v1/search?" + urllib.parse.urlencode({"text": phrase, "k": 10})
    return stack.get_json(url, timeout=60)["results"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("ocr_bench")
    ap.add_argument("--data", default=".vidseek")
    ap.add_argument("--out-dir", default="bench/results")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    samples = os.path.join(args.data, "samples")
    clips = sorted(os.path.join(samples, f) for f in os.listdir(samples) if f.endswith(".mp4"))
    missing = [f for f in FONTS.values() if not os.path.exists(f)]
    if missing:
        raise SystemExit(f"fonts missing: {missing}; run deploy/setup.sh --for test")
    work = tempfile.mkdtemp(prefix="vidseek-ocr-bench-")
    media = os.path.join(work, "media")
    os.makedirs(media)
    try:
        planned = []
        for clip, lines in plan(clips):
            out = os.path.join(media, "captioned-" + os.path.basename(clip))
            render(clip, lines, out, work)
            planned.append((out, lines))

        # OCR alone.
        per_clip, all_rows, spurious, video_s, wall_s = [], [], 0, 0.0, 0.0
        for video, lines in planned:
            res = json.loads(run([args.ocr_bench, "--threads", str(args.threads), video],
                                 capture_output=True, text=True).stdout)
            rows, extra = score_ocr(lines, res["cues"])
            all_rows += rows
            spurious += extra
            video_s += res["duration_s"]
            wall_s += res["wall_s"]
            per_clip.append(dict(clip=os.path.basename(video), size=f"{res['width']}x{res['height']}",
                                 wall_s=round(res["wall_s"], 2), cues=len(res["cues"]),
                                 spurious_cues=extra, **summary(rows)))

        # Phrase queries against the real stack.
        child, http = stack.start(args.binary, work, shards=1, media_root=media, name="ocr")[:2]
        try:
            ids = {}
            for video, _ in planned:
                ids[video] = stack.post_json(f"{http}/api/v1/videos",
                                             {"path": video, "ocr": "captions"})["video_id"]
            for video, vid in ids.items():
                while True:
                    record = stack.get_json(f"{http}/api/v1/videos/{vid}")
                    if record["status"] == "ready":
                        break
                    if record["status"] == "failed":
                        raise SystemExit(f"ingest of {video} failed: {record.get('error')}")
                    time.sleep(0.5)
            queries = []
            for video, lines in planned:
                for line in lines:
                    if not line["phrase"]:
                        continue
                    results = search(http, line["phrase"])
                    top = results[0] if results else None
                    hit = bool(top and top["kind"] == "ocr" and top["video_id"] == ids[video]
                               and overlap(top["start"], top["end"], line["start"], line["end"]) > 0)
                    queries.append(dict(
                        phrase=line["phrase"], line=line["text"], hit_at_1=hit,
                        top_text=top.get("text") if top else None,
                        boundaries_within_0_5_s=bool(hit and abs(top["start"] - line["start"]) <= 0.5
                                                     and abs(top["end"] - line["end"]) <= 0.5)))
        finally:
            stack.stop(child)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    zh = [r for r in all_rows if r["language"] == "zh"]
    en = [r for r in all_rows if r["language"] == "en"]
    by = lambda key: {k: summary([r for r in all_rows if r[key] == k])
                      for k in sorted({r[key] for r in all_rows})}
    r1 = sum(q["hit_at_1"] for q in queries) / len(queries)
    within = sum(q["boundaries_within_0_5_s"] for q in queries) / len(queries)
    result = {
        "clips": per_clip, "cores": os.cpu_count(), "ocr_threads": args.threads,
        "overall": summary(all_rows), "chinese": summary(zh), "english": summary(en),
        "by_font": by("font"), "by_style": by("style"), "by_size": by("size"),
        "spurious_cues": spurious,
        "cost_video_s_per_wall_s": round(video_s / wall_s, 2),
        "phrase_queries": {"n": len(queries), "r_at_1": round(r1, 4),
                           "top_boundaries_within_0_5_s": round(within, 4),
                           "target_r_at_1": 0.8},
        "lines": all_rows, "queries": queries,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "ocr.json"), "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    o = result["overall"]
    md = [
        "# OCR bench: burned-in captions on real footage", "",
        f"{len(per_clip)} sample clips looped to {CLIP_SECS} s, {o['lines']} lines burned in "
        f"({len(zh)} Chinese, {len(en)} English), {os.cpu_count()} cores, {args.threads} tesseract thread(s).", "",
        "| | lines | CER | exact | missed | boundary error (mean) | boundaries ≤ 0.5 s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in [("all", o), ("Chinese", result["chinese"]), ("English", result["english"])] + \
            [(f"font {k}", v) for k, v in result["by_font"].items()] + \
            [(f"style {k}", v) for k, v in result["by_style"].items()] + \
            [(f"size {k}", v) for k, v in result["by_size"].items()]:
        md.append(f"| {name} | {s['lines']} | {s['cer']:.3f} | {s['exact_lines']} | {s['missed_lines']} | "
                  f"{s['boundary_error_mean_s']} s | {s['boundaries_within_0_5_s']} |")
    md += ["", "| clip | size | wall s | cues | spurious | CER |", "|---|---|---|---|---|---|"]
    md += [f"| {c['clip']} | {c['size']} | {c['wall_s']} | {c['cues']} | {c['spurious_cues']} | {c['cer']:.3f} |"
           for c in per_clip]
    md += ["", f"OCR cost: {result['cost_video_s_per_wall_s']} video-seconds per wall-second "
               f"(caption band at 2 samples/s, {args.threads} tesseract thread(s)).",
           f"Chinese phrase queries through `vidseek up`: R@1 {r1:.2f} (target 0.80) over {len(queries)}; "
           f"top hit's boundaries within 0.5 s: {within:.2f}."]
    with open(os.path.join(args.out_dir, "ocr.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

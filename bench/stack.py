"""`vidseek up` as a child process for the benches that drive the real stack
over loopback: its own data directory, free HTTP and NATS ports, samples off."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request


def start(binary, work, shards=2, media_root=None, name="vidseek"):
    """Starts the stack and waits for its ready line; returns (child, http,
    nats, data directory)."""
    data = os.path.join(work, f"data-{name}")
    media = media_root or os.path.join(work, "media")
    os.makedirs(media, exist_ok=True)
    env = dict(os.environ, VIDSEEK_DATA_DIR=data, VIDSEEK_HTTP_ADDR="127.0.0.1:0",
               VIDSEEK_NATS_ADDR="127.0.0.1:0", VIDSEEK_SAMPLES="0",
               VIDSEEK_MEDIA_ROOTS=media, VIDSEEK_SHARDS=str(shards), RUST_LOG="warn")
    env.pop("VIDSEEK_NATS_URL", None)
    log = open(os.path.join(work, f"{name}.log"), "w")
    child = subprocess.Popen([binary, "up"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    found = None
    for line in child.stderr:
        log.write(line)
        found = re.match(r"vidseek ready: (http://\S+) .*NATS (nats://\S+)\)", line)
        if found:
            break
    if not found:
        raise SystemExit(f"vidseek up exited before it was ready; see {log.name}")
    # Keep draining its log so the pipe never fills.
    threading.Thread(target=lambda: [log.write(line) for line in child.stderr],
                     daemon=True).start()
    return child, found.group(1), found.group(2), data


def stop(child):
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def post_json(url, body, timeout=30):
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_indexed(http, count, timeout=600, settled=True):
    """Seconds until /healthz reports at least `count` segments indexed and,
    with `settled`, none of them still waiting for the approximate index
    (until then a shard scans them exactly: correct, but not its speed)."""
    started = time.time()
    while time.time() - started < timeout:
        try:
            report = get_json(f"{http}/healthz")
            if report["segments_indexed"] >= count and (
                not settled or report.get("segments_settling", 0) == 0
            ):
                return time.time() - started
        except Exception:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the rankers did not index {count} segments in {timeout} s")

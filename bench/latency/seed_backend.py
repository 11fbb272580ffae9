"""The original design's two backends, re-implemented faithfully enough to
time them: a model backend that encodes a text with the text tower (Python
onnxruntime, the same model files vidseek loads), and a Flask-style search
backend whose `GET /text_query?text=` asks the model backend for the query
vector, re-reads the text vector file and loops a cosine similarity over
every segment in Python, answering the top ten as `[{"id", "score"}]`.

Usage: seed_backend.py model --pack DIR
       seed_backend.py search --vectors FILE --model-url URL
Each prints `listening on PORT` (port 0: a free one) and serves until killed.
`seed_backend.py write --vectors FILE --count N --dim D` writes a vector file
(one line per segment: id, then its components)."""

import argparse
import json
import math
import os
import random
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


def answer(request, status, body):
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def model_backend(pack):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "encoder"))
    from onnx_py import TextTower

    # ONNX Runtime's own default thread count, as a plain Python service gets.
    tower = TextTower(pack, threads=0)

    class Model(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            vector = tower.encode([body["text"]])[0]
            answer(self, 200, {"vector": vector.tolist()})

    serve(Model)


def read_vectors(path):
    segments = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            segments.append((fields[0], [float(x) for x in fields[1:]]))
    return segments


def cosine(a, b):
    dot = na = nb = 0.0
    for x, y in zip(a, b):
        dot += x * y
        na += x * x
        nb += y * y
    return dot / (math.sqrt(na) * math.sqrt(nb))


def search_backend(vectors, model_url):
    class Search(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/text_query":
                return answer(self, 404, {"error": "not found"})
            text = urllib.parse.parse_qs(url.query).get("text", [""])[0]
            request = urllib.request.Request(
                model_url, data=json.dumps({"text": text}).encode(),
                headers={"Content-Type": "application/json"})
            query = json.loads(urllib.request.urlopen(request).read())["vector"]
            # The original re-read its vector file on every request.
            scored = [(cosine(query, v), sid) for sid, v in read_vectors(vectors)]
            scored.sort(reverse=True)
            answer(self, 200, [{"id": sid, "score": s} for s, sid in scored[:10]])

    serve(Search)


def write_vectors(path, count, dim):
    rng = random.Random(7)
    with open(path, "w") as f:
        for i in range(count):
            v = [rng.uniform(-1, 1) for _ in range(dim)]
            n = math.sqrt(sum(x * x for x in v))
            f.write(f"seg{i} " + " ".join(f"{x / n:.6f}" for x in v) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["model", "search", "write"])
    parser.add_argument("--pack")
    parser.add_argument("--vectors")
    parser.add_argument("--model-url")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    if args.role == "model":
        model_backend(args.pack)
    elif args.role == "search":
        search_backend(args.vectors, args.model_url)
    else:
        write_vectors(args.vectors, args.count, args.dim)


if __name__ == "__main__":
    main()

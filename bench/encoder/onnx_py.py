"""The default pack's towers through Python onnxruntime: what a Python
service built on the same model files does per request. Used as the
yardstick by bench/encoder and as the seed backend's text encoder by
bench/latency."""

import io
import json
import os

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer


def _session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class TextTower:
    def __init__(self, pack, threads=1):
        manifest = json.load(open(os.path.join(pack, "manifest.json")))
        self.spec = manifest["text"]
        self.session = _session(os.path.join(pack, self.spec["onnx"]), threads)
        self.tokenizer = Tokenizer.from_file(os.path.join(pack, self.spec["tokenizer"]))
        self.tokenizer.enable_truncation(self.spec.get("max_tokens", 512))

    def encode(self, texts):
        encodings = self.tokenizer.encode_batch(texts)
        width = max(1, max(len(e.ids) for e in encodings))
        ids = np.full((len(texts), width), self.spec.get("pad_id", 0), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        names = self.spec["inputs"]
        feed = {names["input_ids"]: ids}
        if names.get("attention_mask"):
            feed[names["attention_mask"]] = mask
        if names.get("token_type_ids"):
            feed[names["token_type_ids"]] = np.zeros_like(ids)
        (out,) = self.session.run([self.spec["output"]], feed)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class ImageTower:
    """JPEG bytes → pixels → model → ConSE text-space vector, as the encoder."""

    def __init__(self, pack, threads=1):
        manifest = json.load(open(os.path.join(pack, "manifest.json")))
        self.spec = manifest["image"]
        self.bridge = manifest["bridge"]
        self.session = _session(os.path.join(pack, self.spec["onnx"]), threads)
        dim = manifest["text"]["dim"]
        self.concepts = np.fromfile(
            os.path.join(pack, self.bridge["concepts"]), dtype="<f4"
        ).reshape(-1, dim)

    def pixels(self, jpeg):
        size = self.spec["size"]
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        w, h = image.size
        scale = size / min(w, h)
        rw, rh = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((rw, rh), Image.BILINEAR)
        x0, y0 = (rw - size) // 2, (rh - size) // 2
        image = image.crop((x0, y0, x0 + size, y0 + size))
        x = np.asarray(image, dtype=np.float32) / 255.0
        x = (x - np.array(self.spec["mean"], np.float32)) / np.array(self.spec["std"], np.float32)
        return x.transpose(2, 0, 1)

    def encode(self, jpegs):
        batch = np.stack([self.pixels(j) for j in jpegs])
        features, probs = self.session.run(
            [self.spec["features_output"], self.spec["probs_output"]],
            {self.spec["input"]: batch},
        )
        k, exponent = self.bridge["top_k"], 1.0 / self.bridge["temperature"]
        out = []
        for p in probs:
            top = np.argpartition(-p, k - 1)[:k]
            v = (np.maximum(p[top], 0) ** exponent) @ self.concepts[top]
            out.append(v / np.linalg.norm(v))
        return np.stack(out), features / np.linalg.norm(features, axis=1, keepdims=True)

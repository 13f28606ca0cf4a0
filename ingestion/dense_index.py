"""Dense vector index: FAISS inner product over normalized embeddings, keyed by chunk key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np

from ingestion.errors import StorageError

_INDEX_FILE = "index.faiss"
_META_FILE = "meta.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class DenseIndex:
    """``IndexIDMap2`` over ``IndexFlatIP``: exact search, O(1) id mapping, removals by key."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(keys), self.dim)
        self._index.add_with_ids(vectors, np.asarray(keys, dtype=np.int64))

    def remove(self, keys: np.ndarray | list[int]) -> int:
        if len(keys) == 0:
            return 0
        return int(self._index.remove_ids(np.asarray(keys, dtype=np.int64)))  # type: ignore[arg-type]

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (keys, inner products) for one query vector."""
        k = min(k, len(self))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores, ids = self._index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def reconstruct(self, key: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(int(key)), dtype=np.float32)

    # -- snapshots -------------------------------------------------------------------------------------
    def save(self, directory: Path, generation: int) -> None:
        """Write a snapshot covering ``generation`` (index first, then the metadata that names it)."""
        directory.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).tobytes()
        atomic_write_bytes(directory / _INDEX_FILE, data)
        meta = {"generation": generation, "dim": self.dim, "ntotal": len(self)}
        atomic_write_bytes(directory / _META_FILE, json.dumps(meta).encode())

    @classmethod
    def load(cls, directory: Path, dim: int) -> tuple[DenseIndex, int]:
        """Load the snapshot and the generation it covers; an empty index at generation 0 if none."""
        meta_path, index_path = directory / _META_FILE, directory / _INDEX_FILE
        if not meta_path.exists() or not index_path.exists():
            return cls(dim), 0
        try:
            meta = json.loads(meta_path.read_text())
            index = faiss.deserialize_index(np.fromfile(index_path, dtype=np.uint8))
        except (ValueError, RuntimeError, OSError) as exc:
            raise StorageError(f"dense snapshot {directory} is unreadable: {exc}") from exc
        if index.d != dim:
            raise StorageError(f"dense snapshot {directory} has dim {index.d}, the embedder has {dim}")
        # The meta file is written after the index: an index newer than its meta is caught up by replay,
        # which is idempotent (remove, then add).
        return cls(dim, index), int(meta["generation"])

"""Per-chunk term statistics of the sparse fields, kept in memory for learning-to-rank features.

For every live chunk and field (``title``, ``body``) it holds the sorted uint32 hashes of the chunk's analyzed
terms, their counts and the field length, plus collection statistics (document frequencies, total lengths),
all updated incrementally as chunks are added and removed. It implements ``retrieval.features.TermStats``.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

FIELDS = ("title", "body")
_EMPTY_ROW = (np.zeros(0, np.uint32), np.zeros(0, np.float32), 0)


def term_hash(term: str) -> int:
    """Stable 32-bit hash of an analyzed term (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(term.encode("utf-8"))


def _hash_counts(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if not tokens:
        return np.zeros(0, np.uint32), np.zeros(0, np.float32)
    uniq, counts = np.unique(np.fromiter(map(term_hash, tokens), np.uint32, len(tokens)), return_counts=True)
    return uniq, counts.astype(np.float32)


class _Field:
    def __init__(self) -> None:
        self.rows: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}  # key -> (hashes, counts, length)
        self.doc_freq: dict[int, int] = {}
        self.total_length = 0

    def add(self, key: int, tokens: list[str]) -> None:
        self.remove(key)
        hashes, counts = _hash_counts(tokens)
        self.rows[key] = (hashes, counts, len(tokens))
        self.total_length += len(tokens)
        df = self.doc_freq
        for h in hashes.tolist():
            df[h] = df.get(h, 0) + 1

    def remove(self, key: int) -> None:
        row = self.rows.pop(key, None)
        if row is None:
            return
        hashes, _, length = row
        self.total_length -= length
        df = self.doc_freq
        for h in hashes.tolist():
            n = df[h] - 1
            if n:
                df[h] = n
            else:
                del df[h]


class TermStatsIndex:
    def __init__(self, analyze: Callable[[str], list[str]], analyze_query: Callable[[str], list[str]]) -> None:
        self._analyze = analyze
        self._analyze_query = analyze_query
        self._fields = {name: _Field() for name in FIELDS}
        self._lock = threading.Lock()

    def update(self, add: Iterable[tuple[int, str, str]], remove: Iterable[int] = ()) -> None:
        """Remove keys, then add (key, title, body) chunks."""
        analyzed = [(key, self._analyze(title), self._analyze(body)) for key, title, body in add]
        with self._lock:
            for key in remove:
                for f in self._fields.values():
                    f.remove(int(key))
            for key, title, body in analyzed:
                self._fields["title"].add(key, title)
                self._fields["body"].add(key, body)

    # -- retrieval.features.TermStats ------------------------------------------------------------------------
    def analyze_query(self, text: str) -> list[str]:
        return self._analyze_query(text)

    def num_chunks(self) -> int:
        return len(self._fields["body"].rows)

    def avg_field_length(self, field: str) -> float:
        f = self._fields[str(field)]
        return f.total_length / len(f.rows) if f.rows else 0.0

    def doc_freqs(self, terms: Sequence[str], field: str) -> np.ndarray:
        df = self._fields[str(field)].doc_freq
        return np.array([df.get(term_hash(t), 0) for t in terms], dtype=np.int64)

    def term_frequencies(self, keys: Sequence[int], terms: Sequence[str], field: str) -> np.ndarray:
        out = np.zeros((len(keys), len(terms)), dtype=np.float32)
        if not terms or not keys:
            return out
        q = np.fromiter(map(term_hash, terms), np.uint32, len(terms))
        order = np.argsort(q, kind="stable")
        sorted_q = q[order]
        rows = self._fields[str(field)].rows
        found = [rows.get(k, _EMPTY_ROW) for k in keys]
        sizes = np.fromiter((len(r[0]) for r in found), np.int64, len(found))
        if not sizes.sum():
            return out
        # every candidate's terms in one array, matched against the sorted query hashes at once
        hashes = np.concatenate([r[0] for r in found])
        counts = np.concatenate([r[1] for r in found])
        owner = np.repeat(np.arange(len(keys)), sizes)
        pos = np.minimum(np.searchsorted(sorted_q, hashes), len(sorted_q) - 1)
        hit = sorted_q[pos] == hashes
        out[owner[hit], order[pos[hit]]] = counts[hit]
        return out

    def field_lengths(self, keys: Sequence[int], field: str) -> np.ndarray:
        rows = self._fields[str(field)].rows
        return np.array([rows[k][2] if k in rows else 0 for k in keys], dtype=np.float32)

"""Which LTR model reranks a knowledge base: its own (``<kb>/ltr/``) if trained, else the default one."""

from __future__ import annotations

import threading
from pathlib import Path

from ingestion.knowledge_base import KnowledgeBase
from retrieval.candidates import Candidate
from retrieval.hybrid import Retrieved
from retrieval.reranker import DEFAULT_MODEL_DIR, MODEL_FILE, LtrReranker

KB_MODEL_SUBDIR = "ltr"


class BoundReranker:
    """An LTR model bound to the knowledge base whose term statistics feed its features."""

    def __init__(self, name: str, model: LtrReranker, depth: int = 0) -> None:
        self.name = name
        self.model = model
        self.depth = depth  # rerank the top ``depth`` fused candidates (0: all); the rest keep their fused order

    def rerank(self, query: str, retrieved: Retrieved, kb: KnowledgeBase) -> list[Candidate]:
        cands = retrieved.candidates
        head, tail = (cands[: self.depth], cands[self.depth :]) if self.depth else (cands, [])
        ranked = self.model.rerank(query, head, kb.term_stats)
        for rank, c in enumerate(tail, len(ranked) + 1):
            c.rerank_rank = rank
        return ranked + tail


class LtrRerankerProvider:
    def __init__(self, default_dir: Path | None = None, num_threads: int = 1, depth: int = 0) -> None:
        self.default_dir = Path(default_dir) if default_dir is not None else DEFAULT_MODEL_DIR
        self.num_threads = num_threads
        self.depth = depth
        self._cache: dict[Path, tuple[float, BoundReranker]] = {}
        self._lock = threading.Lock()

    def _load(self, directory: Path, name: str) -> BoundReranker | None:
        model_file = directory / MODEL_FILE
        if not model_file.exists():
            return None
        mtime = model_file.stat().st_mtime
        with self._lock:
            cached = self._cache.get(directory)
            if cached is None or cached[0] != mtime:
                cached = (
                    mtime,
                    BoundReranker(name, LtrReranker.load(directory, num_threads=self.num_threads), self.depth),
                )
                self._cache[directory] = cached
        return cached[1]

    def for_kb(self, kb: KnowledgeBase) -> BoundReranker | None:
        own = self._load(kb.directory / KB_MODEL_SUBDIR, f"ltr:{kb.name}")
        return own if own is not None else self._load(self.default_dir, "ltr:default")

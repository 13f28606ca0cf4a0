"""The set of knowledge bases under a data directory: opened once, created on first ingest."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from ingestion.embedder import Embedder
from ingestion.errors import InvalidInputError, KnowledgeBaseNotFound
from ingestion.knowledge_base import Chunker, KnowledgeBase

KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_kb_name(name: str) -> str:
    if not KB_NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"invalid knowledge base name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit"
        )
    return name


class KnowledgeBaseRegistry:
    def __init__(self, root: Path, embedder: Embedder, chunker_factory: Callable[[], Chunker]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.chunker_factory = chunker_factory
        self._lock = threading.Lock()
        self._kbs: dict[str, KnowledgeBase] = {}

    def open_all(self) -> None:
        for path in sorted(p for p in self.root.iterdir() if (p / "store.sqlite").exists()):
            self._open(path.name)

    def _open(self, name: str) -> KnowledgeBase:
        kb = KnowledgeBase(name, self.root / name, self.embedder, self.chunker_factory())
        self._kbs[name] = kb
        return kb

    def names(self) -> list[str]:
        return sorted(self._kbs)

    def get(self, name: str) -> KnowledgeBase:
        kb = self._kbs.get(name)
        if kb is None:
            raise KnowledgeBaseNotFound(f"knowledge base {name!r} not found")
        return kb

    def get_or_create(self, name: str) -> KnowledgeBase:
        validate_kb_name(name)
        with self._lock:
            return self._kbs.get(name) or self._open(name)

    def drop(self, name: str) -> None:
        with self._lock:
            kb = self.get(name)
            kb.close()
            del self._kbs[name]
            shutil.rmtree(kb.directory)

    def close(self) -> None:
        for kb in self._kbs.values():
            kb.close()
        self._kbs.clear()

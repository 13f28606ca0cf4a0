"""Plain values passed between ingestion stages."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def content_hash(title: str, text: str, metadata: dict[str, Any]) -> str:
    """Stable hash of everything that defines a document's indexed content."""
    payload = json.dumps([title, text, metadata], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Document:
    """A source document as given by the user or extracted from a file."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return content_hash(self.title, self.text, self.metadata)


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A piece of a document produced by the chunker, before it is stored (no key yet)."""

    position: int  # 0-based index of the chunk within its document
    text: str
    start: int  # character offset of the chunk in the document text
    section: str = ""  # heading the chunk falls under, if the loader knew one


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stored chunk. ``key`` is the int64 id shared by SQLite, FAISS and tantivy; never reused."""

    key: int
    doc_id: str
    position: int
    text: str
    title: str
    metadata: dict[str, Any]
    section: str = ""

    @property
    def chunk_id(self) -> str:
        """Public, human-readable id: ``<doc_id>#<position>``."""
        return f"{self.doc_id}#{self.position}"

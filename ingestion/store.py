"""SQLite store: the source of truth of a knowledge base.

Documents, chunks (with their embeddings as float32 blobs) and the committed *generation* live here. Every
ingest or delete is one transaction that bumps the generation; the FAISS and tantivy indexes are derived
from this store and record the generation they cover, so that they can be caught up after a crash.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingestion.errors import StorageError
from ingestion.models import Chunk, ChunkDraft, Document

SCHEMA_VERSION = 1
_EMPTY = np.empty(0, dtype=np.float32)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    section TEXT NOT NULL,
    embedding BLOB NOT NULL,
    generation INTEGER NOT NULL,
    deleted_generation INTEGER
);
CREATE INDEX IF NOT EXISTS chunks_live_doc ON chunks(doc_id) WHERE deleted_generation IS NULL;
CREATE INDEX IF NOT EXISTS chunks_generation ON chunks(generation);
CREATE INDEX IF NOT EXISTS chunks_deleted ON chunks(deleted_generation);
"""


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document ready to be committed: its chunks are already embedded."""

    document: Document
    chunks: list[ChunkDraft]
    embeddings: np.ndarray  # float32 (len(chunks), dim)


@dataclass(frozen=True, slots=True)
class CommitResult:
    generation: int
    added: list[int]  # chunk keys added
    deleted: list[int]  # chunk keys tombstoned


@dataclass(frozen=True, slots=True)
class StoredChunk:
    chunk: Chunk
    embedding: np.ndarray


class Store:
    """One SQLite database per knowledge base (WAL mode, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0'), ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot open store {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    # -- reads -----------------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def document_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        ids = list(doc_ids)
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT doc_id, content_hash FROM documents WHERE doc_id IN ({marks})", part)
            out.update({str(d): str(h) for d, h in rows})
        return out

    def get_document(self, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT doc_id, title, metadata, content_hash, created_at, updated_at, "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.doc_id AND c.deleted_generation IS NULL) "
            "FROM documents d WHERE doc_id=?",
            (doc_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "title", "metadata", "content_hash", "created_at", "updated_at", "chunks")
        doc = dict(zip(keys, row, strict=True))
        doc["metadata"] = json.loads(doc["metadata"])
        return doc

    def counts(self) -> tuple[int, int]:
        docs = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self._db.execute("SELECT COUNT(*) FROM chunks WHERE deleted_generation IS NULL").fetchone()[0]
        return int(docs), int(chunks)

    def live_chunks(self, after_generation: int = -1, embeddings: bool = True) -> Iterator[StoredChunk]:
        """Live chunks added after ``after_generation`` (all live chunks by default), in key order."""
        emb = "c.embedding" if embeddings else "NULL"
        rows = self._db.execute(
            f"SELECT c.key, c.doc_id, c.position, c.text, c.section, {emb}, d.title, d.metadata "
            "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
            "WHERE c.deleted_generation IS NULL AND c.generation > ? ORDER BY c.key",
            (after_generation,),
        )
        meta_cache: dict[str, dict[str, Any]] = {}
        for key, doc_id, position, text, section, blob, title, metadata in rows:
            meta = meta_cache.get(metadata)
            if meta is None:
                meta = meta_cache[metadata] = json.loads(metadata)
            chunk = Chunk(key, doc_id, position, text, title, meta, section)
            vec = np.frombuffer(blob, dtype=np.float32) if blob is not None else _EMPTY
            yield StoredChunk(chunk, vec)

    def deleted_keys(self, after_generation: int) -> list[int]:
        """Keys tombstoned after ``after_generation``."""
        rows = self._db.execute("SELECT key FROM chunks WHERE deleted_generation > ?", (after_generation,))
        return [int(r[0]) for r in rows]

    def live_chunk_keys(self) -> set[int]:
        return {int(r[0]) for r in self._db.execute("SELECT key FROM chunks WHERE deleted_generation IS NULL")}

    # -- writes ----------------------------------------------------------------------------------------
    def commit(self, new_docs: list[NewDocument], delete_doc_ids: Iterable[str] = ()) -> CommitResult:
        """Atomically add/replace ``new_docs`` and delete ``delete_doc_ids``; bump the generation."""
        db = self._db
        now = time.time()
        try:
            db.execute("BEGIN IMMEDIATE")
            gen = self.generation + 1
            replaced = [nd.document.id for nd in new_docs] + list(delete_doc_ids)
            deleted: list[int] = []
            for i in range(0, len(replaced), 500):
                part = replaced[i : i + 500]
                marks = ",".join("?" * len(part))
                deleted += [
                    int(r[0])
                    for r in db.execute(
                        f"SELECT key FROM chunks WHERE deleted_generation IS NULL AND doc_id IN ({marks})",
                        part,
                    )
                ]
                db.execute(
                    f"UPDATE chunks SET deleted_generation=? WHERE deleted_generation IS NULL AND doc_id IN ({marks})",
                    [gen, *part],
                )
            for doc_id in delete_doc_ids:
                db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            added: list[int] = []
            for nd in new_docs:
                doc = nd.document
                db.execute(
                    "INSERT INTO documents(doc_id, title, text, metadata, content_hash, generation, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(doc_id) DO UPDATE SET"
                    " title=excluded.title, text=excluded.text, metadata=excluded.metadata,"
                    " content_hash=excluded.content_hash, generation=excluded.generation,"
                    " updated_at=excluded.updated_at",
                    (
                        doc.id,
                        doc.title,
                        doc.text,
                        json.dumps(doc.metadata, ensure_ascii=False, default=str),
                        doc.hash,
                        gen,
                        now,
                        now,
                    ),
                )
                emb = np.ascontiguousarray(nd.embeddings, dtype=np.float32)
                for draft, vec in zip(nd.chunks, emb, strict=True):
                    cur = db.execute(
                        "INSERT INTO chunks(doc_id, position, text, section, embedding, generation)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (doc.id, draft.position, draft.text, draft.section, vec.tobytes(), gen),
                    )
                    added.append(int(cur.lastrowid or 0))
            db.execute("UPDATE meta SET value=? WHERE key='generation'", (str(gen),))
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise StorageError(f"store commit failed: {exc}") from exc
            raise
        return CommitResult(gen, added, deleted)

    def purge_tombstones(self, up_to_generation: int) -> int:
        """Drop tombstoned chunk rows that every index has already applied."""
        cur = self._db.execute("DELETE FROM chunks WHERE deleted_generation <= ?", (up_to_generation,))
        return cur.rowcount

"""A knowledge base: the SQLite store plus the dense and sparse indexes derived from it.

Write path (one writer at a time per knowledge base): chunk → embed (no index lock held) → one SQLite
transaction (the commit point, bumps the generation) → apply to tantivy (commit) → apply to FAISS → acknowledge.
Start-up catches both indexes up with the store, so a crash at any point loses nothing that was committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ingestion.dense_index import DenseIndex
from ingestion.embedder import Embedder
from ingestion.errors import DocumentNotFound, InvalidInputError, StorageError
from ingestion.models import Chunk, ChunkDraft, Document
from ingestion.sparse_index import SparseDoc, SparseIndex
from ingestion.store import NewDocument, Store, StoredChunk
from ingestion.term_stats import TermStatsIndex

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


class Chunker(Protocol):
    def split(self, document: Document) -> list[ChunkDraft]: ...


def embedding_text(title: str, text: str) -> str:
    """What the embedder sees for a chunk: its document title, then its text."""
    return f"{title}\n{text}" if title else text


@dataclass(slots=True)
class IngestReport:
    documents_received: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0  # identical content already stored: skipped
    chunks_added: int = 0
    chunks_deleted: int = 0
    generation: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


class KnowledgeBase:
    def __init__(
        self,
        name: str,
        directory: Path,
        embedder: Embedder,
        chunker: Chunker,
        snapshot_min_changes: int = 2000,
    ) -> None:
        self.name = name
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.chunker = chunker
        self.snapshot_min_changes = snapshot_min_changes
        self._write_lock = threading.Lock()  # one writer at a time
        self._apply_lock = threading.RLock()  # held only while a committed batch is applied / FAISS searched
        self.store = Store(self.directory / "store.sqlite")
        self._check_embedder()
        self.sparse = SparseIndex(self.directory / "sparse")
        self.dense, self._dense_generation = DenseIndex.load(self.directory / "dense", embedder.dim)
        self.chunks: dict[int, Chunk] = {}
        self.term_stats = TermStatsIndex(self.sparse.analyze, self.sparse.analyze_query)
        self._changes_since_snapshot = 0
        self.recovery: dict[str, object] = {}
        self._recover()

    # -- start-up ----------------------------------------------------------------------------------------
    def _check_embedder(self) -> None:
        stored = self.store.get_meta("embedding_model")
        ident = f"{self.embedder.name}:{self.embedder.dim}"
        if stored is None:
            self.store.set_meta("embedding_model", ident)
        elif stored != ident:
            raise StorageError(
                f"knowledge base {self.name!r} was embedded with {stored}, but the service runs {ident}; "
                "use the same embedding model or re-ingest into a new knowledge base"
            )

    def _recover(self) -> None:
        t0 = time.perf_counter()
        gen = self.store.generation
        self.chunks = {sc.chunk.key: sc.chunk for sc in self.store.live_chunks(embeddings=False)}
        live = self.chunks.keys()
        # dense: snapshot + replay of what came after it
        dense_replayed = 0
        if self._dense_generation < gen:
            self.dense.remove(self.store.deleted_keys(self._dense_generation))
            dense_replayed = self._add_dense(self.store.live_chunks(self._dense_generation))
        if len(self.dense) != len(live):
            log.warning(
                "kb %s: dense index has %d vectors for %d chunks; rebuilding",
                self.name,
                len(self.dense),
                len(live),
            )
            self.dense = DenseIndex(self.embedder.dim)
            dense_replayed = self._add_dense(self.store.live_chunks())
        # sparse: tantivy commits are durable; replay what its last recorded generation lacks
        sparse_gen, sparse_replayed = self.sparse.generation, 0
        if sparse_gen < gen:
            added = [self._sparse_doc(sc.chunk) for sc in self.store.live_chunks(sparse_gen, embeddings=False)]
            self.sparse.apply(added, self.store.deleted_keys(sparse_gen), gen)
            sparse_replayed = len(added)
        if len(self.sparse) != len(live) or (len(live) < 200_000 and self.sparse.all_keys() != set(live)):
            log.warning("kb %s: sparse index out of step with the store; rebuilding", self.name)
            self.sparse.clear()
            self.sparse.apply([self._sparse_doc(c) for c in self.chunks.values()], [], gen)
            sparse_replayed = len(live)
        self.term_stats.update((c.key, c.title, c.text) for c in self.chunks.values())
        self.recovery = {
            "generation": gen,
            "chunks": len(live),
            "dense_replayed": dense_replayed,
            "sparse_replayed": sparse_replayed,
            "ms": round((time.perf_counter() - t0) * 1000, 1),
        }
        if dense_replayed:
            self._changes_since_snapshot = dense_replayed

    def _add_dense(self, stored: Iterable[StoredChunk]) -> int:
        keys, vecs = [], []
        for sc in stored:
            keys.append(sc.chunk.key)
            vecs.append(sc.embedding)
        if keys:
            karr = np.asarray(keys, dtype=np.int64)
            self.dense.remove(karr)
            self.dense.add(karr, np.vstack(vecs))
        return len(keys)

    @staticmethod
    def _sparse_doc(chunk: Chunk) -> SparseDoc:
        return SparseDoc(chunk.key, chunk.title, chunk.text)

    # -- writes ------------------------------------------------------------------------------------------
    def ingest(self, documents: Sequence[Document], progress: ProgressFn | None = None) -> IngestReport:
        """Add, replace or skip ``documents`` (by id and content hash); returns what was stored."""
        report = IngestReport(documents_received=len(documents))
        timings = report.timings_ms
        batch: dict[str, Document] = {}
        for doc in documents:  # a later duplicate id in the same batch wins
            batch[doc.id] = doc
        with self._write_lock:
            t = time.perf_counter()
            existing = self.store.document_hashes(batch)
            changed = [d for d in batch.values() if existing.get(d.id) != d.hash]
            report.documents_unchanged = len(documents) - len(changed)
            report.documents_updated = sum(1 for d in changed if d.id in existing)
            report.documents_added = len(changed) - report.documents_updated
            drafts = [self.chunker.split(d) for d in changed]
            empty = [d.id for d, ch in zip(changed, drafts, strict=True) if not ch]
            if empty:
                raise InvalidInputError(f"documents with no text to index: {', '.join(empty[:10])}")
            timings["chunk"] = (time.perf_counter() - t) * 1000
            texts = [embedding_text(d.title, c.text) for d, chs in zip(changed, drafts, strict=True) for c in chs]
            t = time.perf_counter()
            done = 0

            def on_batch(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress("embedding", done, len(texts))

            vectors = (
                self.embedder.embed_documents(texts, progress=on_batch)
                if texts
                else np.empty((0, self.embedder.dim), np.float32)
            )
            timings["embed"] = (time.perf_counter() - t) * 1000
            report.generation = self._commit_and_apply(changed, drafts, vectors, [], report)
        if progress:
            progress("done", len(texts), len(texts))
        return report

    def delete_document(self, doc_id: str) -> IngestReport:
        with self._write_lock:
            if not self.store.document_hashes([doc_id]):
                raise DocumentNotFound(f"document {doc_id!r} not found in knowledge base {self.name!r}")
            report = IngestReport()
            report.generation = self._commit_and_apply([], [], np.empty((0, self.embedder.dim)), [doc_id], report)
            return report

    def _commit_and_apply(
        self,
        docs: list[Document],
        drafts: list[list[ChunkDraft]],
        vectors: np.ndarray,
        delete_ids: list[str],
        report: IngestReport,
    ) -> int:
        timings = report.timings_ms
        t = time.perf_counter()
        new_docs, offset = [], 0
        for d, chs in zip(docs, drafts, strict=True):
            new_docs.append(NewDocument(d, chs, vectors[offset : offset + len(chs)]))
            offset += len(chs)
        result = self.store.commit(new_docs, delete_ids)  # the commit point
        timings["store"] = (time.perf_counter() - t) * 1000
        report.chunks_added, report.chunks_deleted = len(result.added), len(result.deleted)
        new_chunks: list[Chunk] = []
        keys = iter(result.added)
        for d, chs in zip(docs, drafts, strict=True):
            for draft in chs:
                new_chunks.append(
                    Chunk(next(keys), d.id, draft.position, draft.text, d.title, d.metadata, draft.section)
                )
        t = time.perf_counter()
        self.sparse.apply([self._sparse_doc(c) for c in new_chunks], result.deleted, result.generation)
        self.term_stats.update(((c.key, c.title, c.text) for c in new_chunks), result.deleted)
        timings["sparse"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        with self._apply_lock:
            self.dense.remove(result.deleted)
            self.dense.add(np.asarray(result.added, dtype=np.int64), vectors)
            for chunk in new_chunks:
                self.chunks[chunk.key] = chunk
            for k in result.deleted:
                self.chunks.pop(k, None)
        timings["dense"] = (time.perf_counter() - t) * 1000
        self._changes_since_snapshot += len(result.added) + len(result.deleted)
        if self._changes_since_snapshot >= max(self.snapshot_min_changes, len(self.chunks) // 10):
            self.snapshot()
        return result.generation

    def snapshot(self) -> None:
        """Write the FAISS snapshot and drop tombstones both indexes have applied."""
        with self._apply_lock:
            gen = self.store.generation
            self.dense.save(self.directory / "dense", gen)
            self._dense_generation = gen
        self.store.purge_tombstones(min(gen, self.sparse.generation))
        self._changes_since_snapshot = 0

    def close(self) -> None:
        if self._changes_since_snapshot:
            self.snapshot()
        self.sparse.close()
        self.store.close()

    # -- reads -------------------------------------------------------------------------------------------
    def search_dense(self, query_vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self._apply_lock:
            return self.dense.search(query_vector, k)

    def stats(self) -> dict[str, object]:
        docs, chunks = self.store.counts()
        return {
            "name": self.name,
            "documents": docs,
            "chunks": chunks,
            "generation": self.store.generation,
            "embedding_model": self.store.get_meta("embedding_model"),
        }

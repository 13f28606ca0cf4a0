"""Knowledge base behaviour over the real FAISS, tantivy and SQLite: dedup, update, delete, restart, crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingestion.chunking import RecursiveChunker
from ingestion.embedder import Embedder
from ingestion.errors import DocumentNotFound, InvalidInputError, StorageError
from ingestion.knowledge_base import KnowledgeBase
from ingestion.models import Document
from ingestion.registry import KnowledgeBaseRegistry, validate_kb_name


def open_kb(path: Path, embedder: Embedder, chunk_size: int = 64) -> KnowledgeBase:
    return KnowledgeBase("kb", path, embedder, RecursiveChunker(chunk_size, 8, embedder.count_tokens))


def docs() -> list[Document]:
    return [
        Document("a", "Photosynthesis converts light energy into chemical energy in chloroplasts.", "Plants"),
        Document("b", "The mitochondria is the powerhouse of the cell and makes ATP.", "Cells"),
        Document("c", "Black holes bend spacetime so strongly that light cannot escape.", "Astronomy"),
    ]


def sparse_doc_ids(kb: KnowledgeBase, query: str) -> list[str]:
    keys, _ = kb.sparse.search(query, 50)
    return [kb.chunks[int(k)].doc_id for k in keys]


def dense_doc_ids(kb: KnowledgeBase, query: str) -> list[str]:
    keys, _ = kb.search_dense(kb.embedder.embed_query(query), 50)
    return [kb.chunks[int(k)].doc_id for k in keys]


def assert_consistent(kb: KnowledgeBase) -> None:
    live = kb.store.live_chunk_keys()
    assert set(kb.chunks) == live
    assert kb.sparse.all_keys() == live
    assert len(kb.dense) == len(live)
    assert kb.term_stats.num_chunks() == len(live)


def test_ingest_then_reingest_identical_is_a_noop(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    first = kb.ingest(docs())
    assert (first.documents_added, first.documents_unchanged, first.chunks_added) == (3, 0, 3)
    again = kb.ingest(docs())
    assert (again.documents_added, again.documents_updated, again.documents_unchanged) == (0, 0, 3)
    assert again.chunks_added == 0 and again.chunks_deleted == 0
    assert kb.store.counts() == (3, 3)
    assert_consistent(kb)


def test_changed_content_replaces_old_chunks_in_both_indexes(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    assert sparse_doc_ids(kb, "mitochondria") == ["b"]
    report = kb.ingest([Document("b", "Ribosomes translate messenger RNA into proteins.", "Cells")])
    assert (report.documents_updated, report.chunks_added, report.chunks_deleted) == (1, 1, 1)
    assert sparse_doc_ids(kb, "mitochondria") == []
    assert sparse_doc_ids(kb, "ribosomes") == ["b"]
    assert dense_doc_ids(kb, "ribosomes translate messenger RNA").count("b") == 1
    assert kb.store.counts() == (3, 3)
    assert_consistent(kb)


def test_delete_removes_document_everywhere(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    kb.delete_document("c")
    assert "c" not in sparse_doc_ids(kb, "black holes light")
    assert "c" not in dense_doc_ids(kb, "black holes light")
    assert kb.store.get_document("c") is None
    assert_consistent(kb)
    with pytest.raises(DocumentNotFound):
        kb.delete_document("c")


def test_long_document_is_chunked_and_duplicate_ids_in_one_batch_keep_the_last(
    tmp_path: Path, hashing_embedder: Embedder
) -> None:
    kb = open_kb(tmp_path, hashing_embedder, chunk_size=20)
    long_text = " ".join(f"sentence {i} talks about topic {i}." for i in range(60))
    report = kb.ingest([Document("x", "first version"), Document("x", long_text, "Long")])
    assert report.documents_added == 1
    assert report.chunks_added > 5
    positions = sorted(c.position for c in kb.chunks.values() if c.doc_id == "x")
    assert positions == list(range(report.chunks_added))
    assert "first" not in " ".join(c.text for c in kb.chunks.values())


def test_empty_document_is_rejected_and_nothing_is_stored(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    with pytest.raises(InvalidInputError, match="empty"):
        kb.ingest([Document("ok", "some text"), Document("empty", "   \n ")])
    assert kb.store.counts() == (3, 3)
    assert kb.store.get_document("ok") is None


def test_everything_reloads_after_a_restart(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    kb.delete_document("a")
    kb.ingest([Document("d", "Volcanoes erupt molten rock called lava.", "Geology")])
    kb.close()
    reopened = open_kb(tmp_path, hashing_embedder)
    assert reopened.store.counts() == (3, 3)
    assert sparse_doc_ids(reopened, "lava volcanoes") == ["d"]
    assert dense_doc_ids(reopened, "volcanoes erupt molten rock called lava")[0] == "d"
    assert "a" not in sparse_doc_ids(reopened, "photosynthesis")
    assert_consistent(reopened)


_CRASHER = """
import os, sys
from pathlib import Path
from ingestion.chunking import RecursiveChunker
from ingestion.embedder import HashingEmbedder
from ingestion.knowledge_base import KnowledgeBase
from ingestion.models import Document
import ingestion.store

point = sys.argv[2]
emb = HashingEmbedder(64)
kb = KnowledgeBase("kb", Path(sys.argv[1]), emb, RecursiveChunker(64, 8, emb.count_tokens))
if point == "after_store_commit":
    kb.sparse.apply = lambda *a, **k: os._exit(3)  # the process dies right after the SQLite commit
elif point == "during_store_commit":
    real = ingestion.store.Store.commit
    def dying_commit(self, new_docs, delete_doc_ids=()):
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("UPDATE meta SET value='999' WHERE key='generation'")
        os._exit(3)  # dies inside the transaction
    ingestion.store.Store.commit = dying_commit
kb.ingest([Document("e", "Enzymes catalyse biochemical reactions.", "Biochem"),
           Document("b", "Ribosomes translate messenger RNA into proteins.", "Cells")])
os._exit(0)
"""


def crash_in_subprocess(path: Path, point: str) -> int:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(path), point], cwd=repo, capture_output=True, timeout=120
    )
    return proc.returncode


def test_crash_after_store_commit_is_caught_up_at_start(tmp_path: Path, hashing_embedder: Embedder) -> None:
    """A process killed between the SQLite commit and the index updates: start-up replays the store."""
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    kb.close()
    assert crash_in_subprocess(tmp_path, "after_store_commit") == 3
    reopened = open_kb(tmp_path, hashing_embedder)
    assert reopened.recovery["sparse_replayed"] == 2 and reopened.recovery["dense_replayed"] == 2
    assert sparse_doc_ids(reopened, "enzymes") == ["e"]
    assert sparse_doc_ids(reopened, "ribosomes") == ["b"]
    assert sparse_doc_ids(reopened, "mitochondria") == []
    assert reopened.store.counts() == (4, 4)
    assert_consistent(reopened)


def test_crash_inside_store_commit_leaves_previous_state(tmp_path: Path, hashing_embedder: Embedder) -> None:
    """A process killed inside the SQLite transaction: nothing of the batch is visible, the old data is intact."""
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    kb.close()
    assert crash_in_subprocess(tmp_path, "during_store_commit") == 3
    reopened = open_kb(tmp_path, hashing_embedder)
    assert reopened.store.generation == 1
    assert reopened.store.counts() == (3, 3)
    assert sparse_doc_ids(reopened, "mitochondria") == ["b"]
    assert sparse_doc_ids(reopened, "enzymes") == []
    assert_consistent(reopened)


def test_failed_embedding_stores_nothing(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())

    def boom(*_: object, **__: object) -> np.ndarray:
        raise RuntimeError("embedder died")

    kb.embedder.embed_documents = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        kb.ingest([Document("b", "A replacement that never lands.", "Cells")])
    assert kb.store.counts() == (3, 3)
    assert sparse_doc_ids(kb, "mitochondria") == ["b"]
    assert_consistent(kb)


def test_torn_dense_snapshot_is_rebuilt_from_the_store(tmp_path: Path, hashing_embedder: Embedder) -> None:
    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    kb.close()
    (tmp_path / "dense" / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(StorageError, match="unreadable"):
        open_kb(tmp_path, hashing_embedder)


def test_other_embedding_model_is_refused(tmp_path: Path, hashing_embedder: Embedder) -> None:
    from ingestion.embedder import HashingEmbedder

    kb = open_kb(tmp_path, hashing_embedder)
    kb.ingest(docs())
    kb.close()
    with pytest.raises(StorageError, match="embedded with"):
        open_kb(tmp_path, HashingEmbedder(32))


@pytest.mark.parametrize("name", ["", "../x", "a b", "x" * 65, "-lead"])
def test_bad_kb_names(name: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_kb_name(name)


def test_registry_reopens_all(tmp_path: Path, hashing_embedder: Embedder) -> None:
    def chunker() -> RecursiveChunker:
        return RecursiveChunker(64, 8, hashing_embedder.count_tokens)

    reg = KnowledgeBaseRegistry(tmp_path, hashing_embedder, chunker)
    reg.get_or_create("one").ingest(docs())
    reg.get_or_create("two").ingest(docs()[:1])
    reg.close()
    again = KnowledgeBaseRegistry(tmp_path, hashing_embedder, chunker)
    again.open_all()
    assert again.names() == ["one", "two"]
    assert again.get("two").store.counts() == (1, 1)

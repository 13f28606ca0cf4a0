"""A >=100k-document corpus with embeddings for the at-scale speed test, built from SciFact.

The corpus is SciFact's 5,183 documents followed by synthetic documents. Each synthetic document
recombines runs of consecutive sentences taken from 2-4 random SciFact abstracts, with a length
(in sentences) drawn from SciFact's own length distribution, so vocabulary, term frequencies and
document lengths look like real scientific abstracts. Its title is the title of the source that
gave it the most sentences.

Embeddings: encoding 100k texts with MiniLM on 2 CPU cores takes about an hour, so synthetic
vectors are derived instead: the sentence-count-weighted mean of the source documents' real MiniLM
vectors, L2-normalised, plus isotropic Gaussian noise of norm ``noise`` (default 0.35, i.e. cosine
~0.94 to the mean), normalised again. Vectors therefore sit in the populated regions of the real
embedding space, near their sources, and are not exact duplicates of each other -- what matters
for ANN/flat search cost and result-set overlap. They are not valid for measuring quality. Measured at
100k (seed 0): mean cosine 0.76 to the title source's real vector; random pairs 0.24 (0.14 between real
SciFact vectors), i.e. synthetic vectors are somewhat more central. Mean length 209 words (SciFact: 202).

Everything is deterministic for a given ``(n_docs, seed, noise)`` and cached under ``cache_dir``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingestion.errors import InvalidInputError, StorageError
from ingestion.models import Document
from retrieval.beir import load_corpus

_REPO = Path(__file__).resolve().parent.parent
SCIFACT_DIR = _REPO.parent / "shared" / "datasets" / "scifact"
SCIFACT_EMBEDDINGS_DIR = _REPO / ".cache" / "bench" / "scifact_minilm"
SCALE_CACHE_DIR = _REPO / ".cache" / "bench" / "scale"

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


@dataclass(frozen=True, slots=True)
class PrecomputedEmbeddings:
    """MiniLM vectors (normalised, float32) of a BEIR dataset's documents and queries, by id."""

    doc_ids: list[str]
    docs: np.ndarray
    query_ids: list[str]
    queries: np.ndarray

    def doc_matrix(self, ids: list[str]) -> np.ndarray:
        """Rows of ``docs`` in the order of ``ids``."""
        row = {did: i for i, did in enumerate(self.doc_ids)}
        missing = [d for d in ids if d not in row]
        if missing:
            raise InvalidInputError(f"{len(missing)} documents have no precomputed embedding, e.g. {missing[0]}")
        return self.docs[[row[d] for d in ids]]

    def query_vectors(self) -> dict[str, np.ndarray]:
        return dict(zip(self.query_ids, self.queries, strict=True))


def embedding_text(doc: Document) -> str:
    """The text embedded for a document (same convention as the precomputed SciFact vectors)."""
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def load_precomputed(directory: Path = SCIFACT_EMBEDDINGS_DIR) -> PrecomputedEmbeddings:
    """Read ``{doc_ids.json,docs.npy,query_ids.json,queries.npy}`` from ``directory``."""
    directory = Path(directory)
    names = ("doc_ids.json", "docs.npy", "query_ids.json", "queries.npy")
    if not all((directory / n).is_file() for n in names):
        raise StorageError(f"precomputed embeddings missing in {directory} (need {', '.join(names)})")
    doc_ids = [str(x) for x in json.loads((directory / "doc_ids.json").read_text(encoding="utf-8"))]
    query_ids = [str(x) for x in json.loads((directory / "query_ids.json").read_text(encoding="utf-8"))]
    docs = np.load(directory / "docs.npy").astype(np.float32, copy=False)
    queries = np.load(directory / "queries.npy").astype(np.float32, copy=False)
    if docs.shape[0] != len(doc_ids) or queries.shape[0] != len(query_ids):
        raise StorageError(f"precomputed embeddings in {directory} do not match their id lists")
    return PrecomputedEmbeddings(doc_ids, docs, query_ids, queries)


def split_sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE_SPLIT.split(text)) if s]


def _synthesize(
    base: list[Document], base_vectors: np.ndarray, n_new: int, rng: np.random.Generator, noise: float
) -> tuple[list[Document], np.ndarray]:
    sentences = [split_sentences(d.text) for d in base]
    usable = np.array([i for i, s in enumerate(sentences) if s])
    lengths = np.array([len(sentences[i]) for i in usable])
    dim = base_vectors.shape[1]
    docs: list[Document] = []
    vectors = np.empty((n_new, dim), dtype=np.float32)
    for n in range(n_new):
        target = int(rng.choice(lengths))
        n_sources = int(rng.integers(2, 5))
        sources = rng.choice(usable, size=n_sources, replace=False)
        parts: list[str] = []
        counts: dict[int, int] = {}
        j = 0
        while len(parts) < target:
            src = int(sources[j % n_sources])
            j += 1
            sents = sentences[src]
            run = min(int(rng.integers(1, 4)), len(sents), target - len(parts))
            start = int(rng.integers(0, len(sents) - run + 1))
            parts.extend(sents[start : start + run])
            counts[src] = counts.get(src, 0) + run
        main = max(counts, key=lambda s: counts[s])
        docs.append(Document(id=f"syn-{n}", title=base[main].title, text=" ".join(parts)))
        weights = np.array(list(counts.values()), dtype=np.float32)
        mean = weights @ base_vectors[list(counts)]
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        jitter = np.asarray(rng.standard_normal(dim), dtype=np.float32)
        mean += jitter * (noise / max(float(np.linalg.norm(jitter)), 1e-12))
        vectors[n] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return docs, vectors


def _write(path: Path, docs: list[Document], vectors: np.ndarray) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tmp_corpus, tmp_vecs = path / "corpus.jsonl.tmp", path / "embeddings.tmp.npy"
    with tmp_corpus.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n")
    np.save(tmp_vecs, vectors)
    tmp_corpus.replace(path / "corpus.jsonl")
    tmp_vecs.replace(path / "embeddings.npy")


def build_scale_corpus(
    n_docs: int,
    seed: int,
    cache_dir: Path = SCALE_CACHE_DIR,
    *,
    dataset_dir: Path = SCIFACT_DIR,
    embeddings_dir: Path = SCIFACT_EMBEDDINGS_DIR,
    noise: float = 0.35,
) -> tuple[list[Document], np.ndarray]:
    """SciFact plus synthetic documents, ``n_docs`` in all, with (n_docs, 384) float32 unit vectors.

    Rows of the returned matrix follow the document list. Cached in ``cache_dir/<n_docs>_<seed>_<noise>/``.
    """
    if n_docs < 1:
        raise InvalidInputError(f"n_docs must be >= 1, got {n_docs}")
    path = Path(cache_dir) / f"{n_docs}_{seed}_{noise:g}"
    if (path / "corpus.jsonl").is_file() and (path / "embeddings.npy").is_file():
        docs = load_corpus(path / "corpus.jsonl")
        vectors = np.load(path / "embeddings.npy")
        if len(docs) == vectors.shape[0] == n_docs:
            return docs, vectors
    base = load_corpus(Path(dataset_dir) / "corpus.jsonl")
    base_vectors = load_precomputed(embeddings_dir).doc_matrix([d.id for d in base])
    if n_docs <= len(base):
        docs, vectors = base[:n_docs], np.ascontiguousarray(base_vectors[:n_docs])
    else:
        rng = np.random.default_rng(seed)
        new_docs, new_vectors = _synthesize(base, base_vectors, n_docs - len(base), rng, noise)
        docs, vectors = base + new_docs, np.vstack([base_vectors, new_vectors]).astype(np.float32)
    _write(path, docs, vectors)
    return docs, vectors


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=SCALE_CACHE_DIR)
    args = parser.parse_args()
    t0 = time.perf_counter()
    corpus, emb = build_scale_corpus(args.n_docs, args.seed, args.cache_dir)
    words = sum(len(d.text.split()) for d in corpus) / len(corpus)
    print(
        json.dumps(
            {
                "n_docs": len(corpus),
                "dim": emb.shape[1],
                "mean_words": round(words, 1),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )

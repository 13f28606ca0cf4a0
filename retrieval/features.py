"""Learning-to-rank features of (query, candidate) pairs, computed from the candidates and the sparse index.

``FeatureExtractor`` turns a query and its fused candidates into a float32 matrix whose columns are named by a
versioned ``FeatureSchema``. Retriever-derived features (ranks, cosine, RRF) come from the ``Candidate``s;
lexical features (per-field BM25, query-term coverage) are computed here from raw term statistics supplied by
the sparse index through the ``TermStats`` protocol (implemented by ``ingestion.term_stats.TermStatsIndex``).

Every score-valued feature is made relative to the query's candidate list (ratio to the best candidate,
gap to the best, z-score) so that a model trained on one corpus transfers to corpora with other BM25 scales.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from retrieval.candidates import Candidate

BM25_K1 = 1.2
BM25_B = 0.75
_MISSING_RANK = 1000  # rank given to a candidate that a retriever did not return


class Field(StrEnum):
    TITLE = "title"
    BODY = "body"


@runtime_checkable
class TermStats(Protocol):
    """What the feature extractor needs from the sparse index. Keys are ``Chunk.key``s.

    Terms are analyzed terms (``en_stem``: simple tokenizer, tokens over 40 bytes removed, lowercased,
    English Snowball stemmer). Field lengths count every indexed token of the field (stopwords included).
    """

    def analyze_query(self, text: str) -> list[str]:
        """The query's terms as the BM25 retriever uses them (stopwords dropped), in order, repeats kept."""
        ...

    def num_chunks(self) -> int:
        """Number of live chunks in the index (BM25's N)."""
        ...

    def avg_field_length(self, field: Field) -> float:
        """Mean number of tokens of ``field`` over all chunks (0.0 when the index is empty)."""
        ...

    def doc_freqs(self, terms: Sequence[str], field: Field) -> np.ndarray:
        """int64 array (len(terms),): number of chunks whose ``field`` contains each term."""
        ...

    def term_frequencies(self, keys: Sequence[int], terms: Sequence[str], field: Field) -> np.ndarray:
        """float32 array (len(keys), len(terms)): occurrences of each term in each chunk's ``field``.

        A key the index does not know gives a row of zeros.
        """
        ...

    def field_lengths(self, keys: Sequence[int], field: Field) -> np.ndarray:
        """float32 array (len(keys),): tokens in each chunk's ``field`` (0 for an unknown key)."""
        ...


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    """Identity of a feature layout; a model is only valid with the schema it was trained on."""

    name: str
    version: int
    features: tuple[str, ...]

    @property
    def tag(self) -> str:
        return f"{self.name}/v{self.version}"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "features": list(self.features)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FeatureSchema:
        feats = data.get("features", [])
        return cls(str(data.get("name", "")), int(str(data.get("version", -1))), tuple(map(str, feats)))  # type: ignore[call-overload]


# Every feature the extractor knows, in a fixed order. A schema picks an ordered subset.
ALL_FEATURES: tuple[str, ...] = (
    "dense_cos",  # cosine similarity (missing: the lowest cosine among the candidates)
    "dense_gap",  # best cosine of the query minus this cosine
    "dense_z",  # cosine z-scored over the query's candidates
    "dense_rank_log",  # log1p(dense rank); missing rank = 1000
    "sparse_rank_log",  # log1p(BM25 rank); missing rank = 1000
    "fused_ratio",  # RRF score / best RRF score
    "fused_rank_log",  # log1p(RRF rank)
    "both_retrieved",  # 1 when both retrievers returned the chunk
    "variant_hits",  # query variants that retrieved the chunk
    "bm25_ratio",  # (title+body BM25) / best among candidates
    "bm25_z",  # (title+body BM25) z-scored
    "bm25_body_ratio",
    "bm25_title_ratio",
    "bm25_body_raw",  # absolute scores: corpus dependent, for research only
    "bm25_title_raw",
    "coverage",  # fraction of distinct query terms found in title or body
    "idf_coverage",  # IDF-weighted fraction of query terms found in title or body
    "title_idf_coverage",  # IDF-weighted fraction of query terms found in the title
    "body_len_log",  # log1p(body tokens)
    "query_len",  # distinct query terms
    "position_log",  # log1p(position of the chunk in its document)
    # document aggregates over the candidate chunks of the same document (a document ranks by its best chunk)
    "doc_chunks",  # candidate chunks of this chunk's document
    "doc_dense_gap",  # best cosine of the query minus the best cosine of this chunk's document
    "doc_dense_self_gap",  # best cosine of the document minus this chunk's cosine
    "doc_bm25_ratio",  # best (title+body BM25) of the document / best among candidates
    "doc_bm25_self_gap",  # document's best bm25_ratio minus this chunk's
    "doc_fused_ratio",  # summed RRF score of the document's chunks / best such sum
    "doc_idf_coverage",  # IDF-weighted fraction of query terms found in any chunk of the document
)

FEATURE_SCHEMA = FeatureSchema(
    name="hybrid-ltr",
    version=2,
    features=(
        "dense_cos",
        "dense_gap",
        "dense_z",
        "dense_rank_log",
        "sparse_rank_log",
        "fused_ratio",
        "fused_rank_log",
        "both_retrieved",
        "bm25_ratio",
        "bm25_z",
        "bm25_body_ratio",
        "bm25_title_ratio",
        "coverage",
        "idf_coverage",
        "title_idf_coverage",
        "body_len_log",
        "query_len",
        "doc_chunks",
        "doc_dense_gap",
        "doc_dense_self_gap",
        "doc_bm25_ratio",
        "doc_bm25_self_gap",
        "doc_fused_ratio",
        "doc_idf_coverage",
    ),
)


def _log_rank(rank: int | None) -> float:
    return math.log1p(rank if rank is not None else _MISSING_RANK)


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6)


def _ratio(x: np.ndarray) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else np.zeros_like(x)


def _group_max(x: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Each element replaced by the maximum of its group (``group`` holds ids in [0, n_groups))."""
    best = np.full(n_groups, -np.inf)
    np.maximum.at(best, group, x)
    return best[group]


def bm25_idf(doc_freqs: np.ndarray, n_docs: int) -> np.ndarray:
    """BM25 (Lucene/tantivy) IDF: ln(1 + (N - df + 0.5) / (df + 0.5))."""
    df = doc_freqs.astype(np.float64)
    return np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)


def bm25_scores(tf: np.ndarray, lengths: np.ndarray, avg_len: float, idf: np.ndarray) -> np.ndarray:
    """BM25 of each row of ``tf`` (n_keys, n_terms) with k1=1.2, b=0.75, as tantivy computes it."""
    norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths / max(avg_len, 1e-6))
    part = tf * (BM25_K1 + 1.0) / (tf + norm[:, None])
    return (part * idf[None, :]).sum(axis=1).astype(np.float32)


class FeatureExtractor:
    """Builds the (n_candidates, n_features) float32 matrix named by ``schema``."""

    def __init__(self, schema: FeatureSchema = FEATURE_SCHEMA) -> None:
        unknown = [f for f in schema.features if f not in ALL_FEATURES]
        if unknown:
            raise ValueError(f"unknown features in schema {schema.tag}: {unknown}")
        self.schema = schema
        self._columns = [ALL_FEATURES.index(f) for f in schema.features]

    def extract(self, query: str, candidates: Sequence[Candidate], stats: TermStats) -> np.ndarray:
        return self.extract_all(query, candidates, stats)[:, self._columns]

    def extract_all(self, query: str, candidates: Sequence[Candidate], stats: TermStats) -> np.ndarray:
        """Every feature of ``ALL_FEATURES`` (research and training use this to compare feature sets)."""
        n = len(candidates)
        out = np.zeros((n, len(ALL_FEATURES)), dtype=np.float32)
        if n == 0:
            return out
        col = {name: i for i, name in enumerate(ALL_FEATURES)}

        dense = np.array([c.dense_score if c.dense_score is not None else np.nan for c in candidates])
        present = ~np.isnan(dense)
        dense[~present] = dense[present].min() if present.any() else 0.0
        out[:, col["dense_cos"]] = dense
        out[:, col["dense_gap"]] = dense.max() - dense
        out[:, col["dense_z"]] = _zscore(dense)
        out[:, col["dense_rank_log"]] = [_log_rank(c.dense_rank) for c in candidates]
        out[:, col["sparse_rank_log"]] = [_log_rank(c.sparse_rank) for c in candidates]
        fused = np.array([c.fused_score for c in candidates], dtype=np.float64)
        out[:, col["fused_ratio"]] = _ratio(fused)
        out[:, col["fused_rank_log"]] = [math.log1p(c.fused_rank) for c in candidates]
        out[:, col["both_retrieved"]] = [
            float(c.dense_rank is not None and c.sparse_rank is not None) for c in candidates
        ]
        out[:, col["variant_hits"]] = [c.variant_hits for c in candidates]
        out[:, col["position_log"]] = [math.log1p(c.chunk.position) for c in candidates]
        _, doc = np.unique([c.chunk.doc_id for c in candidates], return_inverse=True)
        n_doc = int(doc.max()) + 1
        out[:, col["doc_chunks"]] = np.bincount(doc, minlength=n_doc)[doc]
        doc_dense = _group_max(dense, doc, n_doc)
        out[:, col["doc_dense_gap"]] = dense.max() - doc_dense
        out[:, col["doc_dense_self_gap"]] = doc_dense - dense
        fused_sum = np.bincount(doc, weights=fused, minlength=n_doc)[doc]
        out[:, col["doc_fused_ratio"]] = _ratio(fused_sum)

        terms = sorted(set(stats.analyze_query(query)))
        out[:, col["query_len"]] = len(terms)
        keys = [c.chunk.key for c in candidates]
        body_len = stats.field_lengths(keys, Field.BODY)
        out[:, col["body_len_log"]] = np.log1p(body_len)
        if not terms:
            return out
        n_docs = stats.num_chunks()
        per_field = {}
        for field in (Field.BODY, Field.TITLE):
            tf = stats.term_frequencies(keys, terms, field)
            lengths = body_len if field is Field.BODY else stats.field_lengths(keys, field)
            idf = bm25_idf(stats.doc_freqs(terms, field), n_docs)
            per_field[field] = (tf, bm25_scores(tf, lengths, stats.avg_field_length(field), idf), idf)
        body_tf, body_bm25, body_idf = per_field[Field.BODY]
        title_tf, title_bm25, _ = per_field[Field.TITLE]
        total = body_bm25 + title_bm25
        out[:, col["bm25_ratio"]] = _ratio(total)
        doc_bm25 = _group_max(out[:, col["bm25_ratio"]], doc, n_doc)
        out[:, col["doc_bm25_ratio"]] = doc_bm25
        out[:, col["doc_bm25_self_gap"]] = doc_bm25 - out[:, col["bm25_ratio"]]
        out[:, col["bm25_z"]] = _zscore(total)
        out[:, col["bm25_body_ratio"]] = _ratio(body_bm25)
        out[:, col["bm25_title_ratio"]] = _ratio(title_bm25)
        out[:, col["bm25_body_raw"]] = body_bm25
        out[:, col["bm25_title_raw"]] = title_bm25
        weights = body_idf / max(float(body_idf.sum()), 1e-6)
        found = (body_tf > 0) | (title_tf > 0)
        out[:, col["coverage"]] = found.mean(axis=1)
        out[:, col["idf_coverage"]] = found @ weights
        out[:, col["title_idf_coverage"]] = (title_tf > 0) @ weights
        doc_found = np.zeros((n_doc, found.shape[1]), dtype=bool)
        np.logical_or.at(doc_found, doc, found)
        out[:, col["doc_idf_coverage"]] = (doc_found @ weights)[doc]
        return out

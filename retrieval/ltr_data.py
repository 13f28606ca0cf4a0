"""Training data for the LTR reranker, collected through the service's own retriever.

For each query with qrels: the hybrid retriever's candidates (what the reranker will see at query time), their
features, and labels from the qrels (a chunk takes the relevance of its document).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ingestion.knowledge_base import KnowledgeBase
from retrieval.beir import Qrels
from retrieval.features import FeatureExtractor
from retrieval.hybrid import HybridRetriever, RetrievalMode
from retrieval.ltr_training import QueryGroup


def collect_groups(
    retriever: HybridRetriever,
    kb: KnowledgeBase,
    queries: dict[str, str],
    qrels: Qrels,
    extractor: FeatureExtractor,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[QueryGroup]:
    groups = []
    qids = [q for q in qrels if q in queries]
    for i, qid in enumerate(qids):
        retrieved = retriever.retrieve(kb, queries[qid], RetrievalMode.HYBRID)
        cands = retrieved.candidates
        rel = qrels[qid]
        labels = np.array([max(rel.get(c.chunk.doc_id, 0), 0) for c in cands], dtype=np.float32)
        found = {c.chunk.doc_id for c in cands}
        missing = sum(1 for d, r in rel.items() if r > 0 and d not in found)
        groups.append(QueryGroup(extractor.extract(queries[qid], cands, kb.term_stats), labels, missing))
        if progress:
            progress("features", i + 1, len(qids))
    return groups

"""Reciprocal rank fusion (Cormack et al., 2009): score(d) = sum over lists of 1 / (k + rank(d))."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def reciprocal_rank_fusion(ranked_lists: Sequence[Sequence[int] | np.ndarray], k: int = 60) -> dict[int, float]:
    """Fused scores of every key in ``ranked_lists`` (each list best first; ranks are 1-based)."""
    scores: dict[int, float] = {}
    for keys in ranked_lists:
        for rank, key in enumerate(keys, start=1):
            scores[int(key)] = scores.get(int(key), 0.0) + 1.0 / (k + rank)
    return scores

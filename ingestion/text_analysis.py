"""Text analysis for the sparse (BM25) index: word segmentation of CJK text.

tantivy's ``en_stem`` tokenizer splits on non-alphanumeric characters, so a run of Chinese, Japanese or
Korean characters becomes ONE token (and runs longer than 40 bytes are dropped entirely). Such text is
unsearchable unless it is segmented first. ``segment_cjk`` inserts spaces so every word (Han text, via
jieba) or character bigram (kana, Hangul) becomes its own token. Apply it to both the indexed text and
the query text; English text passes through untouched at the cost of one regex scan.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from pathlib import Path
from typing import Any

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"

_ANY_CJK = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]")
_CJK_RUNS = re.compile(f"(?P<han>[{_HAN}]+)|(?P<bigram>[{_KANA}{_HANGUL}]+)")


def has_cjk(text: str) -> bool:
    """True when ``text`` contains at least one Han, kana or Hangul character."""
    return _ANY_CJK.search(text) is not None


def _bigrams(run: str) -> str:
    if len(run) < 2:
        return run
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


class CjkSegmenter:
    """Segments CJK runs into space-separated words. jieba is loaded lazily, on the first CJK text seen.

    ``cache_dir`` is where jieba writes its dictionary cache (default: the system temp dir).
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._cache_dir = cache_dir
        self._jieba: Any = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> Any:
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    import jieba  # lazy: ~1 s to load the dictionary, only needed for Chinese text

                    jieba.setLogLevel(logging.WARNING)  # jieba logs dictionary loading at DEBUG
                    tok = jieba.Tokenizer()
                    if self._cache_dir is not None:
                        self._cache_dir.mkdir(parents=True, exist_ok=True)
                        tok.tmp_dir = str(self._cache_dir)
                    tok.initialize()
                    self._jieba = tok
        return self._jieba

    def _segment_run(self, match: re.Match[str]) -> str:
        han = match.group("han")
        if han is not None:
            # cut_for_search emits the long words AND their dictionary sub-words ("中华人民共和国" also
            # yields "中华", "人民", "共和国"), so a query phrased with a shorter word still matches a
            # document segmented into a longer compound (and vice versa). For BM25 this recall gain is
            # worth the mild term-frequency inflation; lcut would make matching depend on both sides
            # being segmented identically.
            words = [w for w in self._tokenizer().cut_for_search(han) if w.strip()]
            return " " + " ".join(words) + " "
        return " " + _bigrams(match.group("bigram")) + " "

    def segment(self, text: str) -> str:
        """``text`` unchanged when it has no CJK characters; otherwise CJK runs split by spaces."""
        if _ANY_CJK.search(text) is None:
            return text
        return _CJK_RUNS.sub(self._segment_run, text)


@functools.cache
def _default_segmenter() -> CjkSegmenter:
    return CjkSegmenter()


def segment_cjk(text: str) -> str:
    """Segment CJK text for a whitespace/punctuation tokenizer, using a shared default ``CjkSegmenter``."""
    if _ANY_CJK.search(text) is None:
        return text
    return _default_segmenter().segment(text)

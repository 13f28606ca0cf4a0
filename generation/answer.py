"""Grounded answers: passages in, answer text with verified citations out.

Citation markers the model writes (``[1]``, ``[1, 2]``, ``[1-3]``, and the loose forms small models
produce such as ``[Passage 2]``) are parsed into :class:`Citation` records that point at the chunk
the passage came from. Numbers outside ``1..len(passages)`` are listed in
``Answer.invalid_citations`` and **removed from the answer text**, so the text a client shows never
references a passage that does not exist. Valid markers are rewritten to the canonical ``[n]`` /
``[n, m]`` form.

When the model answers without citing anything, :class:`AnswerGenerator` can attribute the answer to
the passage it overlaps most (``infer_missing_citations``); such citations carry ``inferred=True``
and no marker is added to the text, so a caller can always tell a model citation from a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from generation.client import ChatClient
from generation.prompts import DEFAULT_CONTEXT_CHARS, NO_ANSWER, build_messages


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk as shown to the model; ``number`` is its 1-based label in the prompt."""

    number: int
    chunk_id: str
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Citation:
    number: int
    chunk_id: str
    doc_id: str
    title: str
    inferred: bool = False  # True: the model cited nothing; attributed by word overlap


@dataclass(slots=True)
class Answer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)


_MAX_RANGE = 50  # a "[1-9999]" marker is not expanded into thousands of numbers
_MARKER = re.compile(
    r"\s?\[(?:(?:passage|source|doc(?:ument)?|context|ref)\s*#?\s*)?"
    r"(\d{1,4}(?:\s*(?:[-–,;]|and)\s*(?:(?:passage|source|doc(?:ument)?)\s*)?\d{1,4})*)\]",
    re.IGNORECASE,
)
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")
_LABEL = re.compile(r"passage|source|document|doc|#", re.IGNORECASE)
_SEPARATOR = re.compile(r"\s*(?:,|;|\band\b)\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by for from has have in is it its of on or that the this to was were "
        "which with not no can may also than these those their there been being into about",
    )
)


def _marker_numbers(body: str) -> list[int]:
    numbers: list[int] = []
    for part in _SEPARATOR.split(_LABEL.sub("", body)):
        part = part.strip()
        m = _RANGE.fullmatch(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo <= hi and hi - lo <= _MAX_RANGE:
                numbers.extend(range(lo, hi + 1))
            else:
                numbers.extend([lo, hi])
        elif part.isdigit():
            numbers.append(int(part))
    return numbers


def parse_citations(text: str, passages: Sequence[Passage]) -> Answer:
    """Extract citation markers from ``text`` and map them onto ``passages`` (pure function).

    Citations are listed once each, in order of first appearance. Invalid numbers are reported in
    order of first appearance and stripped from the returned text (a marker left with no valid
    number is removed entirely, together with the space before it).
    """
    by_number = {p.number: p for p in passages}
    citations: list[Citation] = []
    seen: set[int] = set()
    invalid: list[int] = []

    def replace(match: re.Match[str]) -> str:
        valid_here: list[int] = []
        for n in _marker_numbers(match.group(1)):
            if n in by_number:
                if n not in valid_here:
                    valid_here.append(n)
                if n not in seen:
                    seen.add(n)
                    p = by_number[n]
                    citations.append(Citation(n, p.chunk_id, p.doc_id, p.title))
            elif n not in invalid:
                invalid.append(n)
        if not valid_here:
            return ""
        lead = " " if match.group(0)[0].isspace() else ""
        return f"{lead}[{', '.join(str(n) for n in valid_here)}]"

    cleaned = _MARKER.sub(replace, text).strip()
    return Answer(text=cleaned, citations=citations, invalid_citations=invalid)


def _content_words(text: str) -> set[str]:
    """Lower-cased words minus stopwords and very short tokens, with a plural "s" stripped."""
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 2)
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words}


def is_no_answer(text: str) -> bool:
    """True when the model abstained (said it does not know) instead of answering."""
    head = text.strip().lower().replace("’", "'")[:80]
    return not head or head.startswith(NO_ANSWER.lower().rstrip(".")) or "i do not know" in head


def infer_citation(text: str, passages: Sequence[Passage], min_overlap: int = 2) -> Citation | None:
    """The passage sharing the most content words with ``text``, if it shares at least ``min_overlap``."""
    words = _content_words(text)
    best: tuple[int, int] | None = None  # (overlap, -number) so ties go to the earlier passage
    best_passage: Passage | None = None
    for p in passages:
        score = (len(words & _content_words(f"{p.title} {p.text}")), -p.number)
        if best is None or score > best:
            best, best_passage = score, p
    if best is None or best_passage is None or best[0] < min_overlap:
        return None
    p = best_passage
    return Citation(p.number, p.chunk_id, p.doc_id, p.title, inferred=True)


class AnswerStream:
    """Iterate to receive text deltas as the model writes them; then read :attr:`answer`.

    The deltas are the raw model output (markers not yet validated); :attr:`answer` holds the
    parsed, cleaned result and is available once iteration has finished.
    """

    def __init__(self, deltas: Iterator[str], finish: _Finisher) -> None:
        self._deltas = deltas
        self._finish = finish
        self._parts: list[str] = []
        self._answer: Answer | None = None

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> str:
        try:
            delta = next(self._deltas)
        except StopIteration:
            if self._answer is None:
                self._answer = self._finish("".join(self._parts))
            raise
        self._parts.append(delta)
        return delta

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            raise RuntimeError("AnswerStream.answer is available only after the stream is exhausted")
        return self._answer


class _Finisher:
    def __init__(self, passages: Sequence[Passage], infer: bool) -> None:
        self.passages = passages
        self.infer = infer

    def __call__(self, raw: str) -> Answer:
        answer = parse_citations(raw, self.passages)
        if self.infer and not answer.citations and not is_no_answer(answer.text):
            guess = infer_citation(answer.text, self.passages)
            if guess is not None:
                answer.citations.append(guess)
        return answer


class AnswerGenerator:
    """Builds the grounded prompt, calls the chat model, parses citations."""

    def __init__(
        self,
        client: ChatClient,
        max_tokens: int = 256,
        temperature: float = 0.0,
        context_chars: int = DEFAULT_CONTEXT_CHARS,
        infer_missing_citations: bool = True,
    ) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.context_chars = context_chars
        self.infer_missing_citations = infer_missing_citations

    def _messages(self, question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
        return build_messages(question, list(passages), context_chars=self.context_chars)

    def generate(self, question: str, passages: Sequence[Passage]) -> Answer:
        if not passages:
            return Answer(text=NO_ANSWER)
        raw = self.client.complete(
            self._messages(question, passages), max_tokens=self.max_tokens, temperature=self.temperature
        )
        return _Finisher(passages, self.infer_missing_citations)(raw)

    def stream(self, question: str, passages: Sequence[Passage]) -> AnswerStream:
        finish = _Finisher(passages, self.infer_missing_citations)
        if not passages:
            return AnswerStream(iter([NO_ANSWER]), finish)
        deltas = self.client.stream(
            self._messages(question, passages), max_tokens=self.max_tokens, temperature=self.temperature
        )
        return AnswerStream(iter(deltas), finish)

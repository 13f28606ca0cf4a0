"""The grounded-answer prompt.

Kept short and explicit on purpose. The passages (numbered from 1) and the rules go in the system
turn and the bare question is the user turn: with SmolLM2-135M-Instruct this layout gave grounded
answers, while putting the passages in the user turn made it copy whichever passage came first
(often with a wrong "[n]" taken from the passage headers). The 135M model still rarely writes
citation markers itself; :mod:`generation.answer` then infers one, marked ``inferred``. Capable
models (vLLM on a GPU) follow the citation rule as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generation.answer import Passage

NO_ANSWER = "I don't know."

SYSTEM_TEMPLATE = (
    "Answer the question using only these numbered passages:\n\n"
    "{context}\n\n"
    "After each sentence of your answer, write the number of the passage it comes from, like [1]. "
    f'If the passages do not contain the answer, reply exactly: "{NO_ANSWER}"'
)
USER_TEMPLATE = "{question}"

DEFAULT_CONTEXT_CHARS = 6000  # ≈1,500 tokens of passages: fits an 8k context with room to answer
_MAX_TITLE_CHARS = 150
_MIN_BODY_CHARS = 40


def trim_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary, with an ellipsis if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def format_passages(passages: Sequence[Passage], context_chars: int = DEFAULT_CONTEXT_CHARS) -> str:
    """Numbered passage block, at most ``context_chars`` characters in all.

    Each passage gets an equal share of the budget; what a short passage does not use is passed on
    to the ones after it. When the budget cannot give every passage ``_MIN_BODY_CHARS`` of text,
    passages are left out from the tail (their numbers are simply absent). Passages keep their
    order and their ``number``.
    """
    headers = [_header(p) for p in passages]
    count = len(passages)  # drop passages from the tail until an equal share holds each header + text
    while count and any(context_chars // count - len(h) < _MIN_BODY_CHARS for h in headers[:count]):
        count -= 1
    blocks: list[str] = []
    remaining = context_chars
    for i, (p, header) in enumerate(zip(passages[:count], headers, strict=False)):
        share = remaining // (count - i)
        body_limit = share - len(header)
        if body_limit < _MIN_BODY_CHARS:
            continue  # no room left: leave the passage out rather than show the model a stub
        block = header + trim_text(p.text, body_limit)
        blocks.append(block)
        remaining -= len(block) + 1  # +1 for the newline joining blocks
    return "\n".join(blocks)


def _header(p: Passage) -> str:
    title = trim_text(p.title, _MAX_TITLE_CHARS)
    return f"[{p.number}] {title}\n" if title else f"[{p.number}] "


def build_messages(
    question: str, passages: Sequence[Passage], context_chars: int = DEFAULT_CONTEXT_CHARS
) -> list[dict[str, str]]:
    """Chat messages asking ``question`` over ``passages`` (numbered by ``Passage.number``)."""
    system = SYSTEM_TEMPLATE.format(context=format_passages(passages, context_chars))
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": USER_TEMPLATE.format(question=question.strip())},
    ]

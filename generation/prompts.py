"""The grounded-answer prompt.

Kept short and explicit on purpose: the default model (SmolLM2-135M-Instruct) is tiny and follows
a one-line rule plus a worked example far better than a long policy. The passages go in the user
turn, numbered from 1, and the question is repeated after them so it is the last thing the model
reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generation.answer import Passage

NO_ANSWER = "I don't know."

SYSTEM_PROMPT = (
    "You answer questions using ONLY the numbered passages the user gives you.\n"
    "After each sentence, write the number of the passage it comes from in square brackets, "
    "like [1] or [2].\n"
    f'If the passages do not contain the answer, reply exactly: "{NO_ANSWER}"\n'
    "Keep the answer short: one to three sentences."
)

USER_TEMPLATE = (
    "Passages:\n{context}\n\nQuestion: {question}\nAnswer using the passages and cite them like [1]."
)

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
    user = USER_TEMPLATE.format(context=format_passages(passages, context_chars), question=question.strip())
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

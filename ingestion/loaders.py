"""Turn uploaded files (plain text, Markdown, HTML, PDF) into ``Document``s.

Every document gets ``metadata["source"]`` (the file name) and ``metadata["content_type"]``; Markdown and
HTML also get ``metadata["headings"]``: a JSON-serialisable list of ``[char_offset, heading_text]`` in the
extracted text, which the chunker uses to give each chunk its section. PDFs record ``metadata["pages"]``.
The document id, unless given, is the first 16 hex digits of the SHA-256 of the extracted text, so the
same content uploaded under two names gets the same id.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import PurePath
from typing import Any

from ingestion.errors import InvalidInputError, UnsupportedFileType
from ingestion.models import Document

CONTENT_TYPES: dict[str, str] = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(CONTENT_TYPES)

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "title"})  # what PDF generators default to
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def content_id(text: str) -> str:
    """Filename-independent document id: first 16 hex digits of SHA-256 of the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_file(
    filename: str, data: bytes, metadata: dict[str, Any] | None = None, doc_id: str | None = None
) -> Document:
    """Extract a ``Document`` from an uploaded file; the type comes from the extension (or, without one,
    from the content). Raises ``UnsupportedFileType`` or ``InvalidInputError``."""
    ext = _extension(filename, data)
    if not data or not data.strip():
        raise InvalidInputError(f"{filename!r} is empty")
    stem = PurePath(filename).stem or filename
    extra: dict[str, Any]
    if ext == ".pdf":
        text, title, extra = _load_pdf(filename, data)
    elif ext in (".html", ".htm"):
        text, title, headings = html_to_text(_decode(filename, data))
        extra = {"headings": headings}
    elif ext in (".md", ".markdown"):
        text = _decode(filename, data)
        md_headings = markdown_headings(text)
        title = next((h for h, level, _ in md_headings if level == 1), "")
        extra = {"headings": [[offset, h] for h, _, offset in md_headings]}
    else:
        text, title, extra = _decode(filename, data), "", {}
    if not text.strip():
        raise InvalidInputError(f"{filename!r} contains no text")
    meta: dict[str, Any] = {"source": filename, "content_type": CONTENT_TYPES[ext], **extra}
    meta.update(metadata or {})
    return Document(id=doc_id or content_id(text), text=text, title=title or stem, metadata=meta)


def _extension(filename: str, data: bytes) -> str:
    ext = PurePath(filename).suffix.lower()
    if not ext:
        return _sniff(data)
    if ext not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UnsupportedFileType(f"unsupported file type {ext!r} ({filename!r}); supported: {supported}")
    return ext


def _sniff(data: bytes) -> str:
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return ".pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return ".html"
    return ".txt"


def _decode(filename: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{filename!r} is not valid UTF-16 text: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if b"\x00" in data:
            raise InvalidInputError(f"{filename!r} looks like binary data, not text") from None
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if "\x00" in text:
        raise InvalidInputError(f"{filename!r} looks like binary data, not text")
    return text.replace("\r\n", "\n")


# ---------------------------------------------------------------------- Markdown


def markdown_headings(text: str) -> list[tuple[str, int, int]]:
    """``(heading_text, level, char_offset)`` of ATX (``# x``) and setext (underlined) headings outside
    code fences."""
    out: list[tuple[str, int, int]] = []
    in_fence = False
    offset = 0
    previous: tuple[str, int] | None = None  # last non-blank paragraph line and its offset
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if _FENCE.match(stripped):
            in_fence = not in_fence
            previous = None
        elif not in_fence:
            atx = _ATX_HEADING.match(stripped)
            underline = _SETEXT_UNDERLINE.match(stripped)
            if atx:
                out.append((atx.group(2).strip(), len(atx.group(1)), offset))
                previous = None
            elif underline and previous is not None:
                out.append((previous[0], 1 if underline.group(1)[0] == "=" else 2, previous[1]))
                previous = None
            else:
                previous = (stripped.strip(), offset) if stripped.strip() else None
        offset += len(line)
    return out


# ---------------------------------------------------------------------- HTML

_DROP_TAGS = ["script", "style", "nav", "noscript", "template", "svg", "iframe", "head"]
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = frozenset(
    {"p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "li", "dl", "dt",
     "dd", "table", "thead", "tbody", "tr", "pre", "blockquote", "figure", "figcaption", "form",
     "fieldset", "address", "details", "summary", "hr", "body", "html"}
)  # fmt: skip
_LINE_BREAKS = frozenset({"br", "td", "th"})
_SPACES = re.compile(r"\s+")


class _TextBuilder:
    """Accumulates readable text: collapsed whitespace, blocks on their own lines, paragraphs apart."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.tail = ""  # the trailing whitespace of the text so far ("" at the start)

    def text(self, value: str, pre: bool = False) -> None:
        if not pre:
            value = _SPACES.sub(" ", value)
            if self.length == 0 or self.tail.endswith((" ", "\n")):
                value = value.lstrip(" ")
        if value:
            self.parts.append(value)
            self.length += len(value)
            stripped = value.rstrip(" \n")
            self.tail = value[len(stripped) :] if stripped else self.tail + value

    def breaks(self, n: int) -> None:
        """End the current line; ``n=2`` also leaves a blank line."""
        if self.length == 0:
            return
        if self.tail.endswith(" ") and self.parts:
            trimmed = self.parts[-1].rstrip(" ")
            self.length -= len(self.parts[-1]) - len(trimmed)
            self.parts[-1] = trimmed
            self.tail = self.tail.rstrip(" ")
        missing = n - self.tail.count("\n")
        if missing > 0:
            self.text("\n" * missing, pre=True)

    def result(self) -> str:
        return "".join(self.parts).rstrip()


def html_to_text(html: str) -> tuple[str, str, list[list[int | str]]]:
    """Readable text, title (``<title>`` or first ``<h1>``) and ``[offset, heading]`` list of an HTML page."""
    from selectolax.lexbor import LexborHTMLParser  # imported here: only HTML uploads pay for it

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _SPACES.sub(" ", title_node.text()).strip() if title_node is not None else ""
    tree.strip_tags(_DROP_TAGS)
    out = _TextBuilder()
    headings: list[list[int | str]] = []
    root = tree.body or tree.root
    stack: list[tuple[Any, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, leaving = stack.pop()
        tag = node.tag
        if leaving:
            out.breaks(2 if tag in _BLOCKS and tag not in ("li", "tr", "dt", "dd") else 1)
        elif tag == "-text":
            out.text(node.text_content or "", pre=node.parent is not None and node.parent.tag == "pre")
        elif tag in _HEADINGS:
            heading = _SPACES.sub(" ", node.text()).strip()
            if heading:
                out.breaks(2)
                headings.append([out.length, heading])
                out.text(heading)
                out.breaks(2)
                if not title and tag == "h1":
                    title = heading
        elif tag in _LINE_BREAKS:
            if tag == "br":
                out.breaks(1)
            else:
                out.text(" ")
            stack.extend(_children_reversed(node))
        elif node.is_element_node or node.is_document_node:
            if tag in _BLOCKS:
                out.breaks(2 if tag not in ("li", "tr", "dt", "dd") else 1)
                stack.append((node, True))
            stack.extend(_children_reversed(node))
    return out.result(), title, headings


def _children_reversed(node: Any) -> list[tuple[Any, bool]]:
    children = []
    child = node.child
    while child is not None:
        children.append((child, False))
        child = child.next
    children.reverse()
    return children


# ---------------------------------------------------------------------- PDF


def _load_pdf(filename: str, data: bytes) -> tuple[str, str, dict[str, Any]]:
    from pypdf import PdfReader  # imported here: only PDF uploads pay for it

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidInputError(f"{filename!r} is an encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = str(info.title).strip() if info is not None and info.title else ""
        if title.lower() in _PLACEHOLDER_TITLES:
            title = ""
    except InvalidInputError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on bad input
        raise InvalidInputError(f"{filename!r} is not a readable PDF: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InvalidInputError(f"{filename!r} has no extractable text (a scanned PDF without a text layer?)")
    return text, title, {"pages": len(pages)}

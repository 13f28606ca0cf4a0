"""File loaders: text, Markdown, HTML and a real PDF built with reportlab."""

from __future__ import annotations

import io
import json

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from ingestion.chunking import RecursiveChunker
from ingestion.errors import InvalidInputError, UnsupportedFileType
from ingestion.loaders import SUPPORTED_EXTENSIONS, content_id, load_file

HTML = b"""<!DOCTYPE html><html><head><title>Cell  Biology Notes</title>
<style>p { color: red }</style><script>var secret = "script text";</script></head>
<body><nav><a href="/">Home</a> <a href="/about">Menu link</a></nav>
<h1>Mitochondria</h1><p>The <b>powerhouse</b>
of the   cell.</p><noscript>enable javascript</noscript>
<h2>Function</h2><ul><li>ATP synthesis</li><li>Calcium storage</li></ul>
<p>Line one<br>Line two</p><script>alert("x")</script></body></html>"""

MARKDOWN = """Intro line before any heading.

# Protein Folding

Proteins fold into shapes.

## Chaperones
Chaperones help folding.

Misfolding
----------

```
# not a heading inside code
```
Amyloid plaques.
"""


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    if title:
        pdf.setTitle(title)
    for text in pages:
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def test_supported_extensions() -> None:
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf"} == set(SUPPORTED_EXTENSIONS)


def test_plain_text_utf8_and_latin1_fallback() -> None:
    doc = load_file("notes.txt", "Café au lait — naïve.\r\nSecond line".encode())
    assert doc.text == "Café au lait — naïve.\nSecond line"
    assert doc.title == "notes"
    assert doc.metadata["source"] == "notes.txt"
    assert doc.metadata["content_type"] == "text/plain"
    assert doc.id == content_id(doc.text)
    assert len(doc.id) == 16
    assert load_file("old.txt", b"caf\xe9 cr\xe8me").text == "café crème"


def test_same_content_same_id_and_explicit_id_and_metadata() -> None:
    a = load_file("a.txt", b"identical content")
    b = load_file("b.txt", b"identical content")
    assert a.id == b.id
    assert load_file("c.txt", b"other content").id != a.id
    doc = load_file("a.txt", b"identical content", metadata={"lang": "en"}, doc_id="my-doc")
    assert doc.id == "my-doc"
    assert doc.metadata["lang"] == "en"
    assert doc.metadata["source"] == "a.txt"


def test_markdown_title_and_headings() -> None:
    doc = load_file("guide.md", MARKDOWN.encode())
    assert doc.text == MARKDOWN  # nothing stripped
    assert doc.title == "Protein Folding"
    assert doc.metadata["content_type"] == "text/markdown"
    headings = doc.metadata["headings"]
    assert [h for _, h in headings] == ["Protein Folding", "Chaperones", "Misfolding"]
    for offset, heading in headings:
        assert doc.text[offset:].lstrip("# ").startswith(heading)
    json.dumps(doc.metadata)  # JSON-serialisable
    assert load_file("untitled.markdown", b"no heading here").title == "untitled"


def test_html_readable_text_title_and_headings() -> None:
    doc = load_file("page.html", HTML)
    assert doc.title == "Cell Biology Notes"
    assert doc.metadata["content_type"] == "text/html"
    for dropped in ("script text", "alert", "color: red", "Menu link", "enable javascript"):
        assert dropped not in doc.text
    assert "The powerhouse of the cell." in doc.text
    assert "Line one\nLine two" in doc.text
    assert "ATP synthesis\nCalcium storage" in doc.text
    assert doc.text.startswith("Mitochondria\n\n")
    headings = doc.metadata["headings"]
    assert [h for _, h in headings] == ["Mitochondria", "Function"]
    for offset, heading in headings:
        assert doc.text[offset : offset + len(heading)] == heading
    no_title = load_file("x.htm", b"<html><body><h1>First  Heading</h1><p>body</p></body></html>")
    assert no_title.title == "First Heading"


def test_pdf_pages_and_title() -> None:
    data = make_pdf(["Alpha page talks about insulin.", "Beta page talks about glucose."], title="Diabetes")
    doc = load_file("paper.pdf", data)
    assert "insulin" in doc.text
    assert "glucose" in doc.text
    assert doc.text.index("insulin") < doc.text.index("glucose")
    assert doc.metadata["pages"] == 2
    assert doc.metadata["content_type"] == "application/pdf"
    assert doc.title == "Diabetes"
    assert load_file("Report 2024.PDF", make_pdf(["Only page."])).title == "Report 2024"


def test_missing_extension_is_sniffed() -> None:
    assert load_file("upload", make_pdf(["Sniffed pdf text."])).metadata["content_type"] == "application/pdf"
    assert load_file("upload", HTML).title == "Cell Biology Notes"
    assert load_file("README", b"plain words").metadata["content_type"] == "text/plain"


def test_unsupported_type_names_extension_and_supported_ones() -> None:
    with pytest.raises(UnsupportedFileType) as err:
        load_file("report.docx", b"PK\x03\x04...")
    assert ".docx" in err.value.message
    assert ".pdf" in err.value.message


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage without xref or trailer"),
        ("notpdf.pdf", b"just some text pretending"),
        ("empty.txt", b""),
        ("blank.md", b"   \n\n  "),
        ("binary.txt", b"\x00\x01\x02\xff\xfe\x00garbage\x00"),
        ("empty.html", b"<html><head><title>t</title></head><body><script>x()</script></body></html>"),
        ("blank.pdf", make_pdf([""])),
    ],
)
def test_invalid_content_raises_invalid_input(filename: str, data: bytes) -> None:
    with pytest.raises(InvalidInputError) as err:
        load_file(filename, data)
    assert filename in err.value.message


def test_sections_flow_from_loader_to_chunks() -> None:
    paragraphs = "\n\n".join(f"Sentence number {i} about the topic." for i in range(12))
    md = f"# Intro\n\n{paragraphs}\n\n## Methods\n\n{paragraphs}\n"
    doc = load_file("doc.md", md.encode())
    chunks = RecursiveChunker(chunk_size=40, chunk_overlap=5).split(doc)
    sections = [c.section for c in chunks]
    assert sections[0] == "Intro"
    assert sections[-1] == "Methods"
    methods_at = doc.metadata["headings"][1][0]
    for chunk in chunks:
        assert chunk.section == ("Methods" if chunk.start >= methods_at else "Intro")

"""Write a benchmark's table into bench/README.md between its markers (``<!-- key:begin -->``/``end``)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_block(key: str, heading: str, block: str) -> None:
    """Replace the text between the ``key`` markers, or append ``heading`` and the markers at the end."""
    text = README.read_text()
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    new = f"{begin}\n{block}\n{end}"
    if begin in text:
        text = text[:text.index(begin)] + new + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{new}\n"
    README.write_text(text)

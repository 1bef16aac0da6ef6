"""A settings file in CSV: its header checked, its rows numbered by line for errors."""

from __future__ import annotations

import csv
from pathlib import Path


def csv_rows(path: str | Path, header: tuple[str, ...], error: type[ValueError],
             what: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows after the header, stripped, each with its line number.

    `error` (naming the file, and the line) when the file cannot be read, its header is
    not `header`, or a row has another number of columns.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{name}: cannot read the {what}: {exc}") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows or tuple(c.strip() for c in rows[0]) != header:
        raise error(f"{name}:1: the header must be {','.join(header)}")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise error(f"{name}:{line}: {len(row)} columns, expected {len(header)}")
        out.append((line, [c.strip() for c in row]))
    return out

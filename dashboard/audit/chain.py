"""The line format of the audit files and the check of one file's hash chain.

Every line is one JSON object with `n` (its line number, from 1) and `prev` (the
SHA-256 of the previous line's bytes; for line 1 a hash of the file's name). The
last line of a finished file is a seal (`"seal": true`) whose `prev` is the final
hash. A change, a removal or an insertion breaks the chain at that line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


def line_hash(raw: bytes) -> str:
    """The SHA-256 (hex) of one line, without its newline."""
    return hashlib.sha256(raw).hexdigest()


def genesis(file_name: str) -> str:
    """What line 1 of a file links to: a hash of the file's own name."""
    return line_hash(f"citybrain-audit {file_name}".encode())


def encode_line(fields: dict[str, Any], n: int, prev: str) -> bytes:
    """One line (without newline): the fields, then its number and the previous hash."""
    return orjson.dumps({**fields, "n": n, "prev": prev})


def seal_line(n: int, prev: str, at_ms: int) -> bytes:
    """The last line of a finished file: it carries the final hash as its `prev`."""
    return encode_line({"seal": True, "ts": at_ms, "lines": n - 1}, n, prev)


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A line as a dict, or None when it is not an audit line."""
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("n"), int) \
            or not isinstance(entry.get("prev"), str):
        return None
    return entry


@dataclass(frozen=True)
class Head:
    """A line that must exist with this hash (recorded elsewhere, e.g. in Redis)."""

    n: int
    hash: str


@dataclass(frozen=True)
class FileCheck:
    """The result of checking one file: the first problem (line and what), or none."""

    name: str
    lines: int
    sealed: bool
    torn: bool
    problem_line: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        """No line changed, removed or inserted."""
        return self.problem_line is None


def split_lines(raw: bytes) -> tuple[list[bytes], bool]:
    """The complete lines, and whether a last line without newline was left (torn)."""
    parts = raw.split(b"\n")
    return parts[:-1], parts[-1] != b""


def check_file(path: Path, head: Head | None = None) -> FileCheck:
    """Check one file's chain (and its end against `head`); name the first bad line."""
    lines, torn = split_lines(path.read_bytes())
    hashes = [line_hash(raw) for raw in lines]
    sealed = False

    def found(line: int, what: str) -> FileCheck:
        return FileCheck(path.name, len(lines), sealed, torn, line, what)

    def link(i: int) -> str:  # what line i (1-based) must carry as `prev`
        return genesis(path.name) if i == 1 else hashes[i - 2]

    for i, raw in enumerate(lines, start=1):
        entry = parse_line(raw)
        if sealed:
            return found(i, "inserted after the seal")
        if entry is None:
            after = parse_line(lines[i]) if i < len(lines) else None
            if after is not None and after["n"] == i and after["prev"] == link(i):
                return found(i, "inserted (not an audit line)")
            return found(i, "changed (not an audit line)")
        if entry["n"] == i and entry["prev"] == link(i):
            sealed = entry.get("seal") is True
            continue
        if i >= 2 and raw == lines[i - 2]:
            return found(i, f"inserted (a copy of line {i - 1})")
        if i >= 2 and entry["n"] == i - 1 and entry["prev"] == link(i - 1):
            return found(i - 1, "inserted")
        if entry["prev"] == link(i):
            return found(i, "changed (its line number)")
        if entry["n"] > i:
            missing = entry["n"] - i
            return found(i, f"removed ({missing} line{'s' if missing > 1 else ''} missing "
                            f"before the line now here, which says it is line {entry['n']})")
        return found(i - 1, "changed") if i >= 2 else found(i, "changed")
    if head is not None:
        if len(lines) < head.n:
            return found(len(lines) + 1, f"removed (lines {len(lines) + 1}-{head.n} are "
                                         "missing at the end; Redis recorded them)")
        if hashes[head.n - 1] != head.hash:
            return found(head.n, "changed (differs from the hash Redis recorded)")
    return FileCheck(path.name, len(lines), sealed, torn)

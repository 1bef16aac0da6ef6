"""A page's JS heap by kind of object, and what grew between two such summaries.

    python bench/heap_snapshot.py A.json B.json [--top 40]

`take(cdp)` takes a V8 heap snapshot through a Chrome DevTools session (Playwright's
`new_cdp_session`) after a full GC and sums it by node type and name (a constructor's name
for objects, a function's for closures; strings counted together), so a snapshot of tens
of megabytes becomes a summary of a few hundred kilobytes that two points of a soak can
be compared by. The command line prints the kinds whose retained count or self size grew
most from A to B.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

STRING_TYPES = {"string", "concatenated string", "sliced string"}
NAME_CHARS = 100
NODE_ID = re.compile(r" @\d+$")  # V8 names some internals after a node id: one kind


def summarize(snapshot: dict[str, Any]) -> dict[str, list[int]]:
    """{"type:name": [count, self_size]} over every node of a parsed `.heapsnapshot`."""
    meta = snapshot["snapshot"]["meta"]
    fields = meta["node_fields"]
    width = len(fields)
    type_at, name_at, size_at = (fields.index(f) for f in ("type", "name", "self_size"))
    type_names = meta["node_types"][type_at]
    strings = snapshot["strings"]
    nodes = snapshot["nodes"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for at in range(0, len(nodes), width):
        kind = type_names[nodes[at + type_at]]
        if kind in STRING_TYPES:
            key = "(strings)"
        else:
            name = NODE_ID.sub("", strings[nodes[at + name_at]])
            key = f"{kind}:{name[:NAME_CHARS]}"
        total = totals[key]
        total[0] += 1
        total[1] += nodes[at + size_at]
    return dict(totals)


def take(cdp: Any) -> dict[str, list[int]]:
    """Collect garbage, snapshot the heap over `cdp` and return its summary."""
    chunks: list[str] = []

    def chunk(event: dict[str, Any]) -> None:
        chunks.append(event["chunk"])

    cdp.on("HeapProfiler.addHeapSnapshotChunk", chunk)
    try:
        cdp.send("HeapProfiler.enable")
        cdp.send("HeapProfiler.collectGarbage")
        cdp.send("HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
    finally:
        cdp.remove_listener("HeapProfiler.addHeapSnapshotChunk", chunk)
        cdp.send("HeapProfiler.disable")
    return summarize(json.loads("".join(chunks)))


def growth(before: dict[str, list[int]], after: dict[str, list[int]],
           top: int) -> list[tuple[str, int, int, int, int]]:
    """The `top` kinds that grew most in self size: (kind, count, +count, size, +size)."""
    rows = []
    for key in before.keys() | after.keys():
        count_a, size_a = before.get(key, [0, 0])
        count_b, size_b = after.get(key, [0, 0])
        rows.append((key, count_b, count_b - count_a, size_b, size_b - size_a))
    rows.sort(key=lambda row: row[4], reverse=True)
    return rows[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    before = json.loads(args.before.read_text())["kinds"]
    after = json.loads(args.after.read_text())["kinds"]
    total = sum(size for _, size in after.values()) - sum(size for _, size in before.values())
    print(f"self size {total / 1024:+,.0f} KB in all; the kinds that grew most:")
    print(f"{'+KB':>9} {'KB':>9} {'+count':>8} {'count':>8}  kind")
    for key, count, more, size, grew in growth(before, after, args.top):
        print(f"{grew / 1024:>+9.1f} {size / 1024:>9.1f} {more:>+8} {count:>8}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

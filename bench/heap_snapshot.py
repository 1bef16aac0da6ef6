"""A page's JS heap by kind of object, and what grew between two such summaries.

    python bench/heap_snapshot.py A.json B.json [--top 40]
    python bench/heap_snapshot.py A.heapsnapshot B.heapsnapshot --retainers KIND

`take(cdp)` takes a V8 heap snapshot through a Chrome DevTools session (Playwright's
`new_cdp_session`) after a full GC and sums it by node type and name (a constructor's name
for objects, a function's for closures; strings counted together), so a snapshot of tens
of megabytes becomes a summary of a few hundred kilobytes that two points of a soak can
be compared by. The command line prints the kinds whose retained count or self size grew
most from A to B. With `--retainers KIND` and two whole snapshots (`take(cdp, keep=...)`
writes one, `bench/soak.py --heap-raw` keeps them), it lists what holds the objects of
that kind: the chains of holders whose count grew most from A to B.
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


def take(cdp: Any, keep: Path | None = None) -> dict[str, list[int]]:
    """Collect garbage, snapshot the heap over `cdp` and return its summary.

    `keep`: the whole snapshot is written there too.
    """
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
    text = "".join(chunks)
    if keep is not None:
        keep.write_text(text)
    return summarize(json.loads(text))


def held_by_chain(snapshot: dict[str, Any], kind: str, depth: int = 4) -> dict[str, int]:
    """How the nodes of `kind` ("type:name") are held: chain -> how many.

    A chain is the first `depth` holders up from the node that are not closures' scopes
    (V8's `system / Context`, passed through), each with the edge that holds the next.
    """
    meta = snapshot["snapshot"]["meta"]
    width, edge_width = len(meta["node_fields"]), len(meta["edge_fields"])
    nodes, edges, strings = snapshot["nodes"], snapshot["edges"], snapshot["strings"]
    node_types = meta["node_types"][0]
    edge_types = meta["edge_types"][0]
    count_at = meta["node_fields"].index("edge_count")
    to_at = meta["edge_fields"].index("to_node")

    def label(at: int) -> str:
        name = NODE_ID.sub("", strings[nodes[at + 1]])[:60]
        return f"{node_types[nodes[at]]}:{name}"

    holders_of: dict[int, list[tuple[int, int]]] = defaultdict(list)  # node -> (holder, edge)
    edge = 0
    for at in range(0, len(nodes), width):
        for _ in range(nodes[at + count_at]):
            if edge_types[edges[edge]] != "weak":
                holders_of[edges[edge + to_at]].append((at, edge))
            edge += edge_width
    chains: dict[str, int] = defaultdict(int)
    for at in range(0, len(nodes), width):
        if label(at) != kind:
            continue
        parts: list[str] = []
        node, seen = at, {at}
        for _ in range(depth * 8):
            holders = [h for h in holders_of.get(node, []) if h[0] not in seen]
            if not holders or len(parts) == depth:
                break
            holder, via = holders[0]
            kind_of_edge = edge_types[edges[via]]
            edge_name = (strings[edges[via + 1]] if kind_of_edge not in ("element", "hidden")
                         else "[]")
            holder_label = label(holder)
            if "system / Context" in holder_label:  # a scope: only its variable's name
                if not (parts and parts[-1].startswith("<-") and " " not in parts[-1]):
                    parts.append(f"<-{edge_name}-")
            else:
                parts.append(f"<-{edge_name}- {holder_label}")
            node = holder
            seen.add(node)
        chains[" ".join(parts)] += 1
    return dict(chains)





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
    parser.add_argument("--depth", type=int, default=4, help="holders per chain")
    parser.add_argument("--retainers", metavar="KIND",
                        help='with whole snapshots: what holds the new nodes of KIND ("type:name")')
    args = parser.parse_args()
    if args.retainers:
        was = held_by_chain(json.loads(args.before.read_text()), args.retainers, args.depth)
        now = held_by_chain(json.loads(args.after.read_text()), args.retainers, args.depth)
        grew = sorted(((now.get(c, 0) - was.get(c, 0), now.get(c, 0), c)
                       for c in was.keys() | now.keys()), reverse=True)
        print(f"{args.retainers}: {sum(was.values())} -> {sum(now.values())}; "
              "the chains of holders that grew most:")
        print(f"{'+count':>7} {'count':>7}  chain")
        for more, count, chain in grew[:args.top]:
            print(f"{more:>+7} {count:>7}  {chain}")
        return 0
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

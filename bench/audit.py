"""The audit file writer: entries per second with fsync per entry, and a page read.

    .venv/bin/python bench/audit.py [--entries 2000] [--dir /path/on/the/real/disk]

The baseline, measured in the same run on the same folder, is the same lines
appended without fsync: the ratio is what durability per entry costs. Then a day
of `--entries` entries is paged through (100 a page) and the time per page is
printed against one plain read of the same files. Use a folder on the disk the
audit files will live on (the default is a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.audit.chain import encode_line
from dashboard.audit.reader import AuditQuery, AuditReader
from dashboard.audit.writer import AuditWriter

ZONE = ZoneInfo("Asia/Shanghai")
ENTRY = {"user": "xuhui", "role": "district", "address": "10.0.0.7", "action": "note",
         "target": "X1", "area": "310104", "detail": "现场已到 " * 8}


def main() -> None:
    """Print entries per second with and without fsync, and the page read time."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--dir", default="")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="audit-bench-"))
    plain = root / "plain.jsonl"
    start = time.perf_counter()
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    for i in range(args.entries):
        os.write(fd, encode_line({**ENTRY, "ts": i}, i + 1, "0" * 64) + b"\n")
    os.close(fd)
    baseline = args.entries / (time.perf_counter() - start)
    clock = [time.time()]
    writer = AuditWriter(root / "audit", ZONE, 400, lambda: clock[0])
    start = time.perf_counter()
    for i in range(args.entries):
        clock[0] += 0.001
        writer.append({**ENTRY, "ts": int(clock[0] * 1000) + i})
    durable = args.entries / (time.perf_counter() - start)
    writer.close()
    print(f"append without fsync (baseline): {baseline:,.0f} entries/s")
    print(f"append + fsync per entry:        {durable:,.0f} entries/s  "
          f"(ratio {durable / baseline:.3f})")
    reader = AuditReader(root / "audit", ZONE, None)
    start = time.perf_counter()
    for path in (root / "audit").iterdir():
        path.read_bytes()
    raw_read = time.perf_counter() - start
    pages, cursor, start = 0, "", time.perf_counter()
    while True:
        _, cursor = reader.page(AuditQuery(before=cursor or "", limit=100))
        pages += 1
        if not cursor:
            break
    per_page = (time.perf_counter() - start) / pages
    print(f"page of 100 from a day of {args.entries} entries: {per_page * 1000:.1f} ms "
          f"({per_page / raw_read:.0f}x one raw read of the day's files, {pages} pages)")


if __name__ == "__main__":
    main()

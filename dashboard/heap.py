"""Keep the garbage collector off what a process builds once at start.

A full collection walks every tracked object. A process holding the city (its
boundaries, road network, the app) has hundreds of thousands of them, so each full
collection paused a push round for up to 100 ms (`bench/web_load.py --push`). What
start-up built lives as long as the process: `gc.freeze` moves it out of the
collector's sight (it is still freed by reference counting if it is ever dropped).
"""

from __future__ import annotations

import gc


def freeze_start_up() -> None:
    """Collect once, then let collections skip every object alive now (call once per process)."""
    gc.collect()
    gc.freeze()

"""The page Dash serves: its own template with the reload-on-failure script inlined.

The script (`reload.js`) reloads the page when one of its scripts or style
sheets fails to load, or when the renderer has not started: a wall PC that
boots with the server must not stay blank. The heap guard (`heap_guard.js`)
reloads it when its JS heap passes the ceiling. Both are inline (no request of
their own that could fail) and offline.
"""

from __future__ import annotations

import json
from pathlib import Path

from dashboard.screen import heap_guard
from dashboard.screen.layout import SCREEN_SLOT

RELOAD_JS = Path(__file__).with_name("reload.js")

TEMPLATE = """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        <script id="cockpit-reload">@RELOAD@</script>
        <script id="cockpit-heap-guard">@HEAP_GUARD@</script>
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


def index_page(start_s: float, heap_ceiling_mb: float = 0) -> str:
    """The `index_string` for the app: Dash's placeholders and the inline scripts.

    The page counts as started once the skeleton's slot holds the screen (or the
    message that replaces it); `start_s` is how long it may take. `heap_ceiling_mb`:
    the heap guard's ceiling (0: off).
    """
    script = (RELOAD_JS.read_text(encoding="utf-8")
              .replace("@START_MS@", str(round(start_s * 1000)))
              .replace("@READY@", json.dumps(f"#{SCREEN_SLOT} > *")))
    return (TEMPLATE.replace("@RELOAD@", script)
            .replace("@HEAP_GUARD@", heap_guard.script(heap_ceiling_mb)))

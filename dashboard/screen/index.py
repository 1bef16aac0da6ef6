"""The page Dash serves: its own template with the reload-on-failure script inlined.

The script (`reload.js`) reloads the page when one of its scripts or style
sheets fails to load, or when the renderer has not started: a wall PC that
boots with the server must not stay blank. It is inline (no request of its
own that could fail) and offline.
"""

from __future__ import annotations

from pathlib import Path

RELOAD_JS = Path(__file__).with_name("reload.js")

TEMPLATE = """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        <script id="cockpit-reload">@RELOAD@</script>
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


def index_page() -> str:
    """The `index_string` for the app: Dash's placeholders and the inline reload script."""
    return TEMPLATE.replace("@RELOAD@", RELOAD_JS.read_text(encoding="utf-8"))

"""A refusal inside a Dash callback answers without an HTTP error.

The scope is checked on the server in every callback (`source.view`,
`require_area`, the REST routes' own checks), which log and audit the refusal
and raise `Forbidden`. The read API answers that with 403; a callback must
not, since the page's renderer reports every failed update as an error. The
app's `on_error` turns the refusal into `PreventUpdate` (204, no data leaves),
and `render` shows a message instead of the screen.
"""

from __future__ import annotations

from typing import Any

from dash import html
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import Forbidden

from dashboard.i18n import t


def on_error(error: Exception) -> Any:
    """Dash's `on_error` for every callback: a refusal updates nothing; anything else raises."""
    if isinstance(error, Forbidden):
        raise PreventUpdate from error  # 204: no output changes
    raise error


def refused(lang: str) -> html.Div:
    """What the screen shows for an area outside the user's scope (until it goes back)."""
    return html.Div(t("out_of_scope", lang), id="scope-refused", className="scope-refused",
                    role="alert")

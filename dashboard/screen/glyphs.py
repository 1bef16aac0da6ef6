"""The map's label glyphs, served locally: `/glyphs/<fontstack>/<range>.pbf`.

MapLibre draws text (the incident counts) only with a style's `glyphs` URL. The
font is Noto Sans Regular, range 0-255 (digits and Latin), as the npm package
`tileserver-gl-styles` 2.0.0 ships it (`dashboard/data/glyphs/`, SIL Open Font
Licence, see its LICENSE.md). Every font stack gets that font; another range gets an
empty glyph set (a valid, empty protobuf), so no label ever needs the network.
"""

from __future__ import annotations

import functools
import re

import flask

from dashboard.geography import DATA_DIR

GLYPH_FILE = DATA_DIR / "glyphs" / "Noto Sans Regular" / "0-255.pbf"
SERVED_RANGE = "0-255"
_RANGE = re.compile(r"\d{1,5}-\d{1,5}")

glyphs = flask.Blueprint("glyphs", __name__)


@functools.lru_cache(maxsize=1)
def _font() -> bytes:
    return GLYPH_FILE.read_bytes()


@glyphs.get("/glyphs/<fontstack>/<glyph_range>.pbf")
def glyph_range(fontstack: str, glyph_range: str) -> flask.Response:
    """One range of glyphs of a font stack (the shipped font for every stack)."""
    if not _RANGE.fullmatch(glyph_range):
        flask.abort(404)
    body = _font() if glyph_range == SERVED_RANGE else b""
    response = flask.Response(body, mimetype="application/x-protobuf")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response

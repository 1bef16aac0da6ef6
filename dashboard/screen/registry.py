"""The screen's callbacks, declared once and attached to each app through Dash's public API.

`dash.callback` would put them into Dash's global registry, which the first app
to serve a request takes and empties; `create_app` builds one app per call (the
tests build many in one process). So the screen's modules declare their
callbacks with `@SCREEN.callback(...)` (the same arguments as `app.callback`)
and `SCREEN.attach(app)` registers them with `app.callback` and
`app.clientside_callback`. Declared at import only; nothing changes per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dash

F = Callable[..., Any]


@dataclass
class Callbacks:
    """Callbacks declared by the screen's modules, to attach to every app."""

    server: list[tuple[F, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    clientside: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def callback(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Declare a server callback (the arguments of `app.callback`)."""
        def declare(func: F) -> F:
            self.server.append((func, args, kwargs))
            return func
        return declare

    def clientside_callback(self, function: Any, *args: Any, **kwargs: Any) -> None:
        """Declare a browser-side callback (the arguments of `app.clientside_callback`)."""
        self.clientside.append((function, args, kwargs))

    def attach(self, app: dash.Dash) -> None:
        """Register every declared callback with this app."""
        for func, args, kwargs in self.server:
            app.callback(*args, **kwargs)(func)
        for function, args, kwargs in self.clientside:
            app.clientside_callback(function, *args, **kwargs)


SCREEN = Callbacks()

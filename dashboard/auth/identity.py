"""Who is signed in: the one record the accounts, the sessions and the guard share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    """Who is signed in: a name, a role and the area they may see."""

    name: str
    role: str
    scope: str  # area id: the city for `city` and `wall`, a district or a street otherwise

    @property
    def can_act(self) -> bool:
        """Whether the user may change incidents (every role but the wall screen)."""
        return self.role != "wall"

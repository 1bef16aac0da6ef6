"""Risk: the latest value per area and indicator; the model that scores an area 0-100."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from dashboard.i18n import label
from dashboard.kinds.base import (
    Demo,
    Event,
    Fields,
    RegisterKind,
    RowContext,
    identifier,
    required_number,
)
from dashboard.risk_tree import FLAT_CATEGORY, RiskTree

RISK_LEVELS = ("normal", "blue", "yellow", "orange", "red")


@dataclass(frozen=True, slots=True)
class RiskReading:
    """An area's latest value of one indicator."""

    area: str
    indicator: str
    value: float
    ts: int


@dataclass(frozen=True)
class RiskModel:
    """Weights, saturations and warning thresholds of the risk score (and its tree, if any).

    With a tree (`CITYBRAIN_RISK_TREE`) `weights` are its indicators' points; without,
    the flat model is one category (`risk`) holding every indicator.
    """

    weights: Mapping[str, tuple[float, float]]
    thresholds: tuple[float, float, float, float]
    tree: RiskTree | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RiskModel:
        """The configuration's model (`CITYBRAIN_RISK_TREE`, else `..._RISK_MODEL`)."""
        tree = settings.risk_tree
        return cls(tree.flat() if tree else settings.risk_model, settings.risk_thresholds,
                   tree)

    def category_of(self, indicator: str) -> str:
        """The category of an indicator (`other` when the tree does not hold it)."""
        if self.tree is None:
            return FLAT_CATEGORY
        return self.tree.category_of(indicator) or "other"

    def categories(self, factors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The factors by category: its points (its indicators' sum), largest first."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for f in factors:
            groups.setdefault(self.category_of(f["indicator"]), []).append(f)
        out = [{"category": code, "contribution": round(sum(f["contribution"] for f in items), 2),
                "indicators": items} for code, items in groups.items()]
        out.sort(key=lambda c: (-c["contribution"], c["category"]))
        return out

    def name(self, code: str, group: str, lang: str) -> str:
        """A category's or indicator's name: the tree's own, else the label of the code."""
        named = self.tree.name(code, lang) if self.tree else None
        return named or label(group, code, lang)

    def score(self, indicators: Mapping[str, float]) -> float:
        """The 0-100 score of these indicator values."""
        return min(100.0, sum(f["contribution"] for f in self.factors(indicators)))

    def scores(self, indicators: Mapping[str, float]) -> bool:
        """Whether these indicators make a scored area: at least one has a weight.

        An indicator the model does not weigh (say an air-quality reading sent as a
        risk indicator) is shown with 0 points, but never makes an area scored on its
        own, so it cannot pull the means of the areas around it down.
        """
        return any(self.weights.get(name, (0.0, 1.0))[0] > 0 for name in indicators)

    def factors(self, indicators: Mapping[str, float]) -> list[dict[str, Any]]:
        """Each indicator's value and the points it adds, largest first."""
        out: list[dict[str, Any]] = []
        for name, value in indicators.items():
            weight, saturation = self.weights.get(name, (0.0, 1.0))
            points = weight * min(max(value, 0.0) / saturation, 1.0)
            out.append({"indicator": name, "value": value, "contribution": round(points, 2)})
        out.sort(key=lambda f: (-f["contribution"], f["indicator"]))
        return out

    def level(self, score: float | None) -> str:
        """The warning colour of a score."""
        if score is None:
            return "normal"
        index = sum(1 for threshold in self.thresholds if score >= threshold)
        return RISK_LEVELS[index]


class RiskKind(RegisterKind):
    """`kind=risk`: indicator values of areas (the view scores them with `RiskModel`)."""

    name = "risk"
    doc = "Risk scores per area that explain themselves (weighted indicators)."
    labels: ClassVar[tuple[str, ...]] = ("indicator", "risk_level")
    register = "risk"
    record = RiskReading
    block = "risk"

    def parse(self, fields: Fields) -> tuple[Fields, bool]:
        """Indicator and a finite value; area_id or a point."""
        identifier(fields, "indicator")
        value = required_number(fields, "value")
        return {"indicator": fields["indicator"], "value": repr(value)}, False

    def key(self, event: Event, area: str) -> str:
        """One register per area and indicator."""
        return f"{area}|{event.data['indicator']}"

    def feeds(self, data: Fields, settings: Any) -> bool:
        """Indicator readings stay in the panels; an area's level change reaches the feed."""
        return False

    def group(self, event: Event, area: str) -> str | None:
        """An area's indicators decide its warning level together."""
        return area

    def group_model(self, settings: Any) -> dict[str, Any] | None:
        """The risk model for the script, which scores an area as `RiskModel.score` does."""
        weights = RiskModel.from_settings(settings).weights
        return {"w": {name: list(pair) for name, pair in weights.items()},
                "t": list(settings.risk_thresholds), "l": list(RISK_LEVELS)}


    def row(self, event: Event, area: str, feed: str, ctx: RowContext) -> dict[str, Any]:
        """The register write; with risk work orders on, where the area's order would go."""
        row = super().row(event, area, feed, ctx)
        if ctx.settings.risk_orders:
            row["po"] = ctx.order_place(area, event.ts)
        return row

    def value(self, event: Event, area: str, ctx: RowContext) -> dict[str, Any]:
        """The reading."""
        return {"area": area, "indicator": event.data["indicator"],
                "value": float(event.data["value"]), "ts": event.ts}

    def feed_text(self, item: Mapping[str, Any], lang: str) -> tuple[str, str, str]:
        """'Risk', the warning level before and after, the score and the indicator that moved it.

        (A row written before level changes were the feed's news: the value, the indicator.)
        `indicator_name`, when the screen adds it, is the indicator tree's name of it.
        """
        indicator = item.get("indicator_name") or label("indicator", item.get("indicator"), lang)
        if item.get("lv"):
            change = (f"{label('risk_level', item.get('from'), lang)} → "
                      f"{label('risk_level', item.get('lv'), lang)}")
            score = item.get("score")
            shown = f"{float(score):.0f}" if isinstance(score, int | float) else ""
            return (label("kind", "risk", lang), change, f"{shown} · {indicator}".strip(" ·"))
        value = item.get("value")
        try:
            shown = f"{float(value):.4g}"  # type: ignore[arg-type]
        except (TypeError, ValueError):
            shown = str(value or "")
        return (label("kind", "risk", lang), shown, indicator)

    def demo(self, sim: Any) -> Demo | None:
        """Indicators of the finest areas drifting around a per-area level."""
        return sim.risk_demo()


def order_model(settings: Any) -> dict[str, Any] | None:
    """What the script needs to open risk work orders (`ro`), or None when they are off.

    The level whose entry opens one, each indicator's category, and the names of the
    categories and levels in the screen's language (for the order's title).
    """
    if not settings.risk_orders:
        return None
    model, lang = RiskModel.from_settings(settings), settings.lang
    categories = {name: model.category_of(name) for name in model.weights}
    return {"lv": RISK_LEVELS.index(settings.risk_orders) + 1, "c": categories,
            "cn": {c: model.name(c, "risk_category", lang) for c in set(categories.values())},
            "ln": {level: label("risk_level", level, lang) for level in RISK_LEVELS}}


KIND = RiskKind()

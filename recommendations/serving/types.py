"""What every list is made of: candidates with a typed reason, then recommendations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_noop

#: "Because you <verb> <item>", one sentence per verb so that translators see it whole.
BECAUSE = {
    "viewed": gettext_noop("Because you viewed %(name)s"),
    "bought": gettext_noop("Because you bought %(name)s"),
    "like": gettext_noop("New, like %(name)s"),  # a new item placed by its content
}


def _reason_text(label: str, verb: str, name: str) -> str:
    if verb:
        sentence = BECAUSE.get(verb)
        return gettext(sentence) % {"name": name} if sentence else f"Because you {verb} {name}"
    return gettext(label) if label else ""


#: A reason's sentence in the language active when it is shown, not when it was made:
#: lists are cached per process and shown to shoppers in any language.
reason_text = lazy(_reason_text, str)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an item is on a list: a fixed label ("Popular right now"), or an item of the
    shopper's history ("Because you viewed ..."), named only once the item is fetched.
    Labels are English msgids (mark them with ``gettext_noop``), translated when shown."""

    label: str = ""
    verb: str = ""  # "viewed", "bought" or "like" (a new item) when it is a history item
    item_id: Any = None

    @classmethod
    def because(cls, verb: str, item_id: Any) -> Reason:
        return cls(verb=verb, item_id=item_id)

    def text(self, items: Mapping[Any, Model]) -> str:
        """The sentence a carousel shows (translated lazily, in the language of the page or
        API response that shows it; the item's name as the shop spells it); empty when the
        history item is not at hand."""
        if self.item_id is None:
            return reason_text(self.label, "", "") if self.label else ""
        named = items.get(self.item_id)
        return reason_text("", self.verb, str(named)) if named is not None else ""


NO_REASON = Reason()


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item a list may show, before visibility, fallbacks and rules decide."""

    item_id: Any
    score: float
    strategy: str  # "model", "similar", "bought_together", "popular", "manual", ...
    reason: Reason = NO_REASON


#: Strategies whose entries come from a model version (attributed to it in clicks and A/B).
MODEL_STRATEGIES = frozenset({"model", "similar", "bought_together"})


@dataclass(frozen=True)
class Recommendation:
    item: Model
    score: float
    strategy: str  # "model", "similar", "bought_together", "category_popular", "popular", ...
    placement: str
    version_id: int | None = None
    reason: str = ""

    @property
    def source(self) -> str:
        """Attribution tag carried by the click and the visit: ``placement:v3`` or
        ``placement:popular`` when no model version produced the entry."""
        tag = f"v{self.version_id}" if self.version_id else self.strategy
        return f"{self.placement}:{tag}"[:100]


@dataclass
class RecommendationList:
    placement: str
    version_id: int | None
    items: list[Recommendation] = field(default_factory=list)
    #: Shared by every copy of a list served from the per-process list cache (None for one
    #: built for this request): what callers derive from the list alone may be kept here
    #: (the template tags keep the rendered carousel).
    memo: dict | None = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

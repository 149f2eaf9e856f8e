"""``{% load recommendations %}``: carousels for server-rendered pages.

Each tag reads the shopper from ``request`` (``takes_context``), asks :mod:`serving` and
renders ``recommendations/carousel.html`` with ``title``, ``placement``, ``version_id`` and
``entries``, exactly as an inclusion tag would (a new context holding only those, plus
``csrf_token``). A failing recommender never breaks the page: the error is logged and the
carousel is left out.

A list that :mod:`serving` serves from its per-process cache (related items, bought
together) comes with a memo, and its rendered HTML is kept there, per title and language:
the template is rendered once per list and catalogue epoch, not on every page. Only a
template that cannot depend on anything else is memoised: one that mentions ``csrf_token``,
``now``, ``include``, ``extends`` or loads a library other than ``i18n``, ``l10n`` and
``static`` is rendered every time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from django import template
from django.db.models import Model
from django.urls import reverse
from django.utils import translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .. import serving
from ..adapters import get_adapter
from ..serving import catalogue
from ..tracking import consent

register = template.Library()
logger = logging.getLogger(__name__)

TEMPLATE = "recommendations/carousel.html"


def _shopper(context: template.Context) -> tuple[Any, str | None]:
    request = context.get("request")
    if request is None or not consent.tracking_allowed(request):
        return None, None  # opted out, or no consent yet: no history is read, nothing personal
    user = getattr(request, "user", None)
    user = user if user is not None and user.is_authenticated else None
    return user, get_adapter().get_visitor_id(request)


def _carousel(
    title: str,
    build: Callable[[], serving.RecommendationList],
    placement: str,
    context: template.Context,
    shopper: tuple[Any, str | None] | None = None,
) -> SafeString:
    """Serve the list (see :func:`serving.serve`) and render it; a failing list leaves the
    carousel out."""
    user, visitor_id = shopper if shopper is not None else _shopper(context)
    recommendations = serving.serve(
        placement, build, request=context.get("request"), user=user, visitor_id=visitor_id
    )
    return _render(context, title, placement, recommendations)


def _render(
    context: template.Context,
    title: str,
    placement: str,
    recommendations: serving.RecommendationList,
) -> SafeString:
    """``TEMPLATE`` rendered as an inclusion tag renders it: memoised with the list when it
    comes from the list cache, else card by card where the template allows (:class:`_Split`).
    ``title`` is rendered in the page's language (the defaults are translated lazily)."""
    title = str(title)
    engine = context.template.engine if context.template is not None else None
    if engine is None:
        from django.template import engines

        engine = engines["django"].engine
    tpl = engine.get_template(TEMPLATE)
    memo = recommendations.memo
    key = None
    if memo is not None and _memoisable(tpl.source):
        key = (tpl.origin.name, title, placement, context.autoescape, translation.get_language())
        html = memo.get(key)
        if html is not None:
            return html
    entries = []
    adapter = get_adapter()
    for rec in recommendations:
        payload = serving.item_payload(rec.item)
        # The template asks for an image: a missing key costs the engine three failed
        # lookups per card (and renders the same as an empty one).
        payload.setdefault("image", "")
        # The price as the adapter prints it, in this page's language (cards are memoised
        # per language, payloads are not). A callable: the template engine calls it only
        # for a card it renders, not for one served from the memo.
        price = partial(adapter.format_price, payload)
        entries.append({"rec": rec, "item": rec.item, "payload": payload, "price": price})
    values = {
        "title": title,
        "placement": placement,
        "version_id": recommendations.version_id,
        "entries": entries,
    }
    split = _split(engine, tpl.origin.name, tpl.source) if entries else None
    if split is not None:
        html = split.render(context, values)
    else:
        new_context = context.new(values)
        csrf_token = context.get("csrf_token")
        if csrf_token is not None:
            new_context["csrf_token"] = csrf_token
        html = SafeString(tpl.render(new_context))
    if key is not None:
        memo[key] = html
    return html


_PER_REQUEST = re.compile(r"\{%\s*(include|extends|now)\b|csrf_token")
_LOAD = re.compile(r"\{%\s*load\s+([^%]*?)\s*%\}")
#: Tag libraries a memoised carousel may load: what their tags render depends only on the
#: language (part of every memo key) and on settings.
SAFE_LIBRARIES = frozenset({"i18n", "l10n", "static"})
_I18N_TAGS = {"translate", "trans", "blocktranslate", "blocktrans", "plural"}
_I18N_TAGS |= {f"end{tag}" for tag in ("blocktranslate", "blocktrans")}
_LOOP = re.compile(r"\{%\s*for\s+entry\s+in\s+entries\s*%\}")
_END_LOOP = re.compile(r"\{%\s*endfor\s*%\}")
_TAG = re.compile(r"\{%\s*(\w+)")


@lru_cache(maxsize=16)
def _memoisable(source: str) -> bool:
    """Whether a carousel template renders the same HTML for the same values."""
    if _PER_REQUEST.search(source) is not None:
        return False
    for libraries in _LOAD.findall(source):
        names = libraries.split()
        if "from" in names:  # {% load tag1 tag2 from library %}
            names = names[names.index("from") + 1 :]
        if not set(names) <= SAFE_LIBRARIES:
            return False
    return True


class _Split:
    """A carousel template of the shape ``A {% for entry in entries %} B {% endfor %} C``,
    rendered as ``A`` and ``C`` around the cards ``B``, each card rendered by the same engine
    and kept for the catalogue epoch under everything it reads: the output is the same as
    the whole template's. A card's item, payload and link are the same for every shopper
    who is shown it, so a page renders only the cards no page showed yet (a "recently
    viewed" list changes on every page, but by one card).

    Only for templates that cannot depend on anything else (see :func:`_memoisable`), whose
    card uses ``if`` and translation tags only and no ``forloop``, and whose frame uses
    ``entries`` only as ``{% if entries %}``.
    """

    def __init__(self, engine: Any, name: str, source: str) -> None:
        loop, end = _LOOP.search(source), _END_LOOP.search(source)
        if loop is None or end is None or end.start() < loop.end():
            raise ValueError("no single loop over entries")
        card = source[loop.end() : end.start()]
        frame = source[: loop.start()] + "{{ recommendations_cards }}" + source[end.end() :]
        if (
            len(_LOOP.findall(source)) != 1
            or len(_END_LOOP.findall(source)) != 1
            or "forloop" in card
            or not set(_TAG.findall(card)) <= {"if", "elif", "else", "endif", *_I18N_TAGS}
            or "entry" in frame.replace("entries", "")
            or frame.count("entries") != 1
            or not re.search(r"\{%\s*if\s+entries\s*%\}", frame)
        ):
            raise ValueError("not a plain loop over entries")
        self.name = name
        self.frame = engine.from_string(frame)
        # The card is compiled alone: it loads what the template loads (safe libraries).
        loads = "".join(match.group(0) for match in _LOAD.finditer(source))
        self.card = engine.from_string(loads + card)
        # A card reads its entry and the frame's three values; of a recommendation, only
        # what the card names goes into its key (a "recently viewed" score is its position).
        self.rec_fields = tuple(
            f for f in ("score", "strategy", "version_id", "placement") if f in card
        )

    def render(self, context: template.Context, values: dict[str, Any]) -> SafeString:
        cards = catalogue.item_cache.current().derived
        common = (
            self.name,
            values["title"],
            values["placement"],
            values["version_id"],
            context.autoescape,
            context.use_l10n,
            context.use_tz,
            translation.get_language(),
        )
        out = []
        for entry in values["entries"]:
            rec = entry["rec"]
            key = (
                common,
                rec.item.pk,
                rec.source,
                rec.reason,
                tuple(getattr(rec, f) for f in self.rec_fields),
            )
            html = cards.get(key)
            if html is None:
                card_values = {**values, "entry": entry}
                del card_values["entries"]
                html = cards[key] = self.card.render(context.new(card_values))
            out.append(html)
        # The frame reads no entry: rendered once per key around a marker, then reused.
        frame = cards.get((common, "frame"))
        if frame is None:
            marker = "\x00recommendations-cards\x00"
            frame_values = {**values, "recommendations_cards": SafeString(marker)}
            rendered = self.frame.render(context.new(frame_values))
            if rendered.count(marker) != 1:
                frame_values["recommendations_cards"] = SafeString("".join(out))
                return SafeString(self.frame.render(context.new(frame_values)))
            frame = cards[(common, "frame")] = tuple(rendered.split(marker))
        return SafeString(frame[0] + "".join(out) + frame[1])


_splits: dict[tuple, _Split | None] = {}


def _split(engine: Any, name: str, source: str) -> _Split | None:
    key = (id(engine), name, source)
    if key not in _splits:
        try:
            _splits[key] = _Split(engine, name, source) if _memoisable(source) else None
        except (ValueError, template.TemplateSyntaxError):
            _splits[key] = None
    return _splits[key]


def _personal_carousel(
    context: template.Context,
    title: str,
    placement: str,
    build: Callable[..., serving.RecommendationList],
    k: int | None,
    exclude: Model | None = None,
) -> SafeString:
    """A carousel of the shopper's own list: ``build(user, visitor_id, k, placement, skip)``."""
    user, visitor_id = _shopper(context)
    request = context.get("request")
    if request is not None:  # the page now shows one shopper's list: keep it private
        request.recommendations_personal = True
    skip = [exclude.pk] if exclude is not None else []
    return _carousel(
        title,
        lambda: build(user, visitor_id, k, placement, skip),
        placement,
        context,
        (user, visitor_id),
    )


@register.simple_tag(takes_context=True)
def recommended_for_you(
    context: template.Context,
    k: int | None = None,
    title: str = _("Recommended for you"),
    placement: str = "for_you",
    exclude: Model | None = None,
) -> SafeString:
    return _personal_carousel(context, title, placement, serving.for_visitor, k, exclude)


@register.simple_tag(takes_context=True)
def related_items(
    context: template.Context,
    item: Model,
    k: int | None = None,
    title: str = _("You may also like"),
    placement: str = "related",
) -> SafeString:
    return _carousel(title, lambda: serving.related_to(item, k, placement), placement, context)


@register.simple_tag(takes_context=True)
def bought_together(
    context: template.Context,
    item: Model,
    k: int | None = None,
    title: str = _("Customers also bought"),
    placement: str = "bought_together",
) -> SafeString:
    return _carousel(
        title, lambda: serving.bought_together(item, k, placement), placement, context
    )


@register.simple_tag(takes_context=True)
def buy_again(
    context: template.Context,
    k: int | None = None,
    title: str = _("Buy it again"),
    placement: str = "buy_again",
) -> SafeString:
    """What the shopper bought, the likeliest re-buys first; nothing for a new shopper."""
    return _personal_carousel(context, title, placement, serving.buy_again, k)


@register.simple_tag(takes_context=True)
def recently_viewed(
    context: template.Context,
    k: int | None = None,
    title: str = _("Recently viewed"),
    placement: str = "recently_viewed",
    exclude: Model | None = None,
) -> SafeString:
    return _personal_carousel(context, title, placement, serving.recently_viewed, k, exclude)


@register.simple_tag(takes_context=True)
def trending(
    context: template.Context,
    k: int | None = None,
    title: str = _("Trending now"),
    placement: str = "trending",
) -> SafeString:
    return _carousel(title, lambda: serving.trending(k, placement=placement), placement, context)


@register.inclusion_tag("recommendations/assets.html")
def recommendations_assets() -> dict[str, Any]:
    """The carousel stylesheet and click beacon; put it once in the page's ``<head>``."""
    return {}


@register.simple_tag(takes_context=True)
def recommendations_consent(context: template.Context) -> dict[str, Any]:
    """What a consent banner needs: ``{% recommendations_consent as consent %}`` gives
    ``ask`` (consent is required and the shopper has not chosen), ``required``, ``choice``
    (True, False or None), ``tracked``, ``consent_url`` and ``opt_out_url`` (POST a form to
    them with ``csrf_token`` and ``next``) and ``next`` (this page)."""
    request = context.get("request")
    state = consent.state(request)
    return {
        "ask": state.ask,
        "required": state.required,
        "choice": state.choice,
        "tracked": state.allowed,
        "consent_url": reverse("recommendations:consent"),
        "opt_out_url": reverse("recommendations:opt-out"),
        "next": request.get_full_path() if request is not None else "/",
    }

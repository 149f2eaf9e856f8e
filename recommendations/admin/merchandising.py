"""Merchandising rules, with a preview of a list before and after them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import ngettext

from .. import serving
from ..adapters import get_adapter
from ..conf import get_item_model
from ..models import (
    Impression,
    MerchandisingRule,
)
from ..serving import rules
from .base import (
    DASH,
    CheckedSelectionAdmin,
    PlacementInput,
)


def category_names(keys: Any) -> dict[str, str]:
    """``{key: name}`` for rules' category keys, from the shop's adapter (an adapter that
    does not subclass :class:`DefaultAdapter` and lacks ``category_names``: the keys)."""
    lookup = getattr(get_adapter(), "category_names", None)
    return lookup({key for key in keys if key}) if lookup is not None else {}


def category_name(key: str) -> str:
    return category_names([key]).get(key, key)


def category_choices() -> list[tuple[str, str]] | None:
    """The categories of the item model's category relation, when it has one."""
    adapter = get_adapter()
    try:
        field = get_item_model()._meta.get_field(adapter.category_field)
    except Exception:
        return None
    if not getattr(field, "is_relation", False) or field.related_model is None:
        return None
    return [("", "---------")] + [
        (str(obj.pk), str(obj)) for obj in field.related_model._default_manager.all()[:1000]
    ]


class MerchandisingRuleForm(forms.ModelForm):
    class Meta:
        model = MerchandisingRule
        fields = (
            "name",
            "kind",
            "placement",
            "is_active",
            "item",
            "category",
            "position",
            "multiplier",
            "starts_at",
            "ends_at",
        )
        widgets = {"placement": PlacementInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = category_choices()
        if choices is not None:
            self.fields["category"] = forms.ChoiceField(
                choices=choices, required=False, help_text=self.fields["category"].help_text
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind, item, category = data.get("kind"), data.get("item"), data.get("category")
        if kind == MerchandisingRule.Kind.PIN and item is None:
            self.add_error("item", "A pin needs the item to pin.")
        if kind == MerchandisingRule.Kind.PIN and not data.get("position"):
            self.add_error("position", "Positions start at 1.")
        if kind == MerchandisingRule.Kind.EXCLUDE and bool(item) == bool(category):
            self.add_error(None, "An exclusion names either an item or a category.")
        if kind == MerchandisingRule.Kind.BOOST:
            if not category:
                self.add_error("category", "A boost needs a category.")
            if (data.get("multiplier") or 0) <= 0:
                self.add_error("multiplier", "The multiplier must be above 0.")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must come after the start.")
        return data


@admin.register(MerchandisingRule)
class MerchandisingRuleAdmin(CheckedSelectionAdmin):
    form = MerchandisingRuleForm
    change_list_template = "admin/recommendations/merchandisingrule/change_list.html"
    list_display = (
        "name",
        "kind",
        "where",
        "target",
        "setting",
        "starts_at",
        "ends_at",
        "is_active",
        "in_force_now",
    )
    list_filter = ("kind", "is_active", "placement")
    search_fields = ("name", "placement")
    raw_id_fields = ("item",)
    list_select_related = ("item",)
    actions = ("switch_on", "switch_off")

    class Media:
        css = {"all": ("recommendations/admin.css",)}

    fieldsets = (
        (None, {"fields": ("name", "kind", "placement", "is_active")}),
        ("What", {"fields": ("item", "category", "position", "multiplier")}),
        ("When", {"fields": (("starts_at", "ends_at"),)}),
    )

    @admin.display(description="placement", ordering="placement")
    def where(self, obj: MerchandisingRule) -> str:
        return obj.placement or "everywhere"

    def get_changelist_instance(self, request: Any) -> Any:
        cl = super().get_changelist_instance(request)
        # The page's category names in one query, not one per row.
        names = category_names(rule.category for rule in cl.result_list)
        for rule in cl.result_list:
            rule.category_label = names.get(rule.category, rule.category)
        return cl

    @admin.display(description="item or category")
    def target(self, obj: MerchandisingRule) -> str:
        if obj.item_id:
            return str(obj.item)
        if not obj.category:
            return DASH
        label = getattr(obj, "category_label", None) or category_name(obj.category)
        return f"category {label}"

    @admin.display(description="position / multiplier")
    def setting(self, obj: MerchandisingRule) -> str:
        if obj.kind == MerchandisingRule.Kind.PIN:
            return f"#{obj.position}"
        if obj.kind == MerchandisingRule.Kind.BOOST:
            return f"× {obj.multiplier:g}"
        return DASH

    @admin.display(description="in force now", boolean=True)
    def in_force_now(self, obj: MerchandisingRule) -> bool:
        return obj.in_force()

    def _switch(self, request: Any, queryset: Any, on: bool) -> None:
        changed = list(queryset.exclude(is_active=on))
        for rule in changed:
            rule.is_active = on
            rule.save(update_fields=["is_active", "updated_at"])  # signals drop the cache
            self.log_change(request, rule, "Switched on." if on else "Switched off.")
        self.message_user(
            request,
            ngettext(
                "%(count)d rule switched %(state)s.",
                "%(count)d rules switched %(state)s.",
                len(changed),
            )
            % {"count": len(changed), "state": "on" if on else "off"},
            messages.SUCCESS,
        )

    @admin.action(description="Switch the selected rules on", permissions=["change"])
    def switch_on(self, request: Any, queryset: Any) -> None:
        self._switch(request, queryset, True)

    @admin.action(description="Switch the selected rules off", permissions=["change"])
    def switch_off(self, request: Any, queryset: Any) -> None:
        self._switch(request, queryset, False)

    def get_urls(self) -> list:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name=f"{info}_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: Any) -> TemplateResponse:
        """What a carousel returns for a product or a shopper, before and after the rules."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if is_personal_preview(request.GET) and not request.user.has_perm(HISTORY_PERMISSION):
            raise PermissionDenied  # a shopper's list shows what they viewed and bought
        form = PreviewForm(request.GET or None, admin_site=self.admin_site)
        before = after = None
        error = ""
        if form.is_bound and form.is_valid():
            build = form.builder()
            try:
                with rules.disabled():
                    before = build()
                after = build()
            except Exception as exc:  # show it; a preview must not 500
                error = f"{type(exc).__name__}: {exc}"
        rows = _preview_rows(before, after) if before is not None else []
        active = rules.active_rules()
        names = category_names(rule.category for rule in active)
        in_force = [
            {"rule": rule, "category": names.get(rule.category, rule.category)} for rule in active
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Preview a carousel with and without the rules",
            "form": form,
            "media": self.media + form.media,
            "rows": rows,
            "before": before,
            "after": after,
            "error": error,
            "in_force": in_force,
        }
        return TemplateResponse(
            request, "admin/recommendations/merchandisingrule/preview.html", context
        )


#: Reading a shopper's history: what ``users/<id>/`` and the interaction log require.
HISTORY_PERMISSION = "recommendations.view_interaction"
#: Lists built from one shopper's history.
PERSONAL_LISTS = frozenset({"for_you", "buy_again"})


def is_personal_preview(query: Any) -> bool:
    """Whether a preview request asks for one shopper's list (or names a shopper at all)."""
    return query.get("list") in PERSONAL_LISTS or bool(query.get("user") or query.get("visitor"))


class PreviewForm(forms.Form):
    LISTS = (
        ("related", "Related items (a product)"),
        ("bought_together", "Bought together (a product)"),
        ("for_you", "For you (a user or a visitor)"),
        ("popular", "Popular"),
        ("trending", "Trending"),
    )
    list = forms.ChoiceField(choices=LISTS, initial="related")
    placement = forms.CharField(
        required=False,
        max_length=64,
        widget=PlacementInput,
        help_text="The placement whose rules apply; empty: the list's default name.",
    )
    item = forms.IntegerField(required=False, label="Product", help_text="For product lists.")
    user = forms.IntegerField(required=False, label="User", help_text="For 'for you'.")
    visitor = forms.CharField(
        required=False, max_length=64, label="or anonymous visitor id", help_text="For 'for you'."
    )
    k = forms.IntegerField(min_value=1, max_value=50, initial=12, required=False)

    def __init__(self, *args: Any, admin_site: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item"].widget = ForeignKeyRawIdWidget(
            MerchandisingRule._meta.get_field("item").remote_field, admin_site
        )
        self.fields["user"].widget = ForeignKeyRawIdWidget(
            Impression._meta.get_field("user").remote_field, admin_site
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("list")
        if kind in ("related", "bought_together"):
            pk = data.get("item")
            item = get_item_model()._default_manager.filter(pk=pk).first() if pk else None
            if item is None:
                self.add_error("item", "Choose an existing product.")
            data["item_obj"] = item
        if kind == "for_you":
            user = None
            if data.get("user"):
                user = get_user_model()._default_manager.filter(pk=data["user"]).first()
                if user is None:
                    self.add_error("user", "No such user.")
            elif not data.get("visitor"):
                self.add_error(None, "Choose a user or type a visitor id.")
            data["user_obj"] = user
        return data

    def builder(self) -> Any:
        data = self.cleaned_data
        kind, k = data["list"], data.get("k") or None
        placement = data.get("placement") or kind
        if kind == "related":
            return lambda: serving.related_to(data["item_obj"], k, placement=placement)
        if kind == "bought_together":
            return lambda: serving.bought_together(data["item_obj"], k, placement=placement)
        if kind == "for_you":
            return lambda: serving.for_visitor(
                data.get("user_obj"), data.get("visitor") or None, k, placement=placement
            )
        if kind == "trending":
            return lambda: serving.trending(k, placement=placement)
        return lambda: serving.popular(k=k, placement=placement)


def _preview_rows(before: Any, after: Any) -> list[dict[str, Any]]:
    """Side by side, with what moved: one row per position."""
    b, a = list(before or []), list(after or [])
    before_pos = {rec.item.pk: i for i, rec in enumerate(b)}
    after_ids = {rec.item.pk for rec in a}
    rows = []
    for i in range(max(len(b), len(a))):
        left = b[i] if i < len(b) else None
        right = a[i] if i < len(a) else None
        change = ""
        if right is not None:
            was = before_pos.get(right.item.pk)
            change = "new" if was is None else ("" if was == i else f"{was + 1} → {i + 1}")
        rows.append(
            {
                "position": i + 1,
                "before": left,
                "before_gone": left is not None and left.item.pk not in after_ids,
                "after": right,
                "change": change,
            }
        )
    return rows

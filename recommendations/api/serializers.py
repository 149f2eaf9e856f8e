"""Serializers of the recommendations API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from ..adapters import get_adapter
from ..conf import app_settings, get_item_model, import_from_setting
from ..models import CustomerInsight, Event
from ..serving import item_payload
from ..tracking.keys import MAX_PK
from ..tracking.recording import MAX_CLIENT_EVENT_ID_LENGTH, MAX_SOURCE_LENGTH
from ..tracking.visitors import MAX_CLIENT_VALUE_LENGTH, NOT_ISSUED, from_client

#: The largest value one event may carry (an order line's price times quantity).
MAX_EVENT_VALUE = Decimal("1000000")
#: The largest quantity one event may carry.
MAX_QUANTITY = 10_000
#: How far back a client may date an event it sends late (offline mobile apps).
MAX_EVENT_AGE = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=5)


#: Who may send purchases: a server integration, authenticated by DRF's configured
#: authentication. A purchase from a shopper's app or browser is refused (recommendations.verified).
INTEGRATION_PERMISSION = "recommendations.add_interaction"
PURCHASES_REFUSED = (
    "Purchases are recorded by the shop's server (its order_paid signal), or sent by an "
    "authenticated server integration holding the recommendations.add_interaction permission."
)


def is_integration(user: Any) -> bool:
    """A signed-in account the shop trusts to report sales (not a shopper's app)."""
    return bool(user and user.is_authenticated and user.has_perm(INTEGRATION_PERMISSION))


def serialize_item(item: Any, context: dict | None = None) -> dict[str, Any]:
    """An item as the API shows it: ``ITEM_SERIALIZER`` when set, else the adapter's payload
    (computed once per cached item object, see ``serving.item_payload``)."""
    serializer_class = import_from_setting("ITEM_SERIALIZER")
    if serializer_class is not None:
        return serializer_class(item, context=context or {}).data
    return item_payload(item)


class ItemSerializer(serializers.Serializer):
    """An item as the default adapters describe it (``DefaultAdapter.item_payload`` and the
    Oscar adapter's): ``id`` and ``name`` always, the rest where the shop has them. A shop's
    adapter may add keys of its own (``additionalProperties``); a shop that sets
    ``ITEM_SERIALIZER`` gets that serializer in the schema instead."""

    id = serializers.IntegerField(help_text="The item's primary key (what events send).")
    name = serializers.CharField()
    url = serializers.CharField(required=False, help_text="The item's page on the shop's site.")
    price = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The amount as a decimal string, e.g. '2.55' (null: no price).",
    )
    currency = serializers.CharField(required=False, help_text="ISO 4217, e.g. 'EUR'.")
    sku = serializers.CharField(required=False)
    upc = serializers.CharField(required=False)
    image = serializers.CharField(required=False, help_text="Image URL ('' for none).")
    category = serializers.CharField(
        required=False, allow_null=True, help_text="The main category's name."
    )
    categories = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Every category's name."
    )


class ItemField(serializers.Field):
    """The item of a recommendation (schema: :class:`ItemSerializer`, or the shop's
    ``ITEM_SERIALIZER``; see ``recommendations.api.schema``)."""

    def to_representation(self, value: Any) -> dict[str, Any]:
        return serialize_item(value, self.context)


class RecommendationSerializer(serializers.Serializer):
    item = ItemField()
    score = serializers.FloatField()
    strategy = serializers.CharField(help_text="model, similar, bought_together, popular, ...")
    reason = serializers.CharField(help_text="Why it is shown, e.g. 'Because you viewed ...'.")
    source = serializers.CharField(
        help_text="Send this back as an event's `source` when the shopper acts on the item."
    )


class RecommendationListSerializer(serializers.Serializer):
    placement = serializers.CharField()
    version = serializers.IntegerField(source="version_id", allow_null=True)
    results = RecommendationSerializer(many=True, source="items")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """What DRF's field-by-field path gives (same keys, order and types), built directly:
        every list response goes through here, and the generic path cost more than the list."""
        context = self.context
        results = []
        for rec in instance.items:
            results.append(
                {
                    "item": serialize_item(rec.item, context),
                    "score": float(rec.score),
                    "strategy": str(rec.strategy),
                    "reason": str(rec.reason),
                    "source": str(rec.source),
                }
            )
        version = instance.version_id
        return {
            "placement": str(instance.placement),
            "version": None if version is None else int(version),
            "results": results,
        }


#: The most items one list may hold (``k``).
MAX_K = 50
CATEGORY_PATTERN = r"^[-\w]+\Z"


class ListParamsSerializer(serializers.Serializer):
    """Query parameters of every list: how many items."""

    k = serializers.IntegerField(
        min_value=1,
        max_value=MAX_K,
        required=False,
        help_text="How many items (default: the shop's carousel size).",
    )


class PopularParamsSerializer(ListParamsSerializer):
    category = serializers.RegexField(
        CATEGORY_PATTERN,
        max_length=100,
        required=False,
        help_text=(
            "Only this category: its slug (see GET /api/recommendations/categories/), or its "
            "id (kept for older clients). An unknown slug is a 400."
        ),
    )

    def validate_category(self, value: str) -> Any:
        key = get_adapter().category_key(value)
        if key is None:
            if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_PK:
                return int(value)  # an id, as before slugs: unknown ones give an empty list
            raise serializers.ValidationError("No such category.")
        return key


class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The category's primary key.")
    slug = serializers.CharField(help_text="What GET /api/recommendations/popular/ takes.")
    name = serializers.CharField()


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not silently dropped: a client that misspells
    ``client_event_id`` learns it instead of losing its de-duplication."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}
                )
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "number",
        "minimum": 0,
        "maximum": float(MAX_EVENT_VALUE),
        "nullable": True,
        "description": (
            "The line's amount: at most two decimal places (a decimal string such as "
            "'12.50' is taken too)."
        ),
        "example": 12.5,
    }
)
class AmountField(serializers.DecimalField):
    """An amount an app sends: a JSON number (or a decimal string), never a float's
    rounding error (more than two decimal places is a 400)."""


@extend_schema_serializer(component_name="ShopperEvent")  # "Event" has a field "event"
class EventSerializer(StrictSerializer):
    event = serializers.ChoiceField(choices=Event.choices)
    item = serializers.IntegerField(min_value=1, max_value=MAX_PK)
    # Optional, and 1 when left out: said in words, since a schema "default" makes
    # generators (openapi-typescript) require the field in request bodies.
    quantity = serializers.IntegerField(
        min_value=1, max_value=MAX_QUANTITY, required=False, help_text="1 when left out."
    )
    value = AmountField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=MAX_EVENT_VALUE,
        required=False,
        allow_null=True,
    )
    source = serializers.CharField(max_length=MAX_SOURCE_LENGTH, required=False, allow_blank=True)
    client_event_id = serializers.CharField(max_length=MAX_CLIENT_EVENT_ID_LENGTH, required=False)
    timestamp = serializers.DateTimeField(
        required=False, help_text="When it happened (default: now)."
    )

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("quantity", 1)
        return attrs

    def validate_timestamp(self, value):
        now = timezone.now()
        if value > now + CLOCK_SKEW:
            raise serializers.ValidationError("Timestamp is in the future.")
        if value < now - MAX_EVENT_AGE:
            raise serializers.ValidationError("Timestamp is more than 7 days old.")
        return value


class EventListSerializer(serializers.ListSerializer):
    """A batch's events (schema: ``minItems`` 1, ``maxItems`` ``MAX_EVENTS_PER_REQUEST``).

    Errors of single events are keyed by position (``{"3": {"item": [...]}}``), whichever
    check found them, never DRF's list with an empty object per valid event."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            if isinstance(detail, list) and detail and all(isinstance(e, dict) for e in detail):
                raise serializers.ValidationError(
                    {str(i): errors for i, errors in enumerate(detail) if errors}
                ) from None
            raise


class EventListExtension(OpenApiSerializerFieldExtension):
    target_class = "recommendations.api.serializers.EventListSerializer"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        return {**schema, "minItems": 1, "maxItems": app_settings.MAX_EVENTS_PER_REQUEST}


class EventBatchSerializer(StrictSerializer):
    visitor_id = serializers.CharField(
        required=False,
        max_length=MAX_CLIENT_VALUE_LENGTH,
        help_text="Anonymous clients: the visitor id from POST /api/recommendations/visitors/.",
    )
    events = EventSerializer(many=True, allow_empty=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # The cap is a setting: the schema's maxItems follows it.
        fields["events"] = EventListSerializer(
            child=EventSerializer(),
            allow_empty=False,
            max_length=app_settings.MAX_EVENTS_PER_REQUEST,
        )
        return fields

    def to_internal_value(self, data: Any) -> Any:
        # The cap first: a 45,000-event batch is refused before any event is validated.
        events = data.get("events") if isinstance(data, dict) else None
        limit = app_settings.MAX_EVENTS_PER_REQUEST
        if isinstance(events, list) and len(events) > limit:
            raise serializers.ValidationError({"events": [f"At most {limit} events per request."]})
        return super().to_internal_value(data)

    def validate_visitor_id(self, value: str) -> str:
        visitor_id = from_client(value)
        if visitor_id is None:
            raise serializers.ValidationError(NOT_ISSUED)
        return visitor_id

    def validate_events(self, events: list[dict]) -> list[dict]:
        wanted = {e["item"] for e in events}
        known = set(
            get_item_model()._default_manager.filter(pk__in=wanted).values_list("pk", flat=True)
        )
        # Keyed by position, like DRF's own per-item errors of a list field.
        errors = {
            i: {"item": ["No such item."]} for i, e in enumerate(events) if e["item"] not in known
        }
        if not is_integration(self.context["request"].user):
            for i, e in enumerate(events):
                if e["event"] == Event.PURCHASE:
                    errors[i] = {**errors.get(i, {}), "event": [PURCHASES_REFUSED]}
        ids = [e.get("client_event_id") for e in events if e.get("client_event_id")]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("client_event_id values repeat within the batch.")
        if errors:
            raise serializers.ValidationError(errors)
        return events

    def validate(self, attrs: dict) -> dict:
        request = self.context["request"]
        if not request.user.is_authenticated and not attrs.get("visitor_id"):
            raise serializers.ValidationError(
                {"visitor_id": ["Required for anonymous clients (or sign in)."]}
            )
        return attrs


class CustomerInsightSerializer(serializers.ModelSerializer):
    user = serializers.IntegerField(source="user_id")

    class Meta:
        model = CustomerInsight
        fields = (
            "user",
            "churn_risk",
            "p_alive",
            "expected_orders",
            "expected_spend",
            "horizon_days",
            "orders",
            "recency_days",
            "average_order_value",
            "price_bands",
            "model",
            "scored_at",
        )
        read_only_fields = fields


class VisitorSerializer(serializers.Serializer):
    visitor_id = serializers.CharField(
        read_only=True,
        help_text="Keep it; send it as X-Visitor-Id and as the events' visitor_id.",
    )


class ConsentChoiceSerializer(serializers.Serializer):
    consent = serializers.BooleanField(
        help_text="true: the shopper consents to tracking; false: they opt out, for good."
    )


class ConsentStateSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="Whether the shop asks before tracking.")
    consent = serializers.BooleanField(
        allow_null=True, source="choice", help_text="The shopper's choice (null: not asked)."
    )
    tracked = serializers.BooleanField(
        source="allowed", help_text="Whether the shopper is tracked and shown personal lists now."
    )


class EventBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    tracked = serializers.BooleanField(
        help_text=(
            "False (with a 200, nothing stored) when the shopper opted out, has not "
            "consented where the shop asks first, or the shop switched tracking off."
        )
    )


# --- error bodies, as the schema documents them -----------------------------------------


class ErrorSerializer(serializers.Serializer):
    """401, 403, 404, 405, 415 and 429: DRF's one-message body."""

    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


class FieldErrorsSerializer(serializers.Serializer):
    """A 400: each field that was wrong, with its messages. A body that could not be parsed
    at all has ``detail`` instead; errors about the whole body are in ``non_field_errors``."""

    detail = serializers.CharField(required=False, help_text="The body could not be parsed.")
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


def _messages(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(), required=False, help_text=help_text)


class VisitorHeaderErrorsSerializer(FieldErrorsSerializer):
    """The ``X-Visitor-Id`` header is not one this server issued."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["X-Visitor-Id"] = _messages("Ask POST /api/recommendations/visitors/ for a new id.")
        return fields


class ListErrorsSerializer(VisitorHeaderErrorsSerializer):
    k = _messages("k is not a whole number from 1 to 50.")


class PopularErrorsSerializer(ListErrorsSerializer):
    category = _messages("No such category.")


class ConsentErrorsSerializer(VisitorHeaderErrorsSerializer):
    consent = _messages("Not a boolean.")


class FeedbackErrorsSerializer(VisitorHeaderErrorsSerializer):
    item = _messages("No such item.")
    kind = _messages('"x" is not a valid choice.')
    source = _messages("Ensure this field has no more than 100 characters.")


@extend_schema_field(
    {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {
                "type": "object",
                "description": (
                    "Keyed by the event's position in the batch (from 0), or "
                    "non_field_errors: the list itself is wrong."
                ),
                "additionalProperties": {
                    "anyOf": [
                        {"type": "array", "items": {"type": "string"}},
                        {
                            "type": "object",
                            "additionalProperties": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        },
                    ]
                },
            },
        ]
    }
)
class EventErrorsField(serializers.JSONField):
    pass


class EventBatchErrorsSerializer(FieldErrorsSerializer):
    visitor_id = _messages("Missing for an anonymous client, or not issued by this server.")
    events = EventErrorsField(
        required=False,
        help_text="The batch is empty or too long (messages), or which events were wrong.",
    )


class ItemFieldExtension(OpenApiSerializerFieldExtension):
    """A recommendation's ``item``: the shop's ``ITEM_SERIALIZER`` when it sets one, else
    :class:`~.serializers.ItemSerializer` (what the default and Oscar adapters give)."""

    target_class = "recommendations.api.serializers.ItemField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        serializer = import_from_setting("ITEM_SERIALIZER") or ItemSerializer
        component = auto_schema.resolve_serializer(serializer, direction)
        return component.ref

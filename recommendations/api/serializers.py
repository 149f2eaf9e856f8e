"""Serializers of the recommendations API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..conf import app_settings, get_item_model, import_from_setting
from ..models import CustomerInsight, Event
from ..serving import item_payload
from ..tracking.keys import MAX_PK
from ..tracking.recording import MAX_CLIENT_EVENT_ID_LENGTH, MAX_SOURCE_LENGTH
from ..tracking.visitors import MAX_CLIENT_VALUE_LENGTH, NOT_ISSUED, from_client

#: The largest value one event may carry (an order line's price times quantity).
MAX_EVENT_VALUE = Decimal("1000000")
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


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "example": {"id": 1, "name": "White hanging heart", "price": "2.55"},
    }
)
class ItemField(serializers.Field):
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


class ListParamsSerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=50, required=False)
    category = serializers.IntegerField(min_value=1, max_value=MAX_PK, required=False)


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


class EventSerializer(StrictSerializer):
    event = serializers.ChoiceField(choices=Event.choices)
    item = serializers.IntegerField(min_value=1, max_value=MAX_PK)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    value = serializers.DecimalField(
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

    def validate_timestamp(self, value):
        now = timezone.now()
        if value > now + CLOCK_SKEW:
            raise serializers.ValidationError("Timestamp is in the future.")
        if value < now - MAX_EVENT_AGE:
            raise serializers.ValidationError("Timestamp is more than 7 days old.")
        return value


class EventBatchSerializer(StrictSerializer):
    visitor_id = serializers.CharField(
        required=False,
        max_length=MAX_CLIENT_VALUE_LENGTH,
        help_text="Anonymous clients: the visitor id from POST /api/recommendations/visitors/.",
    )
    events = EventSerializer(many=True, allow_empty=False)

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
    tracked = serializers.BooleanField(help_text="False when the visitor opted out or is a bot.")

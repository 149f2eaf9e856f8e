"""``POST /api/recommendations/feedback/``: a shopper says "not interested" in an item.

The carousels' dismiss button (``static/recommendations/dismiss.js``) and apps use it. The
shopper is resolved as on every endpoint (the signed-in user, an issued ``X-Visitor-Id``, or
the browser's cookie visitor); the row is written at once, never through the Redis buffer,
so the item is gone from the very next list (:mod:`recommendations.serving.feedback`).
A shopper who may not be tracked (opted out, no consent yet) is answered
``{"recorded": false}``: nothing personal is stored for them.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from ..adapters import get_adapter
from ..conf import app_settings
from ..models import Event
from ..serving.feedback import HINT_COOKIE
from ..tracking import recording
from ..tracking.keys import MAX_PK
from ..tracking.storage import invalidate
from .serializers import FeedbackErrorsSerializer, StrictSerializer
from .throttling import EventsThrottle
from .views import VISITOR_HEADER, APIView, errors, request_visitor_id

KINDS = (Event.NOT_INTERESTED.value,)


class FeedbackSerializer(StrictSerializer):
    item = serializers.IntegerField(min_value=1, max_value=MAX_PK)
    kind = serializers.ChoiceField(choices=KINDS, help_text='"not_interested"')
    source = serializers.CharField(
        max_length=recording.MAX_SOURCE_LENGTH,
        required=False,
        allow_blank=True,
        help_text="The carousel it was shown in (the recommendation's `source`).",
    )

    def validate_item(self, value: int) -> int:
        """Only an item the shop shows can be dismissed: an unknown or hidden one is a 400."""
        if not get_adapter().visible_items().filter(pk=value).exists():
            raise serializers.ValidationError("No such item.")
        return value


class FeedbackResultSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    kind = serializers.CharField()
    recorded = serializers.BooleanField(
        help_text="False when the shopper may not be tracked (opted out, no consent)."
    )


class FeedbackView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [EventsThrottle]

    @extend_schema(
        request=FeedbackSerializer,
        parameters=[VISITOR_HEADER],
        responses={
            201: FeedbackResultSerializer,
            200: FeedbackResultSerializer,
            **errors(FeedbackErrorsSerializer, 403),
        },
        summary='"Not interested": the item leaves the caller\'s lists for good',
    )
    def post(self, request: Request) -> Response:
        header = request.headers.get("X-Visitor-Id")
        visitor_id = request_visitor_id(request)  # an id the server did not issue is a 400
        user = request.user if request.user.is_authenticated else None
        if user is None and not header:
            # The browser's cookie visitor: a form on another site must not act for them.
            SessionAuthentication().enforce_csrf(request)
        data = FeedbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item, kind = data.validated_data["item"], data.validated_data["kind"]
        body: dict[str, Any] = {"item": item, "kind": kind, "recorded": False}
        if not recording.should_track(request._request):
            return Response(body, status=status.HTTP_200_OK)
        if user is None and not visitor_id:
            raise serializers.ValidationError(
                {"X-Visitor-Id": ["Sign in, or send the visitor id this server issued."]}
            )
        user_id = user.pk if user is not None else None
        row = {
            "event": kind,
            "item": item,
            "user": user,
            "visitor_id": visitor_id or "",
            "source": data.validated_data.get("source", ""),
            # Once per shopper and item: a second press is stored once.
            "client_event_id": recording.shopper_event_id(f"{kind}:{item}", user_id, visitor_id),
        }
        # Written now, not buffered: the next list must already leave the item out.
        recording.record_many([row], defer=False)
        shopper = {(user_id, visitor_id or "")}
        transaction.on_commit(lambda: invalidate(shopper, dismissed=shopper))
        body["recorded"] = True
        response = Response(body, status=status.HTTP_201_CREATED)
        if user is None and not header:  # this browser's pages now look its dismissals up
            response.set_cookie(
                HINT_COOKIE,
                "1",
                max_age=app_settings.VISITOR_COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response

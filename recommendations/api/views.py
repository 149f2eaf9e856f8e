"""REST endpoints for mobile apps and front-ends. Lists go through :func:`serving.serve`."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView as DRFAPIView

from .. import serving
from ..adapters import get_adapter
from ..models import CustomerInsight, Event, Interaction
from ..tracking import consent, recording, visitors
from ..tracking.keys import MAX_PK
from ..tracking.middleware import mark_personal
from .serializers import (
    PURCHASES_REFUSED,
    CategorySerializer,
    ConsentChoiceSerializer,
    ConsentErrorsSerializer,
    ConsentStateSerializer,
    CustomerInsightSerializer,
    ErrorSerializer,
    EventBatchErrorsSerializer,
    EventBatchResultSerializer,
    EventBatchSerializer,
    ListErrorsSerializer,
    ListParamsSerializer,
    PopularErrorsSerializer,
    PopularParamsSerializer,
    RecommendationListSerializer,
    VisitorHeaderErrorsSerializer,
    VisitorSerializer,
    is_integration,
)
from .throttling import EventsThrottle, ReadsThrottle, VisitorsThrottle

logger = logging.getLogger(__name__)

VISITOR_HEADER = OpenApiParameter(
    "X-Visitor-Id",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Anonymous mobile clients: the visitor id from POST /api/recommendations/visitors/ "
        "(browsers use the signed cookie). An id this server did not issue is a 400: the "
        "client should ask for a new one."
    ),
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHENTICATED = _error(
    "Wrong credentials, or none where the operation needs a signed-in caller (the "
    "WWW-Authenticate header names the scheme)."
)
FORBIDDEN = _error("The caller may not do this (or a signed-in browser sent no CSRF token).")
THROTTLED = _error("Too many requests: wait the Retry-After header's seconds.")
UNSUPPORTED = _error("The body is not JSON (Content-Type: application/json).")


def errors(bad_request: Any, *more: int) -> dict[int, Any]:
    """The error responses of an operation: its 400 body (None: it has no input to get
    wrong), 401 and 429 for every one, and ``more`` of 403, 404 and 415."""
    known = {403: FORBIDDEN, 404: _error("No such item, user or path."), 415: UNSUPPORTED}
    found = {} if bad_request is None else {
        400: OpenApiResponse(bad_request, description="Field errors: what was wrong, by field."),
    }
    found[401] = UNAUTHENTICATED
    found.update({code: known[code] for code in more})
    found[429] = THROTTLED
    return found


class APIView(DRFAPIView):
    # The app's endpoints: wrong credentials are a 401 with ``WWW-Authenticate``, whatever
    # order the shop lists its authentication classes in (DRF asks only the first, and
    # session authentication, often first, has no header, which turns a 401 into a 403).
    # Comments, not a docstring: the schema would give it as every operation's description.

    def get_authenticate_header(self, request: Request) -> str | None:
        for authenticator in self.get_authenticators():
            header = authenticator.authenticate_header(request)
            if header:
                return header
        return None


def existing_id(pk: int) -> int:
    """A path's id, which may be any integer: one no row can have is a 404 (in JSON), not
    a database error about its size."""
    if not 0 < pk <= MAX_PK:
        raise Http404("No such id.")
    return pk


class ListView(APIView):
    # Common handling: validated query parameters, and a fallback when the service fails.

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ReadsThrottle]
    placement = ""
    #: Answer with popular items when the list fails (not for lists of the shopper's own).
    popular_on_error = True
    #: The list is one shopper's (Cache-Control: private, Vary on who asks).
    personal = False

    params_class = ListParamsSerializer

    def params(self, request: Request) -> dict[str, Any]:
        params = self.params_class(data=request.query_params)
        params.is_valid(raise_exception=True)
        return params.validated_data

    def respond(
        self,
        request: Request,
        build,
        k: int | None,
        user: Any = None,
        visitor_id: str | None = None,
    ) -> Response:
        """The list through :func:`serving.serve`: the caller's A/B variant, popular items
        rather than a 500 when the list fails, the impression logged after the response."""
        result = serving.serve(
            self.placement,
            build,
            request=request._request,
            user=user,
            visitor_id=visitor_id,
            on_error=(
                (lambda: serving.popular(k=k, placement=self.placement))
                if self.popular_on_error
                else None
            ),
        )
        response = Response(RecommendationListSerializer(result, context={"request": request}).data)
        if self.personal:
            mark_personal(response)
        return response

    def shopper(self, request: Request) -> tuple[Any, str | None]:
        """The caller as a shopper: nobody when they opted out or have not consented where
        consent is required (nothing personal is read)."""
        if not consent.tracking_allowed(request._request):
            return None, None
        user = request.user if request.user.is_authenticated else None
        return user, request_visitor_id(request)


def request_visitor_id(request: Request) -> str | None:
    """The ``X-Visitor-Id`` the server issued, else the browser's cookie visitor.

    A header the server did not issue (made up, tampered with, or signed with a retired
    ``SECRET_KEY``) is a 400, not silently ignored: the app learns that its id is dead.
    """
    header = request.headers.get("X-Visitor-Id")
    if header:
        visitor_id = visitors.from_client(header)
        if visitor_id is None:
            raise ValidationError({"X-Visitor-Id": [visitors.NOT_ISSUED]})
        return visitor_id
    return get_adapter().get_visitor_id(request) or None


class ForMeView(ListView):
    placement = "for_you"
    personal = True

    @extend_schema(
        parameters=[ListParamsSerializer, VISITOR_HEADER],
        responses={200: RecommendationListSerializer, **errors(ListErrorsSerializer)},
        summary="Recommendations for the caller (signed in, or by visitor id)",
    )
    def get(self, request: Request) -> Response:
        k = self.params(request).get("k")
        user, visitor_id = self.shopper(request)
        return self.respond(
            request, lambda: serving.for_visitor(user, visitor_id, k), k, user, visitor_id
        )


class BuyAgainView(ListView):
    placement = "buy_again"
    popular_on_error = False
    personal = True

    @extend_schema(
        parameters=[ListParamsSerializer, VISITOR_HEADER],
        responses={200: RecommendationListSerializer, **errors(ListErrorsSerializer)},
        summary="What the caller bought, the likeliest re-buys first (empty for a new shopper)",
    )
    def get(self, request: Request) -> Response:
        k = self.params(request).get("k")
        user, visitor_id = self.shopper(request)
        return self.respond(
            request, lambda: serving.buy_again(user, visitor_id, k), k, user, visitor_id
        )


USER_ID = OpenApiParameter(
    "user_id",
    OpenApiTypes.INT64,
    location=OpenApiParameter.PATH,
    description="The user's id (an unknown one is a 404).",
)


class CanReadShopperHistory(permissions.BasePermission):
    """Staff who may read the interaction log: a user's list shows what they viewed and
    bought ("because you bought X"), so being staff alone is not enough."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_staff and user.has_perm("recommendations.view_interaction"))


class UserRecommendationsView(ListView):
    permission_classes = [CanReadShopperHistory]
    placement = "for_you"
    personal = True

    @extend_schema(
        parameters=[USER_ID, ListParamsSerializer],
        responses={200: RecommendationListSerializer, **errors(ListErrorsSerializer, 403, 404)},
        summary="A user's recommendations (staff who may view the interaction log)",
    )
    def get(self, request: Request, user_id: int) -> Response:
        user = get_object_or_404(get_user_model(), pk=existing_id(user_id))
        k = self.params(request).get("k")
        return self.respond(request, lambda: serving.for_visitor(user, None, k), k)


class CanReadCustomerInsights(permissions.BasePermission):
    """Staff who may view customer insights (``recommendations.view_customerinsight``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user and user.is_staff and user.has_perm("recommendations.view_customerinsight")
        )


class CustomerInsightsView(APIView):
    permission_classes = [CanReadCustomerInsights]
    throttle_classes = [ReadsThrottle]

    @extend_schema(
        parameters=[USER_ID],
        responses={200: CustomerInsightSerializer, **errors(None, 403, 404)},
        summary="A customer's churn risk, expected spend and usual prices (staff)",
    )
    def get(self, request: Request, user_id: int) -> Response:
        insight = get_object_or_404(CustomerInsight, user_id=existing_id(user_id))
        response = Response(CustomerInsightSerializer(insight).data)
        mark_personal(response)
        return response


ITEM_PK = OpenApiParameter(
    "id",
    OpenApiTypes.INT64,
    location=OpenApiParameter.PATH,
    description="The item's id. An item that is unknown or not shown to shoppers is a 404.",
)


class ItemListView(ListView):
    service = staticmethod(serving.related_to)

    def get(self, request: Request, pk: int) -> Response:
        existing_id(pk)
        try:  # this process's item cache: no query when the item was served recently
            item = serving.get_item(pk)
        except ObjectDoesNotExist:
            raise Http404("No such item.") from None
        k = self.params(request).get("k")
        # What a shopper cannot see (inactive, sold out, not public) has no lists either,
        # as its page has none; read fresh, like the stock of every list.
        if not get_adapter().visible_ids([item.pk]):
            raise Http404("No such item.")
        user, visitor_id = self.shopper(request)
        return self.respond(request, lambda: self.service(item, k), k, user, visitor_id)


ITEM_LIST_SCHEMA = {
    "parameters": [ITEM_PK, ListParamsSerializer, VISITOR_HEADER],
    "responses": {200: RecommendationListSerializer, **errors(ListErrorsSerializer, 404)},
}


class RelatedView(ItemListView):
    placement = "related"
    service = staticmethod(serving.related_to)

    @extend_schema(**ITEM_LIST_SCHEMA, summary="Items similar to this one")
    def get(self, request: Request, pk: int) -> Response:
        return super().get(request, pk)


class BoughtTogetherView(ItemListView):
    placement = "bought_together"
    service = staticmethod(serving.bought_together)

    @extend_schema(**ITEM_LIST_SCHEMA, summary="Items bought in the same orders as this one")
    def get(self, request: Request, pk: int) -> Response:
        return super().get(request, pk)


class PopularView(ListView):
    placement = "popular"
    params_class = PopularParamsSerializer

    @extend_schema(
        parameters=[PopularParamsSerializer, VISITOR_HEADER],
        responses={200: RecommendationListSerializer, **errors(PopularErrorsSerializer)},
        summary="Most bought items, in the shop or in one category",
    )
    def get(self, request: Request) -> Response:
        params = self.params(request)
        k = params.get("k")
        user, visitor_id = self.shopper(request)
        return self.respond(
            request, lambda: serving.popular(params.get("category"), k), k, user, visitor_id
        )


class CategoriesView(APIView):
    """The shop's categories: their slugs are what ``popular?category=`` takes."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ReadsThrottle]

    @extend_schema(
        responses={200: CategorySerializer(many=True), **errors(None)},
        summary="The shop's categories (slugs for popular?category=)",
    )
    def get(self, request: Request) -> Response:
        adapter = get_adapter()
        queryset = adapter.category_queryset()
        categories = [] if queryset is None else queryset
        return Response([adapter.category_payload(category) for category in categories])


class VisitorsView(APIView):
    """Issues an anonymous visitor id: what a mobile app keeps per install."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [VisitorsThrottle]

    @extend_schema(
        request=None,
        responses={201: VisitorSerializer, 401: UNAUTHENTICATED, 429: THROTTLED},
        summary="A new anonymous visitor id (mobile clients, once per install)",
    )
    def post(self, request: Request) -> Response:
        return Response({"visitor_id": visitors.mint()}, status=status.HTTP_201_CREATED)


class ConsentView(APIView):
    """The shopper's consent to tracking, kept where it lasts: on the account when signed
    in, under ``X-Visitor-Id`` for an app, and in a signed cookie for a browser."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [EventsThrottle]

    @extend_schema(
        parameters=[VISITOR_HEADER],
        responses={200: ConsentStateSerializer, **errors(VisitorHeaderErrorsSerializer)},
        summary="Whether the caller is asked for, has given or has refused consent",
    )
    def get(self, request: Request) -> Response:
        request_visitor_id(request)  # a header the server did not issue is a 400
        response = Response(ConsentStateSerializer(consent.state(request._request)).data)
        mark_personal(response)
        return response

    @extend_schema(
        request=ConsentChoiceSerializer,
        parameters=[VISITOR_HEADER],
        responses={200: ConsentStateSerializer, **errors(ConsentErrorsSerializer, 403, 415)},
        summary="Consent to tracking, or opt out (lasting)",
    )
    def post(self, request: Request) -> Response:
        choice = ConsentChoiceSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        allowed = choice.validated_data["consent"]
        header = request.headers.get("X-Visitor-Id")
        visitor_id = request_visitor_id(request) if header else None
        if not request.user.is_authenticated and not header:
            # A browser's cookie choice: a form on another site must not make it for them.
            SessionAuthentication().enforce_csrf(request)
        consent.remember(request._request, allowed, visitor_id=visitor_id)
        response = Response(ConsentStateSerializer(consent.state(request._request)).data)
        consent.write_cookie(request._request, response, allowed)
        mark_personal(response)
        return response


class EventsView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [EventsThrottle]
    # A nested list has no form encoding: JSON only (anything else is a 415).
    parser_classes = [JSONParser]

    @extend_schema(
        request=EventBatchSerializer,
        responses={
            201: OpenApiResponse(EventBatchResultSerializer, description="Recorded."),
            200: OpenApiResponse(
                EventBatchResultSerializer,
                description=(
                    "Valid, and not recorded (tracked: false): the shopper opted out or has "
                    "not consented, or the shop switched tracking off."
                ),
            ),
            **errors(EventBatchErrorsSerializer, 403, 415),
        },
        summary="Record a batch of shopper events (mobile clients)",
    )
    def post(self, request: Request) -> Response:
        batch = EventBatchSerializer(data=request.data, context={"request": request})
        batch.is_valid(raise_exception=True)
        events = batch.validated_data["events"]
        integration = is_integration(request.user)
        # No user-agent bot filter here: that is for page views. Every batch comes from a
        # signed-in caller or carries a visitor id this server issued (apps' HTTP libraries
        # say "python-httpx" or "okhttp"). A server integration reports sales, not its own
        # browsing, and has no opt-out of its own.
        if not recording.should_track(
            None if integration else request._request, user_agent=False
        ) or (
            not request.user.is_authenticated
            and consent.visitor_declined(batch.validated_data.get("visitor_id"))
        ):
            body = {"received": len(events), "stored": 0, "duplicates": 0, "tracked": False}
            return Response(body, status=status.HTTP_200_OK)
        user = request.user if request.user.is_authenticated else None
        visitor_id = batch.validated_data.get("visitor_id") or ""
        for e in events:
            if e["event"] == Event.PURCHASE and not integration:  # the serializer refused it
                raise PermissionDenied(PURCHASES_REFUSED)
            if e.get("client_event_id"):
                e["client_event_id"] = (
                    # An integration's sales: verified, de-duplicated within its own ids.
                    f"api:{user.pk}/{e['client_event_id']}"
                    if e["event"] == Event.PURCHASE
                    else recording.shopper_event_id(
                        e["client_event_id"], user.pk if user else None, visitor_id
                    )
                )
        ids = [e["client_event_id"] for e in events if e.get("client_event_id")]
        duplicates = (
            set(
                Interaction.objects.filter(client_event_id__in=ids).values_list(
                    "client_event_id", flat=True
                )
            )
            if ids
            else set()
        )
        rows = [
            {
                "event": e["event"],
                "item": e["item"],
                # An integration reports sales for shoppers: they are the batch's visitor
                # (or no one), never the integration's own account.
                "user": None if integration and e["event"] == Event.PURCHASE else user,
                "visitor_id": visitor_id,
                "quantity": e["quantity"],
                "value": e.get("value"),
                "source": e.get("source", ""),
                "client_event_id": e.get("client_event_id"),
                "created_at": e.get("timestamp"),
            }
            for e in events
            if e.get("client_event_id") not in duplicates
        ]
        result = recording.record_many(rows)
        if result.rejected:  # validated above, so this is a bug, not bad input
            raise ValueError(f"events rejected after validation: {result.rejected}")
        body = {
            "received": len(events),
            "stored": result.written,
            "duplicates": len(events) - len(rows),
            "tracked": True,
        }
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """What the API answers for a path it does not have: a JSON 404."""

    permission_classes = [permissions.AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise Http404("No such path in the recommendations API.")


not_found = NotFoundView.as_view()

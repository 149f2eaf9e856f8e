"""The API's OpenAPI schema and its docs page, for a shop to include where it likes:

    path("api/", include("recommendations.api.schema_urls")),

gives ``/api/schema/`` and ``/api/docs/`` (named ``recommendations-schema`` and
``recommendations-docs``). The docs page is Swagger UI from ``drf-spectacular-sidecar``
(``"drf_spectacular_sidecar"`` in ``INSTALLED_APPS``): no asset comes from a CDN.
"""

from django.urls import path

from .schema import DocsView, SchemaView

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="recommendations-schema"),
    path("docs/", DocsView.as_view(), name="recommendations-docs"),
]

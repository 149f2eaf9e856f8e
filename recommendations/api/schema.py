"""The OpenAPI schema and its docs page, as the app serves them (``schema_urls``).

Generated clients read the schema, so it says what the API does: typed items, error bodies,
bounds as constraints, and which operations anonymous clients may call.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from django.urls import reverse
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

#: Where drf-spectacular-sidecar keeps Swagger UI among the static files.
SIDECAR = "drf_spectacular_sidecar/swagger-ui-dist"


def optional_auth_at_the_root(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Post-processing hook: the security requirements that anonymous access shares (those
    with an empty ``{}`` alternative) are declared once at the schema's root, and the
    operations that have them inherit them; operations that need a signed-in caller keep
    their own. The schema means the same (OpenAPI: an operation without ``security`` has
    the root's), and generators that read only operations' ``security`` (openapi-python-client
    0.29 treats any non-empty list as "needs credentials") let anonymous clients call them.
    """
    optional: list[Any] | None = None
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and {} in security:
                if optional is None:
                    optional = security
                elif security != optional:
                    return result  # different optional schemes: leave every operation as is
    if optional is None:
        return result
    for methods in result["paths"].values():
        for operation in methods.values():
            if isinstance(operation, dict) and operation.get("security") == optional:
                del operation["security"]
    result["security"] = optional
    return result


class SchemaView(SpectacularAPIView):
    """``GET /api/schema/``: the OpenAPI 3 schema (YAML, or JSON by ``Accept`` or
    ``?format=json``)."""

    @property
    def custom_settings(self) -> dict[str, Any]:  # type: ignore[override]
        hooks = [
            hook if isinstance(hook, str) else f"{hook.__module__}.{hook.__qualname__}"
            for hook in spectacular_settings.POSTPROCESSING_HOOKS
        ]
        ours = f"{__name__}.{optional_auth_at_the_root.__name__}"
        return {"POSTPROCESSING_HOOKS": [*hooks, ours] if ours not in hooks else hooks}


class DocsView(SpectacularSwaggerView):
    """``GET /api/docs/``: Swagger UI from ``drf-spectacular-sidecar``'s static files (no CDN;
    add ``"drf_spectacular_sidecar"`` to ``INSTALLED_APPS``), whatever ``SWAGGER_UI_DIST``
    says."""

    url_name = "recommendations-schema"

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"{SIDECAR}/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static(f"{SIDECAR}/favicon-32x32.png")

    def _get_schema_url(self, request: Any) -> str:
        # The schema beside this page, whatever namespace the shop included them under.
        namespace = request.resolver_match.namespace if request.resolver_match else ""
        self.url = reverse(f"{namespace}:{self.url_name}" if namespace else self.url_name)
        return super()._get_schema_url(request)

    @extend_schema(exclude=True)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

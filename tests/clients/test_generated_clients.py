"""Clients generated from the live ``/api/schema/``, as a mobile developer generates them.

``openapi-python-client`` (from ``.venv-clients``, ``requirements-clients.txt``) writes a
Python package that must pass ``mypy --strict`` and import module by module; then the mobile
flow runs through it against pytest-django's live server: mint a visitor, send a batch of
events, read for-me, related, bought-together, popular by category slug, the categories,
and the documented errors. ``openapi-typescript`` (``tests/clients/package.json``) writes
TypeScript types that ``flow.ts`` must type-check against with ``tsc --strict``.

Run by ``make test-clients``, which installs both generators; the suite proper leaves this
folder out (``tests/conftest.py``).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from recommendations.models import Interaction
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: Where the Python generator and mypy live (make test-clients sets it).
CLIENTS_BIN = Path(os.environ.get("CLIENTS_BIN", ROOT / ".venv-clients" / "bin"))
NODE_BIN = HERE / "node_modules" / ".bin"
PACKAGE = "shop_api_client"
MYPY_CONFIG = """\
[mypy]
strict = True
# The generator's own client.py forwards *args: object to httpx's __exit__ (its template,
# not this API's schema): the one error code left out, for that module only.
[mypy-{package}.client]
disable_error_code = arg-type
"""


def run(*command: str | Path, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command[0]} failed:\n{output}"
    return output


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="recommendations-clients-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def schema_file(live_server, workdir):
    """The schema as the live server serves it to anyone (JSON)."""
    import httpx

    response = httpx.get(f"{live_server.url}/api/schema/?format=json", timeout=30)
    assert response.status_code == 200
    path = workdir / "schema.json"
    path.write_text(json.dumps(response.json()))
    return path


@pytest.fixture(scope="module")
def client_package(schema_file, workdir):
    """The generated Python package: type-checked, every module imported, on ``sys.path``."""
    generator = CLIENTS_BIN / "openapi-python-client"
    assert generator.exists(), f"{generator} is missing: run make test-clients"
    out = workdir / "python"
    out.mkdir()
    env = {**os.environ, "PATH": f"{CLIENTS_BIN}{os.pathsep}{os.environ['PATH']}"}
    log = run(
        generator, "generate", "--path", schema_file, "--output-path", out / PACKAGE,
        "--meta", "none", cwd=workdir, env=env,
    )
    assert "Warning" not in log, log  # every part of the schema was understood
    (out / "mypy.ini").write_text(MYPY_CONFIG.format(package=PACKAGE))
    run(CLIENTS_BIN / "mypy", "--config-file", "mypy.ini", "--no-incremental", PACKAGE, cwd=out)
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module(PACKAGE)
        for module in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
            importlib.import_module(module.name)
        yield package
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_the_typescript_client_type_checks(schema_file, workdir):
    assert (NODE_BIN / "openapi-typescript").exists(), "run make test-clients (npm ci)"
    out = workdir / "typescript"
    out.mkdir()
    run(NODE_BIN / "openapi-typescript", schema_file, "--output", out / "schema.d.ts", cwd=out)
    shutil.copy(HERE / "flow.ts", out / "flow.ts")
    run(
        NODE_BIN / "tsc", "--noEmit", "--strict", "--target", "es2022",
        "--moduleResolution", "bundler", "--module", "esnext", "flow.ts", cwd=out,
    )


def test_the_mobile_flow_through_the_generated_python_client(live_server, client_package):
    api = importlib.import_module(f"{PACKAGE}.api.recommendations")
    models = importlib.import_module(f"{PACKAGE}.models")
    client_module = importlib.import_module(f"{PACKAGE}.client")

    def call(name: str):
        return importlib.import_module(f"{api.__name__}.recommendations_{name}")

    shop_settings = {**settings.RECOMMENDATIONS, **factories.TRAINED_SETTINGS}  # its adapter
    with override_settings(RECOMMENDATIONS=shop_settings):
        items = factories.clustered_log()
        factories.trained_version()
        pool.active_model.clear()
        shelf = items[0].category
        # An anonymous client (no credentials), with httpx's own User-Agent.
        client = client_module.Client(base_url=live_server.url, raise_on_unexpected_status=True)

        minted = call("visitors_create").sync_detailed(client=client)
        assert minted.status_code == 201 and isinstance(minted.parsed, models.Visitor)
        visitor_id = minted.parsed.visitor_id

        categories = call("categories_list").sync(client=client)
        assert isinstance(categories, list) and shelf.slug in {c.slug for c in categories}

        cluster = [p for p in items if p.name.startswith("CLUSTER 3 ")][:3]
        batch = models.EventBatch(
            visitor_id=visitor_id,
            events=[
                models.ShopperEvent(
                    event=models.EventEnum.VIEW, item=p.pk, client_event_id=uuid.uuid4().hex
                )
                for p in cluster
            ],
        )
        sent = call("events_create").sync_detailed(client=client, body=batch)
        assert sent.status_code == 201, sent.content
        assert isinstance(sent.parsed, models.EventBatchResult) and sent.parsed.tracked
        assert sent.parsed.stored == 3
        assert Interaction.objects.filter(item__in=cluster).exclude(visitor_id="").count() >= 3

        for_me = call("for_me_retrieve").sync(client=client, k=5, x_visitor_id=visitor_id)
        assert isinstance(for_me, models.RecommendationList) and len(for_me.results) == 5
        assert for_me.results[0].strategy == "model"
        assert all(r.item.name.startswith("CLUSTER 3") for r in for_me.results[:3])
        assert isinstance(for_me.results[0].item, models.Item)

        related = call("items_related_retrieve").sync(client=client, id=cluster[0].pk, k=4)
        assert isinstance(related, models.RecommendationList) and len(related.results) == 4
        assert cluster[0].pk not in {r.item.id for r in related.results}
        together = call("items_bought_together_retrieve").sync(client=client, id=cluster[0].pk)
        assert isinstance(together, models.RecommendationList) and together.results

        popular = call("popular_retrieve").sync(client=client, category=shelf.slug, k=3)
        assert isinstance(popular, models.RecommendationList) and len(popular.results) == 3
        assert all(r.item.category == shelf.name for r in popular.results)

        # The documented errors arrive as the documented types.
        missing = call("items_related_retrieve").sync_detailed(client=client, id=-1)
        assert missing.status_code == 404 and isinstance(missing.parsed, models.Error)
        too_many = call("for_me_retrieve").sync_detailed(client=client, k=51)
        assert too_many.status_code == 400 and isinstance(too_many.parsed, models.ListErrors)
        assert too_many.parsed.k
        nothing = models.ShopperEvent(event=models.EventEnum.VIEW, item=999_999)
        unknown = models.EventBatch(visitor_id=visitor_id, events=[nothing])
        refused = call("events_create").sync_detailed(client=client, body=unknown)
        assert refused.status_code == 400 and isinstance(refused.parsed, models.EventBatchErrors)
        wrong = client_module.Client(
            base_url=live_server.url, httpx_args={"auth": ("nobody", "wrong")}
        )
        denied = call("for_me_retrieve").sync_detailed(client=wrong)
        assert denied.status_code == 401 and isinstance(denied.parsed, models.Error)

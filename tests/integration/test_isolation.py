"""The suite touches nothing of a shop: trained models go to a temporary folder."""

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from recommendations.learning import versions
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

SHOP_MEDIA = Path(settings.BASE_DIR) / "var" / "media"


def _digest(folder: Path) -> str:
    """Every file's path and bytes under ``folder`` (empty when it does not exist)."""
    h = hashlib.sha256()
    if folder.exists():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_training_writes_its_model_to_a_temporary_folder_not_the_shops(shop):
    # The fixture trained a version already; train one more and follow its files.
    before = _digest(SHOP_MEDIA)
    again = factories.trained_version()
    name, _ = versions.artifact_names(again)
    written = Path(default_storage.path(name))
    assert written.is_file()
    assert Path(settings.MEDIA_ROOT) == Path(os.environ["DJANGO_MEDIA_ROOT"])
    assert SHOP_MEDIA.resolve() not in written.resolve().parents
    assert _digest(SHOP_MEDIA) == before  # byte-identical

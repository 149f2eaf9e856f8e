"""What the browser tests share: Debian's Chromium, its marks, where screenshots go."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def _screenshots_dir() -> Path:
    """Where screenshots go: ``RECOMMENDATIONS_SCREENSHOTS`` when set (to keep them), else a
    temporary folder removed when the run ends; never the checkout."""
    chosen = os.environ.get("RECOMMENDATIONS_SCREENSHOTS")
    if chosen:
        return Path(chosen)
    path = Path(tempfile.mkdtemp(prefix="recommendations-screenshots-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


ARTIFACTS = _screenshots_dir()
# Headless Chromium says "HeadlessChrome", which tracking drops as a bot: look human.
SHOPPER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0 Safari/537.36"
)

MARKS = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
    ),
]

"""What the two browser tests share: finding Debian's chromium and telling loopback URLs
(the only ones a self-contained page may fetch) from the rest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def chromium() -> str | None:
    """Debian's chromium binary (``$MULTIAD_CHROMIUM`` overrides)."""
    for candidate in (os.environ.get("MULTIAD_CHROMIUM"), shutil.which("chromium"),
                      "/usr/bin/chromium", shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def is_loopback(url: str) -> bool:
    """True for URLs served by this machine (or not fetched from anywhere: data, blob)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript", "mailto"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS

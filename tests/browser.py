"""Headless Chromium for the report's browser tests: the flags, where screenshots go, and the binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--virtual-time-budget=30000",  # virtual milliseconds: idle time passes at once, so generous costs nothing
)

# For screenshots: paint sandboxed frames in the page's process. Chromium isolates them in a process of
# their own, which the virtual-time budget does not wait for, so a screenshot could catch a frame blank.
PAINT_FRAMES = "--disable-features=IsolateSandboxedIframes"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium; apt-get install -y chromium)")
    return found

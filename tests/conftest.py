"""Shared fixtures: the plugin is tested through pytester with real kernels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.project import Project


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs do not pick up the outer repository's config.

    CI is set so that pytest prints whole summary lines whatever the terminal width, here and in CI.
    """
    monkeypatch.setenv("CI", "true")
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):  # set when this suite runs in Actions
        monkeypatch.delenv(name, raising=False)
    # In-process runs find the plugin already imported by the outer run; that is expected here.
    pytester.makeini("[pytest]\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\n")
    return pytester


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A git repository of notebooks, tested by a real pytest in a subprocess, then nbpromote."""
    return Project(tmp_path / "repo")

"""pytest-notebooks: test parameterised Jupyter notebooks with papermill before they ship."""

from __future__ import annotations

from pytest_notebooks import deferred

__version__ = "0.1.0"

deferred.defer()  # before anything imports jsonschema: see deferred.py

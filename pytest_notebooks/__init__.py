"""pytest-notebooks: test parameterised Jupyter notebooks with papermill before they ship."""

from __future__ import annotations

__version__ = "0.1.0"

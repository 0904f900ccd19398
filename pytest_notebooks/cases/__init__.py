"""Notebook + fixture YAML -> NotebookCase per case: reading, validation, hints. No pytest."""

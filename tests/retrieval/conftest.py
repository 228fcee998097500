"""Fixtures of the retrieval tests: the serving tests' tiny export (with its embedding signature)."""

from tests.serving.conftest import export, source, workdir  # noqa: F401  (pytest fixtures)

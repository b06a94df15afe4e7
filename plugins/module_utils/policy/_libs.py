# PRIVATE to the collection: not a public API.
"""The engine's third-party libraries: those of the document readers, and jmespath (imported
where a missing one can still be reported, see documents/_libs.py)."""

from __future__ import annotations

from ..documents._libs import cerberus, cerberus_errors, yaml  # noqa: F401 pylint: disable=unused-import

try:
    import jmespath
    from jmespath import exceptions as jmespath_exceptions  # noqa: F401 pylint: disable=unused-import
    from jmespath import functions as jmespath_functions  # noqa: F401 pylint: disable=unused-import
except ImportError:
    jmespath = None
    jmespath_exceptions = None
    jmespath_functions = None


def missing_libraries() -> list[str]:
    """Names to pip install before the engine can work (empty when all are there)."""
    return [name for name, lib in (('cerberus', cerberus), ('jmespath', jmespath), ('PyYAML', yaml)) if lib is None]

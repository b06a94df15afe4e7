# PRIVATE to the collection: not a public API.
"""Catalog loading errors: every problem found, each naming file, line, image and field."""

from __future__ import annotations

from ..documents.problems import Problem, ProblemsError


class CatalogProblem(Problem):
    """One thing wrong in a catalog, formatted as `file:line: image 'x' (images[0]): field 'y': message`."""

    __slots__ = ()


class CatalogError(ProblemsError):
    """A catalog could not be loaded; `problems` lists every CatalogProblem found."""

    subject = 'catalog'

# PRIVATE to the collection: not a public API.
"""Policy loading errors: every problem found, each naming file, item and field."""

from __future__ import annotations

from ..documents.problems import Problem, ProblemsError

__all__ = ['PolicyError', 'PolicyProblem', 'Problem', 'ProblemsError']


class PolicyProblem(Problem):
    """One thing wrong in a policy source."""

    __slots__ = ()


class PolicyError(ProblemsError):
    """A policy could not be loaded; `problems` lists every PolicyProblem found."""

    subject = 'policy'

# PRIVATE to the collection: not a public API.
"""Which YAML files a list of files and directories names."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .problems import Problem

SUFFIXES = ('.yml', '.yaml')


def directory_files(path: str) -> list[str]:
    """A directory's *.yml and *.yaml files, in name order; not its subdirectories."""
    return [
        os.path.join(path, name)
        for name in sorted(os.listdir(path))
        if name.endswith(SUFFIXES) and os.path.isfile(os.path.join(path, name))
    ]


def yaml_files(paths: Sequence[str], what: str, problem: type[Problem] = Problem) -> tuple[list[str], list[Problem]]:
    """The files ``paths`` name, in order, each once (a file named directly and through its
    directory is read once), and a ``problem`` for each path that names nothing (``what``:
    'policy', 'catalog')."""
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for path in (os.fspath(item) for item in paths):
        if os.path.isdir(path):
            found = directory_files(path)
            if not found:
                problems.append(problem(path, f'no *.yml or *.yaml {what} files in this directory'))
        elif os.path.isfile(path):
            found = [path]
        else:
            problems.append(problem(path, f'no such {what} file or directory'))
            found = []
        for name in found:
            key = os.path.realpath(name)
            if key not in seen:
                seen.add(key)
                files.append(name)
    return files, problems

# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report files written atomically, and only when their content changes (so re-runs are not 'changed')."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ._errors import ImagegovError
from .policy import render_json, render_junit, render_sarif

# (format, module option, renderer of a list of policy Decisions)
REPORTS = (
    ('json', 'report_json', render_json),
    ('junit', 'report_junit', render_junit),
    ('sarif', 'report_sarif', render_sarif),
)


def check_report_path(path: str, option: str) -> None:
    if os.path.isdir(path):
        raise ImagegovError(f'Option {option}: {path} is a directory; give the path of a file.')


def read_report(path: str, option: str) -> bytes | None:
    check_report_path(path, option)
    try:
        with open(path, 'rb') as stream:
            return stream.read()
    except OSError:
        return None  # missing or unreadable: written (again), where a real problem is reported


def write_report(module: Any, path: str, data: bytes, option: str) -> None:
    """Write through a temporary file in the same directory, then move it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
        with os.fdopen(fd, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        if tmp:
            os.unlink(tmp)
        raise ImagegovError(
            f'Option {option}: cannot write {path}: {exc.strerror or exc}. Give a '
            'writable path on the host the module runs on.'
        ) from exc
    module.atomic_move(tmp, path)

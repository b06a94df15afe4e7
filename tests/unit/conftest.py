"""Make the repository importable as ``ansible_collections.imagegov.openstack``, and the
unit tests' own helpers (``glance_double``) importable by every unit test."""

from __future__ import annotations

import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_root() -> str:
    for entry in sys.path:
        if os.path.isdir(os.path.join(entry, 'ansible_collections', 'imagegov', 'openstack')):
            return entry
    root = tempfile.mkdtemp(prefix='imagegov-collections-')
    os.makedirs(os.path.join(root, 'ansible_collections', 'imagegov'))
    os.symlink(REPO, os.path.join(root, 'ansible_collections', 'imagegov', 'openstack'))
    return root


sys.path.insert(0, _collection_root())
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

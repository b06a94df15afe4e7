"""Make `ansible_collections.imagegov.openstack` importable for the catalog tests.

tests/unit/conftest.py does this too, but pytest only reads it when it collects from
tests/unit or above; `pytest tests/unit/catalog` on its own (no ini file: rootdir is
this directory) would not. When the repository is not already importable as the
collection, a temporary `ansible_collections/imagegov/openstack` symlink to the
repository root goes at the front of sys.path.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTION = 'ansible_collections.imagegov.openstack'


def _make_collection_importable() -> None:
    try:
        __import__(COLLECTION + '.plugins.module_utils.catalog')
        return
    except ImportError:
        pass
    root = tempfile.mkdtemp(prefix='imagegov-catalog-tests-')
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    namespace = Path(root, 'ansible_collections', 'imagegov')
    namespace.mkdir(parents=True)
    os.symlink(REPO_ROOT, namespace / 'openstack', target_is_directory=True)
    sys.path.insert(0, root)
    for name in [name for name in sys.modules if name == 'ansible_collections' or name.startswith('ansible_collections.')]:
        del sys.modules[name]
    __import__(COLLECTION + '.plugins.module_utils.catalog')


_make_collection_importable()

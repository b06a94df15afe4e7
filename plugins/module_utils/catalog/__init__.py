# PRIVATE to the collection: not a public API.
"""The gold-image catalog kept in Git: its format, its validation and the loaded model. No Ansible imports.

    catalog = load_catalog(['catalog/'])      # raises CatalogError listing every problem
    for image in catalog.images:              # one CatalogImage per single image and per series build
        ...image.name, image.source, image.sha256, image.desired_state...

The format is described in docs/catalog.md.
"""

from __future__ import annotations

from .constants import (
    CATALOG_VERSIONS,
    CONTAINER_FORMATS,
    DESIRED_STATES,
    DISK_FORMATS,
    STATE_ACTIVE,
    STATE_HIDDEN,
    STATE_RETIRED,
    VISIBILITIES,
)
from .errors import CatalogError, CatalogProblem
from .loader import catalog_files, load_catalog, load_catalog_documents, load_catalog_texts
from .model import Catalog, CatalogImage, CatalogSeries, Origin, Target
from .schema import parse_duration, property_text

__all__ = [
    'CATALOG_VERSIONS',
    'CONTAINER_FORMATS',
    'DESIRED_STATES',
    'DISK_FORMATS',
    'STATE_ACTIVE',
    'STATE_HIDDEN',
    'STATE_RETIRED',
    'VISIBILITIES',
    'Catalog',
    'CatalogError',
    'CatalogImage',
    'CatalogProblem',
    'CatalogSeries',
    'Origin',
    'Target',
    'catalog_files',
    'load_catalog',
    'load_catalog_documents',
    'load_catalog_texts',
    'parse_duration',
    'property_text',
]

# PRIVATE to the collection: not a public API.
"""The request document one intended action is judged on, and read access to its facts.

A request is a plain dict:
  {action, actor: {user, project, roles}, image: <desired image>, current: <existing or None>,
   content: {detected_format, virtual_size, size, safety_failures} (optional),
   usage: {servers, images, volumes, not_checked} (optional), source: {path, line} (optional),
   data_source: {kind: url|file|glance, url, path} (optional: where the bytes come from),
   server: {id, name, status, project_id, user_id, image_id, volume_backed} (optional: the
   server an image is captured from)}
Image dicts use Glance's field names; custom properties are top-level keys, as Glance returns them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..documents.problems import Problem, ProblemsError
from ..documents.validation import validate
from ..documents.values import QUOTE_LIMIT, quote
from .schema import REQUEST_SCHEMA

# Glance's default when an image is created without a visibility.
DEFAULT_VISIBILITY = 'shared'
# What a data source URL becomes when it cannot be split without risking to show a secret.
HIDDEN_URL = '<URL hidden: it cannot be split safely>'
# The characters of RFC 3986. Clients read others (spaces, backslashes, controls, non-ASCII)
# differently from each other, so a URL holding one is neither shown nor trusted.
URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")

UsageLoader = Callable[['Request'], dict[str, Any]]


def build_request(
    action: str,
    image: Mapping[str, Any] | None = None,
    current: Mapping[str, Any] | None = None,
    actor: Mapping[str, Any] | None = None,
    content: Mapping[str, Any] | None = None,
    usage: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    data_source: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A request document from a module's view: `image` holds only the requested changes.

    The desired image is the current one with the changes applied, so rules and
    JMESPath conditions see the full image that will exist after the action.
    `data_source` says where the bytes come from: {kind: 'url', url} (user info, query and
    fragment are removed here, so no credential reaches a decision or a report),
    {kind: 'file', path} (absolute) or {kind: 'glance'}. `server` is the Nova server an
    image is captured from, as Nova reports it (id, name, status, project_id, ...).
    """
    desired = dict(current or {})
    desired.update(image or {})
    document: dict[str, Any] = {
        'action': action,
        'actor': {
            'user': (actor or {}).get('user'),
            'project': (actor or {}).get('project'),
            'roles': list((actor or {}).get('roles') or []),
        },
        'image': desired,
        'current': dict(current) if current is not None else None,
    }
    for key in ('project_id', 'project_name', 'user_id'):
        if actor and actor.get(key) is not None:
            document['actor'][key] = actor[key]
    if content is not None:
        document['content'] = dict(content)
    if usage is not None:
        document['usage'] = dict(usage)
    if source is not None:
        document['source'] = dict(source)
    if server is not None:
        document['server'] = dict(server)
    if data_source is not None:
        document['data_source'] = dict(data_source)
        if isinstance(data_source.get('url'), str):
            document['data_source']['url'] = url_without_secrets(data_source['url'])
    return document


def url_without_secrets(url: str) -> str:
    """scheme://host[:port]/path of a URL, without user info, query or fragment (HIDDEN_URL when odd)."""
    if not URL_CHARACTERS.fullmatch(url):
        return HIDDEN_URL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number, e.g. a cut password)
    except ValueError:
        return HIDDEN_URL
    return urlunsplit((parts.scheme, parts.netloc.rpartition('@')[2], parts.path, '', ''))


class Request:
    """Read-only view of a request document with lazily loaded usage facts."""

    __slots__ = (
        'document',
        'action',
        'actor',
        'image',
        'current',
        'content',
        '_usage_loader',
        '_usage',
        '_roles',
        '_projects',
    )

    def __init__(self, document: Mapping[str, Any], usage_loader: UsageLoader | None = None) -> None:
        if not isinstance(document, Mapping):
            raise TypeError(f'a policy request must be a mapping, got {type(document).__name__}')
        self.document = document
        self.action = document.get('action')
        self.actor: Mapping[str, Any] = document.get('actor') or {}
        self.image: Mapping[str, Any] = document.get('image') or {}
        self.current: Mapping[str, Any] | None = document.get('current') or None
        self.content: Mapping[str, Any] | None = document.get('content') or None
        self._usage_loader = usage_loader
        self._usage: dict[str, Any] | None = None
        self._roles: frozenset[str] | None = None
        self._projects: frozenset[str] | None = None

    def get(self, field: str, default: Any = None) -> Any:
        """A field of the image after the action: desired, else current."""
        if field in self.image:
            return self.image[field]
        if self.current is not None and field in self.current:
            return self.current[field]
        return default

    def locate(self, field: str) -> tuple[str, Any]:
        """(path in the request document, value) of an image field after the action."""
        if field in self.image:
            return f'image.{field}', self.image[field]
        if self.current is not None and field in self.current:
            return f'current.{field}', self.current[field]
        return f'image.{field}', None

    @property
    def data_source(self) -> Any:
        """Where the bytes come from, as the document gives it: {kind, url, path}; None when not stated."""
        return self.document.get('data_source')

    @property
    def effective_image(self) -> dict[str, Any]:
        merged = dict(self.current or {})
        merged.update(self.image)
        return merged

    @property
    def image_id(self) -> str | None:
        return self.get('id')

    @property
    def image_name(self) -> str | None:
        return self.get('name')

    @property
    def label(self) -> str:
        """How messages name the image: its name, else its id."""
        name = self.image_name
        if name:
            return f"'{name}'"
        image_id = self.image_id
        return (f'image {image_id}') if image_id else 'the image'

    @property
    def visibility(self) -> str:
        return self.get('visibility') or DEFAULT_VISIBILITY

    @property
    def roles(self) -> frozenset[str]:
        if self._roles is None:
            # Keystone treats role names case-insensitively.
            self._roles = frozenset(str(role).lower() for role in self.actor.get('roles') or ())
        return self._roles

    @property
    def projects(self) -> frozenset[str]:
        """The acting project (name and/or id) and the image's owning project."""
        if self._projects is None:
            keys = [self.actor.get(key) for key in ('project', 'project_id', 'project_name')]
            keys.append(self.get('owner'))
            self._projects = frozenset(str(key) for key in keys if key)
        return self._projects

    @property
    def usage(self) -> dict[str, Any]:
        """Usage facts: from the document if given, else fetched once through the loader."""
        if self._usage is None:
            given = self.document.get('usage')
            if isinstance(given, Mapping):
                self._usage = dict(given)
            elif self._usage_loader is not None:
                self._usage = self._usage_loader(self)
            else:
                self._usage = {'not_checked': ['no usage facts and no usage provider']}
        return self._usage


class RequestError(ProblemsError):
    """Request documents that cannot be evaluated; `problems` names each document and field."""

    subject = 'option requests'


def request_problems(documents: Sequence[Any], name: str = 'requests') -> list[Problem]:
    """Every problem of a list of request documents, each naming ``name[N]`` and the field."""
    problems = []
    for index, document in enumerate(documents):
        where = f'{name}[{index}]'
        if not isinstance(document, Mapping):
            problems.append(
                Problem(
                    where,
                    f'must be a mapping (a request document with action, actor, image, '
                    f'current, ...), got {quote(document, QUOTE_LIMIT)}',
                )
            )
            continue
        problems.extend(
            Problem(where, message, field=field) for field, message in validate(dict(document), REQUEST_SCHEMA)[1]
        )
    return problems

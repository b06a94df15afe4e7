# PRIVATE to the collection: not a public API.
"""allowed_sources: where an image's bytes may come from (URL prefixes, local files)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..request import URL_CHARACTERS, Request, url_without_secrets
from .base import Finding, Rule, register

SCHEMES = ('http', 'https')
DEFAULT_PORTS = {'http': 80, 'https': 443}
KINDS = ('url', 'file', 'glance')

_BAD_ESCAPE = re.compile(r'%(?![0-9A-Fa-f]{2})')
_ESCAPE = re.compile(r'%([0-9A-Fa-f]{2})')
_SLASH_ESCAPES = re.compile(r'%(2[Ff]|5[Cc])')
_UNRESERVED = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~')

Segments = tuple[str, ...]


class SourceUrl:
    """A URL as the rule compares it: scheme and host lower-case, the port always stated, and
    every way a server may read the path (see path_readings)."""

    __slots__ = ('scheme', 'host', 'port', 'readings', 'has_userinfo', 'has_query')

    def __init__(
        self, scheme: str, host: str, port: int, readings: tuple[Segments, ...], has_userinfo: bool, has_query: bool
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.readings = readings
        self.has_userinfo = has_userinfo
        self.has_query = has_query

    @property
    def default_port(self) -> bool:
        return DEFAULT_PORTS.get(self.scheme) == self.port


def parse_url(url: Any) -> tuple[SourceUrl | None, str]:
    """(SourceUrl, '') or (None, why it cannot be compared)."""
    if not isinstance(url, str) or not url:
        return None, 'no URL'
    if not URL_CHARACTERS.fullmatch(url):
        return None, 'it has characters a URL cannot hold unencoded: spaces, backslashes, control or non-ASCII'
    if _BAD_ESCAPE.search(url):
        return None, "a '%' that does not start a percent-escape"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return None, f'it does not parse: {exc}'
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return None, 'scheme {}; only {} URLs are compared'.format(
            f"'{scheme}'" if scheme else 'missing', ' and '.join(SCHEMES)
        )
    host = _normal_host(parts.hostname or '')
    if host is None:
        return None, 'no valid host'
    return SourceUrl(
        scheme,
        host,
        port if port is not None else DEFAULT_PORTS[scheme],
        path_readings(parts.path or '/'),
        has_userinfo='@' in parts.netloc,
        has_query='?' in url or '#' in url,
    ), ''


def _normal_host(host: str) -> str | None:
    """Lower-case (urlsplit did that), one trailing dot dropped, IP addresses in their standard form."""
    if host.endswith('.'):
        host = host[:-1]
    if not host or '%' in host or '..' in host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def path_readings(path: str) -> tuple[Segments, ...]:
    """The path's segments as each kind of server may read them, dot-segments resolved.

    Servers differ on `//` (kept or merged), on `;params` (part of the segment, or Tomcat's
    path parameters) and on `%2F` / `%5C` (a character, or a separator): each combination
    is a reading. Unreserved percent-escapes are decoded (`%2E%2E` is `..`), the others
    upper-cased; a trailing slash is dropped.
    """
    readings = []
    for slashes in (False, True):
        text = _SLASH_ESCAPES.sub('/', path) if slashes else path
        for params in (False, True):
            for merge in (False, True):
                reading = _resolve(text, params, merge)
                if reading not in readings:
                    readings.append(reading)
    return tuple(readings)


def _resolve(path: str, strip_params: bool, merge_slashes: bool) -> Segments:
    segments: list[str] = []
    pieces = path.split('/')[1:] if path.startswith('/') else path.split('/')
    for index, piece in enumerate(pieces):
        if strip_params:
            piece = piece.split(';', 1)[0]
        piece = _ESCAPE.sub(_normal_escape, piece)
        if piece == '.':
            continue
        if piece == '..':
            if segments:
                segments.pop()
            continue
        if piece == '' and (merge_slashes or index == len(pieces) - 1):
            continue  # a merged `//`, or the trailing slash
        segments.append(piece)
    return tuple(segments)


def _normal_escape(match: Any) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f'%{match.group(1).upper()}'


class UrlPrefix:
    """One allowed prefix: scheme, host and port must be equal, the path a leading run of whole segments."""

    __slots__ = ('text', 'url', 'segments')

    def __init__(self, text: str, url: SourceUrl) -> None:
        self.text = text
        self.url = url
        self.segments = url.readings[0]

    @classmethod
    def parse(cls, text: Any) -> tuple[UrlPrefix | None, str]:
        url, reason = parse_url(text)
        if url is None:
            return None, f'not a usable URL prefix ({reason}), got {_quote(text)}'
        if url.has_userinfo:
            return None, f'must not contain user info (user@ or user:password@), got {_quote(text)}'
        if url.has_query:
            return None, f'must not have a query (?) or fragment (#), got {_quote(text)}'
        if not _plain_path(urlsplit(text).path):
            return None, (
                f"must have a plain path: no '.' or '..' segments, '//', ';' or encoded slashes, got {_quote(text)}"
            )
        return cls(text, url), ''

    def covers(self, url: SourceUrl) -> bool:
        if (url.scheme, url.host, url.port) != (self.url.scheme, self.url.host, self.url.port):
            return False
        size = len(self.segments)
        return all(reading[:size] == self.segments for reading in url.readings)


def _plain_path(path: str) -> bool:
    if ';' in path or '//' in path or _SLASH_ESCAPES.search(path):
        return False
    return not any(_ESCAPE.sub(_normal_escape, piece) in ('.', '..') for piece in path.split('/'))


def _quote(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


@register
class AllowedSources(Rule):
    """Where an image's bytes may come from: URLs under allowed prefixes, and local files or not.

    Judges the request's `data_source` (see [Requests](#requests)); a request without one is
    not judged, nor is a `glance` source (bytes already in Glance, e.g. a copy).

    URLs are compared parsed, never as text, so a prefix cannot be slipped past:

    - scheme and host compare lower-case; a trailing dot on the host is dropped; IP
      addresses compare in their standard form; the port is always compared, a default one
      (`:443` for https, `:80` for http) being the same as none;
    - user info is ignored: the host is what follows the last `@`, so
      `https://images.example.org@evil.example/` is on `evil.example`;
    - the path matches on whole segments (`/gold/` and `/gold` both cover `/gold/x.img`,
      never `/golden/x.img`), case-sensitively, after decoding percent-escapes of unreserved
      characters (`%2E%2E` is `..`) and resolving `.` and `..` (`/gold/../other/` is not under
      `/gold/`);
    - it must be under the prefix however a server reads it: with `//` kept or merged, `;`
      as part of a segment or as a path parameter (`/gold/..;/x`), and `%2F` / `%5C` as
      characters or as slashes;
    - a URL with a character a URL cannot hold unencoded (space, backslash, control,
      non-ASCII) or a scheme other than http and https is refused as one that cannot be
      checked; the query and fragment play no part.
    """

    notes = """
    At least one of `url_prefixes`, `schemes` and `files: deny` is required; a prefix whose
    scheme is not in `schemes` is an error. `{scheme}` is the scheme of a refused URL,
    `{reason}` why a URL or source cannot be checked. `found` is the URL without user info,
    query or fragment (or the file's path); `expected` lists the allowed prefixes. Messages by
    finding: a URL off the prefixes, a scheme not allowed, a URL that cannot be checked, a
    local file where files are denied, an unknown source kind.

    Exported to Glance (see `glance_settings`) as web-download's `[import_filtering_opts]`
    `allowed_schemes`, `allowed_hosts` and `allowed_ports`; the path prefixes, the pairing of
    scheme, host and port, and `files: deny` are listed under `not_exported`. Glance's filters
    govern web-download only.
    """
    example = """
    - id: gold-sources
      type: allowed_sources
      params:
        url_prefixes: ['https://images.example.org/gold/', 'http://mirror.example.net:8080/images/']
        files: deny
    """

    type_name = 'allowed_sources'
    params_schema = {
        'url_prefixes': {
            'meta': {
                'doc': 'a URL must be under one of them; no user info, query, fragment, `.`/`..`, `//`, `;` '
                'or encoded slashes in a prefix',
                'type': 'list of http(s) URLs',
            },
            'type': 'list',
            'minlength': 1,
            'schema': {'type': 'string', 'empty': False},
        },
        'schemes': {
            'meta': {'doc': 'a URL must use one of them (`[https]` requires TLS)'},
            'type': 'list',
            'minlength': 1,
            'schema': {'type': 'string', 'allowed': list(SCHEMES)},
        },
        'files': {
            'meta': {'doc': 'whether local image files may be uploaded'},
            'type': 'string',
            'allowed': ['allow', 'deny'],
            'default': 'allow',
        },
    }
    default_actions = ('create', 'upload')
    default_message = "{image}: source URL '{found}' is not under an allowed prefix; use a URL under one of: {expected}"
    kind_messages = {
        'scheme': "{image}: source URL '{found}' uses scheme '{scheme}', which is not allowed; use one of: {expected}",
        'malformed': "{image}: source URL '{found}' cannot be checked ({reason}); use a plain URL under one of: "
        '{expected}',
        'file': "{image}: image files are not allowed as a source ('{found}'); upload from a URL under one of: "
        '{expected}',
        'unknown': "{image}: data source '{found}' is not one this policy can judge ({reason}); use a URL under one "
        'of: {expected}',
    }
    placeholders = ('scheme', 'reason')

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if 'url_prefixes' not in params and 'schemes' not in params and params.get('files') != 'deny':
            problems.append(('', 'needs url_prefixes, schemes and/or files: deny'))
        for index, text in enumerate(params.get('url_prefixes') or []):
            prefix, reason = UrlPrefix.parse(text)
            if prefix is None:
                problems.append((f'url_prefixes[{index}]', reason))
            elif 'schemes' in params and prefix.url.scheme not in params['schemes']:
                schemes = ', '.join(params['schemes'])
                problems.append(
                    (
                        f'url_prefixes[{index}]',
                        f'scheme {_quote(prefix.url.scheme)} is not in schemes ({schemes}): no URL could match',
                    )
                )
        return problems

    def setup(self, params: Mapping[str, Any]) -> None:
        self.prefixes: tuple[UrlPrefix, ...] = tuple(
            prefix
            for prefix, _reason in (UrlPrefix.parse(text) for text in params.get('url_prefixes') or ())
            if prefix is not None
        )
        self.schemes: tuple[str, ...] | None = tuple(params['schemes']) if params.get('schemes') else None
        self.files_allowed = params.get('files', 'allow') == 'allow'
        if self.prefixes:
            self.allowed: list[str] = [prefix.text for prefix in self.prefixes]
        else:
            self.allowed = [f'any {scheme}:// URL' for scheme in self.schemes or SCHEMES]

    def evaluate(self, request: Request) -> list[Finding]:
        source = request.data_source
        if source is None:
            return []
        kind = source.get('kind') if isinstance(source, Mapping) else None
        if kind == 'glance':
            return []
        if kind == 'file':
            if self.files_allowed:
                return []
            return [self._finding('data_source.path', source.get('path'), 'file')]
        if kind != 'url':
            reason = f'kind must be one of {", ".join(KINDS)}' if isinstance(source, Mapping) else 'not a mapping'
            return [
                self._finding(
                    'data_source.kind' if isinstance(source, Mapping) else 'data_source',
                    kind if isinstance(source, Mapping) else source,
                    'unknown',
                    reason=reason,
                )
            ]
        given = source.get('url')
        shown = url_without_secrets(given) if isinstance(given, str) else given
        url, reason = parse_url(given)
        if url is None:
            return [self._finding('data_source.url', shown, 'malformed', reason=reason)]
        if self.schemes is not None and url.scheme not in self.schemes:
            return [
                Finding(
                    'data_source.url',
                    shown,
                    list(self.schemes),
                    kind='scheme',
                    fields={'scheme': url.scheme, 'reason': ''},
                )
            ]
        if self.prefixes and not any(prefix.covers(url) for prefix in self.prefixes):
            return [self._finding('data_source.url', shown, 'default')]
        return []

    def _finding(self, path: str, found: Any, kind: str, reason: str = '') -> Finding:
        return Finding(path, found, list(self.allowed), kind=kind, fields={'scheme': '', 'reason': reason})

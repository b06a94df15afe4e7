# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets out of what people see: URLs shown without credentials or signatures, and the
secret values of options collected for Ansible's no_log masking and for error messages.

Parsing here is deliberately forgiving: a URL too odd to split safely is shown as a
placeholder rather than risk printing part of its password.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, unquote_plus

MASK = '********'
HIDDEN = '***'
UNPARSABLE_URL = '<URL hidden: cannot be shown safely>'
# Query values, query strings and bare user names shorter than this (page=2, format=raw)
# are not worth masking everywhere; a password is masked whatever its length.
MIN_SECRET_PART_LENGTH = 6
SECRET_KEY_PARTS = ('pass', 'token', 'secret', 'key', 'credential', 'totp')
_SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*')
# A URL in a sentence does not end with the sentence's punctuation.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:!?)\]]")
# urllib3 names only the path and query of a request that failed: "... with url: /a?sig=..."
_REQUEST_PATH_IN_TEXT = re.compile(r"(?<=with url: )/(?:[^\s'\"<>]*[^\s'\"<>.,;:!?)\]])?")


def _split(url: str) -> tuple[str, str | None, str, str, str] | None:
    """scheme ('' when absent), userinfo (None when absent), host[:port], path, and what
    follows the path ('?...' or '#...'); None when the authority does not parse."""
    scheme, separator, rest = url.partition('://')
    if not separator or not _SCHEME.fullmatch(scheme):
        scheme, rest = '', url
    tail_at = min((i for i in (rest.find('?'), rest.find('#')) if i >= 0), default=len(rest))
    before_tail, tail = rest[:tail_at], rest[tail_at:]
    slash = before_tail.find('/')
    authority, path = (before_tail, '') if slash < 0 else (before_tail[:slash], before_tail[slash:])
    userinfo, at, hostport = authority.rpartition('@')
    if not _valid_hostport(hostport) or (at and '@' in path):
        # E.g. a password with an unencoded '/', '?' or '#': the split above cut it in two.
        return None
    return scheme, userinfo if at else None, hostport, path, tail


def _query_and_fragment(tail: str) -> tuple[str, str]:
    """What follows the path, as query and fragment (a '?' after the '#' is the fragment's)."""
    if tail.startswith('?'):
        query, _hash, fragment = tail[1:].partition('#')
        return query, fragment
    return '', tail[1:]


def _valid_hostport(hostport: str) -> bool:
    if hostport.startswith('['):
        _host, bracket, port = hostport.partition(']')
        if not bracket:
            return False
        port = port[1:] if port.startswith(':') else (None if port else '')
        return port is not None and (port == '' or port.isdigit())
    _host, colon, port = hostport.rpartition(':')
    return not colon or port == '' or port.isdigit()


def redact_url(url: Any) -> str:
    """The URL for people: scheme, host, port and path; credentials and query hidden."""
    if not isinstance(url, str):
        return UNPARSABLE_URL
    try:
        parts = _split(url)
    except Exception:  # never let showing a URL be what fails a task
        return UNPARSABLE_URL
    if parts is None:
        return UNPARSABLE_URL
    scheme, userinfo, hostport, path, tail = parts
    shown = f'{scheme}://' if scheme else ''
    if userinfo is not None:
        shown += f'{HIDDEN}@'
    shown += hostport + path
    query, fragment = _query_and_fragment(tail)
    if query:
        shown += f'?{HIDDEN}'
    elif fragment:
        shown += f'#{HIDDEN}'
    return shown


def redact_urls_in(text: str) -> str:
    """Every URL inside a message (an exception's text, say) redacted."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    return _REQUEST_PATH_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def url_secrets(url: Any) -> list[str]:
    """What of a URL must never be shown, as given and percent-decoded: the password, the
    whole userinfo, the query string and fragment, and each query value (the last three
    and a user name without password only from MIN_SECRET_PART_LENGTH characters on)."""
    if not isinstance(url, str):
        return []
    secrets: list[str] = []
    try:
        parts = _split(url)
    except Exception:
        parts = None
    if parts is None:
        # Cannot tell the parts apart: hide the whole URL rather than nothing.
        return _unique([url, url.partition('://')[2]])
    _scheme, userinfo, _hostport, _path, tail = parts
    if userinfo:
        _user, colon, password = userinfo.partition(':')
        if colon and password:
            secrets += [userinfo, unquote(userinfo), password, unquote(password)]
        else:  # a user name alone, or a token in its place (https://TOKEN@host)
            secrets += _long_enough([userinfo, unquote(userinfo)])
    query, fragment = _query_and_fragment(tail)
    secrets += _long_enough([query, unquote_plus(query), fragment, unquote_plus(fragment)])
    for pair in re.split('[&;]', query):
        _name, _equals, value = pair.partition('=')
        secrets += _long_enough([value, unquote_plus(value)])
    return _unique(secrets)


def _long_enough(values: list[str]) -> list[str]:
    # Masking a two-letter string would garble every output it happens to occur in.
    return [value for value in values if len(value) >= MIN_SECRET_PART_LENGTH]


def cloud_secrets(cloud: Any) -> list[str]:
    """Every string under a key that may carry a secret, at any depth of a dict-valued
    cloud, plus the secret parts of any URL in it (an auth_url with credentials)."""
    secrets: list[str] = []

    def walk(value: Any, under_secret_key: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, under_secret_key or _is_secret_key(key))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, under_secret_key)
        elif isinstance(value, str):
            if under_secret_key:
                secrets.append(value)
            if '://' in value:
                secrets.extend(url_secrets(value))
        elif under_secret_key and isinstance(value, int) and not isinstance(value, bool):
            secrets.append(str(value))  # a TOTP passcode written as a YAML number

    if isinstance(cloud, dict):
        walk(cloud, False)
    return _unique(secrets)


def _is_secret_key(key: Any) -> bool:
    name = str(key).lower()
    return any(part in name for part in SECRET_KEY_PARTS)


def scrub(text: Any, secrets: Iterable[str]) -> str:
    """The text with every secret replaced by a mask, longest first so that a secret
    containing another is masked whole."""
    scrubbed = str(text)
    for secret in sorted({s for s in secrets if isinstance(s, str) and s}, key=len, reverse=True):
        scrubbed = scrubbed.replace(secret, MASK)
    return scrubbed


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))

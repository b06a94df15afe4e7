from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from types import SimpleNamespace
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import parameters
from keystoneauth1 import exceptions as ksa_exceptions

from ansible_collections.imagegov.openstack.plugins.module_utils import _base
from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._errors import ImagegovError
from ansible_collections.imagegov.openstack.plugins.module_utils._redact import (
    MASK,
    UNPARSABLE_URL,
    cloud_secrets,
    redact_url,
    redact_urls_in,
    scrub,
    url_secrets,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import USAGE_CLOUD_ARGSPEC

SIGNED = 'http://user:S3cretPlanted@127.0.0.1:18080/path/file.qcow2?X-Signature=PlantedSig0123456789&page=2'


@pytest.mark.parametrize(
    ('url', 'shown'),
    [
        (SIGNED, 'http://***@127.0.0.1:18080/path/file.qcow2?***'),
        ('https://images.example.org/cirros.qcow2', 'https://images.example.org/cirros.qcow2'),
        ('https://token0123456789@example.org/a.img', 'https://***@example.org/a.img'),
        ('https://example.org/a.img#part-2', 'https://example.org/a.img#***'),
        ('https://example.org/a.img?sig=abc#part', 'https://example.org/a.img?***'),
        # No scheme: still split at the last '@' of the authority.
        ('user:pw@host.example/path?sig=1', '***@host.example/path?***'),
        ('host.example:8080/path', 'host.example:8080/path'),
        ('images/cirros.qcow2', 'images/cirros.qcow2'),
        # A '://' inside the query is not the scheme.
        ('host/p?next=http://x', 'host/p?***'),
        # IPv6 literals keep their brackets and port.
        ('http://u:p@[::1]:8080/a.img?x=1', 'http://***@[::1]:8080/a.img?***'),
        ('http://[fe80::1%25eth0]/a.img', 'http://[fe80::1%25eth0]/a.img'),
        # Percent-encoded password: the whole userinfo goes.
        ('http://user:p%40ss%2Fw%3Ard@host/a.img', 'http://***@host/a.img'),
        # An empty query or fragment has nothing to hide.
        ('http://host/a.img?', 'http://host/a.img'),
        ('http://host/a.img?#', 'http://host/a.img'),
        ('http://host/a.img?#frag', 'http://host/a.img#***'),
        ('', ''),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    'url',
    [
        None,
        42,
        b'http://u:p@h/',
        ['http://u:p@h/'],
        # Unencoded '/', '?' or '@' in a password cut it apart: nothing of it may show.
        'http://user:pa/ss@host/a.img',
        'http://user:p@ss/word@host/a.img',
        'http://user:pa?ss@host/a.img',
        'http://[::1/a.img',
        'http://[::1]x/a.img',
    ],
)
def test_odd_urls_become_a_placeholder(url: object) -> None:
    assert redact_url(url) == UNPARSABLE_URL


def test_url_secrets_of_a_signed_url_with_credentials() -> None:
    secrets = url_secrets(SIGNED)
    assert {
        'S3cretPlanted',
        'user:S3cretPlanted',
        'X-Signature=PlantedSig0123456789&page=2',
        'PlantedSig0123456789',
    } <= set(secrets)
    # Short values (page=2) would garble every output they happen to occur in.
    assert '2' not in secrets and 'user' not in secrets


def test_url_secrets_include_the_decoded_password() -> None:
    secrets = url_secrets('http://user:p%40ss%2Fw%3Ard@host/a.img?sig=a%2Bb%2Fc%3D%3D')
    assert {'p%40ss%2Fw%3Ard', 'p@ss/w:rd', 'user:p@ss/w:rd', 'a%2Bb%2Fc%3D%3D', 'a+b/c=='} <= set(secrets)


@pytest.mark.parametrize(
    ('url', 'expected'),
    [
        ('https://images.example.org/cirros.qcow2', []),
        ('http://host/a.img?', []),
        ('http://u:p@[::1]:8080/a.img', ['u:p', 'p']),
        ('https://token0123456789@example.org/a.img', ['token0123456789']),
        ('https://bob@example.org/a.img', []),
        (None, []),
    ],
)
def test_url_secrets(url: object, expected: list[str]) -> None:
    assert url_secrets(url) == expected


def test_url_secrets_of_an_unparsable_url_hide_it_whole() -> None:
    assert url_secrets('http://user:pa/ss@host/a.img') == ['http://user:pa/ss@host/a.img', 'user:pa/ss@host/a.img']


def test_cloud_secrets_cover_every_secret_looking_key_at_any_depth() -> None:
    cloud = {
        'auth': {
            'auth_url': 'https://admin:UrlPass99@keystone.example/v3',
            'username': 'alice',
            'password': 'pw-alice',
            'project_name': 'alpha',
            'user_domain_name': 'Default',
            'application_credential_secret': 'app-secret',
            'application_credential_id': 'app-id',
            'token': 'gAAAAA-token',
            'passcode': 123456,
            'totp': '654321',
        },
        'region_name': 'RegionOne',
        'verify': True,
        'key': None,
        'profile': {
            'aws_access_key_id': 'AKIA-1',
            'aws_secret_access_key': 'xyz-secret',
            'extra': [{'api_key': 'k-1'}],
        },
    }
    secrets = cloud_secrets(cloud)
    assert set(secrets) == {
        'admin:UrlPass99',
        'UrlPass99',
        'pw-alice',
        'app-secret',
        'app-id',
        'gAAAAA-token',
        '123456',
        '654321',
        'AKIA-1',
        'xyz-secret',
        'k-1',
    }
    assert 'alice' not in secrets and 'RegionOne' not in secrets and 'alpha' not in secrets


@pytest.mark.parametrize('cloud', ['devcloud-alpha', None, ['password'], 3])
def test_a_cloud_name_has_no_secrets(cloud: object) -> None:
    assert cloud_secrets(cloud) == []


def test_scrub_masks_longest_first() -> None:
    text = 'user:S3cret at http://user:S3cret@h/ and S3cret'
    assert scrub(text, ['S3cret', 'user:S3cret', '']) == f'{MASK} at http://{MASK}@h/ and {MASK}'
    assert scrub(ValueError('S3cret'), ['S3cret']) == MASK
    assert scrub('nothing here', []) == 'nothing here'


def test_urls_inside_messages_are_redacted() -> None:
    message = (
        "HTTPConnectionPool(host='127.0.0.1', port=18080): Max retries exceeded with url: "
        '/p/a.img?X-Signature=abc123 (Caused by NewConnectionError); '
        '404 Client Error: Not Found for url: http://u:pw@h:1/p?sig=1 and https://h/ok'
    )
    assert redact_urls_in(message) == (
        "HTTPConnectionPool(host='127.0.0.1', port=18080): Max retries exceeded with url: "
        '/p/a.img?*** (Caused by NewConnectionError); '
        '404 Client Error: Not Found for url: http://***@h:1/p?*** and https://h/ok'
    )


@pytest.mark.parametrize(
    ('message', 'shown'),
    [
        ('Fetching http://u:pw@h/a.img?sig=abc: refused.', 'Fetching http://***@h/a.img?***: refused.'),
        ('(see https://h/a.img?sig=abc).', '(see https://h/a.img?***).'),
        ("url 'https://h/a.img#frag', again", "url 'https://h/a.img#***', again"),
        ('no url here: http:// nor ftp://', 'no url here: http:// nor ftp://'),
    ],
)
def test_urls_in_sentences_keep_the_punctuation(message: str, shown: str) -> None:
    assert redact_urls_in(message) == shown


# -- the base class: what it registers for masking and how it fails ------------------------

# The module arguments as the controller sends them, on every ansible-core of the support
# matrix: 2.19+ have a helper for it, 2.18 modules read basic._ANSIBLE_ARGS. From 2.21 a result
# carries the invocation only when the controller asks for it (INJECT_INVOCATION); asked here.
try:
    from ansible.module_utils.testing import patch_module_args as _patch_module_args
except ImportError:  # ansible-core < 2.19
    _patch_module_args = None

INJECT_INVOCATION = {'_ansible_inject_invocation': True} if 'inject_invocation' in parameters.PASS_VARS else {}


@contextlib.contextmanager
def patch_module_args(args: dict) -> Iterator[None]:
    args = {**args, **INJECT_INVOCATION}
    if _patch_module_args is not None:
        with _patch_module_args(args):
            yield
    else:
        with mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode()):
            yield


PASSWORD = 'pw-planted-0123'
SIGNATURE = 'sig-planted-0123'


class _Module(ImagegovModule):
    argument_spec = dict(url=dict(type='str'), **USAGE_CLOUD_ARGSPEC)
    module_kwargs = dict(supports_check_mode=True)

    def run(self) -> None:
        raise ImagegovError(
            f"cannot fetch {self.params['url']}: HTTPConnectionPool(host='h', port=1): Max retries "
            f'exceeded with url: /other.img?X-Signature={SIGNATURE}; user password {PASSWORD}'
        )


def _module(args: dict) -> _Module:
    with patch_module_args(args):
        return _Module()


def test_a_failure_shows_neither_the_cloud_password_nor_the_url_secrets(capsys: pytest.CaptureFixture) -> None:
    # The module's result is written with the profile the arguments came with: stay inside.
    with patch_module_args(
        {
            'cloud': {'auth': {'auth_url': 'http://k/v3', 'username': 'alice', 'password': PASSWORD}},
            'usage_cloud': {'auth': {'password': 'usage-pw-0123'}},
            'url': f'http://bob:url-pw-0123@h/a.img?X-Signature={SIGNATURE}',
        }
    ):
        module = _Module()
        assert {PASSWORD, 'usage-pw-0123', 'url-pw-0123', SIGNATURE} <= module.ansible.no_log_values
        assert 'alice' not in module.ansible.no_log_values
        with pytest.raises(SystemExit):
            module()
    output = capsys.readouterr().out
    result = json.loads(output)
    for planted in (PASSWORD, 'usage-pw-0123', 'url-pw-0123', SIGNATURE):
        assert planted not in output
    assert result['failed'] is True
    assert result['msg'].startswith('cannot fetch http://***@h/a.img?***: ')
    assert 'with url: /other.img?***' in result['msg']
    assert result['invocation']['module_args']['cloud']['auth']['username'] == 'alice'


def test_the_invocation_logged_to_syslog_carries_no_nested_secret() -> None:
    logged = []
    args = {
        'cloud': {'auth': {'auth_url': 'http://k/v3', 'username': 'alice', 'password': PASSWORD}},
        'url': f'http://h/a.img?X-Signature={SIGNATURE}',
    }
    with mock.patch.object(_base.AnsibleModule, 'log', lambda self, msg, log_args=None: logged.append(log_args)):
        _module(args)
    text = json.dumps(logged)
    assert 'alice' in text and PASSWORD not in text and SIGNATURE not in text


def test_a_cloud_name_is_not_masked() -> None:
    module = _module({'cloud': 'devcloud-alpha'})
    assert 'devcloud-alpha' not in module.ansible.no_log_values


class _Session:
    def __init__(self, token: object) -> None:
        self.token = token

    def get_token(self) -> str:
        if isinstance(self.token, Exception):
            raise self.token
        return self.token


def _connected(token: object) -> _Module:
    module = _module({'cloud': 'devcloud-alpha'})
    conn = SimpleNamespace(
        config=SimpleNamespace(config={'auth': {'password': 'from-clouds-yaml'}}), session=_Session(token)
    )
    with mock.patch.object(_base.openstack, 'connect', return_value=conn):
        assert module._connect() is conn
    return module


def test_the_connection_token_and_the_clouds_yaml_password_are_masked() -> None:
    assert {'token-0123456789', 'from-clouds-yaml'} <= _connected('token-0123456789').ansible.no_log_values


def test_a_token_that_cannot_be_read_is_harmless() -> None:
    assert 'from-clouds-yaml' in _connected(AttributeError('no session')).ansible.no_log_values


def test_an_authentication_failure_surfaces_once_as_it_would_at_the_first_request() -> None:
    with pytest.raises(ksa_exceptions.Unauthorized):
        _connected(ksa_exceptions.Unauthorized('The request you have made requires authentication.'))

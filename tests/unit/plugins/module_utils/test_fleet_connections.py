"""Connections on a fleet: each target's usage is looked up in its own cloud."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule, keystone_of


def _conn(auth_url: str | None):
    return SimpleNamespace(config=SimpleNamespace(config={'auth': {'auth_url': auth_url} if auth_url else {}}))


@pytest.mark.parametrize(
    ('url', 'keystone'),
    [
        ('https://keystone.example:5000/v3/', 'https://keystone.example:5000'),
        ('https://keystone.example:5000/v3', 'https://keystone.example:5000'),
        ('https://keystone.example:5000', 'https://keystone.example:5000'),
        (None, None),
    ],
)
def test_keystone_urls_compare_across_spellings(url, keystone):
    assert keystone_of(_conn(url)) == keystone
    assert keystone_of(object()) is None


class _Module:
    def __init__(self, auth_url: str) -> None:
        self.conn = _conn(auth_url)
        self.failed: list[str] = []

    def fail(self, msg: str) -> None:
        self.failed.append(msg)


def test_a_usage_cloud_of_another_keystone_is_refused():
    module = _Module('https://prod.example:5000/v3')
    ImagegovModule._same_keystone(module, _conn('https://sovereign.example:5000/v3'))
    [message] = module.failed
    assert 'usage_cloud is an account of another cloud' in message and 'sovereign.example' in message
    module = _Module('https://prod.example:5000/v3')
    ImagegovModule._same_keystone(module, _conn('https://prod.example:5000/'))
    assert module.failed == []

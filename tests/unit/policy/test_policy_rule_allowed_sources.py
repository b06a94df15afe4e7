"""Rule type `allowed_sources`: exact verdicts for the requests in fixtures/rules/allowed_sources.yml,
the problems of bad params, and the request's `data_source` field."""

from __future__ import annotations

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine
from ansible_collections.imagegov.openstack.plugins.module_utils.policy.request import Request

RULE_FIXTURE = 'rules/allowed_sources.yml'


def test_allowed_sources_case(case, check_case):
    check_case(case)


def _rule(params: str) -> str:
    return f'version: 1\nrules:\n  - id: sources\n    type: allowed_sources\n    params: {params}\n'


AT = "<policy>: rule 'sources' (rules[0]): field "
PLAIN = "must have a plain path: no '.' or '..' segments, '//', ';' or encoded slashes, got "
SCHEME = 'only http and https URLs are compared'


@pytest.mark.parametrize(
    'params, problems',
    [
        ('{}', [f"{AT}'params': needs url_prefixes, schemes and/or files: deny"]),
        ('{files: allow}', [f"{AT}'params': needs url_prefixes, schemes and/or files: deny"]),
        (
            "{url_prefixes: ['https://reader:pw@images.example.org/gold/', 'https://h/gold?x=1', 'https://h/a/../b/',"
            " 'https://h//gold/', 'https://h/gold;v=1/', 'https://h/a%2Fb/', 'ftp://h/gold/', '/gold/',"
            " 'https://h:99999/']}",
            [
                AT + "'params.url_prefixes[0]': must not contain user info (user@ or user:password@), "
                "got 'https://reader:pw@images.example.org/gold/'",
                f"{AT}'params.url_prefixes[1]': must not have a query (?) or fragment (#), got 'https://h/gold?x=1'",
                f"{AT}'params.url_prefixes[2]': {PLAIN}'https://h/a/../b/'",
                f"{AT}'params.url_prefixes[3]': {PLAIN}'https://h//gold/'",
                f"{AT}'params.url_prefixes[4]': {PLAIN}'https://h/gold;v=1/'",
                f"{AT}'params.url_prefixes[5]': {PLAIN}'https://h/a%2Fb/'",
                f"{AT}'params.url_prefixes[6]': not a usable URL prefix (scheme 'ftp'; {SCHEME}), got 'ftp://h/gold/'",
                f"{AT}'params.url_prefixes[7]': not a usable URL prefix (scheme missing; {SCHEME}), got '/gold/'",
                AT
                + "'params.url_prefixes[8]': not a usable URL prefix (it does not parse: Port out of range 0-65535), "
                "got 'https://h:99999/'",
            ],
        ),
        (
            "{url_prefixes: ['http://h/gold/'], schemes: [https]}",
            [f"{AT}'params.url_prefixes[0]': scheme 'http' is not in schemes (https): no URL could match"],
        ),
        (
            '{schemes: [ftp], files: maybe}',
            [
                f"{AT}'params.files': unallowed value 'maybe'; expected one of: allow, deny",
                f"{AT}'params.schemes[0]': unallowed value 'ftp'; expected one of: http, https",
            ],
        ),
    ],
)
def test_bad_params_name_the_field(params, problems):
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy_text(_rule(params))
    assert raised.value.messages == problems


def test_default_actions_are_create_and_upload():
    (rule,) = engine.load_policy_text(_rule('{files: deny}')).rules
    assert sorted(rule.actions) == ['create', 'upload']
    assert rule.files_allowed is False and rule.schemes is None and rule.prefixes == ()


def test_build_request_keeps_no_secret_of_the_url():
    request = engine.build_request(
        'create',
        image={'name': 'x'},
        data_source={
            'kind': 'url',
            'url': 'https://reader:s3cret@images.example.org/gold/x.img?X-Amz-Signature=abc#frag',
        },
    )
    assert request['data_source'] == {'kind': 'url', 'url': 'https://images.example.org/gold/x.img'}
    for odd in ('https://user:pa/ss@images.example.org/x', 'https://images.example.org/a b', 'https://h\\@e/x'):
        hidden = engine.build_request('create', data_source={'kind': 'url', 'url': odd})['data_source']['url']
        assert hidden == '<URL hidden: it cannot be split safely>', odd
    file_request = engine.build_request('upload', data_source={'kind': 'file', 'path': '/srv/x.qcow2'})
    assert file_request['data_source'] == {'kind': 'file', 'path': '/srv/x.qcow2'}
    assert 'data_source' not in engine.build_request('create', image={'name': 'x'})  # optional, as before


def test_request_exposes_the_data_source_read_only():
    request = Request({'action': 'create', 'data_source': {'kind': 'glance'}})
    assert request.data_source == {'kind': 'glance'}
    assert Request({'action': 'create'}).data_source is None
    with pytest.raises(AttributeError):
        request.data_source = {'kind': 'url'}

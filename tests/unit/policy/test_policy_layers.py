"""Layered policies: a pinned base (IMAGEGOV_BASE_POLICY) whose locked rules no overlay can loosen.

Fixtures in fixtures/layers/: base/org.yml locks max-image-size and public-images-admin-only
and names exceptions/ as its exception source; overlay/ holds the files a playbook could add.
Paths are relative to that directory so that messages can be compared exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import load_module_policy

LAYERS = Path(__file__).resolve().parent / 'fixtures' / 'layers'
BASE = ['base/org.yml']
GIB = 1024**3


@pytest.fixture(autouse=True)
def in_layers_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LAYERS)
    monkeypatch.delenv(engine.BASE_POLICY_ENV, raising=False)


def request(project: str = 'demo', roles: tuple[str, ...] = ('member',), **image: object) -> dict:
    image = {'name': 'app-web', 'disk_format': 'qcow2', 'visibility': 'private', **image}
    return {
        'action': 'create',
        'actor': {'user': 'alice', 'project': project, 'roles': list(roles)},
        'image': image,
        'current': None,
    }


def problems(base: list[str], overlay: list[str]) -> list[str]:
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_layered_policy(base, overlay)
    return raised.value.messages


def test_overlay_exception_cannot_waive_a_locked_rule():
    assert problems(BASE, ['overlay/waive-locked.yml']) == [
        "overlay/waive-locked.yml: exception 'my-big-images' (exceptions[0]): field 'rules[1]': "
        "rule 'max-image-size' is locked by base/org.yml; exceptions to it are read only from: exceptions",
    ]


def test_overlay_cannot_redefine_a_locked_rule():
    assert problems(BASE, ['overlay/redefine-locked.yml']) == [
        "overlay/redefine-locked.yml: rule 'max-image-size' (rules[0]): field 'id': rule 'max-image-size' "
        'is locked by the base policy base/org.yml (rules[0]) and cannot be redefined; give this rule another id',
    ]


def test_overlay_cannot_lock_rules():
    assert problems(BASE, ['overlay/lock-own-rule.yml']) == [
        "overlay/lock-own-rule.yml: rule 'app-names' (rules[0]): field 'locked': locked rules are declared only "
        'in the base policy (IMAGEGOV_BASE_POLICY); remove this field, or ask the owners of the base policy to '
        'lock the rule there',
    ]


def test_without_a_base_locked_is_refused_too():
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_policy('overlay/lock-own-rule.yml')
    assert [problem.field for problem in raised.value.problems] == ['locked']


def test_overlay_cannot_name_exception_sources():
    assert problems(BASE, ['overlay/exception-sources.yml']) == [
        "overlay/exception-sources.yml: field 'exception_sources': exception_sources are read only from the "
        'base policy (IMAGEGOV_BASE_POLICY); remove the field from this file',
    ]


def test_exception_from_a_base_named_source_waives_a_locked_rule(now):
    policy = engine.load_layered_policy(BASE)
    assert policy.sources == ('base/org.yml', 'exceptions/hpc.yml')
    hpc = engine.evaluate(policy, request('hpc', size=30 * GIB), now=now)
    assert hpc.allowed
    [violation] = hpc.violations
    assert violation.as_dict()['exception']['id'] == 'hpc-big-images'
    assert violation.as_dict()['locked'] is True
    other = engine.evaluate(policy, request('demo', size=30 * GIB), now=now)
    assert not other.allowed
    assert [violation.rule for violation in other.blocking] == ['max-image-size']


def test_base_exceptions_may_waive_locked_rules(now):
    policy = engine.load_layered_policy(BASE)
    decision = engine.evaluate(policy, request('lab', visibility='community'), now=now)
    assert decision.allowed
    assert decision.violations[0].exception['id'] == 'base-granted-lab'


def test_locked_violations_say_so(now):
    decision = engine.evaluate(engine.load_layered_policy(BASE), request(visibility='public'), now=now)
    assert decision.as_dict()['violations'][0]['locked'] is True
    outcomes = {outcome['rule']: outcome for outcome in decision.as_dict()['rules']}
    assert outcomes['public-images-admin-only'] == {
        'rule': 'public-images-admin-only',
        'type': 'restricted_visibility',
        'status': 'violated',
        'locked': True,
    }
    assert outcomes['allowed-formats'] == {'rule': 'allowed-formats', 'type': 'allowed_formats', 'status': 'passed'}
    assert decision.refusal_message().endswith("(rule locked by the organisation's base policy base/org.yml)")


def test_overlay_adds_rules(now):
    policy = engine.load_layered_policy(BASE, ['overlay/add-rule.yml'])
    assert [rule.id for rule in policy.rules] == [
        'max-image-size',
        'public-images-admin-only',
        'allowed-formats',
        'app-names',
    ]
    decision = engine.evaluate(policy, request(name='web'), now=now)
    assert [violation.rule for violation in decision.blocking] == ['app-names']
    assert not policy.rules_by_id['app-names'].locked


def test_overlay_redefines_an_unlocked_base_rule_in_place(now):
    policy = engine.load_layered_policy(BASE, ['overlay/warn-formats.yml'])
    assert [rule.id for rule in policy.rules] == ['max-image-size', 'public-images-admin-only', 'allowed-formats']
    formats = policy.rules_by_id['allowed-formats']
    assert (formats.mode, formats.source, formats.overrides) == ('warn', 'overlay/warn-formats.yml', 'base/org.yml')
    # The overlay's defaults.mode: warn reaches its own rules only.
    assert [rule.mode for rule in policy.rules] == ['enforce', 'enforce', 'warn']
    decision = engine.evaluate(policy, request(disk_format='vmdk'), now=now)
    assert decision.allowed
    assert [(violation.rule, violation.mode) for violation in decision.warnings] == [('allowed-formats', 'warn')]


def test_overlay_may_waive_unlocked_base_rules(now):
    policy = engine.load_layered_policy(BASE, ['overlay/waive-unlocked.yml'])
    decision = engine.evaluate(policy, request('migration', disk_format='vmdk'), now=now)
    assert decision.allowed and decision.violations[0].exception['id'] == 'vmdk-migration'


def test_exception_source_holding_rules_and_missing_source_are_refused():
    assert problems(['bad-base/org.yml'], []) == [
        "bad-base/org.yml: field 'exception_sources[1]': no such file or directory: bad-base/no-such-dir "
        '(relative paths are taken from the directory of this file)',
        "bad-base/rules-in-exceptions.yml: field 'rules': an exception source (named by exception_sources of the "
        'base policy) holds only version and exceptions; move these rules to the base policy or an overlay',
    ]


def test_empty_exception_directory_grants_nothing(tmp_path):
    (tmp_path / 'exceptions').mkdir()
    (tmp_path / 'org.yml').write_text(
        (LAYERS / 'base' / 'org.yml').read_text().replace('../exceptions/', 'exceptions/')
    )
    policy = engine.load_layered_policy([tmp_path / 'org.yml'])
    assert [waiver.id for waiver in policy.waivers] == ['base-granted-lab']


def test_exception_source_inside_the_base_directory_is_read_as_one(tmp_path):
    (tmp_path / 'org.yml').write_text(
        (LAYERS / 'base' / 'org.yml').read_text().replace('../exceptions/', 'granted.yml')
    )
    (tmp_path / 'granted.yml').write_text((LAYERS / 'exceptions' / 'hpc.yml').read_text())
    texts = engine.read_policy_layers([tmp_path])
    assert [(Path(source).name, layer) for source, _text, layer in texts] == [
        ('org.yml', 'base'),
        ('granted.yml', 'exceptions'),
    ]
    assert [waiver.id for waiver in engine.load_layered_texts(texts).waivers] == ['base-granted-lab', 'hpc-big-images']


def test_texts_read_on_the_controller_load_the_same_policy():
    texts = engine.read_policy_layers(BASE, ['overlay/add-rule.yml'])
    assert [(source, layer) for source, _text, layer in texts] == [
        ('base/org.yml', 'base'),
        ('exceptions/hpc.yml', 'exceptions'),
        ('overlay/add-rule.yml', 'overlay'),
    ]
    policy = engine.load_layered_texts(texts)
    assert [rule.id for rule in policy.rules] == [
        rule.id for rule in engine.load_layered_policy(BASE, ['overlay/add-rule.yml']).rules
    ]


def test_exceptions_layer_only_from_the_base_sources():
    text = (LAYERS / 'overlay' / 'waive-locked.yml').read_text()
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_layered_texts(
            [
                ('base/org.yml', (LAYERS / 'base' / 'org.yml').read_text(), 'base'),
                ('overlay/waive-locked.yml', text, 'exceptions'),
            ]
        )
    assert raised.value.messages == [
        'overlay/waive-locked.yml: not among the exception_sources of the base policy (IMAGEGOV_BASE_POLICY): '
        'exceptions',
    ]


def test_unknown_layer_is_reported():
    with pytest.raises(engine.PolicyError) as raised:
        engine.load_layered_texts([('x.yml', 'version: 1\n', 'top')])
    assert raised.value.messages == ["x.yml: unknown policy layer 'top'; expected one of: base, exceptions, overlay"]


def test_module_reads_the_base_from_its_environment(monkeypatch):
    params = {'policy': ['overlay/redefine-locked.yml'], 'policy_documents': None}
    assert load_module_policy(params).rules_by_id['max-image-size'].mode == 'warn'
    monkeypatch.setenv(engine.BASE_POLICY_ENV, str(LAYERS / 'base' / 'org.yml'))
    with pytest.raises(engine.PolicyError) as raised:
        load_module_policy(params)
    assert [(problem.source, problem.field) for problem in raised.value.problems] == [
        ('overlay/redefine-locked.yml', 'id')
    ]
    assert f'locked by the base policy {LAYERS / "base" / "org.yml"} (rules[0])' in raised.value.messages[0]


def test_module_loads_the_layers_the_action_plugin_sent():
    documents = [
        {'source': source, 'text': text, 'layer': layer}
        for source, text, layer in engine.read_policy_layers(BASE, ['overlay/warn-formats.yml'])
    ]
    policy = load_module_policy({'policy': None, 'policy_documents': documents})
    assert policy.rules_by_id['max-image-size'].locked
    assert policy.rules_by_id['allowed-formats'].overrides == 'base/org.yml'


def test_without_a_base_the_overlay_is_the_whole_policy(now):
    """No IMAGEGOV_BASE_POLICY: exactly the old behaviour, the files replace the default policy."""
    documents = [{'source': 'overlay/add-rule.yml', 'text': (LAYERS / 'overlay' / 'add-rule.yml').read_text()}]
    policy = load_module_policy({'policy': None, 'policy_documents': documents})
    assert [rule.id for rule in policy.rules] == ['app-names']
    assert [rule.id for rule in engine.load_policy('overlay/add-rule.yml').rules] == ['app-names']


def test_the_examples_base_and_catalog_policy_load_together():
    """examples/awx/base-policy (baked into the execution environment) under examples/gitops/policy."""
    examples = Path(__file__).resolve().parents[3] / 'examples'
    policy = engine.load_layered_policy([examples / 'awx' / 'base-policy'], [examples / 'gitops' / 'policy'])
    assert [rule.id for rule in policy.rules if rule.locked] == [
        'max-image-size',
        'public-images-admin-only',
        'format-integrity',
        'no-delete-in-use',
    ]
    assert {'acme-image-names', 'allowed-formats'} <= set(policy.rules_by_id)
    assert [Path(source).name for source in policy.sources] == ['acme-base.yml', 'granted.yml', 'acme.yml']

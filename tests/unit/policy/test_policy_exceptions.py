"""Exceptions: scoped waivers that apply until they expire, then are reported as expired."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import policy as engine

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'exceptions.yml'
BIG = 40 * 1024**3
NOW = datetime.datetime(2025, 6, 15, 12, 0, tzinfo=datetime.timezone.utc)


def test_clock_matches_conftest(now):
    assert now == NOW


@pytest.fixture(scope='module')
def policy():
    return engine.load_policy(FIXTURE)


def request(project, name='img', tags=None, **image):
    image.setdefault('size', BIG)
    image['name'] = name
    if tags is not None:
        image['tags'] = tags
    return {'action': 'create', 'actor': {'user': 'u', 'project': project, 'roles': ['member']}, 'image': image}


def only(decision, rule):
    found = [violation for violation in decision.violations if violation.rule == rule]
    assert len(found) == 1, decision.violations
    return found[0]


def test_live_exception_waives_the_violation(policy):
    decision = engine.evaluate(policy, request('lab', os_distro='x'), now=NOW)
    violation = only(decision, 'max-size')
    assert violation.exception == {
        'id': 'lab-big-images',
        'status': 'applied',
        'expires': '2025-12-31',
        'reason': 'The lab builds 40 GiB HPC images.',
        'owner': 'hpc-team',
    }
    assert violation.message.endswith("(waived by exception 'lab-big-images' until 2025-12-31)")
    assert decision.allowed


def test_exception_outside_its_scope_does_not_apply(policy):
    decision = engine.evaluate(policy, request('demo', os_distro='x'), now=NOW)
    assert only(decision, 'max-size').exception is None
    assert not decision.allowed


def test_expired_exception_stops_applying_and_says_so(policy):
    decision = engine.evaluate(policy, request('science', os_distro='x'), now=NOW)
    violation = only(decision, 'max-size')
    assert violation.exception['id'] == 'science-big-expired'
    assert violation.exception['status'] == 'expired'
    assert violation.exception['expires'] == '2025-06-14'
    assert violation.message.endswith("(exception 'science-big-expired' expired on 2025-06-14)")
    assert violation.blocking
    assert not decision.allowed


def test_date_exception_applies_through_its_last_day(policy):
    legacy = request('lab', name='legacy-win', disk_format='vmdk', size=1, os_distro='x')
    assert only(engine.evaluate(policy, legacy, now=NOW), 'formats').exception['status'] == 'applied'
    next_day = datetime.datetime(2025, 6, 16, 0, 0, tzinfo=datetime.timezone.utc)
    violation = only(engine.evaluate(policy, legacy, now=next_day), 'formats')
    # lab-ends-today has expired; of the expired ones the latest is reported.
    assert violation.exception['id'] == 'lab-ends-today'
    assert violation.exception['status'] == 'expired'


def test_a_live_exception_wins_over_expired_ones(policy):
    decision = engine.evaluate(
        policy, request('lab', name='legacy-x', disk_format='vhd', size=1, os_distro='x'), now=NOW
    )
    assert only(decision, 'formats').exception['id'] == 'lab-ends-today'
    assert decision.allowed


def test_latest_expired_exception_is_reported(policy):
    decision = engine.evaluate(policy, request('lab', name='other', disk_format='vhd', size=1, os_distro='x'), now=NOW)
    violation = only(decision, 'formats')
    assert (violation.exception['id'], violation.exception['status']) == ('old-vhd-waiver', 'expired')
    assert not decision.allowed


def test_datetime_expiry_is_exact(policy):
    tagged = request('demo', tags=['approved-large'])
    before = datetime.datetime(2025, 6, 15, 10, 59, tzinfo=datetime.timezone.utc)
    assert engine.evaluate(policy, tagged, now=before).allowed
    decision = engine.evaluate(policy, tagged, now=NOW)
    assert only(decision, 'max-size').exception == {
        'id': 'tagged-override',
        'status': 'expired',
        'expires': '2025-06-15T11:00:00Z',
        'reason': 'Reviewed case by case.',
        'owner': 'cloud-ops',
    }
    assert not decision.allowed


def test_waiving_one_rule_leaves_the_others(policy):
    decision = engine.evaluate(policy, request('lab', disk_format='vmdk', os_distro='x'), now=NOW)
    assert only(decision, 'max-size').waived
    assert only(decision, 'formats').blocking
    assert not decision.allowed


def test_waived_warning_is_not_a_warning(policy):
    tagged = request('demo', tags=['approved-large'], size=1)
    before = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
    decision = engine.evaluate(policy, tagged, now=before)
    assert only(decision, 'metadata').waived
    assert decision.warnings == []


def test_exception_whose_condition_fails_waives_nothing(policy):
    decision = engine.evaluate(policy, request('demo', disk_format='vmdk', size=1, os_distro='x'), now=NOW)
    assert only(decision, 'formats').exception is None
    assert not decision.allowed


def test_naive_and_date_clocks_are_utc(policy):
    big_lab = request('lab', os_distro='x')
    assert engine.evaluate(policy, big_lab, now=datetime.date(2025, 12, 31)).allowed
    assert not engine.evaluate(policy, big_lab, now=datetime.datetime(2026, 1, 1, 0, 0)).allowed

"""documents.validation: one reused validator per schema, normalising only schemas that can."""

from __future__ import annotations

from ansible_collections.imagegov.openstack.plugins.module_utils.documents.validation import validate

PLAIN = {'name': {'type': 'string', 'required': True}, 'size': {'type': 'integer', 'min': 0}}
WITH_DEFAULT = {'name': {'type': 'string'}, 'mode': {'type': 'string', 'default': 'strict'}}


def test_a_reused_validator_reports_each_document_on_its_own():
    assert validate({'size': -1}, PLAIN, prefix=('images', 0)) == (
        {'size': -1},
        [('images[0].name', 'required field is missing'), ('images[0].size', 'must be at least 0, got -1')],
    )
    assert validate({'name': 'a', 'size': 1}, PLAIN) == ({'name': 'a', 'size': 1}, [])
    assert validate({'name': 3}, PLAIN)[1] == [('name', 'must be of string type, got 3')]


def test_a_schema_with_defaults_is_still_normalised():
    assert validate({'name': 'a'}, WITH_DEFAULT) == ({'name': 'a', 'mode': 'strict'}, [])
    assert validate({'name': 'b', 'mode': 'lax'}, WITH_DEFAULT) == ({'name': 'b', 'mode': 'lax'}, [])


def test_the_document_given_is_not_changed():
    document = {'name': 'a'}
    normal, _problems = validate(document, WITH_DEFAULT)
    assert document == {'name': 'a'} and normal is not document

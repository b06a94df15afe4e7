# PRIVATE to the collection: not a public API.
"""The part of a policy that Glance itself can enforce, as Glance's own settings.

With these in place the plain CLI meets the same limits as the collection's modules:
`policy.yaml` rules for publicize_image / communitize_image, `image_size_cap`, the
`[image_format]` allowlists and the `[import_filtering_opts]` of web-download in
glance-api.conf. Only enforce-mode rules that apply to every image can be expressed;
everything else is listed in `not_exported` with the reason.
"""

from __future__ import annotations

from typing import Any

from .policy import Policy
from .rules.allowed_formats import AllowedFormats
from .rules.allowed_sources import AllowedSources
from .rules.format_integrity import FormatIntegrity
from .rules.max_size import MaxSize
from .rules.restricted_visibility import RestrictedVisibility

# Glance's policy targets for making an image public / community.
VISIBILITY_TARGETS = {'public': 'publicize_image', 'community': 'communitize_image'}


def glance_settings(policy: Policy) -> dict[str, Any]:
    """{'policy_rules', 'api_options', 'policy_yaml', 'glance_api_conf', 'not_exported'}."""
    policy_rules: dict[str, str] = {}
    api_options: dict[str, dict[str, str]] = {}
    not_exported: list[str] = []
    for rule in policy.rules:
        reason = _not_global(rule)
        if reason:
            not_exported.append(f'{rule.id}: {reason}')
        elif isinstance(rule, RestrictedVisibility):
            check = ' or '.join(f'role:{role}' for role in rule.allowed_roles)
            for visibility in sorted(rule.restricted & set(VISIBILITY_TARGETS)):
                target = VISIBILITY_TARGETS[visibility]
                policy_rules[target] = _both(policy_rules.get(target), check)
        elif isinstance(rule, MaxSize):
            if 'size' in rule.measures:
                cap = min(rule.limit_bytes, int(api_options.get('DEFAULT', {}).get('image_size_cap', rule.limit_bytes)))
                api_options.setdefault('DEFAULT', {})['image_size_cap'] = str(cap)
            if 'virtual_size' in rule.measures:
                not_exported.append(f'{rule.id}: Glance caps the stored size only, not the virtual size')
        elif isinstance(rule, AllowedFormats):
            for field, allowed, _allowed_set in rule.allowlists:
                option = field + 's'
                section = api_options.setdefault('image_format', {})
                section[option] = _intersect(section.get(option), allowed)
        elif isinstance(rule, AllowedSources):
            not_exported.extend(_import_filtering(rule, api_options))
        elif isinstance(rule, FormatIntegrity):
            # Glance inspects uploads itself and refuses a disk_format that the bytes contradict.
            api_options.setdefault('image_format', {})['require_image_format_match'] = 'true'
            not_exported.append(
                f'{rule.id}: Glance checks declared against detected format; the unsafe-'
                'feature checks stay with the collection'
            )
        else:
            not_exported.append(f'{rule.id}: Glance has no setting for a {rule.type_name} rule')
    for waiver in policy.waivers:
        not_exported.append(
            f'exception {waiver.id}: Glance settings cannot express exceptions; the exported limits apply without it'
        )
    return {
        'policy_rules': policy_rules,
        'api_options': api_options,
        'policy_yaml': _policy_yaml(policy_rules, policy),
        'glance_api_conf': _ini(api_options, policy),
        'not_exported': not_exported,
    }


def _import_filtering(rule: AllowedSources, api_options: dict[str, dict[str, str]]) -> list[str]:
    """An allowed_sources rule as web-download's scheme, host and port allowlists; what they cannot say."""
    notes: list[str] = []
    if rule.prefixes:
        urls = [prefix.url for prefix in rule.prefixes]
        lists = {
            'allowed_schemes': _unique(url.scheme for url in urls),
            'allowed_hosts': _unique(url.host for url in urls),
            'allowed_ports': _unique(str(url.port) for url in urls),
        }
        paths = [prefix.text for prefix in rule.prefixes if prefix.segments]
        if paths:
            notes.append(
                '{}: Glance filters web-download URLs by scheme, host and port only; the path prefixes '
                '({}) stay with the collection'.format(rule.id, ', '.join(paths))
            )
        combinations = len({(url.scheme, url.host, url.port) for url in urls})
        if combinations < len(lists['allowed_schemes']) * len(lists['allowed_hosts']) * len(lists['allowed_ports']):
            notes.append(
                f'{rule.id}: Glance checks scheme, host and port each on its own, so it also allows combinations '
                'no prefix names'
            )
    elif rule.schemes is not None:
        lists = {'allowed_schemes': list(rule.schemes)}
    else:
        lists = {}
    section = api_options.setdefault('import_filtering_opts', {})
    for option, values in lists.items():
        kept = _intersect(section.get(option), values)
        if kept:
            section[option] = kept
        else:  # an empty allowlist is no filter at all in Glance
            notes.append(
                '{}: no {} remain in common with the rules before it; Glance reads an empty {} as no '
                'filter, so it keeps {}'.format(rule.id, option.split('_', 1)[1], option, section[option])
            )
    if not section:
        del api_options['import_filtering_opts']
    if not rule.files_allowed:
        notes.append(f'{rule.id}: Glance cannot refuse image data uploaded from local files')
    return notes


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


def _not_global(rule: Any) -> str | None:
    if rule.mode != 'enforce':
        return f'mode {rule.mode}: only enforce-mode rules become Glance settings'
    if rule.scope is not None and not rule.scope.is_universal:
        return 'applies to some images only (match:), Glance settings apply to all'
    return None


def _both(existing: str | None, check: str) -> str:
    # Two rules restricting the same target must both hold.
    return check if existing is None or existing == check else f'({existing}) and ({check})'


def _intersect(existing: str | None, allowed: Any) -> str:
    if existing is None:
        return ','.join(allowed)
    kept = set(existing.split(','))
    return ','.join(value for value in allowed if value in kept)


def _header(policy: Policy) -> str:
    sources = ', '.join(policy.sources) or 'a policy in memory'
    return f'# Generated by imagegov.openstack from {sources}; do not edit by hand.\n'


def _policy_yaml(rules: dict[str, str], policy: Policy) -> str:
    lines = [_header(policy).rstrip('\n')]
    lines.extend(f'"{target}": "{check}"' for target, check in sorted(rules.items()))
    return '\n'.join(lines) + '\n'


def _ini(options: dict[str, dict[str, str]], policy: Policy) -> str:
    lines = [_header(policy).rstrip('\n')]
    for section in sorted(options):
        lines.append(f'[{section}]')
        lines.extend(f'{key} = {value}' for key, value in sorted(options[section].items()))
    return '\n'.join(lines) + '\n'

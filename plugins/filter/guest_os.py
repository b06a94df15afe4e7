# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: guest_os
short_description: Glance's operating system properties from virt-inspector's report
version_added: 0.2.0
description:
  - Reads the XML that C(virt-inspector) prints for a disk image and returns the operating
    system it found as Glance's standard image properties C(os_type), C(os_distro),
    C(os_version) and C(architecture).
  - Names are Glance's and Nova's - C(alpinelinux) becomes V(alpine), C(archlinux) V(arch),
    C(i386) V(i686), C(arm64) V(aarch64); Ubuntu versions keep their two-digit minor
    (V(24.04)), other versions are V(major.minor), or V(major) when the minor is 0.
  - A property the report does not give (an unknown distribution, an unreadable version)
    is left out. When the image holds several operating systems the first one is used.
options:
  _input:
    description: The output of C(virt-inspector), an XML document.
    type: str
    required: true
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Inspect the disk
  ansible.builtin.command:
    argv: [virt-inspector, --no-icon, --no-applications, --format=qcow2, -a, /srv/build/disk.qcow2]
  register: inspected
  changed_when: false

# For example os_type linux, os_distro debian, os_version 12.7, architecture x86_64
- name: Its operating system as Glance properties
  ansible.builtin.debug:
    msg: "{{ inspected.stdout | imagegov.openstack.guest_os }}"
"""

RETURN = r"""
_value:
  description:
    - The properties found; an empty dictionary when the report names no operating system.
  type: dict
  contains:
    os_type:
      description: V(linux), V(windows), V(freebsd), ... as virt-inspector names the kernel family.
      type: str
    os_distro:
      description: The distribution, such as V(ubuntu), V(debian), V(fedora), V(rhel), V(alpine), V(windows).
      type: str
    os_version:
      description: The version, such as V(24.04), V(12), V(9.4).
      type: str
    architecture:
      description: The CPU architecture, such as V(x86_64) or V(aarch64).
      type: str
"""

from typing import Any
from xml.etree import ElementTree

from ansible.errors import AnsibleFilterError

# virt-inspector's distribution names that Glance's os_distro spells differently; the
# others (ubuntu, debian, fedora, centos, rhel, rocky, opensuse, windows...) are the same.
DISTROS = {'alpinelinux': 'alpine', 'archlinux': 'arch'}
# Nova's canonical architecture names (nova.objects.fields.Architecture).
ARCHITECTURES = {'i386': 'i686', 'i486': 'i686', 'i586': 'i686', 'amd64': 'x86_64', 'arm64': 'aarch64'}
UNKNOWN = ('', 'unknown')


def guest_os(report: str) -> dict[str, str]:
    if not isinstance(report, str):
        raise AnsibleFilterError(f'guest_os expects the XML text virt-inspector prints, got {type(report).__name__}')
    try:
        root = ElementTree.fromstring(report)
    except ElementTree.ParseError as exc:
        raise AnsibleFilterError(f'guest_os: the virt-inspector report is not XML: {exc}') from exc
    system = root.find('operatingsystem')
    if system is None:
        return {}
    found = {key: (system.findtext(key) or '').strip() for key in ('name', 'distro', 'arch')}
    properties = {
        'os_type': found['name'],
        'os_distro': DISTROS.get(found['distro'], found['distro']),
        'os_version': _version(system, found['distro']),
        'architecture': ARCHITECTURES.get(found['arch'], found['arch']),
    }
    return {key: value for key, value in properties.items() if value not in UNKNOWN}


def _version(system: Any, distro: str) -> str:
    try:
        major = int(system.findtext('major_version') or '')
        minor = int(system.findtext('minor_version') or '0')
    except ValueError:
        return ''
    if major == 0 and minor == 0:
        return ''
    if distro == 'ubuntu':
        return f'{major}.{minor:02d}'
    return f'{major}.{minor}' if minor else str(major)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {'guest_os': guest_os}

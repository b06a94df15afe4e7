"""The image_build role's filters: virt-inspector's report as Glance properties, and the
digest that puts a secret into the build hash."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.imagegov.openstack.plugins.filter.guest_os import FilterModule as GuestOsFilters
from ansible_collections.imagegov.openstack.plugins.filter.guest_os import guest_os
from ansible_collections.imagegov.openstack.plugins.filter.secret_digest import FilterModule as DigestFilters
from ansible_collections.imagegov.openstack.plugins.filter.secret_digest import secret_digest

# What virt-inspector --no-icon --no-applications printed for the integration test's guest.
DEBIAN = """<?xml version="1.0"?>
<operatingsystems>
  <operatingsystem>
    <root>/dev/sda1</root>
    <name>linux</name>
    <arch>x86_64</arch>
    <distro>debian</distro>
    <product_name>12.7</product_name>
    <major_version>12</major_version>
    <minor_version>7</minor_version>
    <package_format>deb</package_format>
    <hostname>fixture</hostname>
    <osinfo>debian12</osinfo>
    <mountpoints><mountpoint dev="/dev/sda1">/</mountpoint></mountpoints>
  </operatingsystem>
</operatingsystems>
"""


def report(name: str, distro: str, arch: str, major: str, minor: str) -> str:
    return (
        f'<operatingsystems><operatingsystem><name>{name}</name><arch>{arch}</arch><distro>{distro}</distro>'
        f'<major_version>{major}</major_version><minor_version>{minor}</minor_version>'
        '</operatingsystem></operatingsystems>'
    )


def test_the_inspected_debian_guest():
    assert guest_os(DEBIAN) == {
        'os_type': 'linux',
        'os_distro': 'debian',
        'os_version': '12.7',
        'architecture': 'x86_64',
    }


@pytest.mark.parametrize(
    ('found', 'expected'),
    [
        (('linux', 'ubuntu', 'x86_64', '24', '4'), ('ubuntu', '24.04', 'x86_64')),
        (('linux', 'ubuntu', 'aarch64', '22', '10'), ('ubuntu', '22.10', 'aarch64')),
        (('linux', 'fedora', 'x86_64', '40', '0'), ('fedora', '40', 'x86_64')),
        (('linux', 'rhel', 'x86_64', '9', '4'), ('rhel', '9.4', 'x86_64')),
        (('linux', 'alpinelinux', 'x86_64', '3', '20'), ('alpine', '3.20', 'x86_64')),
        (('linux', 'archlinux', 'i386', '0', '0'), ('arch', None, 'i686')),
        (('windows', 'windows', 'x86_64', '10', '0'), ('windows', '10', 'x86_64')),
        (('linux', 'unknown', 'arm64', 'x', '1'), (None, None, 'aarch64')),
    ],
)
def test_names_and_versions_are_glances(found, expected):
    properties = guest_os(report(*found))
    wanted = dict(zip(('os_distro', 'os_version', 'architecture'), expected, strict=True), os_type=found[0])
    assert properties == {key: value for key, value in wanted.items() if value is not None}


def test_no_operating_system_is_an_empty_result():
    assert guest_os('<?xml version="1.0"?>\n<operatingsystems/>\n') == {}


@pytest.mark.parametrize('bad', ['virt-inspector: no operating system', None])
def test_what_is_not_a_report_is_an_error(bad):
    with pytest.raises(AnsibleFilterError, match='guest_os'):
        guest_os(bad)


def test_the_digest_is_stable_salted_and_slow():
    digest = secret_digest('s3cret', 'salt-a')
    assert digest == secret_digest('s3cret', 'salt-a')
    assert len(digest) == 64 and 's3cret' not in digest
    assert digest not in (secret_digest('s3cret', 'salt-b'), secret_digest('s3cret!', 'salt-a'))


@pytest.mark.parametrize(('secret', 'salt'), [('s3cret', ''), (None, 'salt'), ('s3cret', None)])
def test_a_bad_digest_input_is_an_error_that_does_not_name_the_secret(secret, salt):
    with pytest.raises(AnsibleFilterError) as raised:
        secret_digest(secret, salt)
    assert 's3cret' not in str(raised.value)


def test_the_filters_are_registered():
    assert GuestOsFilters().filters() == {'guest_os': guest_os}
    assert DigestFilters().filters() == {'secret_digest': secret_digest}

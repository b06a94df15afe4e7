# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: clouds
short_description: The fleet of clouds and regions that image catalogs are reconciled with
version_added: 0.3.0
description:
  - Turns C(clouds.yaml) entries into inventory hosts, one per cloud and region, each carrying
    C(cloud) and C(region_name) - the connection a play's modules need to act on that target.
    Nothing else of the cloud's settings (no password, no token) becomes a variable.
  - The regions of a cloud are those its C(clouds.yaml) entry gives (C(region_name), or a
    C(regions) list), or with O(regions=catalog) the regions of Keystone's service catalog
    that hold an image endpoint, asked once per cloud (and cached with O(cache)).
  - Every host is in the group C(imagegov_fleet), in C(cloud_<cloud>) and in
    C(region_<region>) (characters other than letters, digits and C(_) become C(_), so
    C(group_vars/region_eu_test_1.yml) is region C(eu-test-1)'s); O(labels) give hosts
    variables to group by, with O(keyed_groups), O(groups) and O(compose) as in Ansible's own
    inventory plugins.
  - With O(clouds_yaml_path), hosts carry C(imagegov_clouds_yaml), the file their modules
    must read (the reconcile playbook sets C(OS_CLIENT_CONFIG_FILE) from it).
  - Results are cached (O(cache)) only when every cloud could be read.
  - A cloud whose catalog cannot be read is a warning naming the cloud and the reason; the
    cloud stays in the inventory with the regions C(clouds.yaml) gives, in the group
    C(imagegov_unreachable), so a play on the fleet fails on it and says why, while the other
    targets go on. O(strict_discovery=true) makes it an inventory error instead.
  - Hosts run on the controller (C(ansible_connection=local), with the Python that runs the
    inventory, which has openstacksdk).
  - The configuration file's name must end with C(clouds.yml) or C(clouds.yaml).
requirements:
  - openstacksdk (on the controller)
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    required: true
    choices: [imagegov.openstack.clouds]
  clouds:
    description:
      - Names of C(clouds.yaml) entries to include. All of them when not given (but the
        C(envvars) entry openstacksdk makes of C(OS_*) variables, which must be named).
    type: list
    elements: str
  clouds_yaml_path:
    description:
      - C(clouds.yaml) files to read instead of openstacksdk's search path
        (C(OS_CLIENT_CONFIG_FILE), C(./clouds.yaml), C(~/.config/openstack/clouds.yaml),
        C(/etc/openstack/clouds.yaml)).
    type: list
    elements: path
  regions:
    description:
      - V(configured) - the regions C(clouds.yaml) gives each cloud; a cloud without one is a
        single host without C(region_name).
      - V(catalog) - the regions of Keystone's service catalog with an endpoint of
        O(service_type) on the cloud's interface; one authentication per cloud.
    type: str
    choices: [configured, catalog]
    default: configured
  service_type:
    description: The service a region must offer to become a target with O(regions=catalog).
    type: str
    default: image
  only_regions:
    description: Keep only these regions (names), whichever way they were found.
    type: list
    elements: str
  labels:
    description:
      - Variables for groups and per-target settings, by target. A key is a cloud name
        (every region of that cloud), C(<cloud>/<region>) (one target) or C(*/<region>)
        (that region of every cloud); the more specific key wins per label.
      - The labels a host gets are in its variable C(imagegov_labels) and, each, as
        C(imagegov_label_<name>); use O(keyed_groups) to group by them.
    type: dict
    default: {}
  hostname_format:
    description:
      - How a host is named, from C({cloud}) and C({region}); a cloud without a region is
        named C({cloud}).
    type: str
    default: '{cloud}.{region}'
  strict_discovery:
    description: Fail the whole inventory when a cloud's catalog cannot be read.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
# fleet.clouds.yml - every region of two clouds, grouped by storage backend
plugin: imagegov.openstack.clouds
clouds: [prod, sovereign]
regions: catalog
labels:
  prod: {storage: ceph}
  prod/eu-test-1: {stage: candidate}
  sovereign: {storage: file, jurisdiction: eu}
keyed_groups:
  - key: imagegov_labels.storage | default('none')
    prefix: storage
  - key: imagegov_labels.stage | default('stable')
    prefix: stage
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/imagegov/inventory
cache_timeout: 3600

# ansible-inventory -i fleet.clouds.yml --graph
# ansible-playbook -i fleet.clouds.yml imagegov.openstack.reconcile -e catalog=catalog/
"""

import os
import re
import sys
import traceback
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

try:
    import openstack
    import openstack.config
    import openstack.connection
except ImportError:
    OPENSTACKSDK_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    OPENSTACKSDK_IMPORT_ERROR = None

FLEET_GROUP = 'imagegov_fleet'
_UNSAFE_HOST = re.compile(r'[/\\\s]')
UNREACHABLE_GROUP = 'imagegov_unreachable'


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = 'imagegov.openstack.clouds'

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(('clouds.yml', 'clouds.yaml'))

    def parse(self, inventory, loader, path, cache=True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if OPENSTACKSDK_IMPORT_ERROR:
            raise AnsibleParserError(f'{path}: the clouds inventory needs openstacksdk on the controller')
        cache_key = self.get_cache_key(path)
        use_cache = cache and self.get_option('cache')
        targets = None
        if use_cache:
            try:
                targets = self._cache[cache_key]
            except KeyError:
                targets = None
        if targets is None:
            targets = self._targets(path)
            # A cloud that could not be read is asked again next time, not remembered as down.
            if self.get_option('cache') and not any(target['unreachable'] for target in targets):
                self._cache[cache_key] = targets
        names: dict[str, str] = {}
        for target in targets:
            host = self._host_name(target)
            label = f'{target["cloud"]}/{target["region"]}' if target['region'] else target['cloud']
            if host in names:
                raise AnsibleParserError(
                    f'{path}: targets {names[host]} and {label} would both be host {host}; '
                    'give option hostname_format both {cloud} and {region}'
                )
            names[host] = label
            self._add_target(host, target)

    def _targets(self, path: str) -> list[dict[str, Any]]:
        """[{cloud, region, unreachable}] in clouds.yaml's order, regions sorted."""
        config = self._openstack_config(path)
        wanted = self.get_option('clouds')
        names = config.get_cloud_names()
        if wanted:
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise AnsibleParserError(
                    f'{path}: clouds {", ".join(unknown)} are not in clouds.yaml '
                    f'(it has: {", ".join(names) or "none"}); fix option "clouds" or the clouds.yaml searched'
                )
            names = [name for name in names if name in wanted]
        else:
            names = [name for name in names if name != 'envvars']
        targets = []
        for name in names:
            configured = [region['name'] for region in config._get_regions(name) if region.get('name')]
            unreachable = None
            regions = configured
            if self.get_option('regions') == 'catalog':
                try:
                    found = self._catalog_regions(config, name)
                    if not found:
                        raise LookupError(
                            f'no region of its Keystone catalog offers the {self.get_option("service_type")} service'
                        )
                    regions = found
                except Exception as exc:  # any failure of one cloud is reported, the others go on
                    unreachable = f'{type(exc).__name__}: {exc}'
                    if self.get_option('strict_discovery'):
                        raise AnsibleParserError(
                            f'{path}: cannot read the service catalog of cloud {name}: {unreachable}'
                        ) from exc
                    self.display.warning(
                        f'imagegov.openstack.clouds: cannot read the service catalog of cloud {name} '
                        f'({unreachable}); it stays in group {UNREACHABLE_GROUP} with its configured regions'
                    )
            only = self.get_option('only_regions')
            if only:
                regions = [region for region in regions if region in only]
                if not regions and not unreachable:
                    continue
            for region in regions or [None]:
                targets.append({'cloud': name, 'region': region, 'unreachable': unreachable})
        return targets

    def _openstack_config(self, path: str):
        files = self.get_option('clouds_yaml_path')
        try:
            return openstack.config.OpenStackConfig(config_files=files or None)
        except Exception as exc:
            raise AnsibleParserError(f'{path}: cannot read clouds.yaml: {exc}') from exc

    @property
    def _clouds_yaml(self) -> str | None:
        """The clouds.yaml of option clouds_yaml_path the hosts' modules must read too."""
        found = [file for file in self.get_option('clouds_yaml_path') or [] if os.path.isfile(file)]
        return found[0] if found else None

    def _catalog_regions(self, config, name: str) -> list[str]:
        cloud = config.get_one(cloud=name)
        connection = openstack.connection.Connection(config=cloud)
        access = connection.session.auth.get_access(connection.session)
        interface = cloud.config.get('interface') or 'public'
        endpoints = access.service_catalog.get_endpoints(
            service_type=self.get_option('service_type'), interface=interface
        )
        return sorted(
            {
                endpoint.get('region_id') or endpoint.get('region')
                for found in endpoints.values()
                for endpoint in found
                if endpoint.get('region_id') or endpoint.get('region')
            }
        )

    def _host_name(self, target: dict[str, Any]) -> str:
        cloud, region = target['cloud'], target['region']
        host = self.get_option('hostname_format').format(cloud=cloud, region=region) if region else cloud
        # Host names become report directories: no path separator, no hidden or parent directory.
        return _UNSAFE_HOST.sub('_', host).lstrip('.') or '_'

    def _add_target(self, host: str, target: dict[str, Any]) -> None:
        cloud, region = target['cloud'], target['region']
        self.inventory.add_host(host, group=self.inventory.add_group(FLEET_GROUP))
        self.inventory.add_host(host, group=self.inventory.add_group(_group(f'cloud_{cloud}')))
        if region:
            self.inventory.add_host(host, group=self.inventory.add_group(_group(f'region_{region}')))
        if target['unreachable']:
            self.inventory.add_host(host, group=self.inventory.add_group(UNREACHABLE_GROUP))
        labels = self._labels(cloud, region)
        variables = {
            'cloud': cloud,
            'region_name': region,
            'imagegov_target': f'{cloud}/{region}' if region else cloud,
            'imagegov_labels': labels,
            'imagegov_unreachable': target['unreachable'],
            'imagegov_clouds_yaml': self._clouds_yaml,
            'ansible_connection': 'local',
            # The controller's own Python, which has openstacksdk (as ansible_playbook_python).
            'ansible_python_interpreter': sys.executable,
        }
        variables.update({self._sanitize_group_name(f'imagegov_label_{key}'): value for key, value in labels.items()})
        for key, value in variables.items():
            self.inventory.set_variable(host, key, value)
        strict = self.get_option('strict')
        self._set_composite_vars(self.get_option('compose'), variables, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option('groups'), variables, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), variables, host, strict=strict)

    def _labels(self, cloud: str, region: str | None) -> dict[str, Any]:
        given = self.get_option('labels') or {}
        merged: dict[str, Any] = {}
        for key in (cloud, f'*/{region}', f'{cloud}/{region}'):
            found = given.get(key)
            if isinstance(found, dict):
                merged.update(found)
            elif found is not None:
                raise AnsibleParserError(f'labels.{key} must be a mapping of label names to values, not {found!r}')
        return merged


def _group(name: str) -> str:
    """The plugin's own groups are always valid names (region_eu_test_1), whatever
    TRANSFORM_INVALID_GROUP_CHARS says, so group_vars/ files can be named for them."""
    return to_safe_group_name(name, force=True, silent=True)

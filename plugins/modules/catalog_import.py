#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: catalog_import
short_description: Convert OSISM openstack-image-manager image definitions into an image catalog
version_added: 0.2.0
description:
  - Reads image definitions of OSISM's openstack-image-manager (C(etc/images/*.yml)) and writes
    one catalog file for M(imagegov.openstack.catalog) (see C(docs/catalog.md) and
    C(docs/migrating.md) in the collection for the mapping, field by field).
  - An image with C(multi=true) (OSISM's default) becomes a series whose newest build carries
    the plain name (C(alias)); with C(multi=false) every version becomes an image of its own.
    A version without a sha256 or sha512 checksum becomes C(state=unmanaged), since the
    catalog uploads only what a checksum proves.
  - Fields with no equivalent in the catalog (C(login), C(password), C(latest_url),
    C(mirror_url), C(hidden) per version, md5 checksums, ...) are listed in RV(notes), each
    with file, line, image, field and why; none is dropped silently.
  - Definitions that do not match OSISM's schema fail the task, naming file, line, image and
    field of every problem (result key C(problems)); nothing is written then.
  - No connection to a cloud is made. Files are read and written on the host the module runs
    on (usually C(localhost)).
  - The file written starts with a comment naming the definitions; the same definitions give
    the same text, so the task reports a change only when the catalog changes.
extends_documentation_fragment:
  - imagegov.openstack.attributes
attributes:
  check_mode:
    support: full
    details: Converts and returns the catalog, and says whether O(dest) would change, without writing it.
  diff_mode:
    support: full
    details: The old and the new text of O(dest).
  idempotent:
    support: full
options:
  src:
    description:
      - OSISM definition files, or directories of C(*.yml) / C(*.yaml) definition files (not
        their subdirectories), read in the order given, a directory's files by name.
    type: list
    elements: path
    required: true
  dest:
    description:
      - The catalog file to write. Its directory must exist. The file is replaced only when its
        text changes.
    type: path
    required: true
  history:
    description:
      - Also list the versions that left the definition files in earlier commits of the git
        checkout holding them (read with C(git log --follow) and C(git show); C(git) must be
        installed), as C(state=unmanaged) builds. Such builds exist in the cloud, or no longer
        do; the catalog knows them, ranks them as older builds and never uploads, changes or
        deletes them.
      - Fails when a definition file is not inside a git checkout.
    type: bool
    default: false
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Convert the OSISM definitions into a catalog
  imagegov.openstack.catalog_import:
    src: [openstack-image-manager/etc/images/]
    dest: catalog/osism.yml
    history: true
  register: imported

- name: Show what the catalog does not carry over
  ansible.builtin.debug:
    msg: "{{ imported.notes | map(attribute='text') }}"
"""

RETURN = r"""
catalog:
  description: The catalog document written to O(dest) (without its header comment).
  returned: success
  type: dict
  sample: {version: 1, images: [{series: ubuntu-24.04, alias: Ubuntu 24.04, name: 'Ubuntu 24.04 ({version})'}]}
notes:
  description:
    - What was not carried over, one item per field, with C(file), C(line), C(item) (the OSISM
      image), C(field), C(message) and C(text) (all of it on one line).
  returned: success
  type: list
  elements: dict
images:
  description: Number of Glance images the catalog names (single images and series builds).
  returned: success
  type: int
series:
  description: Number of series in the catalog.
  returned: success
  type: int
problems:
  description: What is wrong with the definitions, when they cannot be converted; same keys as RV(notes).
  returned: failure
  type: list
  elements: dict
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.imagegov.openstack.plugins.module_utils.catalog.osism import (
    OsismError,
    import_definitions,
    render_catalog,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='list', elements='path', required=True),
            dest=dict(type='path', required=True),
            history=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    dest = module.params['dest']
    git = module.get_bin_path('git', required=True) if module.params['history'] else 'git'

    def run_git(command: list[str]) -> tuple[int, str, str]:
        return module.run_command([git, *command[1:]])

    try:
        result = import_definitions(module.params['src'], module.params['history'], run=run_git)
    except OsismError as exc:
        module.fail_json(msg=f'{exc}\nNothing was written.', problems=[p.as_dict() for p in exc.problems])
    text = render_catalog(result)
    try:
        with open(dest, encoding='utf-8') as handle:
            before = handle.read()
    except FileNotFoundError:
        before = None
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f'cannot read {dest}: {to_native(exc)}')
    changed = before != text
    if changed and not module.check_mode:
        directory = os.path.dirname(os.path.abspath(dest))
        try:
            descriptor, temporary = tempfile.mkstemp(dir=directory, prefix='.catalog_import-')
            with os.fdopen(descriptor, 'w', encoding='utf-8') as output:
                output.write(text)
        except OSError as exc:
            module.fail_json(msg=f'cannot write {dest}: {to_native(exc)}')
        module.atomic_move(temporary, dest)
    diff = dict(before=before or '', after=text, before_header=dest, after_header=dest) if module._diff else None
    module.exit_json(
        changed=changed,
        catalog=result.document,
        notes=[note.as_dict() for note in result.notes],
        images=result.images,
        series=result.series,
        **({'diff': diff} if diff else {}),
    )


if __name__ == '__main__':
    main()

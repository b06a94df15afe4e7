# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: secret_digest
short_description: A slow, salted digest of a secret, to tell whether it changed without revealing it
version_added: 0.2.0
description:
  - Returns PBKDF2-HMAC-SHA256 of the secret with the salt given, 600000 iterations, as hex.
    The same secret and salt give the same digest on every host, so the digest can go into a
    fingerprint of inputs (the P(imagegov.openstack.image_build#role) role's build hash) and a
    changed password changes the fingerprint - while guessing the secret back from a
    fingerprint that became public costs a PBKDF2 run per guess.
  - Use it in a task with C(no_log) - the secret is in that task's arguments.
options:
  _input:
    description: The secret.
    type: str
    required: true
  salt:
    description: A value that differs between uses, such as what the secret is for.
    type: str
    required: true
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: The root password's digest, for the build hash
  ansible.builtin.set_fact:
    password_digest: "{{ vault_root_password | imagegov.openstack.secret_digest('root password of ' ~ base_sha256) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The digest, 64 hexadecimal characters.
  type: str
"""

import hashlib
from typing import Any

from ansible.errors import AnsibleFilterError

ITERATIONS = 600_000


def secret_digest(secret: str, salt: str) -> str:
    if not isinstance(secret, str) or not isinstance(salt, str) or not salt:
        # Never the values: the secret must not reach an error message.
        raise AnsibleFilterError('secret_digest expects a string secret and a non-empty string salt')
    return hashlib.pbkdf2_hmac('sha256', secret.encode(), salt.encode(), ITERATIONS).hex()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {'secret_digest': secret_digest}

# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile one image: settle what answers to its name, decide the content action, plan,
then execute.

Every change is put to the policy, as the action it is, before it is made: create, upload,
update or publish, narrow (fewer projects may use the image), protect and unprotect,
retire (the rename and hide of a replaced image), reactivate, deactivate and delete.
Planning never writes, so check mode runs the same code up to the point of execution.
Execution undoes its own earlier steps when a later one fails, so a failed run leaves
Glance as it found it: no queued record, no half-uploaded image, no retired original.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._content import (
    GLANCE_HASH,
    PRESCAN_BYTES,
    ContentScanner,
    SourceError,
    StoredData,
    glance_disk_format,
    unsupported_format_message,
)
from ._errors import ImagegovError
from ._glance import GONE_STATUSES, Glance, GlanceConflict, GlanceError
from ._identity import DigestCache, derived_ids, generation_of, stored_hash_matches
from ._operations import Kind, OperationLog
from ._state import (
    ATTRIBUTES,
    BASE_FIELDS,
    BOOKKEEPING_PREFIX,
    BUILD_RECORD_PROPERTIES,
    PROTECTED_WHILE_USED_PROPERTY,
    REPLACED_BY_PROPERTY,
    SHA256_PROPERTY,
    SHARED_SINCE_PROPERTY,
    DesiredImage,
    apply_patch,
    content_bound_changes,
    creation_fields,
    plan_patch,
    properties_of,
    simulated_new_image,
)
from ._undo import UndoLog
from ._usage import blocking_usage
from .policy.rules.access_protection import access_of, losing_projects

BUSY_STATUSES = ('saving', 'uploading', 'importing')
SETTLED_STATUSES = ('active', 'deactivated')
PUBLISHED_VISIBILITIES = ('public', 'community')
NAME_LIMIT = 255  # characters, Glance's limit on names
# A record still queued after this long was left by a run that died between creating it
# and sending its data (a concurrent run starts its upload at once).
ABANDONED_AFTER = 10


class ImageRequestError(ImagegovError):
    """The request cannot be carried out as given; the message says what to change."""


@dataclass
class ContentRequest:
    source: Any
    import_method: str
    expected: dict[str, str]
    on_content_change: str
    prescan: dict[str, Any] | None = None
    data_source: dict[str, Any] | None = None
    # The stored bytes' sha256 when known without reading them (a conversion this host made
    # before): trusted for comparing with Glance's hash, never required of an upload.
    known_sha256: str | None = None

    @property
    def sha256(self) -> str | None:
        return self.expected.get('sha256')

    @property
    def stored_sha256(self) -> str | None:
        return self.sha256 or self.known_sha256


@dataclass
class Outcome:
    changed: bool = False
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    operations: OperationLog = field(default_factory=OperationLog)
    content: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None


def retired_name(name: str, stamp: str, kind: str = 'replaced') -> str:
    """``<name>.<kind>-<stamp>``, the name cut so that the whole stays within Glance's limit."""
    suffix = f'.{kind}-{stamp}'
    return name[: NAME_LIMIT - len(suffix)] + suffix


def _stamp(image: dict[str, Any]) -> str:
    """A UTC time of ``image`` as 20261125T120000Z: the same in every concurrent run."""
    created = str(image.get('created_at') or '')
    digits = ''.join(c for c in created if c.isdigit())
    return f'{digits[:8]}T{digits[8:14]}Z' if len(digits) >= 14 else time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())


def patch_actions(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The policy actions one metadata change amounts to."""
    widened = after.get('visibility') in PUBLISHED_VISIBILITIES and after.get('visibility') != before.get('visibility')
    actions = ['publish' if widened else 'update']
    if losing_projects(access_of(before), access_of(after)):
        actions.append('narrow')
    if bool(after.get('protected')) != bool(before.get('protected')):
        actions.append('protect' if after.get('protected') else 'unprotect')
    return actions


class ImageReconciler:
    def __init__(
        self,
        glance: Glance,
        caller_project_id: str,
        check_mode: bool,
        wait: bool,
        timeout: int,
        gate: Any = None,
        digests: DigestCache | None = None,
        operations: OperationLog | None = None,
    ) -> None:
        self.glance = glance
        self.gate = gate
        self.caller_project_id = caller_project_id
        self.check_mode = check_mode
        self.wait = wait
        self.timeout = timeout
        self.digests = digests or DigestCache()
        self._data_source: dict[str, Any] | None = None
        # Several images of one task (a UEC bundle) may share one log of what was done.
        self.outcome = Outcome(operations=OperationLog() if operations is None else operations)
        self._undo = UndoLog(self.outcome.operations)

    def rollback(self) -> None:
        """Undo what this reconciler did, after it returned: a later image of the same task
        failed (a UEC machine image after its kernel was uploaded)."""
        self._undo.rollback()

    # -- state: absent -------------------------------------------------------------
    def absent(self, found: list[dict[str, Any]], usage_provider: Any = None) -> Outcome:
        if len(found) > 1:
            raise ImageRequestError(_several_message(found, 'Give the id option to delete one of them.'))
        current = found[0] if found else None
        self.outcome.before = current
        if current is None:
            return self.outcome
        if current.get('protected'):
            self._lift_usage_protection(current, usage_provider)
        self._ask('delete', current, current)
        try:
            if current.get('protected'):
                self._change(
                    current,
                    _protection_ops(False),
                    f'unprotect {current["id"]} (protected while used; nothing uses it now)',
                    actions=['unprotect'],
                    undo=_protection_ops(True),
                )
            self._record(Kind.DELETE, f'delete {current["id"]}')
            if not self.check_mode:
                self.glance.delete_image(current['id'])
        except BaseException:
            self._undo.rollback()
            raise
        return self.outcome

    def _lift_usage_protection(self, current: dict[str, Any], usage_provider: Any) -> None:
        if current.get(PROTECTED_WHILE_USED_PROPERTY) != 'true' or usage_provider is None:
            raise ImageRequestError(
                f'Image {current["name"]!r} ({current["id"]}) is protected, so Glance refuses '
                'to delete it. Run the task with state=present and protected=false first.'
            )
        users = blocking_usage(usage_provider(current))
        if users:
            raise ImageRequestError(
                f'Image {current["name"]!r} ({current["id"]}) is protected while it is used: '
                + '; '.join(users)
                + '. Delete or rebuild those first.'
            )

    def protect_while_used(self, image: dict[str, Any], usage_provider: Any) -> Outcome:
        """Keep Glance's protected flag in step with usage, so a plain CLI delete of an
        image in use is refused too. Unknown usage counts as in use."""
        usage = usage_provider(image)
        self.outcome.usage = usage
        used = bool(blocking_usage(usage))
        if used and not image.get('protected'):
            image = self._change(
                image, _protection_ops(True), f'protect {image.get("id")} (in use)', actions=['protect']
            )
        elif not used and image.get(PROTECTED_WHILE_USED_PROPERTY) == 'true':
            image = self._change(
                image, _protection_ops(False), f'unprotect {image.get("id")} (no longer used)', actions=['unprotect']
            )
        self.outcome.after = image
        return self.outcome

    # -- state: present / deactivated ----------------------------------------------
    def present(
        self, found: list[dict[str, Any]], desired: DesiredImage, content: ContentRequest, deactivated: bool
    ) -> Outcome:
        self._data_source = content.data_source
        try:
            current = self._settle(found, desired, content)
            self.outcome.before = current
            if deactivated and (current is None or current.get('status') == 'active'):
                self._ask('deactivate', dict(current or simulated_new_image(desired), status='deactivated'), current)
            image = self._create(desired, content) if current is None else self._update(current, desired, content)
            image = self._set_activation(image, deactivated)
        except BaseException:  # an interrupted or terminated run undoes its steps too
            self._undo.rollback()
            raise
        self.outcome.after = image
        return self.outcome

    def _update(self, current: dict[str, Any], desired: DesiredImage, content: ContentRequest) -> dict[str, Any]:
        current = self._await_settled(current, content)
        if current is None:  # the other run's record went away: create it ourselves
            return self._create(desired, content)
        if current.get('status') == 'queued' and content.source is not None:
            return self._fill_queued(current, desired, content)
        reason = self._replacement_reason(current, desired, content)
        if reason:
            return self._replace(current, desired, content, reason)
        return self._change(current, lambda image: _with_bookkeeping(image, plan_patch(image, desired)))

    def _await_settled(self, image: dict[str, Any], content: ContentRequest) -> dict[str, Any] | None:
        """Wait while another run uploads into the image (a plan too: waiting only reads); a
        record queued and untouched for ABANDONED_AFTER seconds was left behind, and is filled
        by this run instead."""
        if image.get('status') not in BUSY_STATUSES + ('queued',):
            return image
        if self.check_mode and image.get('status') == 'queued':
            return image  # a plan fills it: nothing to wait for
        deadline, queued_since = time.monotonic() + self.timeout, time.monotonic()
        while True:
            status = image.get('status')
            if status in SETTLED_STATUSES:
                return image
            if status == 'queued' and (content.source is None or time.monotonic() - queued_since >= ABANDONED_AFTER):
                return image
            if status != 'queued':
                queued_since = time.monotonic()
            if time.monotonic() > deadline:
                raise ImageRequestError(
                    f'Image {image.get("name")!r} ({image["id"]}) is still {status} after {self.timeout} s: '
                    'another upload into it is in progress or broke off. Run again later, or delete it.'
                )
            time.sleep(1)
            image = self.glance.live_image(image['id'])
            if image is None:
                return None

    def _replacement_reason(
        self, current: dict[str, Any], desired: DesiredImage, content: ContentRequest
    ) -> str | None:
        bound = content_bound_changes(current, desired)
        if bound:
            return (
                ', '.join(f'{name} {current.get(name)!r} -> {desired.attributes[name]!r}' for name in bound)
                + ' (Glance fixes these once data is uploaded)'
            )
        if content.source is None:
            return None
        holds = self._holds_expected(current, content)
        sha256 = (self.outcome.content or {}).get('sha256') or content.stored_sha256
        if holds is False:
            recorded = current.get(SHA256_PROPERTY)
            return (
                f'content changed: the image holds other bytes than {content.source.label} '
                f'(recorded sha256 {recorded or "none"}, wanted {sha256 or "unknown"}; checked '
                "against Glance's own hash)"
            )
        if sha256 and current.get(SHA256_PROPERTY) != sha256:
            # Same bytes, uploaded by another tool or recorded wrongly: record the truth.
            desired.properties[SHA256_PROPERTY] = sha256
        return None

    def _holds_expected(self, image: dict[str, Any], content: ContentRequest) -> bool | None:
        """Whether the image holds the source's bytes, judged on Glance's own hash; None when
        only the recorded sha256 property can say (reported as an asserted identity)."""
        algo = image.get('os_hash_algo')
        trusted = content.expected.get(algo) or self.digests.digest(content.stored_sha256, algo)
        if trusted and image.get('os_hash_value'):
            same = image['os_hash_value'] == trusted or self._imported_from(image, content.stored_sha256)
            self.outcome.content = self.outcome.content or {'sha256': content.stored_sha256, 'identity': 'verified'}
            return same
        if content.import_method == 'web-download':
            return self._read_back_identity(image, content)
        # Read the source, in Glance's algorithm too: Glance's hash must equal it.
        algo = image.get('os_hash_algo') or GLANCE_HASH
        facts = self._scan(content.source, content, algo)
        self.outcome.content['identity'] = 'verified'
        verdict = stored_hash_matches(image, {algo: facts['glance_hash']['value']})
        if verdict or self._imported_from(image, facts['sha256']):
            return True
        if (verdict is None or content.import_method != 'put') and image.get(SHA256_PROPERTY) == facts['sha256']:
            # Glance keeps no hash, or its import plugins may have rewritten the bytes: only
            # the recorded property says, so the identity is reported as asserted.
            self.outcome.content['identity'] = 'asserted'
            return None
        return False

    def _read_back_identity(self, image: dict[str, Any], content: ContentRequest) -> bool | None:
        """A web-download's URL may be out of the module's reach: hash what Glance stored."""
        if image.get('status') != 'active' or not content.sha256:
            same = content.sha256 is not None and image.get(SHA256_PROPERTY) == content.sha256
            self.outcome.content = {'sha256': content.sha256, 'identity': 'asserted'}
            return bool(same)
        facts = (
            ContentScanner(StoredData(self.glance, image['id']), image.get('os_hash_algo') or GLANCE_HASH)
            .consume()
            .facts()
        )
        self.digests.remember(facts)
        self.outcome.content = dict(_public(facts), identity='verified')
        return facts['sha256'] == content.sha256

    def _imported_from(self, image: dict[str, Any], sha256: str | None) -> bool:
        return bool(sha256) and self.digests.imported_from(image['id']) == sha256

    def _replace(
        self, current: dict[str, Any], desired: DesiredImage, content: ContentRequest, reason: str
    ) -> dict[str, Any]:
        if content.on_content_change == 'fail' or content.source is None:
            hint = (
                'Give filename or url with the new bytes'
                if content.source is None
                else 'Set on_content_change=replace to upload a replacement image'
            )
            raise ImageRequestError(
                f'Image {current["name"]!r} ({current["id"]}) needs new data: {reason}. '
                f'{hint}, or keep the image as it is.'
            )
        carried = apply_patch(current, plan_patch(current, desired))
        replacement = DesiredImage(
            attributes={name: carried.get(name) for name in ATTRIBUTES if name != 'owner'},
            # The caller's own bookkeeping (a catalog's records of which build this is) goes
            # with the bytes; what belongs to the old image (retirement, exposure) stays there.
            properties={
                k: v
                for k, v in properties_of(carried).items()
                if not k.startswith('os_glance')
                and (not k.startswith(BOOKKEEPING_PREFIX) or k in desired.properties)
                and k != SHA256_PROPERTY
            },
            tags=list(carried.get('tags') or []),
        )
        if (
            self.outcome.content
            and not desired.attributes.get('disk_format')
            and self.outcome.content.get('detected_format')
        ):
            replacement.attributes['disk_format'] = self._glance_format(
                self.outcome.content['detected_format'], content
            )
        # Keep another project's image in that project; the caller's own needs no owner.
        if current.get('owner') != self.caller_project_id:
            replacement.attributes['owner'] = current.get('owner')
        generation = generation_of(current)
        self._record(Kind.REPLACE, f'replace {current["id"]}: {reason}')
        image = self._create(replacement, content, 0 if generation is None else generation + 1)
        self._retire(current, image)
        return image

    def _retire(self, old: dict[str, Any], new: dict[str, Any], kind: str = 'replaced') -> None:
        """Rename and hide an image that another one replaces: kept for the servers that use it."""
        new_id = new.get('id') or '<new image>'
        target_name = retired_name(old['name'], _stamp(new), kind)

        def operations(image: dict[str, Any]) -> list[dict[str, Any]]:
            if image.get('name') != old['name']:
                return []  # already retired, by a concurrent run
            return [
                {'op': 'replace', 'path': '/name', 'value': target_name},
                {'op': 'replace', 'path': '/os_hidden', 'value': True},
                {'op': 'add', 'path': f'/{REPLACED_BY_PROPERTY}', 'value': new_id},
            ]

        restore = [
            {'op': 'replace', 'path': '/name', 'value': old['name']},
            {'op': 'replace', 'path': '/os_hidden', 'value': bool(old.get('os_hidden'))},
            {'op': 'remove', 'path': f'/{REPLACED_BY_PROPERTY}'},
        ]
        self._change(
            old,
            operations,
            f'retire {old["id"]} (renamed {target_name!r}, hidden, {REPLACED_BY_PROPERTY}={new_id})',
            actions=['retire'],
            undo=restore,
        )

    def rename(self, image: dict[str, Any], name: str, hidden: bool | None = None) -> dict[str, Any]:
        """One patch of the name (and os_hidden, when given), asked of the policy as an
        update: a series' plain name moving between builds."""

        def operations(fresh: dict[str, Any]) -> list[dict[str, Any]]:
            ops = [] if fresh.get('name') == name else [{'op': 'replace', 'path': '/name', 'value': name}]
            if hidden is not None and bool(fresh.get('os_hidden')) != hidden:
                ops.append({'op': 'replace', 'path': '/os_hidden', 'value': hidden})
            return ops

        if image.get('name') != name:
            label = f'rename {image["id"]} {image.get("name")!r} -> {name!r}'
        else:
            label = f'{"hide" if hidden else "show"} {image["id"]} ({name!r})'
        return self._change(image, operations, label)

    def retire_other(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Rename and hide an image that is not one of ours but holds the name ``new`` takes."""
        self._retire(old, new)

    def _create(self, desired: DesiredImage, content: ContentRequest, generation: int = 0) -> dict[str, Any]:
        protected = desired.attributes.get('protected')
        if not desired.attributes.get('disk_format') and content.source is not None:
            desired.attributes['disk_format'] = self._detect_format(content)
        fields = creation_fields(desired)
        # A protected record could not be removed if the upload fails: protect it last.
        fields.pop('protected', None)
        if fields.get('visibility') in PUBLISHED_VISIBILITIES:
            fields[SHARED_SINCE_PROPERTY] = _now()
        self._ask('create', dict(simulated_new_image(desired), **fields), None, self._known_facts(content))
        if self.check_mode:
            self._record(Kind.CREATE, f'create {fields.get("name")!r}')
            image = simulated_new_image(desired)
            return self._upload(image, content) if content.source is not None else image
        prepare = getattr(content.source, 'prepare', None)
        if prepare is not None:
            prepare()  # a conversion that fails or is refused leaves no record behind
            # What the image records of its source is known once converted.
            recorded = content.source.properties()
            fields.update(recorded)
            desired.properties.update(recorded)
        image, joined = self._create_record(fields, desired, generation)
        if joined:
            self.outcome.operations.add(
                Kind.NOTE, f'image {image["id"]} was created by another run at the same time; continuing with it'
            )
            return self._update(image, desired, content)
        self._record(Kind.CREATE, f'create {fields.get("name")!r} ({image["id"]})')
        self._undo.add(f'delete {image["id"]}', lambda: self.glance.delete_image(image['id']))
        if content.source is not None:
            image = self._upload(image, content)
        if protected:
            image = self._change(
                image,
                [{'op': 'replace', 'path': '/protected', 'value': True}],
                f'protect {image["id"]}',
                actions=['protect'],
            )
        return image

    def _create_record(
        self, fields: dict[str, Any], desired: DesiredImage, generation: int
    ) -> tuple[dict[str, Any], bool]:
        """Create the image under the first free id of its name's sequence. Concurrent runs
        try the same ids, so only one creates it; the others get (that image, True)."""
        owner = desired.attributes.get('owner') or self.caller_project_id
        name = fields.get('name')
        chosen = fields.get('id')
        candidates = [(None, chosen)] if chosen else list(derived_ids(owner, name, generation))
        for _generation, candidate in candidates:
            try:
                return self.glance.create_image(dict(fields, id=candidate)), False
            except GlanceConflict:
                other = self.glance.live_image(candidate)
                if other is not None and other.get('owner') == owner and other.get('name') == name:
                    return other, True
                if chosen:
                    raise ImageRequestError(
                        f'Option id: image id {chosen} is taken (by a deleted image, or one of another '
                        'project or name). Give another id, or leave id out.'
                    ) from None
        self.outcome.operations.add(
            Kind.NOTE,
            f'the {len(candidates)} ids derived for {name!r} are taken '
            '(deleted images keep theirs): a random id is used',
        )
        return self.glance.create_image(fields), False

    def _fill_queued(self, current: dict[str, Any], desired: DesiredImage, content: ContentRequest) -> dict[str, Any]:
        operations = plan_patch(current, desired)
        self._ask('upload', apply_patch(current, operations), current, content.prescan)
        image = self._write(current, operations)
        return self._upload(image, content)

    # -- data ------------------------------------------------------------------------
    def _upload(self, image: dict[str, Any], content: ContentRequest) -> dict[str, Any]:
        method = content.import_method
        self._record(Kind.UPLOAD, f'upload ({method}) from {content.source.label}')
        if method == 'web-download':
            return self._web_download(image, content)
        if self.check_mode:
            # With the expected sha256 known, the header facts are enough to plan: the
            # whole read happens once, when the bytes are really sent.
            facts = (
                (self.outcome.content if (self.outcome.content or {}).get('size') is not None else None)
                or (content.prescan and content.sha256 and dict(content.prescan, sha256=content.sha256))
                or (content.prescan if (content.prescan or {}).get('conversion') else None)
                or self._scan(content.source, content, GLANCE_HASH)
            )
            self._ask('upload', image, image, facts)
            return dict(
                image,
                status='active',
                size=facts.get('size'),
                virtual_size=facts.get('virtual_size'),
                disk_format=image.get('disk_format') or glance_disk_format(facts.get('detected_format')),
            )
        scanner = self._scanner(content)
        try:
            if method == 'glance-direct':
                self.glance.stage(image['id'], scanner.body())
            else:
                self.glance.upload(image['id'], scanner.body())
        except Exception as exc:
            if scanner.error is not None:
                raise SourceError(
                    f'{scanner.error} ({scanner.size} bytes had reached Glance; the partial image is removed).'
                ) from exc
            raise
        facts = scanner.facts()
        _read_whole(content, facts)
        self.outcome.content = _public(facts)
        _verify_expected(facts, content, content.source.label)
        # The whole read can show what the header could not: ask again before keeping it.
        self._ask('upload', image, image, facts)
        if method == 'glance-direct':
            self.glance.start_import(image['id'], 'glance-direct')
        stored = self._check_stored(self._wait_active(image['id']), facts, content)
        self.digests.remember(facts)
        return self._write(stored, _record_sha256(stored, facts['sha256']))

    def _scanner(self, content: ContentRequest) -> ContentScanner:
        """The one read of an upload: hashed (sha256 and Glance's algorithm) and inspected."""
        return ContentScanner(content.source, GLANCE_HASH)

    def _check_stored(self, stored: dict[str, Any], facts: dict[str, Any], content: ContentRequest) -> dict[str, Any]:
        """What Glance stored must be what was read; bytes an import plugin rewrote are judged
        again, on what Glance stored."""
        if stored.get('status') not in SETTLED_STATUSES:
            return stored  # wait=false: Glance has not finished; nothing to compare yet
        glance_hash = facts['glance_hash']
        same = stored_hash_matches(stored, {glance_hash['algo']: glance_hash['value']})
        if same and stored.get('size') == facts['size']:
            return stored
        if content.import_method == 'put' or same is None:
            if stored.get('size') == facts['size'] and same is None:
                return stored  # Glance hashes with another algorithm: the size is all to compare
            raise ImageRequestError(
                f'Glance stored {stored.get("size")} bytes with {stored.get("os_hash_algo")} '
                f'{stored.get("os_hash_value")}, but {facts["size"]} bytes with {glance_hash["algo"]} '
                f'{glance_hash["value"]} were sent: the data was changed on the way. It was removed.'
            )
        stored_facts = self._stored_facts(stored)
        self.outcome.content = dict(_public(facts), stored=_public(stored_facts))
        self.outcome.operations.add(
            Kind.NOTE,
            f"Glance's import rewrote the data ({facts['size']} -> {stored.get('size')} bytes): judged again as stored",
        )
        self._ask('upload', stored, stored, stored_facts)
        self.digests.bind_import(stored['id'], facts['sha256'])
        return stored

    def _web_download(self, image: dict[str, Any], content: ContentRequest) -> dict[str, Any]:
        """Glance fetches the data itself: what it stored is read back and judged before the
        module returns; nothing the policy refuses, and no unverified checksum, is kept."""
        if self.check_mode:
            self._ask('upload', image, image, content.prescan)
            return dict(image, status='active')
        self.glance.start_import(image['id'], 'web-download', content.source.url)
        stored = self._wait_active(image['id'])
        if stored.get('status') not in SETTLED_STATUSES:
            return stored
        sha512 = content.expected.get(stored.get('os_hash_algo') or '')
        if sha512 and content.sha256 is None:
            if stored.get('os_hash_value') != sha512:
                raise ImageRequestError(
                    f"Glance's {stored.get('os_hash_algo')} of what it downloaded from {content.source.label} is "
                    f'{stored.get("os_hash_value")}, but option checksum expects {sha512}. It was removed.'
                )
            facts = self._stored_facts(stored)
        else:
            facts = (
                ContentScanner(StoredData(self.glance, stored['id']), stored.get('os_hash_algo') or GLANCE_HASH)
                .consume()
                .facts()
            )
            _verify_expected(facts, content, f'what Glance downloaded from {content.source.label}')
            if stored_hash_matches(stored, {facts['glance_hash']['algo']: facts['glance_hash']['value']}) is False:
                raise ImageRequestError(
                    f'Reading back image {stored["id"]} gave other bytes than Glance '
                    'recorded: the image was removed; run again.'
                )
            facts = dict(facts, virtual_size=stored.get('virtual_size') or facts.get('virtual_size'))
            self.digests.remember(facts)
        self.outcome.content = dict(_public(facts), identity='verified')
        self._ask('upload', stored, stored, facts)
        return self._write(stored, _record_sha256(stored, facts.get('sha256')))

    def _stored_facts(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Facts of what Glance stored: its own size and virtual size, and format and safety
        from the header of the stored data."""
        header = ContentScanner(StoredData(self.glance, stored['id']), first_bytes=PRESCAN_BYTES).consume().facts()
        header.pop('sha256', None)
        # Glance computes virtual_size as the declared format reads it; the header says what
        # the bytes really describe: a qcow2 declared raw is as large as its header says.
        sizes = [size for size in (stored.get('virtual_size'), header.get('virtual_size')) if size is not None]
        return dict(header, size=stored.get('size'), virtual_size=max(sizes) if sizes else None)

    def _scan(self, source: Any, content: ContentRequest, algo: str) -> dict[str, Any]:
        """The whole source read (not sent): its facts, checked against option checksum."""
        facts = ContentScanner(source, algo).consume().facts()
        _read_whole(content, facts)
        _verify_expected(facts, content, source.label)
        self.digests.remember(facts)
        self.outcome.content = _public(facts)
        return facts

    def _known_facts(self, content: ContentRequest) -> dict[str, Any] | None:
        """The fullest facts of the data known so far: a whole read, else the header."""
        if (self.outcome.content or {}).get('detected_format'):
            return self.outcome.content
        return content.prescan

    def _detect_format(self, content: ContentRequest) -> str:
        # Glance refuses data for a record without a disk_format; when the user named none,
        # take the format the bytes really have (the header is enough: 8 MiB at most).
        facts = self._known_facts(content)
        if facts is None and content.import_method != 'web-download':
            facts = ContentScanner(content.source, first_bytes=PRESCAN_BYTES).consume().facts()
        if not facts or not facts.get('detected_format'):
            raise ImageRequestError(
                f'Option disk_format is needed: the format of {content.source.label} '
                'could not be read beforehand (Glance downloads it itself).'
            )
        return self._glance_format(facts['detected_format'], content)

    @staticmethod
    def _glance_format(detected: str, content: ContentRequest) -> str:
        disk_format = glance_disk_format(detected)
        if disk_format is None:
            raise ImageRequestError(unsupported_format_message(detected, content.source.label))
        return disk_format

    def _wait_active(self, image_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            image = self.glance.get_image(image_id)
            status = image.get('status') if image else 'deleted'
            if status == 'active' or (not self.wait and status not in GONE_STATUSES):
                return image
            if status in GONE_STATUSES or status == 'queued' and _import_failed(image):
                raise ImageRequestError(
                    f'Image {image_id} did not become active (status {status}; '
                    f'{image.get("os_glance_failed_import") if image else ""}). It was removed.'
                )
            if time.monotonic() > deadline:
                raise ImageRequestError(
                    f'Image {image_id} was still {status} after {self.timeout} s (option '
                    'timeout). It was removed; raise timeout and run again.'
                )
            time.sleep(1)

    # -- several images with one name ------------------------------------------------
    def _settle(
        self, found: list[dict[str, Any]], desired: DesiredImage, content: ContentRequest
    ) -> dict[str, Any] | None:
        """The one image the name stands for. Several (two runs at once before this
        collection derived ids, or a run killed during a replace) are settled when they
        can be told apart safely: identical bytes (by Glance's own hash) keep the oldest and
        remove the others unless in use; otherwise the one holding the wanted bytes stays
        and the others are retired, never deleted."""
        live = [image for image in found if image.get('status') not in GONE_STATUSES]
        if len(live) > 1 and not self.check_mode:
            live = self._refreshed(live, desired.attributes.get('name'), content)
        if len(live) <= 1:
            return live[0] if live else None
        settled = sorted(
            (i for i in live if i.get('status') in SETTLED_STATUSES), key=lambda i: (str(i.get('created_at')), i['id'])
        )
        hashes = {image.get('os_hash_value') for image in settled}
        if len(settled) != len(live) or not settled:
            raise ImageRequestError(
                _several_message(
                    live, 'Some have no data yet; run again when they are active, or delete the extra ones.'
                )
            )
        if len(hashes) == 1 and None not in hashes:
            keeper = settled[0]
        elif content.source is not None:
            matching = [image for image in settled if self._holds_expected(image, content) is True]
            keeper = matching[0] if matching else settled[-1]
        else:
            raise ImageRequestError(
                _several_message(
                    live,
                    'They hold different data; give the id option (or filename / url, to keep the one holding it).',
                )
            )
        self.outcome.operations.add(
            Kind.NOTE, f'{len(live)} images are named {keeper.get("name")!r}: keeping {keeper["id"]}'
        )
        for other in settled:
            if other is not keeper:
                self._remove_extra(other, keeper)
        return keeper

    def _refreshed(
        self, images: list[dict[str, Any]], name: str | None, content: ContentRequest
    ) -> list[dict[str, Any]]:
        """The images as they are once other runs' uploads into them settled, still named so."""
        fresh = []
        for image in images:
            current = self._await_settled(self.glance.live_image(image['id']) or image, content)
            current = current and self.glance.live_image(current['id'])
            if current is not None and (name is None or current.get('name') == name):
                fresh.append(current)
        return fresh

    def _remove_extra(self, other: dict[str, Any], keeper: dict[str, Any]) -> None:
        """Delete a duplicate only when this collection provably made it for the same data
        (a derived id, Glance's hash equal to the keeper's) and nothing uses it; retire it
        (rename and hide, nothing lost) otherwise."""
        same_bytes = other.get('os_hash_value') and other.get('os_hash_value') == keeper.get('os_hash_value')
        usage_provider = getattr(self.gate, 'usage_provider', None)
        if (
            same_bytes
            and generation_of(other) is not None
            and not other.get('protected')
            and usage_provider is not None
            and not blocking_usage(usage_provider(other))
        ):
            self._ask('delete', other, other)
            self._record(Kind.DELETE, f'delete {other["id"]} (same data as {keeper["id"]}, unused)')
            if not self.check_mode:
                self.glance.delete_image(other['id'])
            return
        self._retire(other, keeper, 'duplicate' if same_bytes else 'replaced')

    # -- metadata and activation -----------------------------------------------------
    def _change(
        self,
        image: dict[str, Any],
        operations: Any,
        label: str | None = '',
        actions: list[str] | None = None,
        undo: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One JSON patch, asked of the policy as the actions it amounts to. ``operations``
        may be a function of the image, so that a patch refused because a concurrent run
        changed the image first (HTTP 409) is planned again on the image as it now is."""
        plan = operations if callable(operations) else (lambda _image: operations)
        ops = plan(image)
        if not ops:
            return image
        after = apply_patch(image, ops)
        before = self._access_view(image, after)
        for action in actions or patch_actions(before, after):
            self._ask(action, after, before)
        kind = Kind(actions[0]) if actions else Kind.UPDATE
        self._record(kind, label or f'update {", ".join(sorted({op["path"][1:] for op in ops}))}')
        if self.check_mode or image.get('id') is None:
            return after
        try:
            result = self.glance.patch_image(image['id'], ops)
        except GlanceError as exc:
            # 409: the image changed meanwhile. Glance also answers 500 when two runs add the
            # same property at once (a unique-key violation inside Glance). Either way, plan
            # again on the image as it now is; a plan that became empty is done.
            if exc.status_code not in (409, 500):
                raise
            fresh = self.glance.live_image(image['id'])
            ops = plan(fresh) if fresh is not None else []
            if not ops:
                return fresh or after
            after, before = apply_patch(fresh, ops), self._access_view(fresh, apply_patch(fresh, ops))
            for action in actions or patch_actions(before, after):
                self._ask(action, after, before)
            result = self.glance.patch_image(image['id'], ops)
        if undo is not None:
            self._undo.add(f'restore {image["id"]}', lambda: self.glance.patch_image(image['id'], undo))
        return result

    def _access_view(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """``before`` with its members when access narrows from a shared image: the policy
        needs to know who loses it (one member listing, only then)."""
        if (
            before.get('visibility') == 'shared'
            and after.get('visibility') == 'private'
            and 'members' not in before
            and before.get('id')
        ):
            return dict(before, members=sorted(m['member_id'] for m in self.glance.list_members(before['id'])))
        return before

    def _write(self, image: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
        """A patch that is part of an action already asked of the policy (recording the
        verified sha256 of an upload): not asked again, not reported as a change of its own."""
        if not operations:
            return image
        if self.check_mode or image.get('id') is None:
            return apply_patch(image, operations)
        try:
            return self.glance.patch_image(image['id'], operations)
        except GlanceError as exc:
            if exc.status_code not in (409, 500):
                raise
            fresh = self.glance.live_image(image['id']) or image  # a concurrent run wrote it first?
            left = [op for op in operations if not _already_applied(fresh, op)]
            return self.glance.patch_image(image['id'], left) if left else fresh

    def _set_activation(self, image: dict[str, Any], deactivated: bool) -> dict[str, Any]:
        status = image.get('status')
        if deactivated and status == 'active':
            self._record(Kind.DEACTIVATE, f'deactivate {image.get("id")}')
            if not self.check_mode:
                self.glance.deactivate(image['id'])
            return dict(image, status='deactivated')
        if deactivated and status != 'deactivated':
            raise ImageRequestError(
                f'Image {image.get("name")!r} is {status}: only an active image can be '
                'deactivated. Give filename or url so it has data first.'
            )
        if not deactivated and status == 'deactivated':
            self._ask('reactivate', dict(image, status='active'), image)
            self._record(Kind.REACTIVATE, f'reactivate {image["id"]}')
            if not self.check_mode:
                self.glance.reactivate(image['id'])
            return dict(image, status='active')
        return image

    def _ask(
        self, action: str, after: dict[str, Any], current: dict[str, Any] | None, content: dict[str, Any] | None = None
    ) -> None:
        if self.gate is not None:
            self.gate.check(action, after, current, content, data_source=self._data_source)

    def _record(self, kind: Kind, text: str) -> None:
        self.outcome.changed = True
        self.outcome.operations.add(kind, text)


def _with_bookkeeping(image: dict[str, Any], operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publishing marks the image as once shared: other projects may boot it from now on."""
    after = apply_patch(image, operations)
    if after.get('visibility') in PUBLISHED_VISIBILITIES and not image.get(SHARED_SINCE_PROPERTY):
        operations = operations + [{'op': 'add', 'path': f'/{SHARED_SINCE_PROPERTY}', 'value': _now()}]
    return operations


def _already_applied(image: dict[str, Any], operation: dict[str, Any]) -> bool:
    key = operation['path'][1:]
    if operation['op'] == 'remove':
        return key not in image
    return image.get(key) == operation['value']


def _record_sha256(image: dict[str, Any], sha256: str | None) -> list[dict[str, Any]]:
    if not sha256 or image.get(SHA256_PROPERTY) == sha256:
        return []
    return [{'op': 'add', 'path': f'/{SHA256_PROPERTY}', 'value': sha256}]


def _protection_ops(protect: bool) -> list[dict[str, Any]]:
    if protect:
        return [
            {'op': 'replace', 'path': '/protected', 'value': True},
            {'op': 'add', 'path': f'/{PROTECTED_WHILE_USED_PROPERTY}', 'value': 'true'},
        ]
    return [
        {'op': 'replace', 'path': '/protected', 'value': False},
        {'op': 'remove', 'path': f'/{PROTECTED_WHILE_USED_PROPERTY}'},
    ]


def _read_whole(content: ContentRequest, facts: dict[str, Any]) -> None:
    """Tell a source that computes what it gives (a conversion) what its bytes were."""
    remember = getattr(content.source, 'remember_output', None)
    if remember is not None:
        remember(facts)


def _verify_expected(facts: dict[str, Any], content: ContentRequest, label: str) -> None:
    """The bytes read must be the ones option checksum names, in whichever algorithm."""
    glance_hash = facts.get('glance_hash') or {}
    for algo, expected in content.expected.items():
        found = (
            facts.get('sha256')
            if algo == 'sha256'
            else (glance_hash.get('value') if glance_hash.get('algo') == algo else None)
        )
        if found is not None and found != expected:
            raise ImageRequestError(
                f'{algo} of {label} is {found}, but option checksum expects {expected}. '
                'Check the source or the checksum; nothing was kept.'
            )


def _public(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if k != 'complete'}


def _several_message(images: list[dict[str, Any]], hint: str) -> str:
    listing = ', '.join(
        f'{i["id"]} (status {i.get("status")}, created {i.get("created_at")}, '
        f'sha256 {i.get(SHA256_PROPERTY) or "not recorded"})'
        for i in images
    )
    return (
        f'{len(images)} images named {images[0].get("name")!r} belong to project {images[0].get("owner")}: '
        f'{listing}. {hint}'
    )


def _import_failed(image: dict[str, Any]) -> bool:
    return bool(image.get('os_glance_failed_import'))


def _now() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def property_value(key: str, value: Any) -> str:
    """Glance keeps extra properties as strings: say so instead of sending a 400."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ImageRequestError(
        f'properties.{key}: Glance stores properties as strings, got '
        f'{type(value).__name__} {value!r}. Give a string or a number.'
    )


def _bookkeeping(key: Any) -> bool:
    return str(key).startswith(BOOKKEEPING_PREFIX) and key not in BUILD_RECORD_PROPERTIES


def desired_image(
    params: dict[str, Any], owner_id: str | None, kernel_id: str | None, ramdisk_id: str | None
) -> DesiredImage:
    properties = {}
    for key, value in (params.get('properties') or {}).items():
        if key in BASE_FIELDS or key == SHA256_PROPERTY or _bookkeeping(key):
            hint = (
                f'use the {OPTION_FOR_FIELD[key]} option'
                if key in OPTION_FOR_FIELD
                else 'it is bookkeeping of this collection'
                if str(key).startswith(BOOKKEEPING_PREFIX)
                else 'Glance sets it itself'
            )
            raise ImageRequestError(
                f'properties.{key}: {key!r} is not a free-form property: {hint}, and remove it from properties.'
            )
        properties[key] = property_value(key, value)
    for key, value in (('kernel_id', kernel_id), ('ramdisk_id', ramdisk_id)):
        if value is not None:
            if key in properties:
                raise ImageRequestError(
                    f'properties.{key} and option {key[:-3]} both set the {key}: give only the {key[:-3]} option.'
                )
            properties[key] = value
    attributes = {
        name: params.get(option)
        for name, option in (
            ('name', 'name'),
            ('disk_format', 'disk_format'),
            ('container_format', 'container_format'),
            ('min_disk', 'min_disk'),
            ('min_ram', 'min_ram'),
            ('visibility', 'visibility'),
            ('protected', 'protected'),
            ('os_hidden', 'hidden'),
        )
    }
    attributes['owner'] = owner_id
    return DesiredImage(
        attributes=attributes,
        properties=properties,
        tags=params.get('tags'),
        purge_properties=params.get('purge_properties', False),
        purge_tags=params.get('purge_tags', False),
    )


OPTION_FOR_FIELD = {
    'name': 'name',
    'disk_format': 'disk_format',
    'container_format': 'container_format',
    'min_disk': 'min_disk',
    'min_ram': 'min_ram',
    'visibility': 'visibility',
    'protected': 'protected',
    'os_hidden': 'hidden',
    'owner': 'owner',
    'tags': 'tags',
    'id': 'id',
    'checksum': 'checksum',
}

# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A UEC bundle as three linked Glance images, each reconciled as the image module does one.

    reconciler = BundleReconciler(params, glance, gate, project_id, check_mode, digests, run, warn)
    with open_bundle(params) as bundle:
        reconciler.present(bundle, owner_id)     # kernel, ramdisk, then the machine image
    result = reconciler.result()

The kernel and the ramdisk go first: the machine image names them (``kernel_id``,
``ramdisk_id``), so their ids must exist. Every image is put to the policy (``create``, on
its header) before the first Glance request, so a refused machine image never leaves a
kernel behind. A failure after that undoes what this run did, newest first: the machine
image's own steps, then the ramdisk's and the kernel's (an image created is deleted, a
replaced one is restored under its name). Deleting goes the other way - machine image,
ramdisk, kernel - and every deletion is asked of the policy before the first is made, with
usage as it will be by then: the bundle's own images, deleted before, use nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from collections.abc import Callable
from typing import Any

from ._content import Source, glance_disk_format, prescan, unsupported_format_message
from ._converting import ConvertingSource, compression_of, conversion_target, stored_header
from ._errors import ImagegovError
from ._identity import DigestCache
from ._image import ContentRequest, ImageReconciler, Outcome, desired_image
from ._operations import OperationLog
from ._state import PROTECTED_WHILE_USED_PROPERTY, DesiredImage, simulated_new_image, stable_view
from ._uec import NAME_SUFFIXES, UecBundle, UecPart, image_specs, link_properties, read_uec, uec_from_files

# The key of each role's image in the module's result.
RESULT_KEYS = {'kernel': 'kernel', 'ramdisk': 'ramdisk', 'disk': 'machine'}
# No image is deleted while another image of the bundle still names it.
DELETE_ORDER = ('disk', 'ramdisk', 'kernel')
# Properties of the machine image the bundle itself sets, and from what.
LINKED_PROPERTIES = {'kernel_id': 'kernel', 'ramdisk_id': 'ramdisk'}


class BundleRequestError(ImagegovError):
    """The bundle cannot be handled as asked; the message names the option and what to change."""


def open_bundle(params: dict[str, Any]) -> UecBundle:
    """The bundle the options name: a UEC tarball read into scratch space (option uec), or
    three files used in place (kernel_file, ramdisk_file, disk_file)."""
    if not params.get('uec'):
        return uec_from_files(params['kernel_file'], params.get('ramdisk_file'), params['disk_file'])
    path = os.path.abspath(os.path.expanduser(params['uec']))
    if not os.path.isfile(path):
        raise BundleRequestError(
            f'Option uec: {path!r} is no file. Check the path (it is read on the host the task runs on).'
        )
    scratch = os.path.abspath(os.path.expanduser(params.get('scratch_dir') or tempfile.gettempdir()))
    if not os.path.isdir(scratch):
        raise BundleRequestError(f'Option scratch_dir: {scratch!r} is not a directory; create it.')
    return read_uec(
        path,
        scratch,
        params.get('max_bytes'),
        kernel=params.get('uec_kernel'),
        ramdisk=params.get('uec_ramdisk'),
        disk=params.get('uec_disk'),
    )


@dataclasses.dataclass
class PlannedImage:
    """One image of the bundle, judged and ready to reconcile."""

    spec: dict[str, Any]
    part: UecPart
    desired: DesiredImage
    content: ContentRequest
    conversion: dict[str, Any] | None = None

    @property
    def role(self) -> str:
        return self.spec['role']

    def close(self) -> None:
        """Remove a conversion's scratch files, keeping what it reports."""
        if isinstance(self.content.source, ConvertingSource):
            self.conversion = self.content.source.describe()
            self.content.source.close()


class BundleReconciler:
    """The three images of one bundle; ``operations`` is the log of all of them, in order."""

    def __init__(
        self,
        params: dict[str, Any],
        glance: Any,
        gate: Any,
        caller_project_id: str,
        check_mode: bool,
        digests: DigestCache | None = None,
        run: Callable[..., Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.params = params
        self.glance = glance
        self.gate = gate
        self.caller_project_id = caller_project_id
        self.check_mode = check_mode
        self.digests = digests or DigestCache()
        self.run = run
        self.warn = warn or (lambda message: None)
        self.operations = OperationLog()
        self.outcomes: dict[str, Outcome] = {}
        self.planned: dict[str, PlannedImage] = {}

    def _reconciler(self) -> ImageReconciler:
        p = self.params
        return ImageReconciler(
            self.glance,
            self.caller_project_id,
            self.check_mode,
            p.get('wait', True),
            p.get('timeout', 1800),
            self.gate,
            self.digests,
            operations=self.operations,
        )

    # -- state: present ------------------------------------------------------------
    def present(self, bundle: UecBundle, owner_id: str | None) -> dict[str, Outcome]:
        planned = self._plan(bundle, owner_id)
        done: list[ImageReconciler] = []
        ids: dict[str, str] = {}
        try:
            for image in planned:
                image.desired.properties.update(link_properties(image.spec, ids))
                found = self.glance.images_named(image.spec['name'], owner=owner_id or self.caller_project_id)
                reconciler = self._reconciler()
                outcome = reconciler.present(found, image.desired, image.content, False)
                done.append(reconciler)
                self.outcomes[image.role] = outcome
                # A plan creates nothing: the machine image names what will be created.
                ids[image.role] = (outcome.after or {}).get('id') or f'<id of the new image {image.spec["name"]!r}>'
        except BaseException:
            for reconciler in reversed(done):
                reconciler.rollback()
            raise
        finally:
            for image in planned:
                image.close()
        return self.outcomes

    def _plan(self, bundle: UecBundle, owner_id: str | None) -> list[PlannedImage]:
        """The images to reconcile, each asked of the policy before any Glance request."""
        p = self.params
        headers = {part.role: prescan(Source(filename=part.path)) for part in bundle.parts()}
        target = self._conversion_target(bundle.disk, headers['disk'])
        machine_format = target or p.get('disk_format') or self._detected_format(bundle.disk, headers['disk'])
        if p.get('legacy_formats') and machine_format != 'raw':
            raise BundleRequestError(
                f'Option legacy_formats: the disk {bundle.disk.name!r} is {machine_format}, and an ami machine '
                'image holds raw bytes: set convert_to=raw, or leave legacy_formats off. Nothing was sent to the cloud.'
            )
        specs = image_specs(bundle, p['name'], bool(p.get('legacy_formats')), machine_format, p.get('os_command_line'))
        parts = {part.role: part for part in bundle.parts()}
        planned: list[PlannedImage] = []
        try:
            for spec in specs:
                data_source = {'kind': 'file', 'path': bundle.source or spec['path']}
                desired = self._desired(spec, owner_id, bundle)
                header = headers[spec['role']]
                if spec['role'] == 'disk' and target:
                    content = self._converting(spec, desired, header, data_source, target)
                else:
                    # Asked before the first Glance request: what the task wants must be allowed.
                    self.gate.check('create', simulated_new_image(desired), None, header, data_source=data_source)
                    source, expected = Source(filename=spec['path']), {'sha256': spec['sha256']}
                    content = ContentRequest(source, 'put', expected, 'replace', header, data_source)
                planned.append(PlannedImage(spec, parts[spec['role']], desired, content))
                self.planned[spec['role']] = planned[-1]
        except BaseException:
            for image in planned:
                image.close()
            raise
        return planned

    def _conversion_target(self, disk: UecPart, header: dict[str, Any]) -> str | None:
        requested = self.params.get('convert_to')
        target, unconverted = conversion_target(
            requested, header, compression_of(Source(filename=disk.path)), self.gate.conversion_for
        )
        if unconverted and requested:
            self.warn(f'Option convert_to: the disk {disk.name!r} is not converted: {unconverted}.')
        return target

    @staticmethod
    def _detected_format(disk: UecPart, header: dict[str, Any]) -> str:
        detected = header.get('detected_format')
        disk_format = glance_disk_format(detected)
        if disk_format is None:
            raise BundleRequestError(
                unsupported_format_message(str(detected), f'the disk {disk.name!r}') + ' Nothing was sent to the cloud.'
            )
        return disk_format

    def _converting(
        self,
        spec: dict[str, Any],
        desired: DesiredImage,
        header: dict[str, Any],
        data_source: dict[str, Any],
        target: str,
    ) -> ContentRequest:
        """The machine disk converted (option convert_to), judged as image judges a conversion:
        on what the header says conversion would store, on the whole source, on the output."""
        source = ConvertingSource(
            Source(filename=spec['path']),
            target,
            self.params.get('scratch_dir'),
            self.run,
            self.digests,
            expected_sha256=spec['sha256'],
        )
        try:
            source.check()
            self.gate.check(
                'create', simulated_new_image(desired), None, stored_header(header, target), data_source=data_source
            )
            source.judge = functools.partial(self._judge, desired, data_source)
            facts = source.judge_source()
            desired.properties.update(source.properties())
            return ContentRequest(
                source, 'put', {}, 'replace', facts, data_source, known_sha256=source.known_output_sha256()
            )
        except BaseException:
            source.close()
            raise

    def _judge(self, desired: DesiredImage, data_source: dict[str, Any], action: str, facts: dict[str, Any]) -> Any:
        return self.gate.check(action, simulated_new_image(desired), None, facts, data_source=data_source)

    def _desired(self, spec: dict[str, Any], owner_id: str | None, bundle: UecBundle) -> DesiredImage:
        """Kernel and ramdisk share the machine image's owner and visibility (a project that
        may boot the machine image must be able to read them); the rest is the machine's."""
        p = self.params
        machine = spec['role'] == 'disk'
        options = {
            'name': spec['name'],
            'disk_format': spec['disk_format'],
            'container_format': spec['container_format'],
            'visibility': p.get('visibility'),
            'min_disk': p.get('min_disk') if machine else None,
            'min_ram': p.get('min_ram') if machine else None,
            'properties': self._machine_properties(spec) if machine else None,
            'tags': p.get('tags') if machine else None,
        }
        desired = desired_image(options, owner_id, None, None)
        if machine and bundle.ramdisk is None:
            desired.removed_properties = ('ramdisk_id',)  # the bundle no longer has one
        return desired

    def _machine_properties(self, spec: dict[str, Any]) -> dict[str, Any]:
        given = dict(self.params.get('properties') or {})
        for key, role in LINKED_PROPERTIES.items():
            if key in given:
                raise BundleRequestError(
                    f'properties.{key}: the bundle sets it to the id of its {role} image; remove it from properties.'
                )
        if 'os_command_line' in given:
            raise BundleRequestError(
                'properties.os_command_line: give it as option os_command_line, and remove it from properties.'
            )
        proven = spec['properties'].get('architecture')
        if proven and 'architecture' in given and str(given['architecture']) != proven:
            raise BundleRequestError(
                f"properties.architecture: {given['architecture']!r} contradicts the kernel's header, which "
                f'says {proven!r}; remove it from properties (the bundle sets it from the kernel).'
            )
        return {**given, **spec['properties']}

    # -- state: absent -------------------------------------------------------------
    def absent(self, owner: str) -> dict[str, Outcome]:
        found = {role: self.glance.images_named(self.name_of(role), owner=owner) for role in DELETE_ORDER}
        doomed = {image['id'] for images in found.values() for image in images}
        provider = self.gate.usage_provider
        self.gate.usage_provider = usage_once_deleted(provider, doomed)
        try:
            self._check_deletable(found)
            for role in DELETE_ORDER:
                self.outcomes[role] = self._reconciler().absent(found[role], self.gate.usage_provider)
        finally:
            self.gate.usage_provider = provider
        return self.outcomes

    def name_of(self, role: str) -> str:
        return f'{self.params["name"]}{NAME_SUFFIXES[role]}'

    def _check_deletable(self, found: dict[str, list[dict[str, Any]]]) -> None:
        """Everything that would stop a deletion, found before the first one: never a machine
        image deleted and its kernel left because the kernel could not be."""
        for role in DELETE_ORDER:
            images = found[role]
            if len(images) > 1:
                raise BundleRequestError(
                    f'{len(images)} images are named {self.name_of(role)!r} '
                    f'({", ".join(image["id"] for image in images)}): delete the extra ones with '
                    'imagegov.openstack.image and option id first. Nothing was deleted.'
                )
            for image in images:
                if image.get('protected') and image.get(PROTECTED_WHILE_USED_PROPERTY) != 'true':
                    raise BundleRequestError(
                        f'Image {image.get("name")!r} ({image["id"]}) is protected, so Glance refuses to delete it: '
                        f'run imagegov.openstack.image with id {image["id"]} and protected=false first. '
                        'Nothing was deleted.'
                    )
                if not self.check_mode:  # a plan asks each deletion as it goes, in this order
                    self.gate.check('delete', image, image)

    # -- the result ----------------------------------------------------------------
    def result(self, bundle: UecBundle | None = None) -> dict[str, Any]:
        """changed, images and diff per role (kernel, ramdisk, machine), operations; with the
        ``bundle`` uploaded, what it holds and the content of each image."""
        images: dict[str, Any] = {}
        content: dict[str, Any] = {}
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for role, key in RESULT_KEYS.items():
            outcome = self.outcomes.get(role) or Outcome()
            images[key] = outcome.after or {}
            before[key], after[key] = stable_view(outcome.before), stable_view(outcome.after)
            planned = self.planned.get(role)
            if planned is not None:
                content[key] = dict(outcome.content or {}, name=planned.part.name, what=planned.part.content)
                if planned.conversion:
                    content[key]['source'] = planned.conversion
        result = dict(
            changed=any(outcome.changed for outcome in self.outcomes.values()),
            images=images,
            operations=self.operations,
            diff={'before': before, 'after': after},
        )
        if bundle is not None:
            facts = bundle.facts()
            result.update(content=content, bundle={key: facts[key] for key in ('source', 'sha256', 'members')})
        return result


def usage_once_deleted(provider: Callable[[dict[str, Any]], dict[str, Any]] | None, doomed: set[str]) -> Any:
    """Usage as it will be when the images ``doomed`` are deleted first: they use nothing."""
    if provider is None:
        return None

    def usage(image: dict[str, Any]) -> dict[str, Any]:
        facts = provider(image)
        return dict(facts, images=[other for other in facts.get('images') or [] if other.get('id') not in doomed])

    return usage

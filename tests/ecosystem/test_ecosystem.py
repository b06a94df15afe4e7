"""The collection as Galaxy, Automation Hub and a docs site see it, one test per check.

Each check runs, on a copy of the collection (tests/sanity/collection_tree.py), the tool the
ecosystem runs:

- ansible-lint with the production profile (configuration: .ansible-lint);
- galaxy-importer on the built tarball, with its own ansible-lint and ansible-doc checks but
  without ansible-test, which needs a container engine (tests/sanity runs ansible-test sanity);
- antsibull-changelog: the fragments and changelogs/changelog.yaml are valid, and CHANGELOG.rst
  is what ``antsibull-changelog generate`` writes;
- antsibull-docs: the modules' and the role's documentation pass its linter, and a docs site
  is built from them with Sphinx, warnings as errors, without fetching anything.

The tools live in .venv-checks, a virtualenv of their own made on first use from
requirements.txt and constraints.txt here and made again when either changes, so their
dependencies cannot disturb the project's .venv. It needs Python 3.12 or later (the
ansible-core these tools run on): IMAGEGOV_CHECKS_PYTHON, else IMAGEGOV_PYTHON (as for ./dev),
else python3.13 or python3.12 from PATH or pyenv.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHECKS_VENV = REPO / '.venv-checks'
CHECKS_LOCK = REPO / '.venv-checks.lock'
PINS = (HERE / 'requirements.txt', HERE / 'constraints.txt')
PYTHON_VERSIONS = ('3.13', '3.12')
COLLECTION = 'imagegov.openstack'
MODULES = sorted(p.stem for p in (REPO / 'plugins' / 'modules').glob('*.py'))
LINT_TEST = 'test_ansible_lint_production_profile'
ROLES = sorted(p.name for p in (REPO / 'roles').iterdir() if (p / 'meta' / 'argument_specs.yml').is_file())

# Only the fixtures that are broken on purpose may be left out of ansible-lint, by path
# (NN_<what is wrong>, a file or a directory), and no rule may be skipped or downgraded.
LINT_EXCLUDE = re.compile(r'tests/unit/\w+/fixtures/\w+/\[0-9\]\[0-9\]_\*')
LINT_WAIVERS = ('skip_list', 'warn_list')

IMPORTER_CONFIG = """\
[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
RUN_ANSIBLE_DOC = True
CHECK_CHANGELOG = True
"""
# galaxy-importer points out ansible-test ignore files; tests/sanity/ignore-*.txt are kept on
# purpose (yamllint cannot read the policy fixtures that are broken on purpose).
KNOWN_IMPORTER_WARNING = re.compile(r'WARNING: Ignore files skip ansible-test sanity tests, found ignore-[\d.]+\.txt ')

# The docs site is built offline, without intersphinx inventories; the labels that the pages
# antsibull-docs writes link into Ansible's own documentation get a local page linking there.
ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/latest/'
ANSIBLE_DOCS_LABELS = {
    'action_plugins': ('Action plugins', 'plugins/action.html'),
    'common_return_values': ('Common return values', 'reference_appendices/common_return_values.html'),
    'ansible_configuration_settings': ('Configuration settings', 'reference_appendices/config.html'),
}


ENVVAR_REF = re.compile(r':envvar:`([A-Z][A-Z0-9_\\]*)`')
ENVVAR_DEFINED = re.compile(r'^\.\. envvar:: ([A-Z][A-Z0-9_\\]*)$', re.MULTILINE)


def _load_collection_tree():
    spec = importlib.util.spec_from_file_location('collection_tree', REPO / 'tests' / 'sanity' / 'collection_tree.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(python: str) -> bool:
    check = 'import sys; sys.exit(sys.version_info < (3, 12))'
    return subprocess.run([python, '-c', check], capture_output=True, check=False).returncode == 0


def _pyenv_pythons() -> list[str]:
    # pyenv's shims only run the versions selected with `pyenv global`; the others are there.
    installed = Path(os.environ.get('PYENV_ROOT', Path.home() / '.pyenv')) / 'versions'
    found = [path for version in PYTHON_VERSIONS for path in installed.glob(f'{version}*/bin/python{version}')]
    return [str(path) for path in sorted(found, reverse=True)]


def _checks_python() -> str:
    wanted = os.environ.get('IMAGEGOV_CHECKS_PYTHON') or os.environ.get('IMAGEGOV_PYTHON')
    on_path = [f'python{version}' for version in PYTHON_VERSIONS]
    for candidate in [wanted] if wanted else [*on_path, *_pyenv_pythons()]:
        path = shutil.which(candidate)
        if path and _runs(path):
            return path
    pytest.fail('the ecosystem checks need Python 3.12 or later: install python3.13 or set IMAGEGOV_CHECKS_PYTHON')


def _fingerprint(python: str) -> str:
    version = subprocess.run([python, '-VV'], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(version.encode())
    for pin in PINS:
        digest.update(pin.read_bytes())
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Test runs in the same working tree (several engineers, or CI jobs) share .venv-checks.
    with path.open('w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(python: str) -> None:
    # Made from nothing whenever the pins change, so nothing outlives its pin.
    shutil.rmtree(CHECKS_VENV, ignore_errors=True)
    requirements, constraints = PINS
    for command in (
        [python, '-m', 'venv', str(CHECKS_VENV)],
        [str(CHECKS_VENV / 'bin' / 'pip'), 'install', '-q', '--disable-pip-version-check', '-c', str(constraints)]
        + ['-r', str(requirements)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f'{" ".join(command)}:\n{result.stdout}{result.stderr}'


@pytest.fixture(scope='session')
def checks_bin() -> Path:
    python = _checks_python()
    stamp = CHECKS_VENV / f'.installed-{_fingerprint(python)}'
    with _locked(CHECKS_LOCK):
        if not stamp.exists():
            _install(python)
            stamp.touch()
    return CHECKS_VENV / 'bin'


@pytest.fixture(scope='module')
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _load_collection_tree().copy_collection(tmp_path_factory.mktemp('ecosystem'))


@pytest.fixture(scope='module')
def tools_env(checks_bin: Path, collection: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tools first on PATH, the copy as the only collection, Ansible's state in a temporary home."""
    home = tmp_path_factory.mktemp('ansible-home')
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith('ANSIBLE_') and key not in {'VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME'}
    }
    env.update(
        PATH=f'{checks_bin}{os.pathsep}{os.environ["PATH"]}',
        ANSIBLE_COLLECTIONS_PATH=str(collection.parents[2]),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / 'tmp'),
        NO_COLOR='1',
    )
    return env


class Background(NamedTuple):
    process: subprocess.Popen
    output: Path


@pytest.fixture(scope='module', autouse=True)
def lint_started(
    request: pytest.FixtureRequest,
    checks_bin: Path,
    collection: Path,
    tools_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Background | None]:
    """ansible-lint, the slowest check, runs while the others do; the test that reads it comes last."""
    if LINT_TEST not in {item.originalname for item in request.session.items}:
        yield None
        return
    output = tmp_path_factory.mktemp('ansible-lint') / 'output.txt'
    with output.open('w+') as sink:
        # --offline: the collection under test is found on ANSIBLE_COLLECTIONS_PATH, nothing is installed.
        command = [str(checks_bin / 'ansible-lint'), '--offline', '--profile', 'production', '-f', 'pep8', '--nocolor']
        process = subprocess.Popen(command, cwd=collection, env=tools_env, stdout=sink, stderr=subprocess.STDOUT)
        yield Background(process, output)
        process.kill()
        process.wait()


def _run(command: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def _output(result: subprocess.CompletedProcess) -> str:
    return f'{" ".join(result.args)} -> rc {result.returncode}\n{result.stdout[-15000:]}\n{result.stderr[-15000:]}'


def _lint_waivers(collection: Path) -> list[str]:
    """Ways to silence ansible-lint other than fixing the YAML: skip lists, ignore files, noqa."""
    config = yaml.safe_load((collection / '.ansible-lint').read_text())
    waivers = [key for key in LINT_WAIVERS if config.get(key)]
    waivers += [path for path in config.get('exclude_paths', []) if not LINT_EXCLUDE.fullmatch(path)]
    waivers += [str(path) for path in collection.glob('.ansible-lint-ignore')]
    waivers += [str(path) for path in collection.rglob('*.y*ml') if '# noqa' in path.read_text(errors='replace')]
    return waivers


def test_galaxy_importer_accepts_the_tarball(
    checks_bin: Path, collection: Path, tools_env: dict[str, str], tmp_path: Path
) -> None:
    built = _run(
        [checks_bin / 'ansible-galaxy', 'collection', 'build', '--output-path', tmp_path, collection],
        tmp_path,
        tools_env,
    )
    assert built.returncode == 0, _output(built)
    [tarball] = tmp_path.glob('*.tar.gz')
    config = tmp_path / 'galaxy-importer.cfg'
    config.write_text(f'{IMPORTER_CONFIG}ANSIBLE_LOCAL_TMP = {tmp_path / "importer-tmp"}\n')
    env = dict(tools_env, GALAXY_IMPORTER_CONFIG=str(config))
    result = _run([checks_bin / 'python', '-m', 'galaxy_importer.main', tarball], tmp_path, env)
    lines = (result.stdout + result.stderr).splitlines()
    # ansible-lint's findings come out as warnings: none may be left but the known ones.
    problems = [
        line for line in lines if line.startswith(('ERROR', 'WARNING')) and not KNOWN_IMPORTER_WARNING.match(line)
    ]
    assert result.returncode == 0 and problems == [], '\n'.join(problems) or _output(result)
    assert 'Importer processing completed successfully' in lines, _output(result)


def test_changelog_is_valid_and_generated(
    checks_bin: Path, collection: Path, tools_env: dict[str, str], tmp_path: Path
) -> None:
    changelog = checks_bin / 'antsibull-changelog'
    for check in (['lint'], ['lint-changelog-yaml', 'changelogs/changelog.yaml']):
        result = _run([changelog, *check], collection, tools_env)
        assert result.returncode == 0 and not result.stdout.strip(), _output(result)
    generated = tmp_path / 'CHANGELOG.rst'
    result = _run([changelog, 'generate', '--output', generated, '--output-format', 'rst'], collection, tools_env)
    assert result.returncode == 0, _output(result)
    assert (collection / 'CHANGELOG.rst').read_text() == generated.read_text(), (
        'CHANGELOG.rst is not what `antsibull-changelog generate` writes: run it and commit the result'
    )


def test_docs_lint(checks_bin: Path, collection: Path, tools_env: dict[str, str]) -> None:
    result = _run(
        [checks_bin / 'antsibull-docs', 'lint-collection-docs', '--plugin-docs', '--validate-collection-refs', 'all']
        + ['--disallow-unknown-collection-refs', collection],
        collection,
        tools_env,
    )
    assert result.returncode == 0 and not result.stdout.strip(), _output(result)


def _ansible_docs_page(envvars: set[str]) -> str:
    sections = [
        f'.. _{label}:\n\n{title}\n{"-" * len(title)}\n\n{ANSIBLE_DOCS}{page}\n'
        for label, (title, page) in ANSIBLE_DOCS_LABELS.items()
    ]
    # Ansible's own settings that plugin docs name (an inventory plugin's cache), described there.
    config = f'{ANSIBLE_DOCS}reference_appendices/config.html'
    sections += [f'.. envvar:: {name}\n\n   An Ansible setting: {config}\n' for name in sorted(envvars)]
    return ":orphan:\n\nAnsible's own documentation\n===========================\n\n" + '\n'.join(sections)


def test_docs_site_builds(checks_bin: Path, tools_env: dict[str, str], tmp_path: Path) -> None:
    site = tmp_path / 'site'
    site.mkdir(mode=0o700)  # antsibull-docs writes only into a directory no one else may write to
    docs = checks_bin / 'antsibull-docs'
    init = [docs, 'sphinx-init', '--use-current', '--squash-hierarchy', '--fail-on-error', '--dest-dir', site]
    result = _run([*init, '--project', COLLECTION, '--title', COLLECTION, COLLECTION], tmp_path, tools_env)
    assert result.returncode == 0, _output(result)
    with (site / 'conf.py').open('a') as conf:
        conf.write('\n# Built offline: no intersphinx inventories are fetched.\nintersphinx_mapping = {}\n')
    pages = [docs, '--config-file', site / 'antsibull-docs.cfg', 'collection', '--use-current', '--squash-hierarchy']
    result = _run([*pages, '--fail-on-error', '--dest-dir', site / 'rst', COLLECTION], site, tools_env)
    assert result.returncode == 0, _output(result)
    texts = [page.read_text() for page in (site / 'rst').glob('*.rst')]
    referenced = {name.replace('\\', '') for text in texts for name in ENVVAR_REF.findall(text)}
    defined = {name.replace('\\', '') for text in texts for name in ENVVAR_DEFINED.findall(text)}
    (site / 'rst' / 'ansible_docs.rst').write_text(_ansible_docs_page(referenced - defined))
    build = [checks_bin / 'sphinx-build', '-q', '-b', 'html', '-W', '--keep-going', '-c', site, site / 'rst']
    result = _run([*build, site / 'html'], site, tools_env)
    assert result.returncode == 0, _output(result)
    built = {page.name for page in (site / 'html').glob('*.html')}
    expected = {f'{module}_module.html' for module in MODULES} | {f'{role}_role.html' for role in ROLES}
    expected |= {f'{plugin.stem}_inventory.html' for plugin in (REPO / 'plugins' / 'inventory').glob('*.py')}
    assert expected <= built, sorted(built)


def test_ansible_lint_production_profile(lint_started: Background, collection: Path) -> None:
    assert _lint_waivers(collection) == []
    returncode = lint_started.process.wait(timeout=900)
    assert returncode == 0, lint_started.output.read_text()[-20000:]

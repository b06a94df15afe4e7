"""The ansible-core support matrix: which versions, on which Python, with which exact pins.

Each version has a virtualenv of its own under ``.venv-matrix/<version>``, made on first use
with the first Python of its list that the machine has (pyenv's versions first, then
``pythonX.Y`` on PATH) and pinned by ``tests/matrix/constraints-<version>.txt``. A stamp
file (a hash of the Python, the pins and the requirements) keeps it until one of them changes.

The oldest version's pins hold the floors of ``requirements.txt`` (``openstacksdk>=4.0`` is
tested as openstacksdk 4.0.0), so the versions the collection claims to work with are tested.

Regenerate a version's pins (a clean install, ``pip check``, ``pip freeze``)::

    python3 tests/matrix/matrix.py pins 2.20
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / 'tests' / 'matrix'
VENVS = REPO / '.venv-matrix'
REQUIREMENTS = (REPO / 'requirements.txt', HERE / 'requirements.txt')
PIP_INSTALL = ('-m', 'pip', 'install', '-q', '--disable-pip-version-check')


@dataclass(frozen=True)
class Leg:
    """One ansible-core version of the matrix."""

    core: str
    # Controller Pythons this ansible-core supports and its pins install on, preferred first:
    # the oldest, as the project's own .venv runs the newest.
    pythons: tuple[str, ...]
    # Older Pythons that only run modules (tests/config.yml: python_requires): ansible-test's
    # compile and import checks of the modules and module_utils on them.
    module_pythons: tuple[str, ...] = ()

    @property
    def constraints(self) -> Path:
        return HERE / f'constraints-{self.core}.txt'

    @property
    def venv(self) -> Path:
        return VENVS / self.core


LEGS = (
    Leg('2.18', ('3.11', '3.12', '3.13'), module_pythons=('3.10',)),
    Leg('2.19', ('3.11', '3.12', '3.13')),
    Leg('2.20', ('3.12', '3.13')),
    Leg('2.21', ('3.12', '3.13')),
)
BY_CORE = {leg.core: leg for leg in LEGS}
OLDEST, NEWEST = LEGS[0], LEGS[-1]


class MatrixError(Exception):
    pass


def _pyenv_root() -> Path | None:
    if os.environ.get('PYENV_ROOT'):
        return Path(os.environ['PYENV_ROOT'])
    found = shutil.which('pyenv')
    if found:
        root = subprocess.run([found, 'root'], capture_output=True, text=True, check=False).stdout.strip()
        if root:
            return Path(root)
    default = Path.home() / '.pyenv'
    return default if default.is_dir() else None


def _patch_level(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r'\d+', path.parents[1].name))


def _works(python: Path | str) -> bool:
    """A real interpreter that can make virtualenvs (a pyenv shim of an inactive version cannot)."""
    try:
        result = subprocess.run(
            [str(python), '-c', 'import venv, ensurepip'], capture_output=True, timeout=60, check=False
        )
    except OSError:
        return False
    return result.returncode == 0


def find_python(version: str) -> Path | None:
    """pyenv's newest X.Y.* build, else pythonX.Y on PATH."""
    root = _pyenv_root()
    if root:
        builds = [
            p
            for p in (root / 'versions').glob(f'{version}.*/bin/python{version}')
            if re.fullmatch(rf'{re.escape(version)}\.\d+', p.parents[1].name)
        ]
        for python in sorted(builds, key=_patch_level, reverse=True):
            if _works(python):
                return python
    on_path = shutil.which(f'python{version}')
    if on_path and _works(on_path):
        return Path(on_path)
    return None


def leg_python(leg: Leg) -> tuple[str, Path]:
    for version in leg.pythons:
        python = find_python(version)
        if python:
            return version, python
    raise MatrixError(
        f'ansible-core {leg.core} needs Python {" or ".join(leg.pythons)} on the controller, and this machine '
        f'has none: looked for pyenv builds ({_pyenv_root() or "no pyenv"}/versions/X.Y.*) and for '
        f"{', '.join('python' + v for v in leg.pythons)} on PATH. Install one, e.g. 'pyenv install {leg.pythons[0]}' "
        f"or 'apt-get install python{leg.pythons[0]} python{leg.pythons[0]}-venv'."
    )


def _python_version(python: Path) -> str:
    return subprocess.run(
        [str(python), '-c', 'import sys; print(sys.version.split()[0])'], capture_output=True, text=True, check=True
    ).stdout.strip()


def _stamp(leg: Leg, python: Path) -> str:
    digest = hashlib.sha256(_python_version(python).encode())
    for path in (leg.constraints, *REQUIREMENTS):
        digest.update(path.read_bytes())
    return f'.installed-{digest.hexdigest()[:16]}'


@dataclass(frozen=True)
class Venv:
    leg: Leg
    path: Path
    python_version: str  # X.Y
    created: bool  # made (or remade) by this call: the cold case

    @property
    def bin(self) -> Path:
        return self.path / 'bin'

    @property
    def python(self) -> Path:
        return self.bin / 'python'


# The commands running now, each in a process group of its own, so that a test session that
# ends early (an interrupt, -x) can stop them and what they started.
_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()
_STOPPED = threading.Event()


def _call(cmd: list, **kwargs) -> tuple[int, str]:
    with _RUNNING_LOCK:
        if _STOPPED.is_set():
            raise MatrixError('stopped: the test session ended')
        process = subprocess.Popen([str(c) for c in cmd], start_new_session=True, text=True, **kwargs)
        _RUNNING.add(process)
    try:
        output = process.communicate()[0]
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
    return process.returncode, output or ''


def stop_all() -> None:
    with _RUNNING_LOCK:
        _STOPPED.set()
        running = list(_RUNNING)
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)


def _pip_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME')}


def _run(cmd: list, log: Path) -> None:
    with log.open('a') as out:
        out.write(f'$ {" ".join(map(str, cmd))}\n')
        out.flush()
        returncode = _call(cmd, stdout=out, stderr=subprocess.STDOUT, env=_pip_env())[0]
    if returncode != 0:
        raise MatrixError(f'{" ".join(map(str, cmd[:4]))} ... failed (exit {returncode}):\n' + log.read_text()[-4000:])


def ensure_venv(leg: Leg) -> Venv:
    """The version's virtualenv: made on first use, and made anew when its Python or pins change."""
    version, python = leg_python(leg)
    VENVS.mkdir(exist_ok=True)
    # One builder at a time per version, across test sessions.
    with open(VENVS / f'{leg.core}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = leg.venv / _stamp(leg, python)
        if stamp.is_file():
            return Venv(leg, leg.venv, version, created=False)
        log = VENVS / f'{leg.core}.install.log'
        log.write_text(f'ansible-core {leg.core} on {python}\n')
        # A venv of another Python (or a half-made one) is replaced, not patched.
        if leg.venv.exists():
            shutil.rmtree(leg.venv)
        _run([python, '-m', 'venv', leg.venv], log)
        _run([leg.venv / 'bin' / 'python', *PIP_INSTALL, '-c', leg.constraints, '-r', HERE / 'requirements.txt'], log)
        _run([leg.venv / 'bin' / 'python', '-m', 'pip', 'check'], log)
        stamp.touch()
        return Venv(leg, leg.venv, version, created=True)


def ansible_test_pip_version(venv: Venv) -> str:
    """The pip version ansible-test bootstraps into its sanity virtualenvs (get_pip_<version>.py)."""
    [source] = venv.path.glob('lib/python*/site-packages/ansible_test/_internal/python_requirements.py')
    return re.search(r"pip='([0-9.]+)'", source.read_text()).group(1)


def install_get_pip_shim(venv: Venv) -> None:
    """ansible-test downloads a pip bootstrap script from a host CI cannot reach; it looks in its
    cache first, so the project's stand-in (tests/sanity/get_pip.py) goes there, atomically:
    several ansible-test runs may read it at once."""
    cache = Path.home() / '.ansible' / 'test' / 'cache'
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f'get_pip_{ansible_test_pip_version(venv).replace(".", "_")}.py'
    shim = (REPO / 'tests' / 'sanity' / 'get_pip.py').read_bytes()
    if target.is_file() and target.read_bytes() == shim:
        return
    with tempfile.NamedTemporaryFile(dir=cache, delete=False) as tmp:
        tmp.write(shim)
    os.replace(tmp.name, target)


def clean_env(venv: Venv) -> dict[str, str]:
    """The caller's environment without what points at another Ansible or virtualenv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(('ANSIBLE_', 'PYTEST_', 'IMAGEGOV_')) and k not in ('VIRTUAL_ENV', 'PYTHONPATH')
    }
    env['PATH'] = f'{venv.bin}:{env.get("PATH", "")}'
    return env


@dataclass
class Outcome:
    ok: bool
    output: str
    seconds: float
    log: Path | None = None  # where the whole output was kept


def _timed(cmd: list, **kwargs) -> Outcome:
    start = time.monotonic()
    returncode, output = _call(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    return Outcome(returncode == 0, output, time.monotonic() - start)


def run_unit(venv: Venv, basetemp: Path) -> Outcome:
    unit = REPO / 'tests' / 'unit'
    command = [venv.python, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rs', '--basetemp', basetemp, unit]
    return _timed(command, cwd=REPO, env=clean_env(venv))


def run_sanity(venv: Venv, collection: Path, workdir: Path) -> Outcome:
    """ansible-test sanity on a copy of the collection (it writes tests/output into it); then, on
    the module-only Pythons of the version, its compile and import checks of the modules."""
    install_get_pip_shim(venv)
    sanity = [venv.bin / 'ansible-test', 'sanity', '--requirements', '--color', 'no']
    # pylint judges the collection's Python, not how it meets an ansible-core version, and is
    # the costliest sanity test: it runs once, on the newest ansible-core (tests/sanity).
    skipped = ['--skip-test', 'pylint']
    outcome = _timed([*sanity, *skipped, '--python', venv.python_version], cwd=collection, env=clean_env(venv))
    for version in venv.leg.module_pythons:
        python = find_python(version)
        if python is None:
            return Outcome(
                False,
                f'{outcome.output}\nERROR: the modules are checked on Python {version} too, and '
                f"this machine has none: install it (e.g. 'pyenv install {version}')",
                outcome.seconds,
            )
        # ansible-test looks for pythonX.Y on PATH, where a pyenv shim of an inactive version
        # may come first: a directory of its own holds just that interpreter.
        bindir = workdir / f'python{version}'
        bindir.mkdir(parents=True, exist_ok=True)
        (bindir / f'python{version}').unlink(missing_ok=True)
        (bindir / f'python{version}').symlink_to(python)
        env = clean_env(venv)
        env['PATH'] = f'{bindir}:{env["PATH"]}'
        modules = _timed(
            [*sanity, '--test', 'compile', '--test', 'import', '--python', version], cwd=collection, env=env
        )
        outcome = Outcome(
            outcome.ok and modules.ok, f'{outcome.output}\n{modules.output}', outcome.seconds + modules.seconds
        )
    return outcome


def _floors() -> list[str]:
    """requirements.txt's lower bounds as exact pins: 'openstacksdk>=4.0' -> 'openstacksdk==4.0'."""
    pins = []
    for line in (REPO / 'requirements.txt').read_text().splitlines():
        match = re.fullmatch(r'\s*([A-Za-z0-9._-]+)\s*>=\s*([0-9][0-9.]*)\s*(#.*)?', line)
        if match:
            pins.append(f'{match.group(1)}=={match.group(2)}')
    return pins


def regenerate_pins(leg: Leg) -> None:
    """A clean install of the version's newest release (the oldest leg: the requirements'
    floors), 'pip check', then 'pip freeze' into constraints-<version>.txt."""
    version, python = leg_python(leg)
    major, minor = leg.core.split('.')
    wanted = [f'ansible-core>={leg.core}.0,<{major}.{int(minor) + 1}']
    if leg is OLDEST:
        wanted += _floors()
    with tempfile.TemporaryDirectory() as tmp:
        venv, log = Path(tmp) / 'venv', Path(tmp) / 'log'
        _run([python, '-m', 'venv', venv], log)
        _run([venv / 'bin' / 'python', *PIP_INSTALL, '-r', HERE / 'requirements.txt', *wanted], log)
        _run([venv / 'bin' / 'python', '-m', 'pip', 'check'], log)
        frozen = subprocess.run(
            [venv / 'bin' / 'python', '-m', 'pip', 'freeze'], capture_output=True, text=True, check=True, env=_pip_env()
        ).stdout
    floors = ' with the floors of requirements.txt' if leg is OLDEST else ''
    header = (
        f'# Exact versions of the ansible-core {leg.core} leg of the support matrix{floors}:\n'
        f'# a clean install on Python {version}, pip check clean.\n'
        f'# Regenerate: python3 tests/matrix/matrix.py pins {leg.core}\n'
    )
    leg.constraints.write_text(header + ''.join(sorted(frozen.splitlines(True), key=str.lower)))
    print(f'{leg.constraints.relative_to(REPO)}: ansible-core {leg.core} on Python {version}')


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == 'pins':
        for core in argv[1:] or list(BY_CORE):
            regenerate_pins(BY_CORE[core])
        return 0
    if len(argv) >= 1 and argv[0] == 'python':
        for core in argv[1:] or list(BY_CORE):
            print(core, *leg_python(BY_CORE[core]))
        return 0
    print(__doc__)
    return 2


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except MatrixError as exc:
        sys.exit(str(exc))

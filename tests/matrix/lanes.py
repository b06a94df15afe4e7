"""Background runs of the support matrix's checks, in lanes, one per Python: the versions of
a lane one after the other (ansible-test keeps one cache of sanity virtualenvs per Python,
shared by every ansible-test run, and creates them without a lock), the lanes side by side.
Each version: its virtualenv (made on first use, kept while its pins hold), the unit tests,
then ``ansible-test sanity`` on a copy of the collection.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from pathlib import Path

from collection_tree import copy_collection
from matrix import LEGS, Leg, MatrixError, Outcome, Venv, ensure_venv, leg_python, run_sanity, run_unit

CHECKS = ('unit', 'sanity')


class Lanes:
    """Background runs of the selected (version, check) pairs, grouped by Python."""

    def __init__(self, wanted: dict[str, set[str]], workdir: Path) -> None:
        self.wanted = wanted
        self.workdir = workdir
        self.venvs: dict[str, Future] = {core: Future() for core in wanted}
        self.results: dict[tuple[str, str], Future] = {
            (core, check): Future() for core, checks in wanted.items() for check in checks
        }
        self.timings: dict[str, dict[str, object]] = defaultdict(dict)
        self.lanes: dict[str, list[Leg]] = defaultdict(list)
        self.threads: list[threading.Thread] = []
        for leg in LEGS:
            if leg.core not in wanted:
                continue
            try:
                version = leg_python(leg)[0]
            except MatrixError as exc:
                self._fail(leg, str(exc))
                continue
            self.lanes[version].append(leg)

    def _fail(self, leg: Leg, message: str) -> None:
        if not self.venvs[leg.core].done():
            self.venvs[leg.core].set_exception(MatrixError(message))
        for check in self.wanted[leg.core]:
            if not self.results[leg.core, check].done():
                self.results[leg.core, check].set_result(Outcome(False, message, 0.0))

    def start(self) -> None:
        for version, legs in self.lanes.items():
            thread = threading.Thread(target=self._lane, args=(legs,), name=f'matrix-{version}', daemon=True)
            thread.start()
            self.threads.append(thread)

    def _lane(self, legs: list[Leg]) -> None:
        for leg in legs:
            try:
                self._leg(leg)
            except Exception as exc:  # reported by the leg's tests
                self._fail(leg, f'{type(exc).__name__}: {exc}')

    def _leg(self, leg: Leg) -> None:
        start = time.monotonic()
        venv = ensure_venv(leg)
        self.timings[leg.core].update(python=venv.python_version, venv=time.monotonic() - start, cold=venv.created)
        self.venvs[leg.core].set_result(venv)
        if 'unit' in self.wanted[leg.core]:
            outcome = run_unit(venv, self.workdir / f'unit-{leg.core}')
            self._done(leg, 'unit', outcome)
        if 'sanity' in self.wanted[leg.core]:
            start = time.monotonic()
            collection = copy_collection(self.workdir / f'sanity-{leg.core}')
            outcome = run_sanity(venv, collection, self.workdir / f'pythons-{leg.core}')
            outcome.seconds = time.monotonic() - start
            self._done(leg, 'sanity', outcome)

    def _done(self, leg: Leg, check: str, outcome: Outcome) -> None:
        log = self.workdir / f'{check}-{leg.core}.log'
        log.write_text(outcome.output)
        outcome.log = log
        self.timings[leg.core][check] = outcome.seconds
        self.results[leg.core, check].set_result(outcome)

    def venv(self, core: str) -> Venv:
        return self.venvs[core].result()

    def result(self, core: str, check: str) -> Outcome:
        return self.results[core, check].result()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

"""Line coverage of plugins/ by the unit tests, reported by every test run.

The unit tests run once more, in a subprocess under coverage (about 10 s), so the rest of the
run is not traced. The report is printed and written to tests/output/coverage/ (text and
JSON); module_utils, the code the unit tests are for, must stay at 90% or above.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / 'tests' / 'output' / 'coverage'
MODULE_UTILS_FLOOR = 90.0


def test_unit_tests_cover_module_utils() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    report = OUTPUT / 'coverage.json'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pytest',
            '-p',
            'no:cacheprovider',
            '-q',
            'tests/unit',
            '--cov=plugins',
            '--cov-branch',
            '--cov-report=term-missing:skip-covered',
            f'--cov-report=json:{report}',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, COVERAGE_FILE=str(OUTPUT / '.coverage')),
    )
    (OUTPUT / 'coverage.txt').write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    files = json.loads(report.read_text())['files']
    module_utils = [summary for path, summary in files.items() if path.startswith('plugins/module_utils/')]
    covered = sum(f['summary']['covered_lines'] for f in module_utils)
    statements = sum(f['summary']['num_statements'] for f in module_utils)
    percent = 100.0 * covered / statements
    total = json.loads(report.read_text())['totals']['percent_covered']
    print(
        f'\nline coverage by the unit tests: plugins/module_utils {percent:.1f}%, plugins/ (with branches) {total:.1f}%'
    )
    assert percent >= MODULE_UTILS_FLOOR, (
        f'plugins/module_utils line coverage {percent:.1f}% < {MODULE_UTILS_FLOOR}% (report: {OUTPUT / "coverage.txt"})'
    )

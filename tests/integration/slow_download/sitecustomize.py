"""Slows image downloads down for test_export_interrupt.py: every chunk of an image's data
waits IMAGEGOV_TEST_SLOW_DOWNLOAD seconds, so that the test can kill the module in the
middle of a download. Python loads it at start-up when this directory is on PYTHONPATH,
which only that test's runs of the module have."""

from __future__ import annotations

import os
import time

DELAY = float(os.environ.get('IMAGEGOV_TEST_SLOW_DOWNLOAD') or 0)

if DELAY:
    import requests.models

    _original = requests.models.Response.iter_content

    def _slow_iter_content(self, *args, **kwargs):
        request = self.request
        slow = request is not None and request.method == 'GET' and request.url.endswith('/file')
        for chunk in _original(self, *args, **kwargs):
            yield chunk
            if slow:
                time.sleep(DELAY)

    requests.models.Response.iter_content = _slow_iter_content

"""A real HTTP server on 127.0.0.1 for URL sources, run in a thread of the test process.

- ``/broken/<path>`` announces the whole file but sends half of it and closes: the way a
  download breaks off mid-transfer.
- ``/glance-only/<path>`` refuses the module's HTTP client (python-requests) and serves
  anyone else: a URL that only Glance can reach, as behind a firewall.
- ``/norange/<path>`` ignores Range headers, like many static servers.
- Every other path honours ``Range: bytes=A-B`` (answering 206).
- ``/_sent/<path>`` answers how many bytes of <path> were sent so far, as JSON, so a test
  can prove that a plan read no more than a header.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections import Counter

# Glance's [import_filtering_opts] in the local cloud allows these ports for web-download.
PORTS = range(18080, 18100)
RANGE = re.compile(r'^bytes=(\d+)-(\d*)$')
SENT: Counter = Counter()
_SENT_LOCK = threading.Lock()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split('?', 1)[0]
        if path.startswith('/_sent/'):
            self._json({'bytes': SENT[path[len('/_sent/') :]]})
        elif path.startswith('/broken/'):
            self._send_file(path[len('/broken/') :], broken=True, ranges=False)
        elif path.startswith('/glance-only/'):
            if self.headers.get('User-Agent', '').startswith('python-requests'):
                self.send_error(403, 'this host serves Glance only')
            else:
                self._send_file(path[len('/glance-only/') :])
        elif path.startswith('/norange/'):
            self._send_file(path[len('/norange/') :], ranges=False)
        else:
            self._send_file(path.lstrip('/'))

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_file(self, relative: str, broken: bool = False, ranges: bool = True) -> None:
        path = os.path.join(self.directory, relative)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        wanted = RANGE.match(self.headers.get('Range', '')) if ranges else None
        if wanted:
            start = int(wanted.group(1))
            end = min(int(wanted.group(2) or size - 1), size - 1)
            self.send_response(206)
            self.send_header('Content-Range', f'bytes {start}-{end}/{size}')
        else:
            self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(end - start + 1))
        self.end_headers()
        left = (end - start + 1) // 2 if broken else end - start + 1
        with open(path, 'rb') as stream:
            stream.seek(start)
            try:
                while left > 0:
                    chunk = stream.read(min(64 * 1024, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    with _SENT_LOCK:
                        SENT[relative] += len(chunk)
                    left -= len(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what it had is counted
        if broken:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def serve(directory: str) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Handler, directory=directory)
    for port in PORTS:
        try:
            server = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
        except OSError:
            continue
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    raise RuntimeError(f'no free port in {PORTS.start}-{PORTS.stop - 1} for the HTTP server')

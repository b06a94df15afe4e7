"""A real HTTP server on 127.0.0.1 for URL sources, run in a thread of the test process.

``/broken/<path>`` announces the whole file but sends half of it and closes: the way a
download breaks off mid-transfer.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading

# Glance's [import_filtering_opts] in the local cloud allows these ports for web-download.
PORTS = range(18080, 18100)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if not self.path.startswith('/broken/'):
            super().do_GET()
            return
        path = os.path.join(self.directory, self.path[len('/broken/'):])
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(size))
        self.end_headers()
        with open(path, 'rb') as stream:
            self.wfile.write(stream.read(size // 2))
        self.wfile.flush()
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

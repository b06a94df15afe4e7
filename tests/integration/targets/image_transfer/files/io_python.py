"""An interpreter for one task that runs the real one as its child and, once the child is
reaped, appends what the child did to $IMAGEGOV_IO_LOG: Linux adds a reaped child's I/O
counters to its parent's /proc/<pid>/io, so write_bytes there counts every byte the module
caused to be written to a block device, whichever file it went to (sockets' send/recv count
nowhere here). ru_maxrss of the children is the module's peak RSS."""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path


def counters() -> dict:
    return dict(line.split(': ') for line in Path('/proc/self/io').read_text().splitlines())


python = os.environ['IMAGEGOV_REAL_PYTHON']
before = counters()
code = subprocess.run([python, *sys.argv[1:]], check=False).returncode
after = counters()
record = {key: int(after[key]) - int(before[key]) for key in after}
record['maxrss_kb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
record['returncode'] = code
with open(os.environ['IMAGEGOV_IO_LOG'], 'a', encoding='utf-8') as log:
    log.write(json.dumps(record) + '\n')
sys.exit(code)

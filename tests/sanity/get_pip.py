"""Stands in for the get-pip script ansible-test downloads from a host CI cannot reach.

ansible-test runs it inside each new sanity virtualenv with pip-install arguments
(options and packages such as pip==24.2). The standard library's ensurepip provides a pip,
which then installs what was asked for from the package index.
"""

import subprocess
import sys

GET_PIP_ONLY = {'--no-setuptools', '--no-wheel'}

# In a child process: ensurepip blanks pip's configuration in its own process environment,
# and the install below must keep the machine's pip settings (index, certificates).
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *args])

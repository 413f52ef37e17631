"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each of its virtual environments with a
``get-pip.py`` fetched from the internet, and runs it as ``get-pip.py <pip
install arguments>``. Where that host is unreachable, this script does the same
job from the interpreter's own ``ensurepip`` and then lets pip install what
ansible-test asked for from the package index.
"""

import subprocess
import sys

# get-pip's own switches; ensurepip installs neither package on Python >= 3.12.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip disables the pip configuration (index, CA
# bundle) of the process it runs in, and the install below needs it.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments]))

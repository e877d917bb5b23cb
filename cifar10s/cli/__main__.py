"""``python -m cifar10s.cli``: the same as the ``cifar10s`` command."""

import sys

from .main import main

sys.exit(main())

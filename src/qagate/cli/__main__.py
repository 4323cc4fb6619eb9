"""``python -m qagate.cli``: the same as the ``qagate`` command."""

import sys

from qagate.cli import main

sys.exit(main())

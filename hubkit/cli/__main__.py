"""``python -m hubkit.cli``: the same as the ``hubkit`` command."""

import sys

from hubkit.cli import main

sys.exit(main())

"""``python -m openai_chatapi`` runs the command line."""

import sys

from ._cli import main

sys.exit(main())

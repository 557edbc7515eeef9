"""``python -m aiplatform.plan``: the offline plan of the Pulumi project in the current directory."""

import sys

from .cli import main

sys.exit(main())

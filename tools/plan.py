"""``python -m tools.plan`` (``make plan``): this repository's entry to the offline plan.

The plan ships in the library as ``python -m aiplatform.plan``; this entry plans this repository's
own program (the folder above tools/).
"""

import sys
from pathlib import Path

from aiplatform.plan.cli import main

PROJECT_ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    sys.exit(main(["--project-dir", str(PROJECT_ROOT), *sys.argv[1:]]))

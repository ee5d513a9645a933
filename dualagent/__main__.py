import sys

from dualagent.cli import main

sys.exit(main())

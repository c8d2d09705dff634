import sys

from cotgen.cli import main

sys.exit(main())

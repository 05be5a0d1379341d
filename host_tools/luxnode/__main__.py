import sys

from luxnode.cli import main

sys.exit(main())

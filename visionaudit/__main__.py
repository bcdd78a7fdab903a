import sys

from visionaudit.cli import main

sys.exit(main())

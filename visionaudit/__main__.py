import sys

from visionaudit.cli import main

sys.exit(main(prog="python -m visionaudit"))  # the name typed, for --help and usage errors (the script's is visionaudit)

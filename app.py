"""Entry point: `python app.py [serve flags]` starts the AlignStudio web app."""

import sys

from alignstudio.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))

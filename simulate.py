#!/usr/bin/env python3
"""Replay visitor walks through the guide's trigger engine and score them.

Run with no arguments for the La Coupole demo; `--help` for the options.
"""

from guide.cli import exit_with
from guide.simulator import main

if __name__ == "__main__":
    exit_with(main())

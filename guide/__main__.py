"""`python -m guide ...` is the same as the `guide` command."""

from guide.cli import entry

entry()

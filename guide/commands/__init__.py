"""The subcommands of `guide`, one module each, found at start-up.

`guide.cli` imports every module of this package (no central list) and calls
its `register(subparsers)`, which adds one parser and sets ``run``::

    # guide/commands/hello.py
    import argparse

    def register(subparsers: argparse._SubParsersAction) -> None:
        p = subparsers.add_parser(
            "hello", help="say hello",
            description="Say hello to the visitor.",
            epilog="example:\\n  guide hello --name Ada",
            formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--name", default="visitor")
        p.set_defaults(run=run)

    def run(args: argparse.Namespace) -> int | None:
        print(f"hello {args.name}")   # None or 0: success

Rules for a command module:
- `run(args)` returns the exit status (None means 0). A user's mistake is
  raised as a `guide.errors.GuideError`: the CLI prints it and exits 2.
- Every parser has an epilog with at least one example, shown by --help.
- Import heavy or optional libraries (bleak, simpleaudio, numpy...) inside
  `run`, not at the top: every command module is imported for every
  invocation, so `guide --help` stays fast and one missing library cannot
  break the other commands.
- Modules whose name starts with '_' are not commands.
"""

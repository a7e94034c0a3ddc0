"""The device's buttons: what a visitor can press, behind one small interface.

An `Input` yields `Button` presses as an async iterator. The terminal
implementation reads single keypresses (no Enter) for development and
demonstrations; a GPIO implementation on the handheld yields the same values
from its pins (e.g. gpiozero callbacks handed to the loop with
`loop.call_soon_threadsafe`).

    async for button in TerminalInput().presses():
        print(button)          # Button.PAUSE for the space bar, ...
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
from collections.abc import AsyncIterator, Mapping
from typing import IO, Protocol


class Button(enum.Enum):
    PAUSE = "pause"  # pause, or resume when paused
    REPLAY = "replay"  # the current (or last) exhibit from the top
    SKIP = "skip"  # stop this track; the exhibit counts as heard
    LANGUAGE = "language"  # the next language the site offers
    VOLUME_UP = "volume-up"
    VOLUME_DOWN = "volume-down"


class Input(Protocol):
    def presses(self) -> AsyncIterator[Button]:
        """Presses as they happen, on the event loop's thread, until cancelled.
        An input with nothing to read (no terminal) yields nothing and returns."""
        ...


KEYS: Mapping[str, Button] = {
    " ": Button.PAUSE, "p": Button.PAUSE,
    "r": Button.REPLAY,
    "s": Button.SKIP, "n": Button.SKIP,
    "l": Button.LANGUAGE,
    "+": Button.VOLUME_UP, "=": Button.VOLUME_UP,  # '=' is '+' without shift
    "-": Button.VOLUME_DOWN,
}

HELP = "keys: space pause/resume, r replay, s skip, l language, + / - volume, Ctrl-C quit"


class TerminalInput:
    """Single keypresses from a terminal, in cbreak mode (no Enter, no echo;
    Ctrl-C still interrupts). The terminal's settings are restored when the
    iteration ends, however it ends; it ends when the terminal hangs up (the
    window closed, the SSH session lost). When `stream` is not a terminal (a
    service, a pipe, a test), it yields nothing."""

    def __init__(self, stream: IO | None = None, keys: Mapping[str, Button] = KEYS):
        self.stream = stream if stream is not None else sys.stdin
        self.keys = dict(keys)

    def interactive(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):  # closed or not a file
            return False

    async def presses(self) -> AsyncIterator[Button]:
        if not self.interactive():
            return
        import termios
        import tty

        fd = self.stream.fileno()
        saved = termios.tcgetattr(fd)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Button | None] = asyncio.Queue()  # None: the terminal is gone

        def readable() -> None:
            try:
                data = os.read(fd, 64)
            except OSError:  # EIO: the terminal hung up
                data = b""
            if not data:  # and it stays readable: stop watching it, or the loop spins
                loop.remove_reader(fd)
                queue.put_nowait(None)
                return
            for char in data.decode("utf-8", "ignore").lower():
                button = self.keys.get(char)
                if button is not None:
                    queue.put_nowait(button)

        tty.setcbreak(fd, termios.TCSANOW)
        loop.add_reader(fd, readable)
        try:
            while (button := await queue.get()) is not None:
                yield button
        finally:
            loop.remove_reader(fd)
            try:
                termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
            except (termios.error, OSError):
                pass  # a terminal that hung up has no settings to restore

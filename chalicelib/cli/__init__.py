"""The `runs` command line (Typer + Rich): the runs API over HTTP, and API tokens.

Commands live in `commands.py`; `main` turns every failure into one readable line on stderr
and an exit status scripts can use (`Exit`).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from ..domain.errors import DomainError
from .client import ApiClient, ApiError, Exit
from .commands import cli

__all__ = ["ApiClient", "ApiError", "Exit", "cli", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `runs` script; returns the exit status."""
    command = typer.main.get_command(cli)
    try:
        # Standalone: Click prints usage errors (exit 2), --help and completion scripts.
        command.main(args=list(argv) if argv is not None else None, prog_name="runs")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except ApiError as exc:
        return _fail(str(exc), exc.exit_code)
    except DomainError as exc:
        return _fail(exc.message, Exit.ERROR)
    except KeyboardInterrupt:
        return 130
    return 0


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())

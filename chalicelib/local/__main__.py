"""`python -m chalicelib.local` (`make run`): the whole service on 127.0.0.1 until Ctrl-C.

Nothing here reads settings before the stack has started, nor imports `app`: the stack imports
the application only once the moto endpoint and the rest of the environment are set.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from ..domain.errors import DefinitionError
from ..settings import EXAMPLE_AUTOMATIONS, USER_AUTOMATIONS, get_settings
from .emulator import StackError
from .stack import LocalStack, StackOptions

log = logging.getLogger("runs.local")


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    # botocore and pynamodb announce their configuration once per client; not news locally.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("pynamodb").setLevel(logging.WARNING)


def _shown(path: str) -> str:
    """`path` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _automations_note(path: str) -> str:
    """Which definitions are loaded, and how to load your own instead of the examples."""
    if path == EXAMPLE_AUTOMATIONS:
        return f"{_shown(path)}/ (add yours to {_shown(USER_AUTOMATIONS)}/ to load them instead)"
    return _shown(path)


def banner(stack: LocalStack) -> str:
    """The start-up message: where the API is, the admin token and a request to try."""
    options = stack.options
    runs_url = f"{stack.url}/api/automations/runs"
    ticks = f"tick every {options.tick_seconds} s" if options.tick_seconds else "no scheduler"
    token_note = "" if options.dev_token else "  (generated; set RUNS_DEV_TOKEN to keep one)"
    if stack.backend == "sqlite":
        backend = [f"  backend  sqlite   {_shown(stack.db_path)}   (runs, queues and tokens "
                   "survive a restart; RUNS_BACKEND=moto for the AWS-emulated stack)"]
        counters = ""
    else:
        backend = [f"  backend  moto     AWS emulated on {stack.emulator.endpoint} "
                   "(in memory: nothing survives a restart)"]
        counters = ", stream poller"
    return "\n".join([
        f"Automation Runs local stack ready on {stack.url}",
        f"  dashboard  {stack.url}/#token={stack.token}",
        f"  API      {stack.url}/api   (docs: {stack.url}/api/docs)",
        f"  token    {stack.token}   admin{token_note}",
        *backend,
        *([f"  {stack.resumed}"] if stack.resumed else []),
        f"  automations  {_automations_note(get_settings().automations_dir)}",
        f"  workers  {options.workers} step worker(s), 1 step-DLQ consumer, {ticks}"
        f"{counters}",
        f"  try      curl -H 'Authorization: Bearer {stack.token}' {runs_url}",
        "Press Ctrl-C to stop.",
    ])


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 1


def main() -> int:
    """Start the stack, wait for Ctrl-C or SIGTERM, stop it; returns the exit status."""
    _configure_logging()
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s received; stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack = LocalStack(StackOptions.from_env(os.environ)).start()
    except StackError as exc:
        return _fail(str(exc))
    except DefinitionError as exc:  # an invalid automation file names file and field
        return _fail(exc.message)
    print(banner(stack), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        started = time.monotonic()
        left = stack.stop()
        for line in left:
            log.warning("left in flight: %s", line)
        log.info("stopped in %.1f s%s", time.monotonic() - started,
                 "" if left else "; nothing left in flight")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``pypbx`` command: argv → daemon, remote console, one-shot command, check, dry run.

::

    pypbx [-C DIR] [run] [-v...] [--json-logs]    run in the foreground (the default)
    pypbx [-C DIR] -rx 'COMMAND'                  run one command on the running PBX
    pypbx [-C DIR] -r [-v...]                     interactive remote console
    pypbx check [-C DIR]                          load and check the configuration
    pypbx dialplan run [-C DIR] CONTEXT EXTEN [--callerid N] [--var K=V]... [--json]
                       [--dialstatus S] [--digits DTMF]   dry-run the dial plan
    pypbx --version

``-C`` (default ``/etc/pypbx``) may come before or after the subcommand. No logic lives here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pypbx import __version__

__all__ = ["DEFAULT_CONFIG_DIR", "build_parser", "main"]

DEFAULT_CONFIG_DIR = "/etc/pypbx"


def _common(*, daemon: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-C",
        "--config-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help=f"configuration directory (default {DEFAULT_CONFIG_DIR})",
    )
    if daemon:
        p.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="raise the verbosity by one (repeat: -vvv)",
        )
        p.add_argument(
            "--json-logs",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log one JSON object per line",
        )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pypbx",
        description="A PBX that runs Asterisk's sip.conf and extensions.conf.",
        parents=[_common(daemon=True)],
    )
    parser.add_argument("--version", action="version", version=f"pypbx {__version__}")
    parser.add_argument(
        "-r", "--remote", action="store_true", help="connect to the running pypbx (console)"
    )
    parser.add_argument(
        "-x", "--execute", metavar="COMMAND", help="run COMMAND on the running pypbx (implies -r)"
    )
    sub = parser.add_subparsers(dest="command", metavar="{run,check,dialplan}")
    parser.set_defaults(handler=_run)
    sub.add_parser(
        "run", parents=[_common(daemon=True)], help="run the PBX in the foreground (default)"
    ).set_defaults(handler=_run)
    sub.add_parser(
        "check", parents=[_common(daemon=False)], help="load and check the configuration"
    ).set_defaults(handler=_check)
    dp = sub.add_parser("dialplan", help="dial plan tools")
    dp_sub = dp.add_subparsers(dest="dialplan_command", metavar="{run}", required=True)
    drun = dp_sub.add_parser(
        "run",
        parents=[_common(daemon=False)],
        help="walk the dial plan for CONTEXT/EXTEN without a call (dry run)",
    )
    drun.add_argument("context", metavar="CONTEXT")
    drun.add_argument("exten", metavar="EXTEN")
    drun.add_argument("--callerid", metavar="NUM", help="caller id number of the simulated call")
    drun.add_argument(
        "--var",
        metavar="K=V",
        action="append",
        default=[],
        help="set a channel variable (repeatable)",
    )
    drun.add_argument("--json", action="store_true", help="print the steps as JSON")
    drun.add_argument(
        "--dialstatus",
        metavar="S",
        default="ANSWER",
        help="what Dial() returns in the simulation (ANSWER, BUSY, NOANSWER ...)",
    )
    drun.add_argument(
        "--digits",
        metavar="DTMF",
        default="",
        help="digits the simulated caller keys in (Background, WaitExten, Read ...)",
    )
    drun.set_defaults(handler=_dialplan_run)
    return parser


def _run(config_dir: str, args: argparse.Namespace) -> int:
    from pypbx.server import serve

    return serve(
        config_dir,
        extra_verbosity=getattr(args, "verbose", 0) or 0,
        json_logs=bool(getattr(args, "json_logs", False)),
    )


def _check(config_dir: str, args: argparse.Namespace) -> int:
    from pypbx.check import check_main

    return check_main(config_dir)


def _remote(config_dir: str, args: argparse.Namespace) -> int:
    from pypbx.control.client import AccessDenied, NotRunning, ProtocolError, run_command
    from pypbx.server import control_socket_for

    path = control_socket_for(config_dir)
    try:
        if args.execute is not None:
            ok, out = run_command(path, args.execute)
            stream = sys.stdout if ok else sys.stderr
            if out:
                print(out.rstrip("\n"), file=stream)
            return 0 if ok else 1
        from pypbx.control.console import run_console

        return run_console(path, verbosity=getattr(args, "verbose", None))
    except AccessDenied as exc:
        print(f"pypbx: {exc}", file=sys.stderr)
    except NotRunning as exc:
        print(
            f"pypbx is not running for {config_dir} ({exc});"
            f" start it with 'pypbx run -C {config_dir}'",
            file=sys.stderr,
        )
    except ProtocolError as exc:
        print(f"pypbx: {exc}", file=sys.stderr)
    return 1


def _variables(pairs: list[str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            print(f"pypbx dialplan run: --var needs KEY=VALUE, got {pair!r}", file=sys.stderr)
            return None
        out[key] = value
    return out


def _dialplan_run(config_dir: str, args: argparse.Namespace) -> int:
    variables = _variables(args.var)
    if variables is None:
        return 2
    try:
        dryrun = importlib.import_module("pypbx.dialplan.dryrun")
    except ImportError:
        print("pypbx dialplan run: the dial plan dry run is not built yet", file=sys.stderr)
        return 1
    run_args = (args.context, args.exten, args.callerid, variables, args.dialstatus, args.json)
    extra = {"digits": args.digits} if args.digits else {}
    text, code = dryrun.run_cli(config_dir, *run_args, **extra)
    if text:
        print(str(text).rstrip("\n"), file=sys.stdout if code == 0 else sys.stderr)
    return int(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pypbx`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    config_dir = str(Path(getattr(args, "config_dir", DEFAULT_CONFIG_DIR)))
    remote = args.remote or args.execute is not None
    if remote and args.command is not None:
        parser.print_usage(sys.stderr)
        print("pypbx: -r/-x cannot be combined with a subcommand", file=sys.stderr)
        return 2
    if remote:
        return _remote(config_dir, args)
    handler: Callable[[str, argparse.Namespace], int] = args.handler
    return handler(config_dir, args)

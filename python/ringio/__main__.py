"""Command line: ``python -m ringio probe [--json]``,
``python -m ringio bench [--quick] [--json] [--scenario NAME]``.

Subcommands are registered in ``_COMMANDS``; later ones (``serve``) plug in
the same way.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable

import ringio


def _probe_report(entries: int, flags: int) -> dict:
    caps = ringio.probe(entries=entries, flags=flags)
    report = {
        "available": bool(caps),
        "liburing": ringio.__liburing_version__,
        "kernel": platform.release(),  # informational only, never compared
        "entries": entries,
        "flags": flags,
    }
    if caps:
        report["capabilities"] = {k: v for k, v in caps.items() if k != "available"}
    else:
        report["reason"] = ringio.unavailable_reason(entries=entries, flags=flags)
    return report


def _print_table(report: dict) -> None:
    out = sys.stdout.write
    out(f"io_uring available : {'yes' if report['available'] else 'no'}\n")
    out(f"liburing (build)   : {report['liburing']}\n")
    out(f"kernel (info)      : {report['kernel']}\n")
    if not report["available"]:
        out(f"reason             : {report['reason']}\n")
        return
    caps = report["capabilities"]
    sections = [
        ("operations (kernel opcode probe)", "IORING_OP_"),
        ("features (ring feature bits)", "IORING_FEAT_"),
    ]
    seen = set()
    for title, prefix in sections:
        names = sorted((k for k in caps if k.startswith(prefix)), key=lambda k: k[len(prefix):])
        if not names:
            continue
        supported = sum(1 for k in names if caps[k])
        out(f"\n{title}: {supported}/{len(names)} supported\n")
        width = max(len(k) for k in names)
        for k in names:
            out(f"  {k:<{width}}  {'yes' if caps[k] else 'no'}\n")
        seen.update(names)
    rest = sorted(k for k in caps if k not in seen)
    if rest:
        out("\nderived capabilities:\n")
        width = max(len(k) for k in rest)
        for k in rest:
            out(f"  {k:<{width}}  {'yes' if caps[k] else 'no'}\n")


def _cmd_probe(args: argparse.Namespace) -> int:
    report = _probe_report(args.entries, args.flags)
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_table(report)
    if args.require and not report["available"]:
        return 1
    return 0


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="report whether io_uring works here and what the kernel supports",
        description="Create a small private ring and report the kernel's opcodes and "
        "features (found at run time, never from the kernel version).",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--entries", type=int, default=2, help="ring size to try (default 2)")
    p.add_argument("--flags", type=lambda s: int(s, 0), default=0,
                   help="IORING_SETUP_* flags to try (default 0)")
    p.add_argument("--require", action="store_true",
                   help="exit with status 1 when io_uring is unavailable")
    p.set_defaults(func=_cmd_probe)


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    argv = list(getattr(args, "argv", None) or [])
    return bench.main(args, argv[argv.index("bench") + 1:] if "bench" in argv else [])


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from . import bench

    p = sub.add_parser(
        "bench",
        help="measure ringio against asyncio, uvloop, liburing, uring-api and C liburing",
        description="Scenarios nop, echo and timers; each implementation gets a warm-up run "
        "and 5 measured runs, reported as median [min-max] with ratios to a C liburing "
        "program and to asyncio measured in the same run.  Prints a Markdown table "
        "(or JSON with --json); progress goes to stderr.",
    )
    bench.add_arguments(p)
    p.set_defaults(func=_cmd_bench)


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_probe, _add_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ringio", description="ringio tools")
    parser.add_argument("--version", action="version",
                        version=f"ringio {ringio.__version__} (liburing {ringio.__liburing_version__})")
    sub = parser.add_subparsers(dest="command", title="commands")
    sub.required = True
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

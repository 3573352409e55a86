"""Command line: ``python -m ringio probe [--json]``,
``python -m ringio serve [--host H] [--port P] [--backend B]``,
``python -m ringio bench [--quick] [--json [PATH]] [--png PATH] [--scenario NAME]``.

Subcommands are registered in ``_COMMANDS``; each has ``--help``.
"""

from __future__ import annotations

import argparse
import json
import os
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
    env = os.environ.get("RINGIO_BACKEND") or "auto"
    # What a plain ringio.Ring() picks here: RINGIO_BACKEND, else io_uring if a ring can be made,
    # else the simulated kernel (with a BackendFallbackWarning).
    report["ring_backend"] = env if env != "auto" else ("uring" if caps else "sim")
    return report


def _print_table(report: dict) -> None:
    out = sys.stdout.write
    out(f"io_uring available : {'yes' if report['available'] else 'no'}\n")
    out(f"liburing (build)   : {report['liburing']}\n")
    out(f"kernel (info)      : {report['kernel']}\n")
    out(f"Ring() backend     : {report['ring_backend']}\n")
    if not report["available"]:
        out(f"reason             : {report['reason']}\n")
        out("                     ringio.Ring() runs on the simulated kernel here (docs/sim.md)\n")
        return
    caps = report["capabilities"]
    runtime = [k for k in _RUNTIME_PROBED if k in caps]
    sections = [
        ("runtime operation probes (an operation submitted on a private ring)", runtime),
        ("operations (kernel opcode probe)", _with_prefix(caps, "IORING_OP_", exclude=runtime)),
        ("features (ring feature bits)", _with_prefix(caps, "IORING_FEAT_", exclude=runtime)),
    ]
    seen = set()
    for title, names in sections:
        _print_section(out, caps, title, names)
        seen.update(names)
    _print_section(out, caps, "other capabilities", sorted(k for k in caps if k not in seen and k != "available"))


# probe() answers these by submitting the operation itself, not from the opcode table.
_RUNTIME_PROBED = ("IORING_ACCEPT_MULTISHOT", "IORING_RECV_MULTISHOT", "IORING_OP_SEND_ZC", "IORING_OP_SENDMSG_ZC")


def _with_prefix(caps: dict, prefix: str, exclude: list[str]) -> list[str]:
    return sorted((k for k in caps if k.startswith(prefix) and k not in exclude), key=lambda k: k[len(prefix):])


def _print_section(out, caps: dict, title: str, names: list[str]) -> None:
    if not names:
        return
    supported = sum(1 for k in names if caps[k])
    out(f"\n{title}: {supported}/{len(names)} supported\n")
    width = max(len(k) for k in names)
    for k in names:
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
        help="measure ringio against asyncio, uvloop, liburing, uring-api, http.server and C liburing",
        description=f"Scenarios {', '.join(bench.SCENARIOS)}; each implementation gets a warm-up "
        "run and 5 measured runs, reported as median [min-max] with ratios to a C liburing "
        "program, to asyncio and to each scenario's peers, measured in the same run.  Prints a "
        "Markdown table (JSON with a bare --json; --json PATH writes it to a file), draws a PNG "
        "with --png PATH; progress goes to stderr.  The http scenario needs wrk.",
    )
    bench.add_arguments(p)
    p.set_defaults(func=_cmd_bench)


def _cmd_serve(args: argparse.Namespace) -> int:
    from . import serve

    return serve.main(args)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from . import serve

    p = sub.add_parser(
        "serve",
        help="run the HTTP/1.1 server on one ring (the Fibonacci service: POST /N)",
        description="An HTTP/1.1 server on one ringio ring: multishot accept and receives, "
        "one batched send per connection per loop turn, keep-alive and pipelining. "
        "POST /N answers the Nth Fibonacci number (N <= 10000), GET / and GET /health "
        "describe it; --app serves your own ringio.serve.App. SIGINT/SIGTERM stop it.",
    )
    serve.add_arguments(p)
    p.set_defaults(func=_cmd_serve)


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_probe, _add_serve, _add_bench]


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
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m ringio probe | head`: the reader went away
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

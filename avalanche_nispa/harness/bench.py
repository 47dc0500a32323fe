"""``nispa-bench``: the installed command, one subcommand per harness tool."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

__all__ = ["bench"]


def bench(argv: Optional[Sequence[str]] = None) -> int:
    """``nispa-bench compare|speed|collect ...``: the installed command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"compare": "compare the strategies (as python -m benchmarks.compare)",
                "speed": "NISPA's speed and memory against Naive (as python -m benchmarks.speed)",
                "collect": "one table and plot from rows of finished results directories"}
    if not argv or argv[0] not in commands:
        usage = "\n".join(f"  {name:<8} {text}" for name, text in commands.items())
        print(f"usage: nispa-bench {{{','.join(commands)}}} ...\n\n{usage}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    if argv[0] == "speed":
        from .speed import main as speed_main

        return speed_main(argv[1:], prog="nispa-bench speed")
    if argv[0] == "collect":
        from .collect import main as collect_main

        return collect_main(argv[1:], prog="nispa-bench collect")
    from .cli import exit_status, main

    return exit_status(main(argv[1:], prog="nispa-bench compare"))

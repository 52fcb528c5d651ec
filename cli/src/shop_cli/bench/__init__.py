"""`shop bench` in phases, which `shop_cli.commands.bench` runs in this order:

seed     products only this run orders, their stock, and one customer  (seed.py)
cpu      the services' processes' CPU time, read from the start of the load  (cpu.py)
load     closed-loop CreateOrder workers for a while; progress on stderr  (load.py)
settle   every order of the run's customer, once final; the CPU reading ends here  (settle.py)
check    stock and payments read back and held to the rules  (check.py)
report   what load, CPU and check found, as text for stdout  (report.py)

The rules themselves are `shop_cli.consistency`, the arithmetic `shop_cli.stats`: both free of
I/O, so they are tested without a suite. `shop bench rpc`, which starts servers of its own
instead of loading the suite, is the subpackage `rpc`.
"""

from __future__ import annotations

import sys


def say(text: str) -> None:
    """A line about the run on stderr, so that stdout holds only the reports."""
    print(text, file=sys.stderr, flush=True)

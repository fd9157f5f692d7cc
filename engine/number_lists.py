"""Lists of numbers (band numbers, rows, class codes) as messages show them: short lists in full, long ones as
their runs and count, so that no message lists 192 band numbers.

Standard library only (the QGIS side may use it).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Lists up to this long are shown number by number.
SHOWN_IN_FULL = 8
#: Long lists are shown as their runs of consecutive numbers when there are at most this many runs.
SHOWN_RUNS = 4


def number_list(values: Iterable[int]) -> str:
    """``values`` in words: ``"1, 2, 5"``; ``"1-192 (192 in all)"``; ``"1-10, 20-40 (32 in all)"``; or, when
    scattered, ``"96 numbers from 1 to 191"``."""
    numbers = [int(v) for v in values]
    if len(numbers) <= SHOWN_IN_FULL:
        return ", ".join(map(str, numbers))
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    if len(runs) <= SHOWN_RUNS:
        shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
        return f"{shown} ({len(numbers)} in all)"
    return f"{len(numbers)} numbers from {min(numbers)} to {max(numbers)}"

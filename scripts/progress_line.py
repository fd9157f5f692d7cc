"""One live progress line on the terminal for a command whose whole output goes to a log (scripts/common.sh's
``quietly``): ``command 2>&1 | tee LOG | python3 scripts/progress_line.py LABEL``.

It understands the two progress forms the README's commands print: the environment install's ``[ 40 %]`` lines
(with its ``== step`` lines as the stage) and qgis_process's ``0...10...20...`` bar, which has no line ends
until it is done, hence reading whatever has arrived rather than lines. Standard library only (QGIS's Python).
"""

from __future__ import annotations

import os
import re
import sys

INSTALL_PERCENT = re.compile(r"\[\s*(\d{1,3}) %\]")
BAR_PERCENT = re.compile(r"(?:^|(?<=\n)|(?<=\.\.\.))(\d{1,3})\.\.\.")
DONE = re.compile(r"(100) - done")
STAGE = re.compile(r"^== (.+)$", re.MULTILINE)
OVERLAP = 200  # characters of the previous output searched again with the new


def main(label: str) -> None:
    text, shown, stage, percent = "", None, "", ""
    while True:
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            break
        new = chunk.decode("utf-8", "replace")
        recent = text[-OVERLAP:] + new  # what arrived, and enough before it to complete a form cut in two
        text = (text + new)[-OVERLAP:]
        stages = STAGE.findall(recent)
        stage = stages[-1] if stages else stage
        found = [m for form in (INSTALL_PERCENT, BAR_PERCENT, DONE) for m in form.finditer(recent)]
        percent = max(found, key=lambda m: m.end()).group(1) if found else percent
        line = label + (f": {stage}" if stage else "") + (f" {percent} %" if percent else "")
        if line != shown:
            sys.stdout.write(f"\r\033[K== {line}")
            sys.stdout.flush()
            shown = line


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]))

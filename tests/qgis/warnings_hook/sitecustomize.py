"""Put on QGIS's PYTHONPATH by the tests: every Python warning QGIS's own Python shows is also appended to the
file named by ``IAMAP_WARNINGS_LOG``, one JSON line each, so that a test can fail on a deprecated QGIS API that the
plugin calls (tests/qgis/conftest.py, scripts/qgis_desktop.py).

The hook wraps ``warnings._showwarnmsg``, which every warning goes through, because the QGIS desktop replaces
``warnings.showwarning`` with its own (the message log) at start-up. Virtual environments (the worker) are left
alone: the engine's warnings are not QGIS's.
"""

import json
import os
import sys
import warnings

LOG = os.environ.get("IAMAP_WARNINGS_LOG")

if LOG and sys.prefix == sys.base_prefix:
    _show = warnings._showwarnmsg

    def _logged(message):
        try:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps({"category": message.category.__name__, "file": str(message.filename),
                                      "line": message.lineno, "message": str(message.message)}) + "\n")
        except OSError:
            pass
        _show(message)

    warnings._showwarnmsg = _logged

"""The host side of the engine: the worker's Python environment, found, checked, planned, installed and
self-tested.

Nothing here runs in the worker. QGIS's Python (the runner, the install dialog, diagnostics) and the set-up
scripts import these modules with whatever Python they have, so they use the standard library only (a test
imports them with ``python3 -I -S``). The command line is ``python3 -m engine.host.environment``.
"""

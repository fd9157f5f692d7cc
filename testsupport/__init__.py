"""Support shared by the tests, the benchmarks and the scripts (never shipped: the release zip leaves it out).

:mod:`testsupport.dask_cluster` starts a local Dask cluster whose workers have only the pip-installed engine;
:mod:`testsupport.requirement_sets` makes the small requirement sets that drive the real installer in seconds.
Importing it needs the repository root on ``sys.path`` (the tests' conftest, the scripts and benchmarks put it
there).
"""

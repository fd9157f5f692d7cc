"""IAMAP engine: the QGIS-free core of the plugin.

Everything heavy (tiling, model loading, encoding, reduction, clustering, similarity, raster and vector I/O)
lives here and runs in a worker process inside IAMAP's own Python environment. The QGIS side imports only
standard-library modules of this package: the contract and what it is read with (:mod:`engine.contract`,
:mod:`engine.catalog`, :mod:`engine.parameters`, :mod:`engine.parameter_translation`, ...), what a run writes
(:mod:`engine.destinations`) and the host side (:mod:`engine.host`); ``tests/engine/test_imports.py`` finds them
from the QGIS side's own imports and imports them in a Python without site-packages. So this ``__init__`` must
stay free of third-party imports too.
"""

__version__ = "2.0.0"

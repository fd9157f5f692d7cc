"""IAMAP engine: the QGIS-free core of the plugin.

Everything heavy (tiling, model loading, encoding, reduction, clustering, similarity, raster and vector I/O)
lives here and runs in a worker process inside IAMAP's own Python environment. The QGIS side imports only
the standard-library modules of this package (:mod:`engine.catalog`, :mod:`engine.host.status`), so this
``__init__`` must stay free of third-party imports.
"""

__version__ = "2.0.0"

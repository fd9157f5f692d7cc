"""QGIS-side helpers: the worker runner, the algorithm base class, output styles. Only qgis, Qt and stdlib."""

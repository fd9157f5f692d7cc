"""The QGIS-side reading of parameter values (``utils.parameters``) in the real QGIS."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.qgis


def test_file_path_decodes_each_providers_uri_and_keeps_a_pipe_in_the_name(qgis):
    cases = [("/data/a|b.tif", "gdal"), ("/data/pts|x.gpkg", "ogr"), ("/data/pts|x.gpkg|layername=pts", "ogr"),
             ("/data/x.gpkg|layername=a|subset=\"id\" = 1", "ogr"), ("/data/plain.tif", "gdal")]
    result = qgis.pyqgis(f"""
        import json
        from iamap.utils.parameters import file_path
        print("PATHS", json.dumps([file_path(source, provider) for source, provider in {cases!r}]))
        """)
    assert "PATHS" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads(result.stdout.split("PATHS ")[1].splitlines()[0]) == [
        "/data/a|b.tif", "/data/pts|x.gpkg", "/data/pts|x.gpkg", "/data/x.gpkg", "/data/plain.tif"]

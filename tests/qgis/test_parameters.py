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


def test_logs_reports_and_layer_names_name_the_users_layers_never_processing_s_temporary_copies(qgis, tmp_path):
    """A GeoJSON, a shapefile and a memory layer, which the worker reads as Processing's temporary copies (or as
    they are): every line of the log, the ml report and the loaded layers' names say which layer the user chose."""
    import geopandas as gpd

    from ..fixtures import labelled_points, regions_raster

    raster, truth = regions_raster(tmp_path / "scene.tif", 60, 40, regions=3, noise=0.2)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 10, names=lambda k: ["water", "crop", "town"][k])
    gpd.read_file(points).to_file(tmp_path / "landcover_points.geojson", driver="GeoJSON")
    check = labelled_points(tmp_path / "check.gpkg", raster, truth, 10, seed=23,
                            names=lambda k: ["water", "crop", "town"][k])
    fresh = gpd.read_file(check)  # test points apart from the training ones: the ml tool checks independence
    fresh[~fresh.geometry.isin(gpd.read_file(points).geometry)].to_file(tmp_path / "check_points.shp")
    report = tmp_path / "report.html"
    result = qgis.pyqgis(f"""
        import json
        from qgis.core import QgsFeatureRequest, QgsProcessingFeedback, QgsProject, QgsRasterLayer, QgsVectorLayer

        class Log(QgsProcessingFeedback):
            lines = []
            def pushInfo(self, text): self.lines.append(text)
            def pushWarning(self, text): self.lines.append(text)
            def pushDebugInfo(self, text): self.lines.append(text)
            def pushConsoleInfo(self, text): self.lines.append(text)
            def pushCommandInfo(self, text): self.lines.append(text)
            def setProgressText(self, text): self.lines.append(text)
            def reportError(self, text, fatal=False): self.lines.append(text)

        scene = QgsRasterLayer({str(raster)!r}, "scene")
        QgsProject.instance().addMapLayer(scene)
        memory = QgsVectorLayer({str(points)!r}, "points", "ogr").materialize(QgsFeatureRequest())
        memory.setName("river points")
        QgsProject.instance().addMapLayer(memory)
        log = Log()
        processing.runAndLoadResults("iamap:ml", {{
            "INPUT": scene, "TEMPLATE": {str(tmp_path / 'landcover_points.geojson')!r}, "GT_COL": "label",
            "TEMPLATE_TEST": {str(tmp_path / 'check_points.shp')!r}, "CV": "stratified", "NFOLDS": 3,
            "OUTPUT": {str(tmp_path / 'classes.tif')!r}, "REPORT": {str(report)!r}}}, feedback=log)
        processing.runAndLoadResults("iamap:similarity", {{"INPUT": scene, "TEMPLATE": memory,
                                                          "OUTPUT": "TEMPORARY_OUTPUT",
                                                          "OUTPUT_POINTS": "TEMPORARY_OUTPUT"}}, feedback=log)
        processing.runAndLoadResults("iamap:cluster", {{"INPUT": scene, "N_CLUSTERS": 3, "OUTPUT": "TEMPORARY_OUTPUT"}},
                                     feedback=log)
        names = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
        print("RESULT", json.dumps({{"log": log.lines, "names": names}}))
        """)
    assert "RESULT" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(result.stdout.split("RESULT ")[1].splitlines()[0])
    log, page = "\n".join(outcome["log"]), report.read_text()
    copies = ("processing_", "TEMPLATE.gpkg", "TEMPLATE_TEST.gpkg")
    # Processing's own "Results:" lines list the outputs, which were asked for as temporary files
    tool_lines = [line for line in outcome["log"] if not line.startswith("Results:")]
    for text in ("\n".join(tool_lines), page, "\n".join(outcome["names"])):
        assert not any(copy in text for copy in copies), text[:3000]
    geojson, shapefile = tmp_path / "landcover_points.geojson", tmp_path / "check_points.shp"
    assert f"<h2>Training data</h2><p>landcover_points ({geojson}), labels in" in page
    assert f"Independent test layer: check_points ({shapefile})" in page
    assert f"TEMPLATE landcover_points ({geojson}): 30 labelled feature(s)" in log
    assert f"Validated on independent test layer check_points ({shapefile})" in log
    assert "Reference locations of river points (memory layer): 30 point(s)." in log
    assert "random point" not in log  # a points-only layer: no random points apply
    assert "No saved style" not in log and "was not applied: \n" not in log + "\n"
    assert {"scene RandomForestClassifier classes", "scene similarity to river points",
            "river points (reference points used)", "scene KMeans (3 clusters)"} <= set(outcome["names"])

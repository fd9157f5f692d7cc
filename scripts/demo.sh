#!/usr/bin/env bash
# Runs IAMAP end to end on the bundled sample raster through qgis_process, installing what is missing
# (QGIS with apt when run as root on Debian/Ubuntu, then IAMAP's worker environment). Outputs go to
# ./demo-output (or the folder given as first argument).
source "$(dirname "$0")/common.sh"
OUT_DIR="$(realpath -m "${1:-$REPO/demo-output}")"
ensure_qgis
ensure_worker_env
mkdir -p "$OUT_DIR"

# QGIS finds plugins by folder name: expose this checkout as a plugin folder named "iamap".
PLUGINS="$REPO/build/qgis-plugins"
mkdir -p "$PLUGINS"
ln -sfn "$REPO" "$PLUGINS/iamap"
export QGIS_PLUGINPATH="$PLUGINS${QGIS_PLUGINPATH:+:$QGIS_PLUGINPATH}"
QP="$(qgis_process_bin)"
"$QP" plugins enable iamap >/dev/null 2>&1 || true  # non-zero when already enabled

SAMPLE="$REPO/docs/sample/sample_rgb.tif"
PRETRAINED=true
if ! (cd "$REPO" && "$WORKER_PYTHON" -c "import sys; from engine.models import hub_reachable; sys.exit(not hub_reachable())"); then
  echo "!! No connection to the Hugging Face hub: the demo uses random weights (PRETRAINED=false)."
  echo "!! With a connection, the pretrained DINOv2 weights are downloaded once and cached."
  PRETRAINED=false
fi

echo "== iamap:encoder on $SAMPLE"
"$QP" run iamap:encoder --INPUT="$SAMPLE" --PRETRAINED="$PRETRAINED" --OUTPUT="$OUT_DIR/features.tif"

echo "== iamap:reduction: PCA of the features to 3 components (saved model reusable with LOAD_MODEL)"
"$QP" run iamap:reduction --INPUT="$OUT_DIR/features.tif" --METHOD=PCA --N_COMPONENTS=3 \
  --OUTPUT="$OUT_DIR/features_pca.tif" --SAVE_MODEL="$OUT_DIR/pca.iamapmodel"

echo "== iamap:cluster: KMeans with 5 clusters on the features"
"$QP" run iamap:cluster --INPUT="$OUT_DIR/features.tif" --METHOD=KMeans --N_CLUSTERS=5 \
  --OUTPUT="$OUT_DIR/clusters.tif"

echo "== iamap:similarity of the features to points on the river"
"$QP" run iamap:similarity --INPUT="$OUT_DIR/features.tif" --TEMPLATE="$REPO/docs/sample/river_points.geojson" \
  --OUTPUT="$OUT_DIR/river_similarity.tif" --OUTPUT_POINTS="$OUT_DIR/river_points_used.gpkg"

echo "== iamap:diagnostics"
"$QP" run iamap:diagnostics --OUTPUT="$OUT_DIR/diagnostics.json" >/dev/null

echo
echo "Outputs in $OUT_DIR:"
(cd "$REPO" && "$WORKER_PYTHON" - "$OUT_DIR" <<'PY'
import sys, pathlib, rasterio
for path in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    if path.suffix == ".tif":
        with rasterio.open(path) as src:
            print(f"  {path}: {src.width}x{src.height} px, {src.count} bands {src.dtypes[0]}, {src.crs}, "
                  f"pixel {src.res[0]:g} m")
    else:
        print(f"  {path}")
PY
)

#!/usr/bin/env bash
# Runs IAMAP end to end on the bundled sample raster through qgis_process, installing what is missing
# (QGIS with apt when run as root on Debian/Ubuntu, then IAMAP's worker environment): encode, reduce (PCA),
# cluster (KMeans), similarity to river points, classification (ml) from labelled land-cover points, then
# quick-look PNGs of the class map and of the similarity map. Outputs go to ./demo-output (or the folder given as
# first argument), each step's full output to its logs/ folder; the terminal gets one line per step.
source "$(dirname "$0")/common.sh"
OUT_DIR="$(realpath -m "${1:-$REPO/demo-output}")"
LOGS="$OUT_DIR/logs"
mkdir -p "$LOGS"
export IAMAP_INSTALL_LOG="${IAMAP_INSTALL_LOG:-$LOGS/environment-install.log}"
ensure_qgis
ensure_worker_env

# QGIS finds plugins by folder name: expose this checkout as a plugin folder named "iamap".
PLUGINS="$REPO/build/qgis-plugins"
mkdir -p "$PLUGINS"
ln -sfn "$REPO" "$PLUGINS/iamap"
export QGIS_PLUGINPATH="$PLUGINS${QGIS_PLUGINPATH:+:$QGIS_PLUGINPATH}"
QP="$(qgis_process_bin)"
"$QP" plugins enable iamap >/dev/null 2>&1 || true  # non-zero when already enabled

SAMPLE="$REPO/docs/sample/sample_rgb.tif"
RIVER_POINTS="$REPO/docs/sample/river_points.geojson"
LANDCOVER_POINTS="$REPO/docs/sample/landcover_points.geojson"
PRETRAINED=true
if ! (cd "$REPO" && "$WORKER_PYTHON" -c "import sys; from engine.models import hub_reachable; sys.exit(not hub_reachable())"); then
  echo "!! No connection to the Hugging Face hub: the demo uses random weights (PRETRAINED=false)."
  echo "!! With a connection, the pretrained DINOv2 weights are downloaded once and cached."
  PRETRAINED=false
fi

# step LABEL ALGORITHM ARGUMENTS...: one qgis_process run, its output in logs/<algorithm>.log
step() {
  local label="$1" algorithm="$2"
  shift 2
  quietly "$label" "$LOGS/${algorithm#iamap:}.log" "$QP" run "$algorithm" "$@"
}

# a result of the last run of ALGORITHM, from the Results section of its log
result() {
  sed -n '/^Results$/,$p' "$LOGS/${1#iamap:}.log" | sed -n "s/^$2:[[:space:]]*//p" | head -n 1
}

echo "IAMAP demo on $SAMPLE"
step "1/6 encoder: features of the sample" iamap:encoder \
  --INPUT="$SAMPLE" --PRETRAINED="$PRETRAINED" --OUTPUT="$OUT_DIR/features.tif"
step "2/6 reduction: PCA to 3 components" iamap:reduction \
  --INPUT="$OUT_DIR/features.tif" --METHOD=PCA --N_COMPONENTS=3 \
  --OUTPUT="$OUT_DIR/features_pca.tif" --SAVE_MODEL="$OUT_DIR/pca.iamapmodel"
step "3/6 cluster: KMeans, 5 clusters" iamap:cluster \
  --INPUT="$OUT_DIR/features.tif" --METHOD=KMeans --N_CLUSTERS=5 --OUTPUT="$OUT_DIR/clusters.tif"
step "4/6 similarity to the river points" iamap:similarity \
  --INPUT="$OUT_DIR/features.tif" --TEMPLATE="$RIVER_POINTS" \
  --OUTPUT="$OUT_DIR/river_similarity.tif" --OUTPUT_POINTS="$OUT_DIR/river_points_used.gpkg"
step "5/6 ml: random forest from the land-cover points" iamap:ml \
  --INPUT="$OUT_DIR/features.tif" --TEMPLATE="$LANDCOVER_POINTS" --GT_COL=landcover \
  --OUTPUT="$OUT_DIR/landcover.tif" --REPORT="$OUT_DIR/landcover_report.html" \
  --SAVE_MODEL="$OUT_DIR/landcover_rf.iamapmodel"
echo "   accuracy $(result iamap:ml ACCURACY), kappa $(result iamap:ml KAPPA) ($(result iamap:ml VALIDATED_ON))"
step "6/6 diagnostics" iamap:diagnostics --OUTPUT="$OUT_DIR/diagnostics.json" --REPORT="$OUT_DIR/diagnostics.html"
quietly "quick-look PNGs" "$LOGS/quicklook.log" bash -c '
  "$1" "$2/scripts/quicklook.py" classes "$3/landcover.tif" "$3/landcover.png" --rgb "$4" &&
  "$1" "$2/scripts/quicklook.py" similarity "$3/river_similarity.tif" "$3/river_similarity.png" --rgb "$4" \
    --points "$5"' quicklook "$WORKER_PYTHON" "$REPO" "$OUT_DIR" "$SAMPLE" "$RIVER_POINTS"

echo
echo "Outputs in $OUT_DIR:"
(cd "$REPO" && "$WORKER_PYTHON" - "$OUT_DIR" <<'PY'
import sys
from pathlib import Path

import rasterio

out = Path(sys.argv[1])
outputs = [
    ("features (encoder)", "features.tif"), ("PCA of the features, as RGB", "features_pca.tif"),
    ("PCA model (LOAD_MODEL)", "pca.iamapmodel"), ("clusters", "clusters.tif"),
    ("similarity to the river", "river_similarity.tif"), ("river points used", "river_points_used.gpkg"),
    ("land-cover classes (ml)", "landcover.tif"), ("validation report", "landcover_report.html"),
    ("land-cover model (LOAD_MODEL)", "landcover_rf.iamapmodel"), ("class map quick look", "landcover.png"),
    ("similarity quick look", "river_similarity.png"), ("diagnostics", "diagnostics.json"),
    ("logs of each step", "logs"),
]
for label, name in outputs:
    path = out / name
    detail = ""
    if path.suffix == ".tif":
        with rasterio.open(path) as src:
            detail = (f"  ({src.width}x{src.height} px, {src.count} band{'s' * (src.count > 1)} {src.dtypes[0]}, "
                      f"{src.crs}, pixel {src.res[0]:g} m)")
    print(f"  {label + ':':32}{path}{detail}")
PY
)
echo "Open the .tif files in QGIS: each has its style (.qml) beside it."

"""Write docs/tools.md, the reference page of every tool, from engine/contract/ (the one source of truth).

    ~/.local/share/iamap/worker-env/bin/python scripts/tools_page.py          # rewrite docs/tools.md
    ~/.local/share/iamap/worker-env/bin/python scripts/tools_page.py --check  # exit 1 when it is out of date

Standard library only (the contract is). Each tool's section is headed by the tool id alone, so its anchor is
``#encoder``, ``#reduction``... both on GitHub and in the Sphinx build: the dialogs' Help button opens
``<repository>/blob/main/docs/tools.md#<tool>`` (utils/algorithm.py). The toolbox name and one-line description
are read from the algorithm files (they import QGIS, so they are parsed, not imported); the introductions below
are the only hand-written text of the page.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.contract import DESTINATION_KINDS, TOOLS, Kind, Parameter, Tool  # noqa: E402

PAGE = REPO / "docs" / "tools.md"

#: What each tool is for and how it fits the chain; the parameters' own help follows from the contract.
INTRODUCTIONS = {
    "encoder": (
        "Turns a raster into deep features. The raster is cut into square tiles of `SIZE` pixels, every tile is "
        "resized to the model's input and run through a vision transformer, and each patch token becomes one "
        "output pixel holding one value per feature (384 bands for a ViT-S). The output keeps the input's CRS and "
        "is aligned with it, one output pixel covering `SIZE / patches per tile` input pixels. Every other tool "
        "reads this feature raster. See the [FAQ](faq.md) for seams, resolution and which model to choose."),
    "reduction": (
        "Makes a few bands out of many, usually to look at the features (3 components shown as RGB) or to speed "
        "up clustering. The method is fitted on a random sample of valid pixels behind a standardisation and then "
        "applied to the whole raster strip by strip, so memory depends on the sample, not on the raster."),
    "cluster": (
        "Groups pixels with similar vectors into classes without any labels. Fitted on a random sample like "
        "`reduction`, then every pixel gets the label of its cluster. The output is an int16 raster with a "
        "paletted style."),
    "similarity": (
        "Maps how close every pixel's vector is to the vectors under reference points, lines or polygons "
        "(cosine similarity from -1 to 1). A quick way to find \"more of this\" without training anything; the "
        "desktop's Similarity explorer does the same interactively."),
    "change": (
        "Finds what changed between dates of one place: the change of every pixel is 1 - the cosine similarity of "
        "its feature vectors at the two dates (0 unchanged, 1 unrelated). The dates are feature rasters of one "
        "backbone, or images the tool encodes itself (`ENCODE`); a later date on another CRS or grid is aligned "
        "on the first's. A threshold (given, or Otsu's automatic one) turns it into a mask, an area and polygons; "
        "with more than two dates, one band per later date and the date of largest change. See the "
        "[tutorial](tutorial.md), step 6."),
    "ml": (
        "Trains a scikit-learn classifier (or regressor) on the pixels under labelled points, lines or polygons, "
        "validates it, and maps the whole raster. Classes get codes 1, 2, 3... with a paletted style naming each "
        "class; a self-contained HTML report gives the validation figures."),
    "diagnostics": (
        "Collects the versions of QGIS, GDAL, PROJ and of IAMAP's worker environment (PyTorch, CUDA devices, "
        "timm, scikit-learn...) for a bug report. It changes nothing."),
}

KIND_NAMES = {
    Kind.RASTER: "raster layer", Kind.RASTERS: "raster layers", Kind.BANDS: "band numbers", Kind.EXTENT: "extent",
    Kind.VECTOR: "vector layer",
    Kind.FIELD: "field name", Kind.FILE: "file", Kind.INT: "integer", Kind.FLOAT: "number", Kind.BOOL: "boolean",
    Kind.STRING: "text", Kind.ENUM: "choice", Kind.CRS: "CRS", Kind.RASTER_DESTINATION: "raster file (GeoTIFF)",
    Kind.VECTOR_DESTINATION: "vector file", Kind.FILE_DESTINATION: "file",
}
#: Group of the algorithms that do not set their own (utils/algorithm.py's IamapAlgorithm.GROUP).
DEFAULT_GROUP = "2 \u2013 Analyse features"


#: The QGIS tool files (at the repository root) not named like their tool id.
ALGORITHM_FILES = {"cluster": "clustering.py"}


def algorithm_attributes(tool: str) -> dict:
    """The string class attributes of the QGIS algorithm of ``tool`` (its file at the repository root)."""
    tree = ast.parse((REPO / ALGORITHM_FILES.get(tool, f"{tool}.py")).read_text(encoding="utf-8"))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                    try:
                        value = ast.literal_eval(item.value)
                    except ValueError:
                        continue  # an f-string or an expression: not one of the names read here
                    if isinstance(value, str):
                        found[item.targets[0].id] = value
    return found


def escape(text: str) -> str:
    """Contract help as Markdown: its few characters that Markdown would read as markup are made literal."""
    return (" ".join(text.split()).replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;")
            .replace(">", "&gt;").replace("|", "\\|").replace("[", "\\[").replace("]", "\\]"))


def default_text(spec: Parameter) -> str:
    if spec.kind in DESTINATION_KINDS:
        if spec.created_by_default:
            return "the dialog proposes a temporary file (skip it there to write none)"
        if spec.optional:
            return "none (written only when a file is given)"
        return "none, required (the dialog offers a temporary file)"
    if spec.default is None or spec.default == "":
        if not spec.optional:
            return "none, required"
        return "empty" + (" (all bands)" if spec.kind is Kind.BANDS else
                          " (the whole raster)" if spec.kind is Kind.EXTENT else "")
    if isinstance(spec.default, bool):
        return f"`{str(spec.default).lower()}`"
    return f"`{spec.default}`"


def type_text(spec: Parameter) -> str:
    text = KIND_NAMES[spec.kind]
    bounds = []
    if spec.minimum is not None:
        bounds.append(f"\u2265 {spec.minimum:g}")
    if spec.maximum is not None:
        bounds.append(f"\u2264 {spec.maximum:g}")
    if bounds:
        text += " " + ", ".join(bounds)
    if spec.kind in (Kind.BANDS, Kind.FIELD) and spec.parent:
        text += f" of `{spec.parent}`"
    return text


def parameter_item(spec: Parameter) -> list[str]:
    flags = [type_text(spec)] + ["optional"] * spec.optional + ["advanced"] * spec.advanced
    lines = [f"- **`{spec.name}`** \u2014 *{escape(spec.label)}* \u00b7 {', '.join(flags)} \u00b7 default: "
             f"{default_text(spec)}", ""]
    if spec.choices and spec.choice_labels:  # the help refers to this list as the one above it
        lines += [f"  - `{value}`: {escape(label)}" for value, label in zip(spec.choices, spec.choice_labels)]
        lines += ["", f"  {escape(spec.help)}"]
    else:
        lines.append(f"  {escape(spec.help)}")
        if spec.choices:
            lines += ["", "  Choices: " + ", ".join(f"`{value}`" for value in spec.choices) + "."]
    return lines + [""]


def tool_section(tool: Tool) -> list[str]:
    attributes = algorithm_attributes(tool.name)
    group = attributes.get("GROUP", DEFAULT_GROUP)
    inputs = [spec for spec in tool.parameters if spec.kind not in DESTINATION_KINDS]
    files = [spec for spec in tool.parameters if spec.kind in DESTINATION_KINDS]
    lines = [f"## {tool.name}", "",
             f"**{attributes['DISPLAY_NAME']}** (toolbox group \u201c{group}\u201d; algorithm id "
             f"`iamap:{tool.name}`): {escape(attributes['SHORT_DESCRIPTION'])}.", "",
             INTRODUCTIONS[tool.name], "",
             f"### {tool.name} parameters", ""]
    for spec in inputs:
        lines += parameter_item(spec)
    if not inputs:
        lines += ["None: the tool reads nothing but the environment it reports on.", ""]
    lines += [f"### {tool.name} outputs", "", "Files:", ""]
    for spec in files:
        lines += parameter_item(spec)
    if tool.outputs:
        lines += ["Figures returned by the algorithm (`qgis_process` prints them, `processing.run` returns them "
                  "in its result dictionary, the `iamap` command prints them as JSON):", ""]
        lines += [f"- **`{output.name}`** ({output.kind}): {escape(output.label)}." for output in tool.outputs]
        lines.append("")
    return lines


def render() -> str:
    lines = ["# Tools", "",
             "<!-- Generated by scripts/tools_page.py from engine/contract/: edit those, then run the script. -->",
             "",
             "One section per tool of the `iamap` Processing provider, with every parameter as the dialog, "
             "`qgis_process`, PyQGIS and the `iamap` command know it: the **id** used in scripts, the *label* the "
             "dialog shows, its type, its default and its explanation (the same text as the dialog's help panel). "
             "Parameters marked *advanced* are under \u201cAdvanced parameters\u201d in the dialog. The Help button "
             "of each dialog opens its section here.", "",
             "```bash",
             "qgis_process.bin help iamap:encoder                  # the same explanations in a terminal",
             "python -m engine.cli encoder --help                  # and without QGIS (from the plugin folder)",
             "```", "",
             "| tool | toolbox name |", "|---|---|"]
    for tool in TOOLS.values():
        lines.append(f"| [{tool.name}](#{tool.name}) | {algorithm_attributes(tool.name)['DISPLAY_NAME']} |")
    lines.append("")
    for tool in TOOLS.values():
        lines += tool_section(tool)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether docs/tools.md is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date: run scripts/tools_page.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The HTML report of iamap:ml: one self-contained page (pictures embedded as PNG data, no script, no link to
fetch), readable in any browser and in QGIS's results viewer.

:func:`render_report` takes the ``report`` dict that :mod:`engine.ml` assembles (title, task, classes, training,
validation, test, importances, parameters, versions...) and returns the page; :func:`write_report` writes it
atomically. Every text that comes from the user (class names, paths, parameters) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

CSS = """body{font:14px/1.45 sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.t,th.t{text-align:left}.box{background:#eef5fb;border:1px solid #b8d4ea;padding:8px 12px}
.warn{background:#fff4e0;border:1px solid #f0c27a;padding:6px 12px}.sw{display:inline-block;width:12px;height:12px;
border:1px solid #555;margin-right:6px;vertical-align:middle}img{max-width:100%}"""
#: Figures of each task, in table order: (metric key, column title).
FIGURES = {"classification": (("accuracy", "Overall accuracy"), ("kappa", "Cohen's kappa"),
                              ("f1_macro", "Macro F1"), ("f1_weighted", "Weighted F1")),
           "regression": (("r2", "R\u00b2"), ("rmse", "RMSE"), ("mae", "MAE"))}
TOP_IMPORTANCES = 20


def esc(value) -> str:
    """``value`` escaped for the HTML page."""
    return html.escape(str(value), quote=True)


def number(value, digits: int = 3) -> str:
    """A metric for the page: 0.934; large or small values with 4 significant digits; "–" when undefined."""
    if value is None:
        return "\u2013"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    value = float(value)
    return f"{value:.{digits}f}" if 0.001 <= abs(value) < 1000 or value == 0 else f"{value:.4g}"


def table(header: list[str], rows: list[list], text_columns: int = 1) -> str:
    """An HTML table; the first ``text_columns`` columns are left-aligned text, cells are escaped unless they are
    already markup (``Markup``)."""
    def cell(tag, index, value):
        align = ' class="t"' if index < text_columns else ""
        return f"<{tag}{align}>{value if isinstance(value, Markup) else esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class Markup(str):
    """Text that is already HTML (a colour swatch, a picture): :func:`table` does not escape it."""


def pyplot():
    """Matplotlib's pyplot on the Agg backend (files only: the worker has no display)."""
    # deferred: matplotlib (about a second) only when a report is written
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is chosen

    return plt


def picture(figure) -> Markup:
    """A matplotlib figure as an embedded PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(figure)
    return Markup(f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">')


def confusion_picture(metrics: dict) -> Markup:
    """Counts in the cells, colour by the row's share (recall), observed classes as rows."""
    plt = pyplot()
    counts = np.asarray(metrics["confusion"], float)
    names = metrics["labels"]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(14, 2.5 + 0.45 * len(names))
    figure, axes = plt.subplots(figsize=(side + 1, side))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("observed")
    font = max(6, 12 - len(names) // 3)
    for (row, col), count in np.ndenumerate(counts):
        axes.text(col, row, f"{count:.0f}", ha="center", va="center", fontsize=font,
                  color="white" if shares[row, col] > 0.6 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the observed class (recall)")
    return picture(figure)


def scatter_picture(observed: list, predicted: list, r2) -> Markup:
    """Predicted against observed values with the 1:1 line."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.scatter(observed, predicted, s=6, alpha=0.5)
    low, high = min(min(observed), min(predicted)), max(max(observed), max(predicted))
    axes.plot([low, high], [low, high], color="#d62728", linewidth=1, label="1:1")
    axes.set_xlabel("observed")
    axes.set_ylabel("predicted")
    axes.set_title(f"R\u00b2 = {number(r2)}")
    axes.legend()
    return picture(figure)


def importance_picture(values: dict) -> Markup:
    """The largest feature importances as a horizontal bar chart (an embedded picture)."""
    plt = pyplot()
    top = sorted(values.items(), key=lambda item: item[1], reverse=True)[:TOP_IMPORTANCES][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.8 + 0.28 * len(top)))
    axes.barh([name for name, _ in top], [value for _, value in top], color="#1f77b4")
    axes.set_xlabel("importance")
    return picture(figure)


def metrics_section(task: str, metrics: dict, observed=None, predicted=None, folds=None) -> str:
    """Overall figures, per-fold figures, the confusion matrix or scatter plot, the per-class table."""
    keys = FIGURES[task]
    parts = [table(["Pixels"] + [title for _, title in keys],
                   [[number(metrics["pixels"])] + [number(metrics.get(key)) for key, _ in keys]], 0)]
    if folds:
        parts.append("<h3>Per fold</h3>" + table(
            ["Fold", "Training pixels", "Test pixels", "Test features"] + [title for _, title in keys],
            [[f["fold"], number(f["train_pixels"]), number(f["test_pixels"]), number(f["test_features"])]
             + [number(f["metrics"].get(key)) for key, _ in keys] for f in folds], 0))
    if task == "classification":
        parts.append("<h3>Confusion matrix</h3>" + confusion_picture(metrics))
        parts.append("<h3>Per class</h3>" + table(
            ["Class", "Precision", "Recall", "F1", "Support (pixels)"],
            [[c["name"], number(c["precision"]), number(c["recall"]), number(c["f1"]), number(c["support"])]
             for c in metrics["per_class"]]))
    elif observed:
        parts.append("<h3>Predicted against observed</h3>" + scatter_picture(observed, predicted, metrics.get("r2")))
    return "".join(parts)


def summary(report: dict) -> str:
    """The key figures and where they come from."""
    keys = FIGURES[report["task"]]
    if "test" in report:
        metrics, source = report["test"]["metrics"], f"the independent test layer {report['test']['layer']}"
    elif "validation" in report:
        metrics = report["validation"]["overall"]
        source = f"cross-validation ({report['validation']['description']}), pooled over the folds"
    elif report.get("model_source") == "loaded":
        return (f'<p class="box">Model applied from {esc(report.get("model_file", ""))}; no test layer, so no new '
                "figures (see the warnings for those of its training).</p>")
    else:
        return ('<p class="box">Not validated: CV = none and no test layer (TEMPLATE_TEST). Nothing tells how good '
                "this map is.</p>")
    figures = ", ".join(f"{title} <b>{number(metrics.get(key))}</b>" for key, title in keys)
    return f'<p class="box">{figures} &mdash; from {esc(source)}.</p>'


def render_report(report: dict) -> str:
    """The page of ``report`` (see the module docstring)."""
    task = report["task"]
    colours = {c["name"]: c["colour"] for c in report.get("classes", [])}

    def swatch(name):
        colour = colours.get(name)
        return Markup(f'<span class="sw" style="background:{esc(colour)}"></span>{esc(name)}') if colour else name

    parts = [f"<h1>{esc(report['title'])}</h1>",
             f"<p>{esc(report['created'])} &middot; IAMAP {esc(report['iamap_version'])} &middot; {esc(task)} "
             f"&middot; {esc(report['method'])} &middot; input {esc(report['input'])}</p>", summary(report)]
    validation = report.get("validation")
    if validation:
        parts.append(f"<h2>Cross-validation: {esc(validation['description'])}</h2>"
                     + metrics_section(task, validation["overall"], validation.get("observed"),
                                       validation.get("predicted"), validation["folds"]))
    test = report.get("test")
    if test:
        parts.append(f"<h2>Independent test layer: {esc(test['layer'])}</h2>"
                     f"<p>{number(test['features_used'])} features, {number(test['pixels'])} pixels"
                     + "".join(f"; {number(n)} {esc(reason)}" for reason, n in test.get("dropped", {}).items())
                     + ".</p>" + (f'<p class="box">Independence from the training data: {esc(test["independence"])}'
                                  "</p>" if test.get("independence") else "")
                     + metrics_section(task, test["metrics"], test.get("observed"), test.get("predicted")))
    training = report.get("training")
    if training:
        parts.append(f"<h2>Training data</h2><p>{esc(training['layer'])}, labels in "
                     f"<b>{esc(training['label_field'])}</b>: {number(training['features_used'])} features, "
                     f"{number(training['pixels'])} pixels"
                     + "".join(f"; left out {number(n)} {esc(reason)}" for reason, n in training["dropped"].items())
                     + ".</p>")
        if "class_counts" in training:
            parts.append(table(["Class", "Code", "Features", "Pixels"],
                               [[swatch(name), next((c["code"] for c in report["classes"] if c["name"] == name), ""),
                                 number(n["features"]), number(n["pixels"])]
                                for name, n in training["class_counts"].items()]))
        else:
            parts.append(table(["Minimum", "Maximum", "Mean", "Standard deviation"],
                               [[number(training["target_summary"][k]) for k in ("min", "max", "mean", "std")]], 0))
    class_pixels = (report.get("prediction") or {}).get("class_pixels")
    if class_pixels:
        total = max(1, sum(class_pixels.values()))
        parts.append("<h2>Map</h2>" + table(["Class", "Pixels", "Share"], [
            [swatch(name), number(n), f"{100 * n / total:.1f} %"] for name, n in class_pixels.items()]))
    importances = report.get("importances")
    if importances:
        ranked = sorted(importances["values"].items(), key=lambda item: item[1], reverse=True)
        parts.append(f"<h2>Feature importances</h2><p>{esc(importances['kind'])}; the "
                     f"{min(TOP_IMPORTANCES, len(ranked))}"
                     f" largest of {len(ranked)} bands:</p>" + importance_picture(importances["values"])
                     + "<details><summary>Every band</summary>"
                     + table(["Band", "Importance"], [[name, number(v, 4)] for name, v in ranked]) + "</details>")
    if report.get("warnings"):
        parts.append("<h2>Warnings</h2>" + "".join(f'<p class="warn">{esc(w)}</p>' for w in report["warnings"]))
    parts.append("<h2>Model</h2>" + table(["Estimator parameter", "Value"],
                                          [[k, v] for k, v in report.get("estimator_parameters", {}).items()], 2))
    parts.append("<h2>Parameters</h2>" + table(["Parameter", "Value"],
                                               [[k, "" if v is None else v] for k, v in report["parameters"].items()],
                                               2))
    parts.append("<h2>Software</h2>" + table(["Package", "Version"],
                                             [[k, v] for k, v in report.get("versions", {}).items()], 2))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(report["title"])}</title>'
            f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")


def write_report(path: str | Path, report: dict) -> Path:
    """Write the page of ``report`` to ``path`` through a temporary file beside it: a failed write leaves nothing
    under the final name (nor the temporary file)."""
    target = Path(path)
    text = render_report(report)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target

"""The ml tool's figures on its independent test layer (TEMPLATE_TEST), on independent pixels only.

"Independent" is checked, not assumed: a test pixel that a training feature covers (the training layer given
again, a copy of it, polygons drawn twice) is a training pixel, and the figures on it say how well the model
remembers, not how well it maps. Such pixels are left out and counted; a test layer with no other pixel is
refused. The report and the log say what was checked and what was left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .class_codes import ClassCodes, regression_targets
from .errors import ParameterError
from .labelled_samples import LabelledPixels, covered_by, read_labelled_pixels
from .validation import headline, score
from .vectors import read_layer


def evaluate_on_layer(p, model: dict, classes: ClassCodes | None, src, bands, window,
                      training: LabelledPixels | None, reporter) -> dict:
    """The model's figures on the independent TEMPLATE_TEST layer (labels in GT_COL, or the model's field), on its
    pixels that are not training pixels (see :func:`independent_pixels`)."""
    meta = model["metadata"]
    field = p.GT_COL or meta.get("label_field", "")
    sample = read_labelled_pixels(p.TEMPLATE_TEST, src, bands, window, field, p.SAMPLE_PER_POLYGON, p.RANDOM_SEED,
                                  parameter="TEMPLATE_TEST", reporter=reporter, name=p.shown("TEMPLATE_TEST"))
    training_label = p.shown("TEMPLATE") if training is not None else meta.get("training_layer_label", "")
    sample, independence = independent_pixels(sample, training, meta.get("training_layer", ""), src, window,
                                              reporter, training_label)
    if classes is not None:
        targets = classes.encode(sample.labels)
        unknown = targets == classes.missing
        if unknown.any():
            names = sorted({str(v) for v in sample.labels[unknown]})
            if unknown.all():
                raise ParameterError("TEMPLATE_TEST", f"none of its classes ({', '.join(names)}) is a class of the "
                                                      f"model ({', '.join(classes.names)}).")
            features = int(np.unique(sample.features[unknown]).size)
            reporter.warning(f"TEMPLATE_TEST: {features} feature(s) of classes the model does not know "
                             f"({', '.join(names)}) were left out.")
            sample, targets = sample.subset(~unknown), targets[~unknown]
            sample.dropped = {**sample.dropped, "of classes the model does not know": features}
    else:
        targets = regression_targets(sample.labels, meta["method"])
    predicted = model["pipeline"].predict(sample.values)
    metrics = score(targets, predicted, classes)
    reporter.text(f"Independent test layer: {headline(metrics)} on {len(targets)} pixel(s).")
    test = {"layer": p.shown("TEMPLATE_TEST"), "features_used": sample.features_used, "pixels": int(len(targets)),
            "dropped": sample.dropped, "metrics": metrics, "independence": independence}
    if classes is None:
        test.update(observed=targets.tolist(), predicted=np.asarray(predicted, float).tolist())
    return test


def independent_pixels(test: LabelledPixels, training: LabelledPixels | None, training_layer: str, src, window,
                       reporter, training_label: str = "") -> tuple[LabelledPixels, str]:
    """The pixels of ``test`` that are no training pixel, and a sentence saying what was checked and done.

    The training features are ``training``'s, or, for a loaded model, those of the layer it was trained on when
    that file can still be read. A test layer whose every pixel is a training pixel (the training layer itself,
    a copy) is refused: its figures would not be independent; shared pixels are left out and counted."""
    if training is not None:
        geometries, name = training.geometries, training_label or Path(training.layer).name
    else:
        try:
            geometries, name = read_layer(training_layer, src.crs, "LOAD_MODEL").geometry.to_numpy(), \
                training_label or Path(training_layer).name
        except (ParameterError, TypeError):
            reporter.warning(f"TEMPLATE_TEST: the model's training layer ({training_layer or 'not recorded'}) cannot "
                             "be read here, so whether the test layer shares pixels with it is not checked.")
            return test, "Not checked: the layer the model was trained on cannot be read here."
    shared = covered_by(test, geometries, src, window)
    count, total = int(shared.sum()), len(shared)
    if count == total:
        raise ParameterError("TEMPLATE_TEST", f"all {total} of its pixel(s) are training pixels too (under the "
                                              f"features of the training layer {name}): figures on them would not be "
                                              "independent. Give labelled features that were not used for training, "
                                              "or leave TEMPLATE_TEST empty and let the cross-validation (CV) "
                                              "validate the model.")
    if not count:
        return test, f"Independent: none of the {total} test pixel(s) is under a feature of the training layer " \
                     f"{name} (checked)."
    lost = test.features_used - int(np.unique(test.features[~shared]).size)
    kept = test.subset(~shared)
    if lost:
        kept.dropped = {**kept.dropped, "sharing every pixel with the training layer": lost}
    statement = (f"{count} of the {total} test pixel(s) are training pixels too (under features of the "
                 f"training layer {name}) and were left out, so that the figures are on independent pixels only"
                 + (f"; {lost} test feature(s) lost every pixel" if lost else "") + ".")
    reporter.warning(f"TEMPLATE_TEST: {statement}")
    return kept, statement

"""Labels of iamap:ml as the raster stores them: class names <-> integer codes, and the output's data type.

Whole-number labels (numbers, or text that reads as whole numbers: "1", "12") keep their value as the code, so
a map coded like the field reads back the same. Other text labels get the codes 1, 2, 3... in sorted order.
The class raster has the smallest integer type that holds every code and a nodata value besides them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

#: Integer types of the class raster, smallest first, with their nodata value (the end of the range no code uses).
LABEL_TYPES = (("uint8", 255), ("uint16", 65535), ("int16", -32768), ("int32", -2147483648))


@dataclass(frozen=True)
class ClassCodes:
    """The classes of a classifier: ``names[i]`` is stored as ``codes[i]`` in the class raster."""

    codes: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: np.ndarray, method: str, parameter: str = "GT_COL") -> ClassCodes:
        """The classes of ``labels`` (numbers or text); decimal numbers are refused (they need a regressor)."""
        whole = whole_numbers(labels)
        if whole is None:
            numeric = np.asarray([_number(v) for v in labels], dtype=object)
            decimal = next((v for v in numeric if v is not None and not float(v).is_integer()), None)
            if decimal is not None and all(v is not None for v in numeric):
                raise ParameterError(parameter, f"holds decimal numbers (such as {decimal:g}), and {method} is a "
                                                "classifier. Choose a regressor as Estimator (RandomForestRegressor, "
                                                "...) to map a number, or a field of classes.")
            names = sorted({str(v).strip() for v in labels})
            return cls(tuple(range(1, len(names) + 1)), tuple(names))
        values = sorted(set(int(v) for v in whole))
        if values[0] < np.iinfo(np.int32).min + 1 or values[-1] > np.iinfo(np.int32).max:
            raise ParameterError(parameter, f"class codes from {values[0]} to {values[-1]} do not fit a 32-bit class "
                                            "raster; use smaller codes or text labels.")
        return cls(tuple(values), tuple(str(v) for v in values))

    def encode(self, labels: np.ndarray) -> np.ndarray:
        """The code of each label; a label of no known class gets :attr:`missing`."""
        lookup = self._lookup()
        return np.array([lookup.get(_key(v), self.missing) for v in labels], np.int64)

    @property
    def missing(self) -> int:
        """The code :meth:`encode` gives a label of no known class (never a class code)."""
        return min(self.codes) - 1

    def _lookup(self) -> dict:
        return {_key(name): code for name, code in zip(self.names, self.codes)}

    def name_of(self, code: int) -> str:
        return self.names[self.codes.index(int(code))]

    @property
    def raster_type(self) -> tuple[str, int]:
        """(dtype, nodata) of the class raster: the smallest integer type holding the codes and a nodata value."""
        low, high = min(self.codes), max(self.codes)
        for dtype, nodata in LABEL_TYPES:
            info = np.iinfo(dtype)
            if info.min <= low and high <= info.max and nodata not in self.codes:
                return dtype, nodata
        return "int32", int(np.iinfo(np.int32).min)  # from_labels refuses codes that would reach it

    def as_dict(self) -> dict:
        return {"codes": list(self.codes), "names": list(self.names)}

    @classmethod
    def from_dict(cls, value: dict) -> ClassCodes:
        return cls(tuple(int(c) for c in value["codes"]), tuple(str(n) for n in value["names"]))


def whole_numbers(labels: np.ndarray) -> np.ndarray | None:
    """``labels`` as int64 when every one is a whole number (or text reading as one); else None."""
    numbers = [_number(v) for v in labels]
    if any(v is None or not float(v).is_integer() for v in numbers):
        return None
    return np.array([int(v) for v in numbers], np.int64)


def regression_targets(labels: np.ndarray, method: str, parameter: str = "GT_COL") -> np.ndarray:
    """``labels`` as float64 for a regressor; text that is not a number is refused."""
    numbers = [_number(v) for v in labels]
    text = next((v for v, n in zip(labels, numbers) if n is None), None)
    if text is not None:
        raise ParameterError(parameter, f"holds text ({str(text)!r}), and {method} is a regressor, which maps a "
                                        "number. Choose a classifier as Estimator (RandomForestClassifier, ...) for "
                                        "classes, or a numeric field.")
    return np.array(numbers, np.float64)


def _number(value):
    """``value`` as a float when it is a number or text reading as one; else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if np.isfinite(value) else None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _key(value) -> str:
    """How a label is matched to a class: whole numbers by value (1, 1.0 and "1" are one class), text as text."""
    number = _number(value)
    if number is not None and number.is_integer():
        return str(int(number))
    return str(value).strip()

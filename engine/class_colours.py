"""The colours of named classes, the one table that the class raster's colour table, its QGIS style (``.qml``), the
ml report's swatches and the quick-look PNG all take their colours from.

A class gets, in this order: the colour the user gave it (the training layer's categorized style in QGIS, or
CLASS_COLOURS), the conventional colour of its land-cover name (water blue, forest green, cropland orange, bare
soil brown...: any case, accents, ``_``/``-``, a plural, English or French, and names that hold one such word:
"dense forest"), or else the next colour of the palette (:func:`engine.catalog.class_colour`) that no other class
has.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from .catalog import class_colour
from .errors import ParameterError

#: Conventional land-cover colours (after common maps such as ESA WorldCover and CORINE, with cropland yellow-orange
#: and bare soil brown as most readers expect) and the names that mean each, normalised (see :func:`normalise`).
LANDCOVER_COLOURS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("#1f78b4", ("water", "open water", "water body", "waterbody", "river", "lake", "sea", "ocean", "pond",
                 "reservoir", "eau", "eaux", "riviere", "fleuve", "lac", "mer", "etang", "plan d eau")),
    ("#1b7837", ("forest", "tree", "tree cover", "trees", "wood", "woods", "woodland", "broadleaf", "conifer",
                 "coniferous", "deciduous", "foret", "bois", "arbre", "arbres", "feuillus", "coniferes")),
    ("#8c9a3c", ("shrub", "shrubland", "scrub", "bush", "heath", "arbuste", "arbustes", "garrigue", "maquis",
                 "lande", "broussaille")),
    ("#a6d96a", ("grass", "grassland", "meadow", "pasture", "herbaceous", "lawn", "prairie", "pelouse", "herbe",
                 "paturage")),
    ("#f2a541", ("crop", "cropland", "crops", "agriculture", "agricultural", "farmland", "field", "arable",
                 "orchard", "vineyard", "culture", "cultures", "champ", "verger", "vigne", "terre arable")),
    ("#d7301f", ("urban", "built", "built up", "builtup", "building", "settlement", "town", "city", "artificial",
                 "impervious", "urbain", "bati", "batiment", "ville", "artificialise")),
    ("#6b6b6b", ("road", "roads", "railway", "route", "routes", "chemin de fer")),
    ("#a0662f", ("bare", "bare soil", "bare ground", "bareland", "barren", "soil", "sand", "rock", "gravel", "sol",
                 "sol nu", "sable", "roche", "rocher")),
    ("#2ba3a0", ("wetland", "marsh", "swamp", "bog", "mangrove", "mangroves", "zone humide", "marais",
                 "marecage", "tourbiere")),
    ("#f4f4f4", ("snow", "ice", "glacier", "snow and ice", "neige", "glace")),
    ("#c4c4c4", ("cloud", "clouds", "nuage", "nuages")),
    ("#3b3b3b", ("shadow", "cloud shadow", "ombre")),
)
_BY_NAME = {name: colour for colour, names in LANDCOVER_COLOURS for name in names}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def normalise(name: str) -> str:
    """``"Forêt_dense"`` -> ``"foret dense"``: lower case, no accents, words separated by one space."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode().lower()
    return " ".join(re.split(r"[\s_\-/.,;:'()]+", text)).strip()


def conventional_colour(name: str) -> str | None:
    """The conventional colour of a land-cover class name, or None: the whole name, then without a plural ``s``,
    then its longest run of words that is a known name ("dense forest" is forest)."""
    words = normalise(name).split()
    whole = " ".join(words)
    for candidate in (whole, whole[:-1] if whole.endswith("s") else ""):
        if candidate in _BY_NAME:
            return _BY_NAME[candidate]
    for length in range(len(words) - 1, 0, -1):
        for start in range(len(words) - length + 1):
            part = " ".join(words[start:start + length])
            if part in _BY_NAME:
                return _BY_NAME[part]
    return None


def check_colours(given: Mapping, parameter: str = "CLASS_COLOURS") -> dict[str, str]:
    """``given`` as {class name: ``#rrggbb``}; a value that is not such a colour is an error naming ``parameter``."""
    colours = {}
    for name, colour in given.items():
        if not isinstance(colour, str) or not _HEX.match(colour.strip()):
            raise ParameterError(parameter, f"the colour of class {name!r} is {colour!r}; give it as #rrggbb "
                                            '(for example {"water": "#1f78b4"}).')
        colours[str(name).strip()] = colour.strip().lower()
    return colours


def class_colours(names: Sequence[str], given: Mapping[str, str] | None = None) -> list[str]:
    """The colour (``#rrggbb``) of each class of ``names``, in order (see the module docstring)."""
    given = {str(k).strip(): v for k, v in (given or {}).items()}
    colours: list[str | None] = []
    for name in names:
        colour = given.get(str(name).strip()) or conventional_colour(name)
        colours.append(None if colour in colours else colour)  # two classes never share a colour
    rank = 0
    for index, colour in enumerate(colours):
        if colour is None:
            while class_colour(rank) in colours:
                rank += 1
            colours[index] = class_colour(rank)
            rank += 1
    return colours

"""The colours of named classes: the user's, then conventional land-cover colours, then the palette."""

from __future__ import annotations

import pytest

from engine import catalog
from engine.class_colours import class_colours, conventional_colour, normalise
from engine.errors import ParameterError
from engine.ml import read_class_colours

WATER, FOREST, CROPLAND, BARE, URBAN = "#1f78b4", "#1b7837", "#f2a541", "#a0662f", "#d7301f"


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.parametrize("name, colour", [
    ("water", WATER), ("Water", WATER), ("WATER ", WATER), ("eau", WATER), ("Eaux", WATER), ("lakes", WATER),
    ("forest", FOREST), ("Forêt", FOREST), ("dense_forest", FOREST), ("Tree cover", FOREST), ("bois", FOREST),
    ("cropland", CROPLAND), ("Crops", CROPLAND), ("cultures", CROPLAND),
    ("bare", BARE), ("Bare soil", BARE), ("sol nu", BARE), ("bare-ground", BARE),
    ("urban", URBAN), ("Built-up", URBAN), ("bâti", URBAN),
])
def test_land_cover_names_get_their_conventional_colour_whatever_the_case_accents_or_language(name, colour):
    assert conventional_colour(name) == colour


def test_the_conventional_colours_mean_what_readers_expect():
    red, green, blue = rgb(WATER)
    assert blue > red and blue > green  # water is blue
    red, green, blue = rgb(FOREST)
    assert green > red and green > blue  # forest is green
    red, green, blue = rgb(CROPLAND)
    assert red > green > blue and green > 100  # cropland is yellow-orange
    red, green, blue = rgb(BARE)
    assert red > green > blue and red < 200  # bare soil is brown (a dark orange)


def test_names_that_are_not_land_cover_get_the_palette_in_order():
    assert normalise("Forêt_dense (2020)") == "foret dense 2020"
    assert conventional_colour("a-class") is None and conventional_colour("waterfall height") is None
    assert class_colours(["a", "b", "c"]) == [catalog.class_colour(0), catalog.class_colour(1), catalog.class_colour(2)]


def test_the_users_colours_come_first_and_no_two_classes_share_a_colour():
    colours = class_colours(["water", "forest", "woodland", "mine"], {"forest": "#00ff00"})
    assert colours[:2] == [WATER, "#00ff00"]
    assert colours[2] == FOREST  # woodland: the forest colour, which the user's forest no longer takes
    assert len(set(colours)) == 4
    assert class_colours(["forest", "woods"])[1] != FOREST  # the second forest name gets a palette colour
    palette_first = catalog.class_colour(0)
    assert class_colours(["x", "y"], {"y": palette_first}) == [catalog.class_colour(1), palette_first]


@pytest.mark.parametrize("text, message", [
    ("{water: 1}", "CLASS_COLOURS: is not valid JSON"),
    ('["#ffffff"]', "CLASS_COLOURS: must be a JSON object"),
    ('{"water": "blue"}', "CLASS_COLOURS: the colour of class 'water' is 'blue'; give it as #rrggbb"),
])
def test_bad_class_colours_are_named(text, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        read_class_colours(text)
    assert read_class_colours('{"Water ": "#1F78B4"}') == {"Water": "#1f78b4"}

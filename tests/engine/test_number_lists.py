"""Number lists in messages: short in full, long as runs with their count."""

from __future__ import annotations

from engine.number_lists import number_list


def test_a_short_list_is_shown_in_full():
    assert number_list([1, 2, 5]) == "1, 2, 5"
    assert number_list([]) == ""


def test_a_long_run_is_its_range_and_count():
    assert number_list(range(1, 193)) == "1-192 (192 in all)"
    assert number_list([*range(1, 11), *range(20, 41), 50]) == "1-10, 20-40, 50 (32 in all)"


def test_scattered_numbers_are_their_count_and_bounds():
    assert number_list(range(1, 192, 2)) == "96 numbers from 1 to 191"

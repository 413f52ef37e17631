# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The mutants are the edits they say they are, found in today's bridge, and sampled the same way every time."""

from __future__ import annotations

from mutants import BRIDGE, PARAMETER_BINDING, PROPERTY_NOT_FOUND, RUNTIME_EXCEPTION, hand_written, sample, systematic

SCRIPT = """$item = Get-Item -LiteralPath:'C:\\' -Force
$item.Name = 'x'
$length = $item.Length
$item.Refresh()
"""


def test_every_parameter_and_member_site_gives_one_mutant() -> None:
    mutants = {mutant.id: mutant for mutant in systematic(SCRIPT, "sample.ps1")}

    assert sorted(mutants) == ["member-2-7", "member-3-17", "member-4-7", "parameter-1-18", "parameter-1-37"]
    assert mutants["parameter-1-18"].apply(SCRIPT).splitlines()[0] == "$item = Get-Item -LiteralPathZq:'C:\\' -Force"
    assert mutants["parameter-1-37"].apply(SCRIPT).splitlines()[0] == "$item = Get-Item -LiteralPath:'C:\\' -ForceZq"
    assert mutants["member-3-17"].apply(SCRIPT).splitlines()[2] == "$length = $item.LengthZq"
    assert mutants["parameter-1-18"].expected == (PARAMETER_BINDING,)
    assert mutants["member-3-17"].expected == (PROPERTY_NOT_FOUND, RUNTIME_EXCEPTION)
    assert mutants["member-4-7"].expected == (RUNTIME_EXCEPTION,)
    # Setting a member may add a hashtable key, which no error stops.
    assert mutants["member-2-7"].expected is None


def test_the_sample_is_the_same_every_time_and_in_source_order() -> None:
    every = systematic(BRIDGE.read_text(encoding="utf-8"))

    chosen = sample(every, 60)

    assert len(chosen) == 60 and chosen == sample(every, 60)
    assert [mutant.line for mutant in chosen] == sorted(mutant.line for mutant in chosen)
    assert {mutant.kind for mutant in chosen} == {"parameter", "member"}


def test_each_hand_written_mutant_changes_todays_bridge() -> None:
    text = BRIDGE.read_text(encoding="utf-8")

    mutants = list(hand_written(text))

    assert len({mutant.id for mutant in mutants}) == len(mutants)
    for mutant in mutants:
        changed = mutant.apply(text)
        assert changed != text, mutant.id
        assert changed.splitlines()[mutant.line - 1] != text.splitlines()[mutant.line - 1], mutant.id

"""The rounds table: legal moves, refusals, and the diagram in the docs."""

from pathlib import Path

import pytest

from secagg import LocalProtocolError
from secagg.rounds import TRANSITIONS, Round, check_transition, diagram


def test_every_live_round_can_abort_and_terminal_rounds_cannot_move():
    for old, targets in TRANSITIONS.items():
        if old in (Round.COMPLETED, Round.ABORTED):
            assert targets == frozenset()
        else:
            assert Round.ABORTED in targets


def test_skipping_a_round_is_refused():
    with pytest.raises(LocalProtocolError, match="ADVERTISE_KEYS -> MASKED_INPUT"):
        check_transition(Round.ADVERTISE_KEYS, Round.MASKED_INPUT)
    check_transition(Round.MASKED_INPUT, Round.UNMASKING)  # consistency check off


def test_the_docs_draw_the_current_table():
    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text()
    assert diagram() in doc

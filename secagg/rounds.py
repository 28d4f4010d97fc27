"""The rounds of the protocol and the moves allowed between them.

Both facades (``Client`` and ``Server``) check every move against ``TRANSITIONS``;
the docs draw the state diagram from the same table.
"""

from __future__ import annotations

import enum

from secagg.errors import LocalProtocolError

__all__ = ["Round", "TRANSITIONS", "check_transition", "diagram"]


class Round(enum.Enum):
    """Where a client or the server is in one secure-aggregation session."""

    ADVERTISE_KEYS = 0
    SHARE_KEYS = 1
    MASKED_INPUT = 2
    CONSISTENCY_CHECK = 3
    UNMASKING = 4
    COMPLETED = 5
    ABORTED = 6


#: Round -> the rounds it may move to. Every live round may also abort.
TRANSITIONS: dict[Round, frozenset[Round]] = {
    Round.ADVERTISE_KEYS: frozenset({Round.SHARE_KEYS, Round.ABORTED}),
    Round.SHARE_KEYS: frozenset({Round.MASKED_INPUT, Round.ABORTED}),
    # The consistency check can be switched off (honest-but-curious variant).
    Round.MASKED_INPUT: frozenset({Round.CONSISTENCY_CHECK, Round.UNMASKING, Round.ABORTED}),
    Round.CONSISTENCY_CHECK: frozenset({Round.UNMASKING, Round.ABORTED}),
    Round.UNMASKING: frozenset({Round.COMPLETED, Round.ABORTED}),
    Round.COMPLETED: frozenset(),
    Round.ABORTED: frozenset(),
}


def check_transition(old: Round, new: Round) -> None:
    """Raise ``LocalProtocolError`` unless ``old -> new`` is in the table (staying put is allowed)."""
    if new is not old and new not in TRANSITIONS[old]:
        raise LocalProtocolError(f"illegal transition {old.name} -> {new.name}")


def diagram() -> str:
    """The transitions table as a Mermaid state diagram (docs/protocol.md embeds it)."""
    lines = ["stateDiagram-v2", f"    [*] --> {Round.ADVERTISE_KEYS.name}"]
    for old, targets in TRANSITIONS.items():
        for new in sorted(targets, key=lambda r: r.value):
            lines.append(f"    {old.name} --> {new.name}")
    lines.append(f"    {Round.COMPLETED.name} --> [*]")
    return "\n".join(lines)

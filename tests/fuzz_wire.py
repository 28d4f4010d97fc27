"""Coverage-guided fuzzing of ``secagg.wire.decode`` with atheris (not part of the test suite).

Run: ``.venv/bin/python tests/fuzz_wire.py -max_total_time=120 [corpus_dir ...]``. Any exception
other than ``MalformedMessageError`` / ``UnexpectedMessageError`` is a crash: save the input
in ``tests/corpus/`` (atheris writes it as ``crash-*``) before fixing the parser. Without a
corpus argument, new inputs go to a temporary directory and ``tests/corpus/`` only seeds.
The file is named so that pytest does not collect it.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from secagg import messages as msg
    from secagg import wire
    from secagg.errors import MalformedMessageError, UnexpectedMessageError

_CORPUS = pathlib.Path(__file__).parent / "corpus"


def test_one_input(data: bytes) -> None:
    """Decode; accept a message (which must re-encode to an equal one) or a protocol error."""
    try:
        message = wire.decode(data)
    except (MalformedMessageError, UnexpectedMessageError):
        return
    assert wire.decode(wire.encode(message)) == message
    if isinstance(message, msg.KeyDirectory):
        for client in message.ids[:4].tolist():
            assert message.entry(int(client)) is not None


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        # libFuzzer writes new inputs into the first directory: a temporary one, never the repo.
        args += [tempfile.mkdtemp(prefix="secagg-fuzz-wire-"), str(_CORPUS)]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""The wire format: every message round-trips, and no input makes the parser misbehave.

``wire.decode`` may only return a message or raise ``MalformedMessageError`` /
``UnexpectedMessageError`` (both ``ProtocolError``s): never another exception,
never a hang. Hypothesis throws random bytes, mutated valid messages and
well-formed msgpack with junk fields at it; ``tests/corpus/`` keeps inputs that
once broke a parser (or were built to try), replayed on every run.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg import messages as msg
from secagg import wire
from secagg.errors import MalformedMessageError, UnexpectedMessageError

CORPUS = pathlib.Path(__file__).parent / "corpus"
ALLOWED = (MalformedMessageError, UnexpectedMessageError)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies for valid messages -----------------------------------------------

ids = st.integers(0, msg.MAX_CLIENTS - 1)
digest = st.binary(min_size=32, max_size=32)
key = digest
signature = st.binary(min_size=64, max_size=64)
blob = st.binary(max_size=96)
idsets = st.sets(ids, max_size=12).map(msg.encode_ids)


def _pairs(values):
    """(distinct ids, values) as two equally long tuples."""
    return st.lists(st.tuples(ids, values), unique_by=lambda p: p[0], max_size=8).map(
        lambda ps: (tuple(p[0] for p in ps), tuple(p[1] for p in ps))
    )


@st.composite
def key_directories(draw):
    records = draw(st.lists(st.tuples(ids, key, key, signature), unique_by=lambda r: r[0],
                            max_size=6))
    raw = b"".join(i.to_bytes(4, "little") + a + b + s for i, a, b, s in sorted(records))
    return msg.KeyDirectory(draw(digest), raw)


@st.composite
def unmask_responses(draw):
    owners, shares = draw(_pairs(blob))
    cut = draw(st.integers(0, len(owners)))
    return msg.UnmaskResponse(draw(ids), draw(digest), owners[:cut], shares[:cut],
                              owners[cut:], shares[cut:])


@st.composite
def unmask_requests(draw):
    attested, sigs = draw(_pairs(signature))
    exclusions = tuple(draw(idsets) for _ in attested)
    return msg.UnmaskRequest(draw(digest), draw(idsets), draw(idsets), *draw(_pairs(signature)),
                             attested, exclusions, sigs)


MESSAGES = {
    msg.AdvertiseKeys: st.builds(msg.AdvertiseKeys, ids, digest, key, key, signature),
    msg.KeyDirectory: key_directories(),
    msg.ShareKeys: st.builds(lambda s, sid, p: msg.ShareKeys(s, sid, *p), ids, digest,
                             _pairs(blob)),
    msg.EncryptedShares: st.builds(lambda sid, p: msg.EncryptedShares(sid, *p), digest,
                                   _pairs(blob)),
    msg.MaskedInput: st.builds(msg.MaskedInput, ids, digest, st.binary(max_size=300), idsets,
                               signature),
    msg.ConsistencyRequest: st.builds(msg.ConsistencyRequest, digest, idsets),
    msg.ConsistencySignature: st.builds(msg.ConsistencySignature, ids, digest, signature),
    msg.UnmaskRequest: unmask_requests(),
    msg.UnmaskResponse: unmask_responses(),
    msg.Abort: st.builds(msg.Abort, st.text(max_size=1000)),
}
any_message = st.one_of(*MESSAGES.values())

# Arbitrary msgpack-able junk, nested: what a hostile peer can put in any field.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=20), st.binary(max_size=80),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20,
)


def _decode_or_refuse(data: bytes, *expected: type[msg.Message]) -> msg.Message | None:
    """Decode; the only acceptable failures are the two protocol errors. Must be quick."""
    start = time.perf_counter()
    try:
        message = wire.decode(data, *expected)
    except ALLOWED as exc:
        assert str(exc)  # the error names the problem
        message = None
    assert time.perf_counter() - start < 2.0, "decode took too long"
    if message is not None:
        # Whatever was accepted is a valid message that encodes canonically.
        again = wire.decode(wire.encode(message))
        assert again == message and type(again) is type(message)
    return message


def _fields(message: msg.Message) -> list[object]:
    return [getattr(message, f.name) for f in dataclasses.fields(message)]


def _raw(tag: object, fields: list[object], magic: object = wire.MAGIC,
         version: object = wire.VERSION) -> bytes:
    return msgpack.packb([magic, version, tag, *fields], use_bin_type=True)


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MESSAGES), ids=lambda k: k.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_message_round_trips(kind, data):
    message = data.draw(MESSAGES[kind])
    encoded = wire.encode(message)
    assert wire.decode(encoded) == message
    assert wire.decode(encoded, kind) == message
    assert wire.decode(bytearray(encoded)) == message
    assert wire.decode(memoryview(encoded)) == message


@pytest.mark.parametrize("kind", list(MESSAGES), ids=lambda k: k.__name__)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_a_message_of_another_type_than_expected_is_unexpected(kind, data):
    message = data.draw(MESSAGES[kind])
    others = [k for k in MESSAGES if k is not kind]
    with pytest.raises(UnexpectedMessageError):
        wire.decode(wire.encode(message), *others)


def test_every_message_type_has_a_strategy_and_a_distinct_tag():
    assert set(MESSAGES) == set(wire._TAGS)
    assert len(set(wire._TAGS.values())) == len(wire._TAGS)


def test_the_header_is_magic_version_tag():
    encoded = wire.encode(msg.Abort("x"))
    assert msgpack.unpackb(encoded) == ["secagg", 2, wire._TAGS[msg.Abort], "x"]


def test_encode_refuses_something_that_is_not_a_message():
    with pytest.raises(TypeError):
        wire.encode("hello")  # type: ignore[arg-type]


# --- targeted refusals ------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"", b"\xc1", b"\x90", _raw(3, []), msgpack.packb("secagg"), msgpack.packb({"a": 1}),
    _raw(10, ["x"], magic="SECAGG"), _raw(10, ["x"], magic=b"secagg"),
    _raw(10, ["x"], version=1), _raw(10, ["x"], version=3), _raw(10, ["x"], version=True),
    _raw(10, ["x"], version=2.0),
    _raw(0, []), _raw(11, []), _raw(-1, []), _raw(True, ["x"]), _raw("10", ["x"]),
    _raw(10, []), _raw(10, ["x", "y"]), _raw(10, [b"x"]), _raw(10, ["x" * 1001]),
    msgpack.packb(["secagg", 2, 10, "x"]) + b"\x00",  # trailing bytes
], ids=lambda d: d[:12].hex())
def test_refuses_bad_headers_counts_and_framing(data):
    with pytest.raises(MalformedMessageError):
        wire.decode(data)


def test_refuses_something_that_is_not_bytes():
    for value in (None, "text", 42, [1, 2]):
        with pytest.raises(MalformedMessageError):
            wire.decode(value)  # type: ignore[arg-type]


_GOOD = msg.UnmaskResponse(3, bytes(32), (1,), (b"s",), (2,), (b"k",))


@pytest.mark.parametrize("changes", [
    {"sender": -1}, {"sender": msg.MAX_CLIENTS}, {"sender": 2**64 - 1}, {"sender": True},
    {"sender": 1.0}, {"sender": None}, {"session_id": bytes(31)}, {"session_id": "x" * 32},
    {"seed_owners": (1, 1), "seed_shares": (b"", b"")},
    {"seed_owners": (1,), "key_owners": (1,)},
    {"key_owners": (2,), "key_shares": ()},
    {"seed_shares": ("x",)}, {"key_owners": {"a": 1}}, {"key_shares": b"k"},
    {"seed_owners": ((1,),)},
], ids=repr)
def test_refuses_bad_field_values(changes):
    fields = [changes.get(f.name, getattr(_GOOD, f.name)) for f in dataclasses.fields(_GOOD)]
    with pytest.raises(MalformedMessageError):
        wire.decode(_raw(wire._TAGS[msg.UnmaskResponse], fields))


@pytest.mark.parametrize("survivors", [
    b"\x01", msg.encode_ids([2]) + msg.encode_ids([1]), msg.encode_ids([1]) * 2,
    (msg.MAX_CLIENTS).to_bytes(4, "little"), b"\xff\xff\xff\xff",
])
def test_refuses_id_sets_that_are_unsorted_repeated_out_of_range_or_ragged(survivors):
    with pytest.raises(MalformedMessageError):
        wire.decode(_raw(wire._TAGS[msg.ConsistencyRequest], [bytes(32), survivors]))


def test_refuses_key_directories_that_are_ragged_or_unsorted():
    record = msg.AdvertiseKeys(5, bytes(32), bytes(32), bytes(32), bytes(64)).record()
    other = msg.AdvertiseKeys(2, bytes(32), bytes(32), bytes(32), bytes(64)).record()
    for records in (record[:-1], record + other, record + record):
        with pytest.raises(MalformedMessageError):
            wire.decode(_raw(wire._TAGS[msg.KeyDirectory], [bytes(32), records]))


def test_refuses_a_repeated_consistency_signer():
    sig = bytes(64)
    with pytest.raises(MalformedMessageError):
        wire.decode(_raw(wire._TAGS[msg.UnmaskRequest], [bytes(32), b"", b"", (1, 1), (sig, sig)]))


# --- fuzzing ------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_protocol_errors(data):
    _decode_or_refuse(data)


@FUZZ
@given(any_message, st.data())
def test_bit_flips_only_raise_protocol_errors(message, data):
    encoded = bytearray(wire.encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] ^= 1 << data.draw(st.integers(0, 7))
    _decode_or_refuse(bytes(encoded))


@FUZZ
@given(any_message, st.data())
def test_truncation_and_extension_only_raise_protocol_errors(message, data):
    encoded = wire.encode(message)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(MalformedMessageError):
        wire.decode(encoded[:cut])
    tail = data.draw(st.binary(min_size=1, max_size=40))
    with pytest.raises(MalformedMessageError):
        wire.decode(encoded + tail)
    spliced = encoded[:cut] + tail + encoded[cut + data.draw(st.integers(0, 8)):]
    _decode_or_refuse(spliced)


@FUZZ
@given(any_message, st.data())
def test_junk_in_any_field_only_raises_protocol_errors(message, data):
    fields = _fields(message)
    i = data.draw(st.integers(0, len(fields) - 1))
    fields[i] = data.draw(junk)
    _decode_or_refuse(_raw(wire._TAGS[type(message)], fields), type(message))


@FUZZ
@given(any_message, st.data())
def test_wrong_field_counts_and_headers_only_raise_protocol_errors(message, data):
    fields = _fields(message)
    if data.draw(st.booleans()) and fields:
        del fields[data.draw(st.integers(0, len(fields) - 1))]
    else:
        fields.insert(data.draw(st.integers(0, len(fields))), data.draw(junk))
    with pytest.raises(MalformedMessageError):
        wire.decode(_raw(wire._TAGS[type(message)], fields))
    header = data.draw(st.tuples(junk, junk, junk))
    _decode_or_refuse(_raw(header[2], _fields(message), magic=header[0], version=header[1]))


@FUZZ
@given(st.lists(junk, max_size=8), st.sampled_from(sorted(wire._TAGS.values())))
def test_well_formed_msgpack_with_junk_fields_only_raises_protocol_errors(fields, tag):
    _decode_or_refuse(_raw(tag, fields))


# --- the corpus -----------------------------------------------------------------------------


def _corpus() -> list[pathlib.Path]:
    return sorted(p for p in CORPUS.glob("*.bin"))


def test_the_corpus_is_not_empty():
    assert len(_corpus()) >= 5


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_corpus_inputs_only_raise_protocol_errors(path):
    data = path.read_bytes()
    _decode_or_refuse(data)
    _decode_or_refuse(data, msg.Abort)

"""Secrets are wiped after use: the C wipe, the Python helper, and the buffers it clears.

The C side wipes its own stack copies (key schedules, cipher states, rounding
keystream, Shamir accumulators) with ``secagg_memzero``; here the Python side's
mutable buffers are caught and checked to hold only zeros once the call returns.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from secagg._csecagg import ffi, lib

from secagg import bindings, shamir
from secagg.errors import SecAggTypeError, SecAggValueError


def test_c_memzero_zeroes_exactly_the_bytes_asked():
    buf = ffi.new("uint8_t[40]")
    ffi.memmove(buf, b"\xff" * 40, 40)
    lib.secagg_memzero(buf + 4, 32)
    assert bytes(ffi.buffer(buf)) == b"\xff" * 4 + bytes(32) + b"\xff" * 4
    lib.secagg_memzero(ffi.NULL, 10)  # NULL and zero length do nothing
    lib.secagg_memzero(buf, 0)


@pytest.mark.parametrize("make", [
    lambda: bytearray(os.urandom(33)),
    lambda: np.frombuffer(os.urandom(64), dtype=np.uint64).copy(),
    lambda: memoryview(bytearray(os.urandom(17))),
])
def test_python_memzero_wipes_mutable_buffers_in_place(make):
    buf = make()
    bindings.secagg_memzero(buf)
    assert not any(bytes(buf))


def test_python_memzero_refuses_what_it_cannot_wipe():
    with pytest.raises(SecAggTypeError):
        bindings.secagg_memzero(b"secret")  # immutable: a wipe would be a lie
    ro = np.zeros(4)
    ro.flags.writeable = False
    with pytest.raises(SecAggValueError):
        bindings.secagg_memzero(ro)
    with pytest.raises(SecAggValueError):
        bindings.secagg_memzero(np.zeros((4, 4))[:, 0])
    with pytest.raises(SecAggValueError):
        bindings.secagg_memzero(memoryview(b"abc"))


def _capture(monkeypatch, module, name):
    seen = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(module, name, wrapper)
    return seen


def test_split_wipes_the_polynomial_and_the_share_array(monkeypatch):
    coeffs = _capture(monkeypatch, shamir, "_random_field_elements")
    chunks = _capture(monkeypatch, shamir, "_encode_secret")
    secret = os.urandom(32)
    shares = shamir.split(secret, [1, 2, 3, 4], 3)
    assert shamir.reconstruct([2, 3, 4], shares[1:], 3) == secret
    assert coeffs and chunks
    for arr in coeffs + chunks:
        assert arr.size and not arr.any()


def test_reconstruct_wipes_the_shares_it_parsed(monkeypatch):
    parsed = _capture(monkeypatch, shamir, "_parse_shares")
    secret = os.urandom(32)
    shares = shamir.split(secret, [5, 6], 2)
    assert shamir.reconstruct([5, 6], shares, 2) == secret
    assert parsed and all(arr.size and not arr.any() for arr in parsed)


def test_keystream_leaves_no_copy_in_its_c_buffer(monkeypatch):
    made = _capture(monkeypatch, bindings, "_new_uncleared")
    stream = bindings.secagg_chacha20_keystream(os.urandom(32), bytes(12), 1000)
    assert any(stream)
    assert not any(bytes(ffi.buffer(made[0], 1000)))


def test_mask_accumulate_wipes_its_packed_keys(monkeypatch):
    batches = _capture(monkeypatch, bindings, "_ensure_mask_batch")
    acc = np.zeros(5000, dtype=np.uint32)
    bindings.secagg_mask_accumulate(acc, [os.urandom(32), os.urandom(32)], [1, -1], 32, threads=2)
    blob, _ = batches[0]
    assert len(blob) == 64 and not any(blob)
    assert acc.any()

"""SecAggConfig as bytes (versioned, digest-checked) and the client's local policy check."""

from __future__ import annotations

import msgpack
import pytest
from helpers import make_config

from secagg.config import ConfigPolicy, SecAggConfig
from secagg.errors import MalformedMessageError, PolicyError, SecAggValueError


def _fields(config: SecAggConfig) -> dict:
    return msgpack.unpackb(config.to_bytes(), raw=False)[2]


def _pack(fields: dict, digest: bytes, version: int = 1) -> bytes:
    return msgpack.packb(["secagg-config", version, fields, digest], use_bin_type=True)


class TestBytes:
    @pytest.mark.parametrize("graph, degree, check", [("complete", 0, True), ("harary", 4, False)])
    def test_round_trip_gives_an_equal_config_with_the_same_digest(self, graph, degree, check):
        config = make_config(n=8, threshold=5 if check else 3, graph=graph, degree=degree,
                             consistency_check=check)
        again = SecAggConfig.from_bytes(config.to_bytes())
        assert again == config and again.digest() == config.digest()

    def test_a_changed_field_with_the_old_digest_is_refused(self):
        config = make_config(n=8, threshold=5)
        fields = _fields(config)
        fields["threshold"] = 6
        with pytest.raises(MalformedMessageError, match="digest"):
            SecAggConfig.from_bytes(_pack(fields, config.digest()))

    def test_an_invalid_config_is_refused_as_malformed(self):
        config = make_config(n=8, threshold=5)
        fields = _fields(config)
        fields["threshold"] = 99
        with pytest.raises(MalformedMessageError, match="threshold"):
            SecAggConfig.from_bytes(_pack(fields, config.digest()))

    @pytest.mark.parametrize("mutate, match", [
        (lambda f, d: _pack(f, d, version=2), "version"),
        (lambda f, d: _pack({**f, "extra": 1}, d), "expected the fields"),
        (lambda f, d: _pack({k: v for k, v in f.items() if k != "bits"}, d), "expected the fields"),
        (lambda f, d: msgpack.packb(["other", 1, f, d]), "header"),
        (lambda f, d: b"\xc1", "not msgpack"),
        (lambda f, d: _pack({**f, "bits": "16"}, d), "bits must be an int"),
    ])
    def test_malformed_bytes_are_refused(self, mutate, match):
        config = make_config()
        with pytest.raises(MalformedMessageError, match=match):
            SecAggConfig.from_bytes(mutate(_fields(config), config.digest()))


class TestPolicy:
    def test_the_default_policy_accepts_a_planned_config(self):
        config = SecAggConfig.plan(100, 10, clip=1.0)
        assert SecAggConfig.from_bytes(config.to_bytes(), policy=ConfigPolicy()) == config

    @pytest.mark.parametrize("config, policy, match", [
        (make_config(n=6, threshold=3, consistency_check=False), ConfigPolicy(), "consistency_check"),
        (make_config(n=6, threshold=1, consistency_check=False),
         ConfigPolicy(require_consistency_check=False), "threshold=1 is not above"),
        (make_config(n=6, threshold=3), ConfigPolicy(min_clients=10), "num_clients=6"),
        (make_config(n=6, threshold=3), ConfigPolicy(min_threshold=4), "threshold=3 below 4"),
        (make_config(n=6, threshold=3), ConfigPolicy(fixed=(("vector_length", 100),)), "vector_length=3"),
        (make_config(n=6, threshold=3), ConfigPolicy(graphs=("harary",)), "graph='complete'"),
        (make_config(n=6, threshold=3), ConfigPolicy(ciphers=("aes256ctr",)), "cipher='chacha20'"),
    ])
    def test_a_config_outside_the_policy_is_refused_naming_the_field(self, config, policy, match):
        with pytest.raises(PolicyError, match=match):
            SecAggConfig.from_bytes(config.to_bytes(), policy=policy)
        with pytest.raises(PolicyError, match=match):
            config.check_policy(policy)

    def test_a_policy_pinning_an_unknown_field_is_refused(self):
        with pytest.raises(SecAggValueError, match="unknown config field"):
            ConfigPolicy(fixed=(("colour", 1),))

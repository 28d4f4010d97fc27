"""The server side for legacy ServerApps: a drop-in for Flower's ``SecAggPlusWorkflow``.

``DefaultWorkflow(fit_workflow=SecAggWorkflow(num_shares=..., reconstruction_threshold=...))``
runs each fit round through ``secure_round``: the legacy strategy's
``configure_fit`` picks the clients and their ``FitIns``, the nodes (a legacy
``ClientApp(client_fn=..., mods=[secagg_mod])``) fit when their masked input is
due, and ``aggregate_fit`` receives one ``FitRes`` holding the survivors'
weighted mean and their total example count (which never travelled in clear).

Parameter names follow ``SecAggPlusWorkflow`` where their meaning carries over:
``num_shares`` (a node's share holders including itself, so the graph degree is
``num_shares - 1``; a float is a fraction of the sampled nodes),
``reconstruction_threshold`` (shares needed to recover a secret; a float is a
fraction of ``num_shares``), ``clipping_range``, ``max_weight`` and ``timeout``.
What is unset is planned per round (graph degree, threshold, bit width and
scale) by ``secagg.planner``. ``quantization_range`` and ``modulus_range`` have
no counterpart: the bit width and scale are planned so the sum cannot wrap.
"""

from __future__ import annotations

import logging

import flwr.compat.common.recorddict_compat as compat
from flwr.common import Code, FitRes, Status
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.serverapp import Grid

from secagg.errors import SecAggTypeError, SecAggValueError, ensure
from secagg.flower.server import NodeDirectory, RoundReport, SecAggParams, secure_round

__all__ = ["SecAggWorkflow"]

_log = logging.getLogger("secagg.flower")


class SecAggWorkflow:
    """A fit workflow for ``DefaultWorkflow`` that aggregates with secagg (SecAgg / SecAgg+)."""

    def __init__(
        self,
        num_shares: int | float | None = None,
        reconstruction_threshold: int | float | None = None,
        *,
        max_weight: float = 1000.0,
        clipping_range: float = 8.0,
        timeout: float | None = None,
        quantization_range: int | None = None,
        modulus_range: int | None = None,
        params: SecAggParams | None = None,
    ) -> None:
        if quantization_range is not None or modulus_range is not None:
            raise SecAggValueError(
                "quantization_range and modulus_range have no counterpart in secagg: the bit width and "
                "fixed-point scale are planned so that the sum cannot wrap (set params=SecAggParams(bits=.., "
                "scale=..) to fix them)"
            )
        given = (("num_shares", num_shares), ("reconstruction_threshold", reconstruction_threshold))
        for name, value in given:
            ensure(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)),
                   f"{name} must be an int, a float or None", raising=SecAggTypeError)
        ensure(num_shares is None or num_shares > (0 if isinstance(num_shares, float) else 2),
               f"num_shares must be a fraction > 0 or an int > 2, got {num_shares!r}")
        if isinstance(reconstruction_threshold, float):
            ensure(0 < reconstruction_threshold <= 1, "a float reconstruction_threshold must be in (0, 1]")
        self.num_shares = num_shares
        self.reconstruction_threshold = reconstruction_threshold
        base = params or SecAggParams()
        fields = dict(clipping_range=clipping_range, max_weight=max_weight)
        if timeout is not None:
            fields.update(timeout=timeout, train_timeout=timeout)
        self.params = SecAggParams(**{**base.__dict__, **fields})
        self.directory = NodeDirectory()
        self.reports: list[RoundReport] = []

    def params_for(self, num_nodes: int) -> SecAggParams:
        """This round's parameters, with num_shares and reconstruction_threshold resolved for num_nodes."""
        if self.num_shares is None and self.reconstruction_threshold is None:
            return self.params
        shares = self.num_shares
        if isinstance(shares, float):
            shares = round(shares * num_nodes)
        degree = None if shares is None else max(2, min(int(shares) - 1, num_nodes - 1))
        if degree is not None and degree < num_nodes - 1 and degree % 2:
            degree += 1  # a Harary graph needs an even degree
        threshold = self.reconstruction_threshold
        if isinstance(threshold, float):
            base = degree if degree is not None else num_nodes - 1
            threshold = max(1, round(threshold * base))
        if threshold is not None and degree is not None and self.params.consistency_check:
            ensure(2 * threshold > degree,
                   f"reconstruction_threshold {threshold} is too low for {degree + 1} shares: with the "
                   f"consistency check, two disjoint groups of t could confirm different survivor sets; "
                   f"use at least {degree // 2 + 1}")
        return SecAggParams(**{**self.params.__dict__, "degree": degree, "threshold": threshold})

    def __call__(self, grid: Grid, context: LegacyContext) -> None:
        ensure(isinstance(context, LegacyContext), f"expected a LegacyContext, got {type(context).__name__}",
               raising=SecAggTypeError)
        current_round = context.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND]
        ensure(isinstance(current_round, int), "the workflow's current round must be an int")
        assert isinstance(current_round, int)
        parameters = compat.arrayrecord_to_parameters(
            context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
        chosen = context.strategy.configure_fit(current_round, parameters, context.client_manager)
        if not chosen:
            _log.info("configure_fit: no clients selected, round %s skipped", current_round)
            return
        proxies = {proxy.node_id: proxy for proxy, _ in chosen}
        contents = {proxy.node_id: compat.fitins_to_recorddict(fitins, True) for proxy, fitins in chosen}
        report = secure_round(
            grid, contents, params=self.params_for(len(contents)), arrays_key="fitins.parameters",
            weight_key="num_examples", group_id=str(current_round), directory=self.directory)
        self.reports.append(report)
        if not report.completed or report.arrays is None:
            _log.warning("round %s: no aggregate (%s); the model is unchanged", current_round,
                         report.aborted or "zero total weight")
            return
        metrics: dict[str, bool | bytes | float | int | str] = {
            k: v for k, v in report.metrics("num_examples").items()
            if k != "num_examples" and isinstance(v, (int, float))
        }
        fitres = FitRes(Status(Code.OK, "secure aggregate"),
                        compat.arrayrecord_to_parameters(report.arrays, keep_input=True),
                        num_examples=max(1, round(report.weight_sum)), metrics=metrics)
        aggregated, fit_metrics = context.strategy.aggregate_fit(
            current_round, [(proxies[report.survivors[0]], fitres)], [])
        if aggregated is not None:
            record = compat.parameters_to_arrayrecord(aggregated, True)
            context.state.array_records[MAIN_PARAMS_RECORD] = record
            context.history.add_metrics_distributed_fit(server_round=current_round, metrics=fit_metrics)

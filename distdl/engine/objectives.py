"""What `compile` resolves per model output: the loss, its weight, metrics, log names."""
from __future__ import annotations

from .. import losses as losses_mod
from .. import metrics as metrics_mod
from ..errors import ConfigError, finite_number

__all__ = ["Objective", "build_objectives", "compile_config"]


class Objective:
    """One model output's loss, loss weight, metrics and whether its gradient is fused.

    Args:
        name: the output layer's name ('' for a single-output model), which prefixes its logs.
        loss: the resolved `Loss`.
        weight: the loss's weight in the total loss.
        metrics: the resolved `Metric`s of this output.
        fused: whether the loss gradient is taken with respect to the output layer's
            pre-activation (a crossentropy fused with its softmax or sigmoid).
    """

    def __init__(self, name, loss, weight, metrics, fused):
        self.name = name          # output layer name ('' for a single-output model)
        self.loss = loss
        self.weight = float(weight)
        self.metrics = metrics
        self.fused = fused        # the loss gradient is taken w.r.t. the output layer's pre-activation

    def log_name(self, key: str) -> str:
        """The log key of `key` for this output: "dense_1_loss" on a multi-output model, else `key`.

        Args:
            key: "loss" or a metric's name.
        """
        return f"{self.name}_{key}" if self.name else key


def _per_output(value, names, what):
    """Spread a compile argument over outputs: one value, a list, or a dict by output name."""
    if isinstance(value, dict) and "class_name" not in value:  # a dict keyed by output name
        unknown = set(value) - set(names)
        if unknown:
            raise ConfigError(f"compile {what} names unknown output(s) {sorted(unknown)}; outputs are {names}.")
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)) and len(names) > 1:
        if len(value) != len(names):
            raise ConfigError(f"compile got {len(value)} {what} for a model with {len(names)} outputs.")
        return list(value)
    return [value] * len(names)


def build_objectives(output_layers, loss, metrics, loss_weights) -> list[Objective]:
    """Resolve compile's loss / metrics / loss_weights for each output layer.

    Args:
        output_layers: the model's output layers, in output order.
        loss: compile's `loss`: one for all outputs, a list, or a dict by output name.
        metrics: compile's `metrics`: one list for all outputs, a list of lists, or a dict.
        loss_weights: compile's `loss_weights` (None: 1 each), a list or a dict.
    """
    names = [layer.name for layer in output_layers]
    if loss is None:
        raise ConfigError("compile needs a loss, e.g. loss='categorical_crossentropy'.")
    per_loss = _per_output(loss, names, "losses")
    per_weight = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights")
    if isinstance(metrics, dict) and "class_name" not in metrics:
        per_metrics = _per_output(metrics, names, "metrics")
    elif len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) for m in metrics):
        per_metrics = list(metrics)
    else:
        per_metrics = [metrics] * len(names)
    single = len(names) == 1
    objectives = []
    for layer, name, lo, w, ms in zip(output_layers, names, per_loss, per_weight, per_metrics):
        if lo is None:
            raise ConfigError(f"compile has no loss for output {name!r}.")
        lo = losses_mod.get(lo)
        ms = [] if ms is None else (ms if isinstance(ms, (list, tuple)) else [ms])
        act = getattr(layer, "activation", None)
        # an activity regularizer's gradient is w.r.t. the activation's output, so it rules out fusing
        fused = (getattr(lo, "fused_activation", None) is not None and act is not None
                 and hasattr(layer, "backward_preactivation") and act.name == lo.fused_activation
                 and layer.activity_regularizer is None)
        if single and isinstance(w, (list, tuple)) and len(w) == 1:
            w = w[0]  # loss_weights=[0.5] for the one output
        what = "compile loss_weights" + ("" if single else f"[{name!r}]")
        w = 1.0 if w is None else finite_number(what, w)
        mets = [metrics_mod.get(m) for m in ms]
        for m in mets:  # a metric sized by the output (F1Score, R2Score) sizes its state before training
            m.build_for_output(getattr(layer, "output_shape", None))
        objectives.append(Objective("" if single else name, lo, w, mets, fused))
    return objectives


def compile_config(loss, metrics, loss_weights) -> dict:
    """A JSON-able record of compile's arguments (for checkpoints); names only.

    Args:
        loss: compile's `loss`.
        metrics: compile's `metrics`.
        loss_weights: compile's `loss_weights`.
    """
    def ser(v, fn):
        if isinstance(v, str):
            return v
        if isinstance(v, dict) and "class_name" not in v:
            return {k: ser(x, fn) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [ser(x, fn) for x in v]
        return None if v is None else fn(v)
    return {"loss": ser(loss, losses_mod.serialize), "metrics": ser(metrics, metrics_mod.serialize),
            "loss_weights": loss_weights}

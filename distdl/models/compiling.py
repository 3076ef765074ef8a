"""`ModelCompile`, a part of `Model`: `compile`, which gives a model the optimizer, losses and
metrics it trains with, and what compile leaves behind (`compiled`, `metrics_names`).

A model compiled before it is built (a Sequential with no input shape yet) checks the names now
and resolves them into objectives (distdl.engine.objectives) when it is built. The class is a
mixin: it reads the model's `built`, `output_layers`, `params`, `trainable_arena`,
`_maybe_build` and `_repack` (distdl.models.model and distdl.models.weights).
"""
from __future__ import annotations

from .. import losses
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..engine.objectives import build_objectives, compile_config
from ..errors import ConfigError

__all__ = ["ModelCompile"]


class ModelCompile:
    """The compile step of a `Model` (mixed into it): optimizer, losses, loss weights, metrics."""

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """Configure the model for training: the optimizer, loss(es), loss weights and metrics.

        Args:
            optimizer: an optimizer name ("adam", "sgd", ...) or instance (distdl.optimizers).
            loss: a loss name, function or `Loss` instance; a model with several outputs takes a
                list (one per output) or a dict keyed by output layer name.
            loss_weights: scalars weighting each output's loss in the total that is minimised;
                a list or a dict as `loss` is.
            metrics: metric names, functions or `Metric` instances evaluated during training
                and testing (e.g. ["accuracy"]); per output as a list of lists or a dict.
            weighted_metrics: refused: distdl's metrics already use fit's `sample_weight`.
            **kwargs: Keras's `run_eagerly`, `jit_compile`, `steps_per_execution` and
                `auto_scale_loss` are accepted and ignored; anything else is refused.
        """
        unsupported = set(kwargs) - {"run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"}
        if unsupported:
            raise ConfigError(f"compile got unknown argument(s): {', '.join(sorted(unsupported))}.")
        if weighted_metrics:
            raise ConfigError("compile(weighted_metrics=...) is not supported; metrics already take "
                              "fit's sample_weight into account.")
        self._maybe_build()
        self._repack()
        self.optimizer = optimizers_mod.get(optimizer)
        self._compile_args = (loss, metrics, loss_weights)
        self.compile_config = compile_config(loss, metrics, loss_weights)
        self.compile_config["optimizer"] = optimizers_mod.serialize(self.optimizer)
        if self.built:
            self._resolve_compile()
        else:  # deferred Sequential: at least check the names now
            for lo in loss.values() if isinstance(loss, dict) else (loss if isinstance(loss, (list, tuple)) else [loss]):
                losses.get(lo)
            for m in metrics or []:
                if not isinstance(m, (list, tuple, dict)):
                    metrics_mod.get(m)

    def _resolve_compile(self) -> None:
        """Build the objectives for the output layers and the optimizer for the trainable arena
        (at compile, or at the build a deferred Sequential's compile waited for)."""
        loss, metrics, loss_weights = self._compile_args
        self.objectives = build_objectives(self.output_layers, loss, metrics, loss_weights)
        self.optimizer.build(self.params.size, self.params.dtype, self.trainable_arena.segments(),
                             [v.value.shape for v in self.trainable_arena.variables])
        self._compiled_arena = self.trainable_arena

    @property
    def compiled(self) -> bool:
        """Whether `compile` has been called."""
        return self._compile_args is not None

    @property
    def metrics_names(self) -> list[str]:
        """The names `evaluate` returns values for, in order: "loss", per-output losses, metrics."""
        names = ["loss"]
        if self.objectives and len(self.objectives) > 1:
            names += [o.log_name("loss") for o in self.objectives]
        for o in self.objectives or []:
            names += [o.log_name(m.name) for m in o.metrics]
        return names

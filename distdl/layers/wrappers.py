"""Layer wrappers: TimeDistributed (a layer on every time step) and Bidirectional (an RNN both ways)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from .base import Layer, deserialize, serialize

__all__ = ["TimeDistributed", "Bidirectional"]


def _passed_down(attr: str) -> property:
    """An attribute that, when set on a wrapper, is set on its inner layers too."""
    private = "_" + attr

    def set_(self, value):
        setattr(self, private, value)
        for layer in self._inner:
            setattr(layer, attr, value)

    return property(lambda self: getattr(self, private), set_)


class _Wrapper(Layer):
    """Shares its inner layers' variables and run context."""

    ctx = _passed_down("ctx")
    stream_id = _passed_down("stream_id")

    def __init__(self, **kwargs):
        self._inner: list[Layer] = []
        super().__init__(**kwargs)

    def _adopt(self, *layers):
        self._inner = list(layers)
        for layer in layers:
            layer.ctx, layer.stream_id = self.ctx, self.stream_id

    def select_call(self, slot: int) -> None:
        """The inner layers run in the wrapper's call slot (a shared wrapper calls them once per call)."""
        for layer in self._inner:
            layer.select_call(slot)

    def call_state(self):
        return self.cache, [layer.call_state() for layer in self._inner]

    def set_call_state(self, state) -> None:
        self.cache, inner = state
        for layer, s in zip(self._inner, inner):
            layer.set_call_state(s)

    def _collect_variables(self):
        self.variables = [v for layer in self._inner for v in layer.variables]


class TimeDistributed(_Wrapper):
    """Applies `layer` to every step of (batch, T, ...) by folding T into the batch axis.

    Args:
        layer: the layer to apply to each step (its weights are shared across steps).
        **kwargs: the base `Layer` arguments.
    """

    supports_masking = True   # as in Keras 3: a (batch, T) mask passes through

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise ConfigError(f"TimeDistributed needs a Layer instance, got {type(layer).__name__}.")
        self.layer = layer
        self._adopt(layer)

    def build(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 2:
            raise ShapeError(f"TimeDistributed layer {self.name!r} needs inputs of shape "
                             f"(batch, timesteps, ...), got {input_shape}.")
        self.layer.ensure_built(tuple(input_shape[1:]))
        self._collect_variables()

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(tuple(input_shape[1:]))
        return (input_shape[0],) + tuple(inner)

    def forward(self, x, training=False):
        B, T = x.shape[:2]
        y = self.layer.forward(x.reshape((B * T,) + x.shape[2:]), training=training)
        self.cache = (B, T, x.shape)
        return y.reshape((B, T) + y.shape[1:])

    def backward(self, dy):
        B, T, xshape = self.cache
        dx = self.layer.backward(dy.reshape((B * T,) + dy.shape[2:]))
        return None if dx is None else dx.reshape(xshape)

    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = serialize(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        return cls(**config)


_MERGE_MODES = ("concat", "sum", "mul", "ave")


def _renamed_copy(layer: Layer, prefix: str, **overrides) -> Layer:
    """A fresh layer built from `layer`'s config, named prefix + name (Keras's forward_/backward_)."""
    spec = serialize(layer)
    cfg = dict(spec["config"])
    name = cfg.get("name", layer.name)
    cfg["name"] = prefix + (name[len(prefix):] if name.startswith(prefix) else name)
    cfg.update(overrides)
    return deserialize({"class_name": spec["class_name"], "config": cfg})


class Bidirectional(_Wrapper):
    """Runs an RNN forwards and a go_backwards copy, merging their outputs.

    Weights: the forward layer's, then the backward layer's. With return_state the
    outputs are [merged..., forward states..., backward states...]. A mask reaches both
    RNNs; as in Keras, their outputs at masked steps are zeros when returning sequences.

    Args:
        layer: the recurrent layer to run forwards (a fresh copy of it runs backwards).
        merge_mode: 'concat' (last axis), 'sum', 'mul', 'ave', or None (a list [forward, backward]).
        backward_layer: the recurrent layer to run backwards instead of a copy of `layer`.
        **kwargs: the base `Layer` arguments.
    """

    supports_masking = True
    takes_mask = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer) or not hasattr(layer, "go_backwards"):
            raise ConfigError(f"Bidirectional needs a recurrent layer, got {type(layer).__name__}.")
        if merge_mode is not None and merge_mode not in _MERGE_MODES:
            raise ConfigError(f"Bidirectional merge_mode must be one of {', '.join(_MERGE_MODES)} or None, "
                              f"got {merge_mode!r}.")
        self.merge_mode = merge_mode
        zero = layer.return_sequences    # Keras forces zero_output_for_mask to return_sequences
        self.forward_layer = _renamed_copy(layer, "forward_", zero_output_for_mask=zero)
        self._custom_backward = backward_layer is not None
        if backward_layer is None:
            self.backward_layer = _renamed_copy(layer, "backward_", go_backwards=not layer.go_backwards,
                                                zero_output_for_mask=zero)
        else:
            for attr in ("return_sequences", "return_state"):
                if getattr(backward_layer, attr) != getattr(layer, attr):
                    raise ConfigError(f"Bidirectional layer {self.name!r}: backward_layer {attr}="
                                      f"{getattr(backward_layer, attr)} differs from the forward layer's.")
            if backward_layer.go_backwards == layer.go_backwards:
                raise ConfigError(f"Bidirectional layer {self.name!r}: backward_layer must have the opposite "
                                  f"go_backwards of the forward layer.")
            self.backward_layer = backward_layer
            backward_layer.zero_output_for_mask = zero
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.backward_layer.lane_offset = 2     # its dropout masks differ from the forward copy's
        self._adopt(self.forward_layer, self.backward_layer)

    def build(self, input_shape):
        self.forward_layer.ensure_built(input_shape)
        self.backward_layer.ensure_built(input_shape)
        self._collect_variables()

    def _merge_shape(self, a, b):
        if self.merge_mode == "concat":
            return tuple(a[:-1]) + (a[-1] + b[-1],)
        return tuple(a)

    def compute_output_shape(self, input_shape):
        f = self.forward_layer.compute_output_shape(input_shape)
        b = self.backward_layer.compute_output_shape(input_shape)
        fo, fs = (f[0], list(f[1:])) if self.return_state else (f, [])
        bo, bs = (b[0], list(b[1:])) if self.return_state else (b, [])
        outs = [fo, bo] if self.merge_mode is None else [self._merge_shape(fo, bo)]
        if self.return_state or self.merge_mode is None:
            return outs + fs + bs
        return outs[0]

    def compute_mask(self, inputs, mask):
        """Keras's rule: the input mask on each returned sequence, none on last outputs and states.

        Args:
            inputs: the input sequence.
            mask: its (batch, timesteps) mask, or None.
        """
        out = mask if self.return_sequences else None
        masks = [out, out] if self.merge_mode is None else [out]
        return masks if (self.return_state or self.merge_mode is None) else out

    def forward(self, x, training=False, mask=None):
        f = self.forward_layer.forward(x, training=training, mask=mask)
        b = self.backward_layer.forward(x, training=training, mask=mask)
        fo, fs = (f[0], f[1:]) if self.return_state else (f, [])
        bo, bs = (b[0], b[1:]) if self.return_state else (b, [])
        if self.return_sequences:
            bo = bo[:, ::-1]                 # back to input time order
        self.cache = (fo, bo)
        m = self.merge_mode
        if m is None:
            outs = [fo, np.ascontiguousarray(bo)]
        elif m == "concat":
            outs = [np.concatenate([fo, bo], axis=-1)]
        elif m == "sum":
            outs = [fo + bo]
        elif m == "mul":
            outs = [fo * bo]
        else:
            outs = [(fo + bo) * 0.5]
        if self.return_state or m is None:
            return outs + list(fs) + list(bs)
        return outs[0]

    def backward(self, dy):
        fo, bo = self.cache
        m = self.merge_mode
        dys = list(dy) if (self.return_state or m is None) else [dy]
        n_out = 2 if m is None else 1
        d_outs, d_states = dys[:n_out], dys[n_out:]
        ns = len(d_states) // 2
        if m is None:
            dfo, dbo = d_outs
        else:
            d = d_outs[0]
            if d is None:
                dfo = dbo = None
            elif m == "concat":
                k = fo.shape[-1]
                dfo, dbo = d[..., :k], d[..., k:]
            elif m == "sum":
                dfo, dbo = d, d
            elif m == "mul":
                dfo, dbo = d * bo, d * fo
            else:
                dfo = dbo = d * 0.5
        if dbo is not None and self.return_sequences:
            dbo = dbo[:, ::-1]
        df = [dfo] + d_states[:ns] if self.return_state else dfo
        db = [dbo] + d_states[ns:] if self.return_state else dbo
        df = self._fill_none(df, fo)
        db = self._fill_none(db, bo)
        return self.forward_layer.backward(df) + self.backward_layer.backward(db)

    def _fill_none(self, d, like):
        """A zero gradient where the upstream gave None for the main output (states may stay None)."""
        if isinstance(d, list):
            return [np.zeros_like(like) if d[0] is None else np.ascontiguousarray(d[0])] + d[1:]
        return np.zeros_like(like) if d is None else np.ascontiguousarray(d)

    def get_config(self):
        cfg = super().get_config()
        inner = serialize(self.forward_layer)
        cfg.update(layer=inner, merge_mode=self.merge_mode,
                   backward_layer=serialize(self.backward_layer) if self._custom_backward else None)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"])
        return cls(**config)

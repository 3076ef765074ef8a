"""`Model`: a functional model over symbolic tensors, or a subclassed one traced from `call`;
building, compiling, weights, summary, config and saving. `Sequential` extends it.

The loops behind `fit` / `evaluate` / `predict` live in `distdl.engine.loops`; the files behind
`save` / `save_weights` in `distdl.saving`.
"""
from __future__ import annotations

import json

import numpy as np

from .. import losses
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..arena import Arena, assign_values
from ..comm import SerialComm
from ..engine import loops
from ..engine.graph import Graph
from ..engine.inputs import as_input_list
from ..engine.objectives import build_objectives, compile_config
from ..engine.summary import summary_lines
from ..engine.train_state import TrainState
from ..errors import ConfigError
from ..layers.base import Layer, RunContext, SymbolicTensor, deserialize, serialize, unique_name
from ..layers.core import Input, InputLayer
from ..registry import custom_object_scope
from ..saving import keras_graph, model_io
from .nested import _NestedLayer, batchless, is_symbolic

_SUBCLASSES: dict[str, type] = {}  # distdl's own Model subclasses by class name (a user's: never by name)


def _arena_array(name: str, doc: str) -> property:
    """`model.params` / `model.grads`: the trainable arena's own flat array (None before build).
    In-place operations (`model.params += x`) work; rebinding it is refused, as the layers'
    weights and the optimizer view the arena wherever the update strategy put it."""
    def get(model):
        arena = model.trainable_arena
        return None if arena is None else getattr(arena, name)

    def put(model, value):
        if value is not get(model):
            raise AttributeError(f"model.{name} is the arena itself and cannot be replaced; "
                                 f"assign into it instead (model.{name}[...] = values).")
    return property(get, put, doc=doc)


class Model(_NestedLayer):
    """A functional model: `Model(inputs, outputs)` over symbolic tensors from `Input`; also a
    layer (distdl.models.nested), so models nest in models."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("distdl."):  # Sequential: from_config finds it by name
            _SUBCLASSES.setdefault(cls.__name__, cls)

    params = _arena_array("params", "The trainable weights, flat (P,), that every weight views.")
    grads = _arena_array("grads", "The gradient arena, flat (P,), that backward writes.")

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or unique_name("functional" if inputs is not None else "model")
        self.ctx = RunContext()
        self.optimizer = None
        self.objectives = None
        self.train_state = TrainState()  # `fit` replaces it with the state of its loop
        self.history = None
        self.built = False
        self.comm = SerialComm()  # until a fit, evaluate or predict is given or picks another
        self._compile_args = self._compiled_arena = None
        self.trainable_arena = self.state_arena = self.state = None
        self.layers = []  # a subclassed model gets its layers when `build` traces `call`
        if inputs is not None:
            ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            for t in ins + outs:
                if not isinstance(t, SymbolicTensor):
                    raise ConfigError(f"Model inputs and outputs must come from distdl.layers.Input and "
                                      f"layer calls, got {type(t).__name__}.")
            self._build_graph(ins, outs)

    @property
    def stop_training(self) -> bool:
        """Keras's flag: a callback sets it to end `fit` after the current step or epoch.
        It is the stop flag of `train_state`, the loop's state."""
        return self.train_state.stop

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        self.train_state.stop = bool(value)

    # ----- structure -----------------------------------------------------
    def build(self, input_shape):
        """Subclassed models: trace `call` on a symbolic input of `input_shape` (Keras's
        `(None, ...)` with the batch axis, or distdl's without) into a graph."""
        if self.built:
            return
        input_shape = batchless(input_shape)
        if not callable(getattr(self, "call", None)):
            raise ConfigError(f"Model {self.name!r} has no inputs: build it with Model(inputs, outputs), "
                              f"or subclass Model and define call(inputs).")
        inp = Input(shape=tuple(input_shape))
        self._traced_losses = []
        out = self.call(inp)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        if not all(isinstance(t, SymbolicTensor) for t in outs):
            raise ConfigError(f"{type(self).__name__}.call must only apply distdl layers and ops to its "
                              f"inputs (it returned {type(outs[0]).__name__}).")
        self._build_graph([inp], outs, self._traced_losses)

    def add_loss(self, loss) -> None:
        """Keras's `add_loss`: in a subclassed model's `call`, a tensor of the traced graph whose
        sum joins the training loss (see Layer.add_loss)."""
        if isinstance(loss, SymbolicTensor):
            self.__dict__.setdefault("_traced_losses", []).append(loss)
        else:
            super().add_loss(loss)

    def _build_graph(self, ins, outs, losses=()):
        """Trace the layer calls from `ins` to `outs` (and to `losses`) and pack the weights."""
        for t in outs:
            if not t.batched:
                raise ConfigError(f"Model output from {t.layer.name!r} has no batch axis (an op reduced it "
                                  f"away); give it to add_loss, or keep the batch axis.")
        self._inputs, self._outputs = ins, outs
        self.executor = Graph(ins, outs, losses)
        self.layers = [t.layer for t in ins] + self.executor.layers
        self._finish_build()

    @property
    def input_shapes(self):
        return [t.shape for t in self._inputs]

    @property
    def output_layers(self):
        return [t.layer for t in self._outputs]

    @property
    def output_shapes(self):
        return [t.shape for t in self._outputs]

    def _finish_build(self):
        """Pack every weight into the arenas and hand each layer the shared context."""
        for i, layer in enumerate(self.layers):
            layer.ctx = self.ctx
            layer.stream_id = i
        self._pack()
        self.built = True
        if self._compile_args is not None:
            self._resolve_compile()

    def _variables(self) -> list:
        """Every variable of the model's layers once, in layer order (nested models' included)."""
        seen, out = set(), []
        for layer in self.layers:
            for v in layer.variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    def _trainable_ids(self) -> set:
        """The variables the layers call trainable now (a frozen layer or model: none of its)."""
        return {id(v) for layer in self.layers for v in layer.trainable_weights}

    def _pack(self) -> None:
        """Put the trainable variables (as `trainable` says now) in the trainable arena and the
        rest in the state arena, keeping their values. A frozen weight gets a private gradient
        buffer: its layer's backward may still write one, and nothing reads it."""
        variables, train = self._variables(), self._trainable_ids()
        dtype = self.layers[-1].dtype if self.layers else "float32"
        self.trainable_arena = Arena([v for v in variables if id(v) in train], dtype)
        self.state_arena = Arena([v for v in variables if id(v) not in train], dtype, with_grads=False)
        for v in self.state_arena.variables:
            if v.declared_trainable:
                v.grad = np.zeros_like(v.value)
        self.state = self.state_arena.params
        self.regularized = [v for v in self.trainable_arena.variables if v.regularizer is not None]
        self.constrained = [v for v in self.trainable_arena.variables if v.constraint is not None]

    def _pack_stale(self) -> bool:
        """Whether the arenas no longer say what is trainable (a `trainable` set since the pack),
        or another model (one this model is nested in) packed the same weights since."""
        variables, train = self._variables(), self._trainable_ids()
        for arena, want in ((self.trainable_arena, True), (self.state_arena, False)):
            if [id(v) for v in variables if (id(v) in train) == want] != [id(v) for v in arena.variables]:
                return True
            if not all(np.may_share_memory(v.value, arena.params) for v in arena.variables):
                return True
        return False

    def _repack(self) -> None:
        """Re-pack the arenas if they are stale (values kept); `compile` does it, and so do the
        calls that map the arenas onto files, so a file always matches the flags it records."""
        if self.built and self._pack_stale():
            self._pack()

    def _check_packed(self) -> None:
        """`fit` trains the arena `compile` prepared the optimizer for; refuse a changed one."""
        if self.built and self.compiled and (self._pack_stale() or self.trainable_arena is not self._compiled_arena):
            raise ConfigError(f"The trainable weights of model {self.name!r} changed since compile() "
                              f"(a layer's trainable flag was set); call compile() again, as Keras "
                              f"requires, for the change to take effect.")

    def connections(self) -> dict:
        """Layer name -> Keras's `layer[call][output]` for each tensor feeding it (functional only)."""
        if not isinstance(getattr(self, "executor", None), Graph):
            return {}
        call_of, calls = {}, {}  # a shared layer's n-th call is its node n, as Keras numbers them
        for n in self.executor.nodes:
            calls[id(n.layer)] = calls.get(id(n.layer), -1) + 1
            call_of.update((id(t), calls[id(n.layer)]) for t in n.outputs)
        conn = {}
        for n in self.executor.nodes:
            conn.setdefault(n.layer.name, []).extend(
                f"{t.layer.name}[{call_of.get(id(t), 0)}][{t.index}]" for t in n.inputs)
        return conn

    # ----- compile ---------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """Set the optimizer, loss(es), loss weights and metrics (Keras 3's argument order)."""
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

    def _resolve_compile(self):
        loss, metrics, loss_weights = self._compile_args
        self.objectives = build_objectives(self.output_layers, loss, metrics, loss_weights)
        self.optimizer.build(self.params.size, self.params.dtype, self.trainable_arena.segments(),
                             [v.value.shape for v in self.trainable_arena.variables])
        self._compiled_arena = self.trainable_arena

    @property
    def compiled(self) -> bool:
        return self._compile_args is not None

    @property
    def metrics_names(self) -> list[str]:
        names = ["loss"]
        if self.objectives and len(self.objectives) > 1:
            names += [o.log_name("loss") for o in self.objectives]
        for o in self.objectives or []:
            names += [o.log_name(m.name) for m in o.metrics]
        return names

    # ----- training entry points (see distdl.training) ----------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_update=1, comm=None):
        """Train for `epochs` epochs (the final epoch's index); returns the `History`."""
        self._check_packed()
        return loops.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                   validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                   class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
                   steps_per_update=steps_per_update, comm=comm)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 callbacks=None, return_dict=False, comm=None):
        """Loss and metrics over (x, y): `[loss, *metrics]`, or a dict with return_dict."""
        return loops.evaluate(self, x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                        callbacks=callbacks, return_dict=return_dict, comm=comm)

    def predict(self, x, batch_size=None, verbose="auto", callbacks=None, comm=None):
        """Model outputs for `x` (every rank gets all rows, in order)."""
        return loops.predict(self, x, batch_size=batch_size, verbose=verbose, callbacks=callbacks, comm=comm)

    def __call__(self, x, training=False):
        """On SymbolicTensors: a layer call (the model nested in the calling one); on arrays:
        an eager forward (like calling a Keras model on a tensor)."""
        if is_symbolic(x):
            return self.symbolic_call(x)
        self._maybe_build()
        if not self.built and callable(getattr(self, "call", None)):
            self.build(tuple(np.shape(x[0] if isinstance(x, (list, tuple)) else x)[1:]))
        xs = as_input_list(self, x, check=True)
        outs = self.executor.forward(xs, training=training)
        return outs[0] if len(outs) == 1 else outs

    # ----- weights -------------------------------------------------------
    def _maybe_build(self):
        """Build a Sequential whose input shape is known (Keras builds it eagerly too)."""
        if not self.built and getattr(self, "_pending_input", None) is not None:
            self.build()

    @property
    def weights(self):
        self._maybe_build()
        return [v for layer in self.layers for v in layer.weights]

    @property
    def trainable_weights(self):
        self._maybe_build()
        return [v for layer in self.layers for v in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        self._maybe_build()
        return [v for layer in self.layers for v in layer.non_trainable_weights]

    def get_weights(self) -> list:
        return [v.value.copy() for v in self.weights]

    def set_weights(self, arrays) -> None:
        assign_values(self.weights, arrays, f"Model {self.name!r}")

    def count_params(self) -> int:
        self._maybe_build()
        return int(sum(layer.count_params() for layer in self.layers))

    def dtype_itemsize(self) -> int:
        return np.dtype(self.params.dtype).itemsize if self.params is not None else 4

    def get_layer(self, name=None, index=None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ConfigError(f"No layer named {name!r}; layers are: {', '.join(l.name for l in self.layers)}.")

    def summary(self, line_length=None, print_fn=None):
        """Print the Keras-style table (rank 0 only under MPI)."""
        self._require_built("summary")
        text = "\n".join(summary_lines(self, line_length))
        if print_fn is not None:
            print_fn(text)
        elif model_io.ranks_of(self).rank == 0:  # the job's rank 0, even before any fit
            print(text)

    def _require_built(self, what):
        self._maybe_build()
        if not self.built:
            raise ConfigError(f"Model {self.name!r} is not built yet: give the first layer an input_shape "
                              f"(or add an Input) or call fit/predict before {what}().")

    # ----- config ----------------------------------------------------------
    def get_config(self) -> dict:
        """Architecture as JSON-able data: layers plus the calls that connect them."""
        index = {}
        calls = []
        for t in self._inputs:
            index[id(t)] = (len(calls), 0)
            calls.append({"layer": t.layer.name, "inputs": [], "list_input": False})
        for n in self.executor.nodes:
            for j, t in enumerate(n.outputs):
                index[id(t)] = (len(calls), j)
            calls.append({"layer": n.layer.name, "inputs": [list(index[id(t)]) for t in n.inputs],
                          "list_input": n.list_input})
        return {"name": self.name, "layers": [serialize(layer) for layer in self.layers], "calls": calls,
                "inputs": [list(index[id(t)]) for t in self._inputs],
                "outputs": [list(index[id(t)]) for t in self._outputs]}

    def to_json(self, **kwargs) -> str:
        """Keras 3's JSON model config (architecture only; `distdl.models.model_from_json` reads it)."""
        self._require_built("to_json")
        return json.dumps(keras_graph.model_to_keras(self), **kwargs)

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """The model `get_config` describes; its users' layer classes come from `custom_objects` or
        the registry (distdl.registry)."""
        if custom_objects:
            with custom_object_scope(custom_objects):
                return cls.from_config(config)
        if "calls" not in config:
            return _SUBCLASSES["Sequential"].from_config(config)  # a Sequential's config
        layers = {spec["config"]["name"]: deserialize(spec) for spec in config["layers"]}
        produced = []
        for call in config["calls"]:
            layer = layers[call["layer"]]
            if isinstance(layer, InputLayer):
                out = SymbolicTensor(layer.output_shape, layer, [], 0, layer.dtype)
            else:
                args = [produced[i][j] for i, j in call["inputs"]]
                out = layer(args if call["list_input"] else args[0])
            produced.append(out if isinstance(out, list) else [out])
        pick = lambda refs: [produced[i][j] for i, j in refs]
        return Model(pick(config["inputs"]), pick(config["outputs"]), name=config.get("name"))

    # ----- saving (HDF5; see distdl.saving) ---------------------------------
    def save(self, filepath, overwrite=True):
        """Architecture, weights, optimizer state: Keras 3's archive for `*.keras`, else distdl's HDF5.
        Under MPI rank 0 writes and every rank returns once the file is in place (call it on all)."""
        self._repack()
        model_io.save_model(self, filepath, overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Weights only; a `.weights.h5` path gets the Keras 3 layout. Collective as `save`."""
        self._repack()
        model_io.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath):
        """Load weights from a distdl checkpoint or a Keras 3 `.weights.h5` file."""
        self._maybe_build()
        self._repack()
        model_io.load_weights(self, filepath)


"""`Model`: a functional model over symbolic tensors, or a subclassed one traced from `call`;
building, training, summary, config and saving. `Sequential` extends it. Its weights and
arenas are `ModelWeights` (distdl.models.weights), its compile `ModelCompile`
(distdl.models.compiling).

The loops behind `fit` / `evaluate` / `predict` live in `distdl.engine.loops`; the files behind
`save` / `save_weights` in `distdl.saving`.
"""
from __future__ import annotations

import json

import numpy as np

from ..comm import SerialComm
from ..engine import loops
from ..engine.graph import Graph
from ..engine.inputs import as_input_list
from ..engine.summary import summary_lines
from ..engine.train_state import TrainState
from ..errors import ConfigError
from ..layers.base import RunContext, SymbolicTensor, serialize, unique_name
from ..layers.core import Input, InputLayer
from ..registry import custom_object_scope
from ..saving import keras_graph, model_io
from .batch_calls import ModelBatchCalls
from .compiling import ModelCompile
from .layer_configs import layers_from_config
from .nested import _NestedLayer, batchless, is_symbolic
from .weights import ModelWeights

__all__ = ["Model"]

_SUBCLASSES: dict[str, type] = {}  # distdl's own Model subclasses by class name (a user's: never by name)


class Model(ModelCompile, ModelWeights, ModelBatchCalls, _NestedLayer):
    """A functional model: `Model(inputs, outputs)` over symbolic tensors from `Input`; also a
    layer (distdl.models.nested), so models nest in models. Subclass it and define `call` for a
    subclassed model, traced into a graph when first built.

    Args:
        inputs: the `Input` tensor, or a list of them (None for a subclassed model).
        outputs: the tensor (or list of tensors) the layer calls from `inputs` produce.
        name: the model's name (default: a unique "functional"/"model" name).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("distdl."):  # Sequential: from_config finds it by name
            _SUBCLASSES.setdefault(cls.__name__, cls)

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
    def build(self, input_shape) -> None:
        """Subclassed models: trace `call` on a symbolic input into a graph (a no-op once built).

        Args:
            input_shape: one sample's shape, as Keras's `(None, ...)` with the batch axis or
                distdl's without it.
        """
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
        sum joins the training loss (see Layer.add_loss).

        Args:
            loss: a symbolic tensor of the traced graph, or what `Layer.add_loss` takes.
        """
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
    def input_shapes(self) -> list:
        """Each input's sample shape (no batch axis), in input order."""
        return [t.shape for t in self._inputs]

    @property
    def output_layers(self) -> list:
        """The layers that produce the model's outputs, in output order."""
        return [t.layer for t in self._outputs]

    @property
    def output_shapes(self) -> list:
        """Each output's sample shape (no batch axis), in output order."""
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

    # ----- training entry points (see distdl.training) ----------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, validation_steps=None, validation_batch_size=None,
            validation_freq=1, steps_per_update=1, comm=None):
        """Train the model for a fixed number of epochs, data-parallel over `comm`'s ranks.

        Every rank passes the same data (or, for an HDF5 array, the same file); each global
        batch of `batch_size` rows is split across the ranks, so N ranks follow the one-process
        trajectory.

        Args:
            x: the input data: an array, or a list (dict by input name) of arrays for a model with
                several inputs; an HDF5 dataset is read a batch at a time.
            y: the target data, one array per output like `x`.
            batch_size: rows per gradient update, over all ranks together (default 32).
            epochs: the index of the epoch to stop after: training runs from `initial_epoch` to
                `epochs`, one pass over the data each.
            verbose: "auto" (= 1), 0 (silent), 1 (progress bar) or 2 (one line per epoch);
                rank 0 prints.
            callbacks: `Callback` instances to call during training (distdl.callbacks).
            validation_split: the fraction (0 to 1) of the rows, taken from the end of `x` and `y`
                before shuffling, held out to evaluate after each epoch.
            validation_data: `(x_val, y_val)` or `(x_val, y_val, val_sample_weights)` to evaluate
                after each epoch; it overrides `validation_split`.
            shuffle: whether to shuffle the rows before each epoch (one order for all ranks).
            class_weight: a dict from class index to a weight for its rows' loss (training only).
            sample_weight: a weight per row of `x` (a 1-D array) for its loss (training only).
            initial_epoch: the epoch to start at (resuming an earlier run).
            validation_steps: evaluate at most this many validation batches each time (None: all).
            validation_batch_size: rows per validation batch (None: `batch_size`).
            validation_freq: validate after every `validation_freq` epochs (1: each epoch), as
                Keras 3's integer form.
            steps_per_update: micro-batches whose gradients are summed before each optimizer
                update (gradient accumulation; 1 updates after every batch).
            comm: the communicator to train over (distdl.comm); default: the world of an MPI
                launch, or one process.

        Returns:
            The `History` callback, whose `history` holds each epoch's logs.
        """
        self._check_packed()
        return loops.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                   validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                   class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
                   validation_steps=validation_steps, validation_batch_size=validation_batch_size,
                   validation_freq=validation_freq, steps_per_update=steps_per_update, comm=comm)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 callbacks=None, return_dict=False, comm=None):
        """The loss and metrics over (x, y), in batches, every rank getting the global values.

        Args:
            x: the input data, as `fit` takes it.
            y: the target data, as `fit` takes it.
            batch_size: rows per batch over all ranks (default 32).
            verbose: "auto" (= 1), 0 (silent), 1 (progress bar) or 2 (one line at the end);
                rank 0 prints.
            sample_weight: a weight per row for the loss and metrics.
            callbacks: `Callback` instances to call during evaluation.
            return_dict: return a dict from metric name to value instead of a list.
            comm: the communicator to evaluate over (as `fit`'s).

        Returns:
            The loss (a scalar when there are no metrics) or `[loss, *metrics]` in the order of
            `metrics_names`; a dict with `return_dict`.
        """
        return loops.evaluate(self, x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                        callbacks=callbacks, return_dict=return_dict, comm=comm)

    def predict(self, x, batch_size=None, verbose="auto", callbacks=None, comm=None):
        """The model's outputs for `x`, in batches split across the ranks.

        Args:
            x: the input data, as `fit` takes it.
            batch_size: rows per batch over all ranks (default 32).
            verbose: "auto" (= 1), 0 (silent), 1 (progress bar) or 2 (one line at the end);
                rank 0 prints.
            callbacks: `Callback` instances to call during prediction.
            comm: the communicator to predict over (as `fit`'s).

        Returns:
            An array (a list, one per output) with a row per row of `x`, in order, on every rank.
        """
        return loops.predict(self, x, batch_size=batch_size, verbose=verbose, callbacks=callbacks, comm=comm)

    def __call__(self, x, training=False):
        """On SymbolicTensors: a layer call (the model nested in the calling one); on arrays:
        an eager forward (like calling a Keras model on a tensor).

        Args:
            x: symbolic tensors, or the input arrays (a list for several inputs).
            training: run layers in training mode (Dropout drops, BatchNormalization uses the
                batch's statistics).
        """
        if is_symbolic(x):
            return self.symbolic_call(x)
        self._maybe_build()
        if not self.built and callable(getattr(self, "call", None)):
            self.build(tuple(np.shape(x[0] if isinstance(x, (list, tuple)) else x)[1:]))
        xs = as_input_list(self, x, check=True)
        outs = self.executor.forward(xs, training=training)
        return outs[0] if len(outs) == 1 else outs

    def summary(self, line_length=None, print_fn=None):
        """Print the Keras-style table of layers, output shapes and parameter counts (rank 0
        only under MPI); an unbuilt Sequential's layers show as Keras 3 shows them, '?' and
        '0 (unbuilt)'.

        Args:
            line_length: the table's width in characters (default: Keras's).
            print_fn: a function to call with the table's text instead of printing it (called on
                every rank).
        """
        self._maybe_build()
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
        """The model `get_config` describes (a Sequential's config gives a Sequential).

        Args:
            config: what `get_config` returned.
            custom_objects: a dict from class name to the user's layer classes the config names;
                without it they come from the registry (distdl.registry).
        """
        if custom_objects:
            with custom_object_scope(custom_objects):
                return cls.from_config(config)
        if "calls" not in config:
            return _SUBCLASSES["Sequential"].from_config(config)  # a Sequential's config
        layers = {layer.name: layer for layer in layers_from_config(config["layers"])}
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
        """Save the architecture, weights and optimizer state: Keras 3's archive for `*.keras`,
        else distdl's HDF5. Under MPI rank 0 writes and every rank returns once the file is in
        place (call it on all).

        Args:
            filepath: the file to write.
            overwrite: replace an existing file; False refuses to.
        """
        self._repack()
        model_io.save_model(self, filepath, overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights only; a `.weights.h5` path gets the Keras 3 layout. Collective as `save`.

        Args:
            filepath: the file to write.
            overwrite: replace an existing file; False refuses to.
        """
        self._repack()
        model_io.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath):
        """Load weights from a distdl checkpoint or a Keras 3 `.weights.h5` file. Collective: every
        rank reads, a failure on any rank is raised on all, and all must read the same values.

        Args:
            filepath: the file `save_weights` or `save` wrote (or Keras 3 did).
        """
        self._maybe_build()
        self._repack()
        model_io.load_weights(self, filepath)


"""`plot_model` and `model_to_dot`: a model's layer graph as Graphviz DOT text and as a picture.

Keras builds a `pydot` object; distdl writes the DOT text itself (no pydot dependency) and hands it
to Graphviz's `dot` program on the standard input, with an argument list and no shell. Without
`dot` on PATH, `plot_model` says so in one sentence (an ImportError, as Keras raises).

The graph comes from the model's `get_config()`: a functional model's `calls` give the edges
(a layer called twice is one node, as in Keras), a Sequential's layers make a chain. Nothing here
imports the model classes.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import ConfigError

__all__ = ["model_to_dot", "plot_model"]


def _quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, line breaks as DOT's `\\n`."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def _shape(layer) -> str:
    """The layer's output shape with Keras's leading batch axis (None)."""
    shape = getattr(layer, "output_shape", None)
    if isinstance(shape, (tuple, list)) and all(isinstance(d, int) or d is None for d in shape):
        return str((None,) + tuple(shape))
    return str(shape)


def _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable) -> str:
    kind = type(layer).__name__
    parts = [f"{layer.name} ({kind})" if show_layer_names else kind]
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        activation = layer.activation
        parts.append(f"activation: {getattr(activation, '__name__', activation)}")
    if show_shapes:
        parts.append(f"output: {_shape(layer)}")
    if show_dtype:
        parts.append(f"dtype: {getattr(layer, 'dtype', None)}")
    if show_trainable:
        parts.append(f"trainable: {getattr(layer, 'trainable', True)}")
    return "\n".join(parts)


def _edges(model, config: dict) -> list[tuple[str, str]]:
    """(from layer name, to layer name) pairs."""
    if "calls" in config:
        calls = config["calls"]
        edges = []
        for call in calls:
            for i, _ in call["inputs"]:
                edge = (calls[i]["layer"], call["layer"])
                if edge not in edges:
                    edges.append(edge)
        return edges
    names = [layer.name for layer in model.layers]
    return list(zip(names, names[1:]))


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
                 show_trainable=False, splines="ortho") -> str:
    """The model's layer graph as Graphviz DOT text (Keras returns a pydot object; this is its text).

    Args:
        model: a built Sequential or functional model.
        show_shapes: add each layer's output shape.
        show_dtype: add each layer's dtype.
        show_layer_names: label nodes `name (Class)` rather than `Class`.
        rankdir: "TB" (top to bottom) or "LR" (left to right).
        expand_nested: accepted; a nested model is drawn as one node.
        dpi: the picture's resolution.
        subgraph: accepted; the text is always a whole digraph.
        show_layer_activations: add each layer's activation.
        show_trainable: add whether each layer is trainable.
        splines: Graphviz's edge style.
    """
    if rankdir not in ("TB", "LR"):
        raise ConfigError(f"plot_model's rankdir must be 'TB' or 'LR'; got {rankdir!r}.")
    try:
        model.count_params()  # a Sequential with a known input shape builds here, as for summary()
        config = model.get_config()
        layers = list(model.layers)
    except Exception as e:  # a subclassed model with no config, an unbuilt model
        raise ConfigError(f"plot_model needs a built Sequential or functional model; "
                          f"{type(model).__name__} gave no graph ({e}).") from e
    lines = [f"digraph {_quote(getattr(model, 'name', 'model'))} {{",
             f"  graph [rankdir={rankdir}, dpi={int(dpi)}, splines={splines}, concentrate=true];",
             "  node [shape=record];"]
    for layer in layers:
        label = _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
        lines.append(f"  {_quote(layer.name)} [label={_quote(label)}];")
    lines += [f"  {_quote(a)} -> {_quote(b)};" for a, b in _edges(model, config)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               splines="ortho") -> str:
    """Draw the model's layer graph into `to_file` with Graphviz's `dot`; returns the file's path.

    The format comes from the file's extension (`png` when it has none), as in Keras.

    Args:
        model: a built Sequential or functional model.
        to_file: the picture's path.
        show_shapes: add each layer's output shape.
        show_dtype: add each layer's dtype.
        show_layer_names: label nodes `name (Class)` rather than `Class`.
        rankdir: "TB" (top to bottom) or "LR" (left to right).
        expand_nested: accepted; a nested model is drawn as one node.
        dpi: the picture's resolution.
        show_layer_activations: add each layer's activation.
        show_trainable: add whether each layer is trainable.
        splines: Graphviz's edge style.
    """
    text = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                        rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                        show_layer_activations=show_layer_activations, show_trainable=show_trainable,
                        splines=splines)
    dot = shutil.which("dot")
    if dot is None:
        raise ImportError("plot_model needs Graphviz's `dot` program on PATH (install graphviz, "
                          "e.g. `apt-get install graphviz`); model_to_dot gives the graph as text without it.")
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    done = subprocess.run([dot, f"-T{extension}", "-o", to_file], input=text.encode("utf-8"),
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise ConfigError(f"Graphviz's dot could not write {to_file!r} as {extension}: "
                          f"{done.stderr.decode(errors='replace').strip()}")
    return to_file

"""Keras 3 model configs (Sequential and functional) <-> distdl's, and Keras's `model.layers` order.

Keras writes a Sequential as its layer list (an InputLayer first) and a functional model as layers
with `inbound_nodes` (each call's input tensors as `keras_history` = [layer, call, output]) plus
`input_layers` / `output_layers`. distdl's functional config numbers calls instead; both describe
the same graph. Keras's `model.layers` order (which names the weight groups of a functional
model's `model.weights.h5`) is not distdl's: `keras_layer_order` recomputes it from the config as
Keras's `map_graph` does (by depth from the outputs, ties in depth-first order).
"""
from __future__ import annotations

from ..errors import CheckpointError
from .keras_config import batch_shape, dims, dtype_policy, keras_object, layer_from_keras, layer_to_keras

__all__ = ["keras_layers", "model_to_keras", "model_from_keras", "keras_layer_order"]

_MASK_OPS = ("NotEqual", "Any")  # the ops Keras 3 writes for masks it hands to layers

# ---------------------------------------------------------------- distdl -> Keras


def _is_functional(model) -> bool:
    kind = type(model)
    return (kind.__module__ == "distdl.models.model" and kind.__name__ == "Model"
            and not callable(getattr(model, "call", None)))


def keras_layers(model) -> list:
    """A built model's layers in the order of Keras's `model.layers` (which numbers the groups of a
    weights file): a functional model's by Keras's rule, any other model's as distdl lists them.

    Args:
        model: a built model.
    """
    if not _is_functional(model):
        return list(model.layers)
    return [model.get_layer(name) for name in keras_layer_order(_functional_graph(model, model.get_config()))]


def model_to_keras(model) -> dict:
    """A built distdl Sequential or functional model as Keras 3's serialized model (no compile_config).

    Args:
        model: the built model.
    """
    kind = type(model)
    if not (_is_functional(model) or (kind.__module__ == "distdl.models.sequential" and kind.__name__ == "Sequential")):
        raise CheckpointError(f"Model {model.name!r} is a {kind.__name__} with its own code, which a .keras "
                              "archive cannot hold (only Sequential and functional models); save it as .h5 instead.")
    if kind.__name__ == "Sequential":
        return _sequential_to_keras(model)
    return _functional_to_keras(model)


def _sequential_to_keras(model) -> dict:
    cfg = model.get_config()
    shape, dtype = model.input_shapes[0], model.layers[0].dtype
    taken = {layer.name for layer in model.layers}
    name = next(n for n in ("input_layer", *(f"input_layer_{i}" for i in range(1, len(taken) + 2)))
                if n not in taken)
    first = layer_to_keras({"class_name": "InputLayer", "config": {"shape": list(shape), "dtype": dtype,
                                                                  "name": name}})
    layers = [first] + [layer_to_keras(spec, layer.input_shape) for spec, layer in zip(cfg["layers"], model.layers)]
    config = {"name": cfg["name"], "trainable": True, "dtype": dtype_policy(dtype), "layers": layers,
              "build_input_shape": batch_shape(shape)}
    return {**keras_object("keras", "Sequential", config), "build_config": {"input_shape": batch_shape(shape)}}


def _functional_to_keras(model) -> dict:
    cfg = model.get_config()
    graph = _functional_graph(model, cfg)
    layers = []
    for spec, entry in zip(cfg["layers"], graph["layers"]):
        layer = model.get_layer(entry["name"])
        keras_spec = layer_to_keras(spec, None if spec["class_name"] == "InputLayer" else layer.input_shape)
        layers.append({**keras_spec, **entry})
    config = {"name": cfg["name"], "trainable": True, "layers": layers,
              "input_layers": graph["input_layers"], "output_layers": graph["output_layers"]}
    return {**keras_object("keras.src.models.functional", "Functional", config, "Functional"),
            "build_config": {"input_shape": None}}


def _functional_graph(model, cfg: dict) -> dict:
    """Keras's functional graph of a distdl model: per layer its name, class and `inbound_nodes`, plus
    `input_layers` / `output_layers` (the layer configs are left out)."""
    by_name = {layer.name: layer for layer in model.layers}
    # output shapes of every call, in get_config's call order: the inputs, then the graph's nodes
    shapes = [[s] for s in model.input_shapes] + [[t.shape for t in n.outputs] for n in model.executor.nodes]
    node_of, counts = [], {}
    for call in cfg["calls"]:
        node_of.append(counts.get(call["layer"], 0))
        counts[call["layer"]] = node_of[-1] + 1

    def history(ref):
        i, j = ref
        return [cfg["calls"][i]["layer"], node_of[i], j]

    def tensor(ref):
        name = cfg["calls"][ref[0]]["layer"]
        return {"class_name": "__keras_tensor__",
                "config": {"shape": batch_shape(shapes[ref[0]][ref[1]]), "dtype": by_name[name].dtype,
                           "keras_history": history(ref)}}

    inbound: dict[str, list] = {spec["config"]["name"]: [] for spec in cfg["layers"]}
    for call in cfg["calls"]:
        if call["inputs"]:
            args = [tensor(r) for r in call["inputs"]]
            inbound[call["layer"]].append({"args": [args if call["list_input"] else args[0]], "kwargs": {}})
    return {"layers": [{"class_name": spec["class_name"], "name": spec["config"]["name"],
                        "inbound_nodes": inbound[spec["config"]["name"]]} for spec in cfg["layers"]],
            "input_layers": [history(r) for r in cfg["inputs"]],
            "output_layers": [history(r) for r in cfg["outputs"]]}


# ---------------------------------------------------------------- Keras -> distdl

def model_from_keras(top: dict, where: str) -> tuple[dict, list[str]]:
    """distdl's `{"class_name": "Sequential" | "Model", "config"}` for a Keras model config, and the
    names of Keras's `model.layers` in Keras's order (the order of the weight groups).

    Args:
        top: Keras's `{"class_name", "config"}` of the model.
        where: the file in messages.
    """
    cls, cfg = top.get("class_name"), top.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise CheckpointError(f"Keras archive {where!r} has a config.json without a model config with layers.")
    if cls == "Sequential":
        return _sequential_from_keras(cfg, where)
    if cls == "Functional":
        return _functional_from_keras(cfg, where), keras_layer_order(cfg, where)
    raise CheckpointError(f"Keras archive {where!r} holds a model of class {cls!r}; distdl reads Sequential and "
                          "functional models only (a subclassed model is code, which distdl never runs from an "
                          "archive).")


def _sequential_from_keras(cfg: dict, where: str) -> tuple[dict, list[str]]:
    entries = list(cfg["layers"])
    shape = None
    if entries and isinstance(entries[0], dict) and entries[0].get("class_name") == "InputLayer":
        shape = layer_from_keras(entries.pop(0), where)["config"]["shape"]
    elif isinstance(cfg.get("build_input_shape"), list):
        shape = cfg["build_input_shape"][1:]
    if shape is None:
        raise CheckpointError(f"Keras archive {where!r}: the Sequential model has no input shape (no InputLayer "
                              "and no build_input_shape).")
    specs = [layer_from_keras(e, where) for e in entries]
    config = {"name": cfg.get("name"), "layers": specs, "input_shape": dims(shape)}
    return {"class_name": "Sequential", "config": config}, [s["config"]["name"] for s in specs]


def _functional_from_keras(cfg: dict, where: str) -> dict:
    masks = _mask_ops(cfg["layers"], where)
    specs, pending = [], {}
    for entry in cfg["layers"]:
        if _entry_name(entry) in masks:
            continue
        spec = layer_from_keras(entry, where)
        name = spec["config"]["name"]
        specs.append(spec)
        pending[name] = [_node_inputs(node, where, name, masks) for node in entry.get("inbound_nodes") or []]
    calls, call_of = [], {}
    for spec in specs:
        if spec["class_name"] == "InputLayer":
            call_of[(spec["config"]["name"], 0)] = len(calls)
            calls.append({"layer": spec["config"]["name"], "inputs": [], "list_input": False})
    done = dict.fromkeys(pending, 0)
    while any(done[n] < len(q) for n, q in pending.items()):
        progressed = False
        for name, queue in pending.items():  # Keras's rule: a layer's calls in order, each once its inputs exist
            while done[name] < len(queue) and all((l, i) in call_of for l, i, _ in queue[done[name]][0]):
                refs, listed = queue[done[name]]
                call_of[(name, done[name])] = len(calls)
                calls.append({"layer": name, "inputs": [[call_of[(l, i)], t] for l, i, t in refs],
                              "list_input": listed})
                done[name] += 1
                progressed = True
        if not progressed:
            stuck = next(n for n, q in pending.items() if done[n] < len(q))
            raise CheckpointError(f"Keras archive {where!r}: the call of layer {stuck!r} takes a tensor that no "
                                  "layer call produces (a loop or a missing layer in the functional graph).")

    def pick(value, what):
        out = []
        for layer, node, t in _refs(value, where, what):
            if (layer, node) not in call_of:
                raise CheckpointError(f"Keras archive {where!r}: {what} names {layer!r} call {node}, which the "
                                      "functional graph does not have.")
            out.append([call_of[(layer, node)], t])
        return out

    return {"class_name": "Model", "config": {"name": cfg.get("name"), "layers": specs, "calls": calls,
                                              "inputs": pick(cfg.get("input_layers"), "input_layers"),
                                              "outputs": pick(cfg.get("output_layers"), "output_layers")}}


def _entry_name(entry) -> str | None:
    return entry.get("name") or (entry.get("config") or {}).get("name") if isinstance(entry, dict) else None


def _mask_ops(entries: list, where: str) -> dict[str, tuple]:
    """Keras 3 writes the masks it passes to layers as `NotEqual` / `Any` ops on the tensor that an
    Embedding(mask_zero=True) or a Masking layer also takes: {op name: that tensor}. distdl makes those
    masks itself from the same layers, so such ops and `mask=` arguments are dropped."""
    first = {}
    for entry in entries:
        if _is_mask_op(entry):
            nodes = entry.get("inbound_nodes") or []
            refs = _tensor_refs(nodes[0]) if len(nodes) == 1 else []
            if not refs:
                raise CheckpointError(f"Keras archive {where!r}: op {_entry_name(entry)!r} has an unreadable call.")
            first[_entry_name(entry)] = refs[0]

    def root(ref):
        seen = set()
        while ref[0] in first and ref[0] not in seen:
            seen.add(ref[0])
            ref = first[ref[0]]
        return ref
    sources = {tuple(r) for entry in entries if _creates_mask(entry)
               for node in entry.get("inbound_nodes") or [] for r in _tensor_refs(node)}
    out = {name: root(ref) for name, ref in first.items()}
    for name, ref in out.items():
        if ref not in sources:
            raise CheckpointError(f"Keras archive {where!r} computes op {name!r} on {ref[0]!r}, which is not the "
                                  "mask of an Embedding(mask_zero=True) or Masking layer; distdl builds only layers.")
    return out


def _is_mask_op(entry) -> bool:
    return isinstance(entry, dict) and entry.get("class_name") in _MASK_OPS \
        and str(entry.get("module", "")).startswith("keras.")


def _creates_mask(entry) -> bool:
    if not isinstance(entry, dict):
        return False
    cls, cfg = entry.get("class_name"), entry.get("config") or {}
    return cls == "Masking" or (cls == "Embedding" and bool(cfg.get("mask_zero")))


def _tensor_refs(value) -> list[tuple]:
    """The keras_history of every tensor in a node, in Keras's flattening order (dict keys sorted)."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [tuple((value.get("config") or {}).get("keras_history") or ())]
        return [r for k in sorted(value) for r in _tensor_refs(value[k])]
    if isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):  # Keras 2's [layer, call, out]
            return [tuple(value[:3])]
        return [r for v in value for r in _tensor_refs(v)]
    return []


def _node_inputs(node, where: str, name, masks: dict) -> tuple[list[tuple], bool]:
    """([(layer, call, output)] a layer call takes, whether as a list) from one inbound node; Keras's
    `training` argument is dropped (the model's mode rules) and a `mask` must be one distdl makes."""
    if isinstance(node, list):  # Keras 2's form: [[layer, call, output, kwargs], ...]
        refs = [tuple(r[:3]) for r in node]
        kwargs = next((r[3] for r in node if len(r) > 3 and r[3]), {})
        listed = len(refs) > 1
    elif isinstance(node, dict):
        args, kwargs = node.get("args") or [], node.get("kwargs") or {}
        if len(args) != 1:
            raise CheckpointError(f"Keras archive {where!r}: layer {name!r} is called with {len(args)} positional "
                                  "arguments; distdl layers take one input (or one list of inputs).")
        listed = isinstance(args[0], list)
        refs = [_history(t, where, name) for t in (args[0] if listed else [args[0]])]
    else:
        raise CheckpointError(f"Keras archive {where!r}: layer {name!r} has an unreadable inbound node.")
    if any(r[0] not in masks for r in _tensor_refs(kwargs.get("mask"))):
        raise CheckpointError(f"Keras archive {where!r}: layer {name!r} is called with a mask that no "
                              "Embedding(mask_zero=True) or Masking layer makes, which distdl cannot rebuild.")
    extra = sorted(k for k, v in kwargs.items() if v is not None and k not in ("training", "mask"))
    if extra:
        raise CheckpointError(f"Keras archive {where!r}: layer {name!r} is called with {', '.join(extra)}=..., "
                              "which distdl's functional models do not pass.")
    return refs, listed


def _history(tensor, where: str, name) -> tuple:
    hist = (tensor.get("config") or {}).get("keras_history") if isinstance(tensor, dict) else None
    if tensor.get("class_name") != "__keras_tensor__" or not isinstance(hist, list) or len(hist) != 3:
        raise CheckpointError(f"Keras archive {where!r}: layer {name!r} is called on something that is not a "
                              "layer output (a constant or a nested structure).")
    return tuple(hist)


def _refs(value, where: str, what: str) -> list[tuple]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [tuple(value)]
    if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 3 for v in value):
        raise CheckpointError(f"Keras archive {where!r}: {what} is {str(value)[:80]}; distdl reads a list of "
                              "[layer, call, output] (no dict of named inputs or outputs).")
    return [tuple(v) for v in value]


def keras_layer_order(cfg: dict, where: str = "") -> list[str]:
    """Layer names in Keras's functional `model.layers` order, computed from a Keras functional
    config: Keras's `map_graph` (a depth-first walk from the outputs gives each layer its first
    visit index and the nodes in topological order; each layer's depth is its deepest call's
    distance from an output; layers by decreasing depth, ties by first visit).

    Args:
        cfg: the functional model's Keras config (its `config` part).
        where: the file in messages.
    """
    parents, ops = {}, set()
    for entry in cfg["layers"]:
        name = _entry_name(entry)
        if entry.get("class_name") == "InputLayer":
            parents[(name, 0)] = []
        if _is_mask_op(entry):
            ops.add(name)  # in the graph (masks), but not among model.layers
        for i, node in enumerate(entry.get("inbound_nodes") or []):
            parents[(name, i)] = [tuple(r[:2]) for r in _tensor_refs(node)]
    nodes, first_visit, finished = [], {}, set()

    def visit(key):
        if key in finished:
            return
        first_visit.setdefault(key[0], len(first_visit))
        for parent in parents[key]:
            visit(parent)
        finished.add(key)
        nodes.append(key)

    for layer, node, _ in _refs(cfg["output_layers"], where, "output_layers"):
        visit((layer, node))
    in_graph, node_depth, depth_of = set(nodes), {}, {}
    for key in reversed(nodes):
        depth = max(node_depth.setdefault(key, 0), depth_of.get(key[0], 0))
        depth_of[key[0]] = node_depth[key] = depth
        for parent in parents[key]:
            if parent in in_graph:
                node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for layer, _, _ in _refs(cfg["input_layers"], where, "input_layers"):
        if layer not in depth_of:  # an input no output uses
            depth_of[layer], first_visit[layer] = 0, -1
    by_depth: dict[int, list[str]] = {}
    for layer, depth in depth_of.items():
        by_depth.setdefault(depth, []).append(layer)
    return [layer for depth in sorted(by_depth, reverse=True)
            for layer in sorted(by_depth[depth], key=first_visit.__getitem__) if layer not in ops]

"""Keras 3 `.keras` archives: what `model.save("x.keras")` writes and `load_model("x.keras")` reads.

The archive is a zip (members stored, as Keras writes them) of `metadata.json`, `config.json`
(Keras 3's serialized model with its `compile_config`, see `keras_graph` and `keras_config`) and
`model.weights.h5` (the `.weights.h5` layout of `keras_format`: layer weights in Keras's
`model.layers` order, then `optimizer/vars` = iterations, learning rate unless it is a schedule,
and the slots per trainable variable in Keras's order). Both are built in memory; rank 0 writes
the file to a temp file beside it and renames it. Reading runs no code from the archive and reads
nothing outside it (`keras_config.refuse_code`, and no HDF5 links or storage outside the member).
"""
from __future__ import annotations

import datetime
import io
import json
import os
import secrets
import zipfile
import zlib

import h5py
import numpy as np

from .. import __version__, losses, metrics
from ..errors import CheckpointError, DistdlError
from . import keras_format
from .atomic import _fsync_dir
from .checkpoint_files import _remove_quietly
from .keras_config import nested_from_keras, nested_to_keras, object_to_keras, refuse_code, strip_object
from .keras_graph import keras_layers, model_from_keras, model_to_keras

__all__ = ["is_keras_archive", "save_keras_archive", "load_keras_archive"]

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
KERAS_VERSION = "3.15.1"  # the Keras release whose archives this layout was checked against
_MAX_EXPANSION, _BOMB_FLOOR = 100, 1 << 28  # a member far larger than its stored bytes is refused
# Keras's optimizer variables after iterations and learning rate: groups of slots, each group
# created for every trainable variable in turn (Adam interleaves momentum and velocity)
_SLOT_GROUPS = {"SGD": (("momentum",),), "Adam": (("momentum", "velocity"), ("velocity_hat",)),
                "AdamW": (("momentum", "velocity"), ("velocity_hat",)),
                "RMSprop": (("velocity",), ("momentum",), ("average_gradient",)), "Adagrad": (("accumulator",),),
                "Nadam": (("momentum", "velocity"),), "Adamax": (("momentum", "norm"),), "Lion": (("momentum",),),
                "Adadelta": (("accumulated_grad", "accumulated_delta_var"),), "Ftrl": (("accumulator", "linear"),),
                "Lamb": (("momentum", "velocity"),), "Adafactor": (("r", "c", "velocity"),)}
# Adafactor's row / column means: Keras's shapes (a scalar 0 for a variable under 2-D); distdl keeps
# them at the start of the variable's segment of the slot
_SLOT_SHAPES = {"r": lambda s: s[:-1] if len(s) >= 2 else (),
                "c": lambda s: s[:-2] + s[-1:] if len(s) >= 2 else ()}
# scalars Keras creates after the slots: Nadam's momentum-schedule product (distdl derives it from
# `iterations`, so it is written for Keras and not read back)
_TRAILING = {"Nadam": lambda opt: [np.asarray(opt.u_product, dtype=opt.get_state()["momentum"].dtype)]}


def is_keras_archive(path) -> bool:
    """Whether `path` names a Keras 3 archive (it ends in `.keras`), as Keras decides by the name.

    Args:
        path: a file path.
    """
    return os.fspath(path).endswith(".keras")


# ---------------------------------------------------------------- writing

def save_keras_archive(model, path) -> None:
    """`model.save("x.keras")`: Keras 3's archive of a built Sequential or functional model, written
    atomically. Called on rank 0 by `model_io.save_model`, which hands its errors to every rank.

    Args:
        model: the built model.
        path: the `.keras` file to write.
    """
    model._require_built("save")
    spath = os.fspath(path)
    config = model_to_keras(model)
    config["compile_config"] = _compile_to_keras(model)
    layers = keras_layers(model)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        keras_format.write_keras_weights_to(
            f, spath, [(keras_format.keras_class_path(l), [v.value for v in l.weights]) for l in layers],
            _optimizer_vars(model, layers))
    metadata = {"keras_version": KERAS_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "saved_by": f"distdl {__version__}"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA, json.dumps(metadata))
        zf.writestr(CONFIG, json.dumps(config))
        zf.writestr(WEIGHTS, buf.getvalue())
    _atomic_write(spath, out.getvalue())


def _compile_to_keras(model) -> dict | None:
    """Keras's compile_config; Keras could not load an archive whose optimizer, loss or metric
    classes are the user's own, so those are refused (their names are not registered in distdl)."""
    cc, opt = getattr(model, "compile_config", None), model.optimizer
    if not cc or opt is None:
        return None
    for what, value, check in (("optimizer", opt, None), ("loss", cc.get("loss"), losses.get),
                               ("metric", cc.get("metrics"), metrics.get)):
        for item in _leaves(value):
            try:
                ok = type(item).__module__.startswith("distdl.") if check is None else check(item) is not None
            except DistdlError:
                ok = False
            if not ok:
                name = type(item).__name__ if check is None else (item.get("class_name") if isinstance(item, dict)
                                                                   else item)
                raise CheckpointError(f"Model {model.name!r} is compiled with {what} {name!r}, which is not built "
                                      "into distdl, so Keras could not load it; save it as .h5 instead.")
    optimizer = object_to_keras("keras.optimizers", {"class_name": type(opt).__name__, "config": opt.get_config()})
    return {"optimizer": optimizer, "loss": nested_to_keras("keras.losses", cc.get("loss")),
            "loss_weights": cc.get("loss_weights"), "metrics": nested_to_keras("keras.metrics", cc.get("metrics")),
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": "auto"}


def _leaves(value) -> list:
    """The names and {class_name, config} dicts in a compile argument (lists and per-output dicts)."""
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    if isinstance(value, dict) and "class_name" not in value:
        return [x for v in value.values() for x in _leaves(v)]
    return [] if value is None else [value]


def _slot_plan(model, layers):
    """[(slot name, variable, (start, stop) in the arena, Keras's shape)] in Keras's order, or None
    when Keras has no layout for this optimizer."""
    opt = model.optimizer
    groups = _SLOT_GROUPS.get(type(opt).__name__) if opt is not None and opt.built else None
    if groups is None:
        return None
    segment = {id(v): s for v, s in zip(model.trainable_arena.variables, model.trainable_arena.segments())}
    variables = [v for layer in layers for v in layer.trainable_weights]
    active = set(opt.slot_names)
    plan = []
    for group in groups:
        for v in variables:
            for name in group:
                if name in active:
                    shape = tuple(_SLOT_SHAPES.get(name, lambda s: s)(tuple(v.shape)))
                    a = segment[id(v)][0]
                    plan.append((name, v, (a, a + int(np.prod(shape))), shape))
    return plan


def _optimizer_vars(model, layers) -> list[np.ndarray] | None:
    plan = _slot_plan(model, layers)
    if plan is None:
        return None
    opt, state = model.optimizer, model.optimizer.get_state()
    out = [np.asarray(opt.iterations, dtype=np.int64)]
    if not isinstance(opt.get_config()["learning_rate"], dict):  # a schedule has no variable in Keras
        out.append(np.asarray(opt.learning_rate, dtype=np.float32))
    trailing = _TRAILING.get(type(opt).__name__, lambda _: [])(opt)
    return out + [state[name][a:b].reshape(shape) for name, v, (a, b), shape in plan] + trailing


def _atomic_write(path: str, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync it, rename it over `path`."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        raise CheckpointError(f"Could not write Keras archive {path!r}: {e.strerror or e}.") from e
    _fsync_dir(folder)


# ---------------------------------------------------------------- reading

def load_keras_archive(path, build, compile: bool = True):
    """`load_model("x.keras")`: `build(spec)` makes the distdl model from the translated config
    (distdl.models passes its own `from_config`); then weights, compile and optimizer state.

    Args:
        path: the `.keras` archive.
        build: makes the model from distdl's `{"class_name", "config"}`.
        compile: also compile the model as saved and restore its optimizer state.
    """
    spath = os.fspath(path)
    members = _read_members(spath)
    config = _json_member(members, spath, CONFIG)
    if not isinstance(config, dict):
        raise CheckpointError(f"Keras archive {spath!r} has a config.json that is not a JSON object.")
    cc = config.get("compile_config") if compile else None
    refuse_code({k: v for k, v in config.items() if k != "compile_config" or compile}, spath)
    spec, order = model_from_keras(config, spath)
    try:
        model = build(spec)
    except DistdlError as e:
        raise CheckpointError(f"Keras archive {spath!r} describes a model distdl cannot build: {e}") from None
    layers = list(model.layers) if spec["class_name"] == "Sequential" else [model.get_layer(n) for n in order]
    where = f"{spath}:{WEIGHTS}"
    try:
        f = h5py.File(io.BytesIO(members[WEIGHTS]), "r")
    except Exception as e:
        raise CheckpointError(f"Keras archive {spath!r} member {WEIGHTS!r} is not a readable HDF5 file ({e}).") from e
    with f:
        _refuse_outside_data(f, where)
        arrays = keras_format.read_keras_weights_from(
            f, where, [(keras_format.keras_class_path(l), [v.shape for v in l.weights]) for l in layers])
        opt_vars = keras_format.read_keras_optimizer_vars_from(f, where)
    for layer, values in zip(layers, arrays):
        for v, a in zip(layer.weights, values):
            v.assign(np.asarray(a, dtype=v.value.dtype))
    if isinstance(cc, dict) and cc.get("loss") is not None:
        _compile_from_keras(model, cc, spath)
        _restore_optimizer(model, layers, opt_vars, where)
    return model


def _read_members(spath: str) -> dict[str, bytes]:
    if not os.path.isfile(spath):
        raise CheckpointError(f"Keras archive {spath!r} does not exist.")
    try:
        zf = zipfile.ZipFile(spath, "r")
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"Keras archive {spath!r} is not a zip file or is damaged ({e}).") from e
    out = {}
    with zf:
        names = zf.namelist()
        for member in (CONFIG, WEIGHTS):
            if member not in names:
                raise CheckpointError(f"Keras archive {spath!r} has no member {member!r} (it holds "
                                      f"{', '.join(names) or 'nothing'}).")
            info = zf.getinfo(member)
            if info.file_size > _BOMB_FLOOR and info.file_size > _MAX_EXPANSION * max(info.compress_size, 1):
                raise CheckpointError(f"Keras archive {spath!r} member {member!r} unpacks to {info.file_size} bytes "
                                      f"from {info.compress_size}; refusing a likely zip bomb.")
            try:
                out[member] = zf.read(member)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
                raise CheckpointError(f"Keras archive {spath!r} member {member!r} is damaged ({e}).") from e
    return out


def _json_member(members: dict, spath: str, member: str):
    try:
        return json.loads(members[member].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"Keras archive {spath!r} member {member!r} is not valid JSON ({e}).") from e


def _refuse_outside_data(f: h5py.File, where: str) -> None:
    """Refuse links to other files and datasets stored outside the member (external or virtual)."""
    def check(name, link):  # a non-None return ends the walk (h5py cannot raise from inside it)
        if isinstance(link, h5py.ExternalLink):
            return f"links {name!r} to file {link.filename!r}"
        if isinstance(link, h5py.HardLink):
            obj = f[name]
            if isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
                return f"stores dataset {name!r} outside itself (external or virtual storage)"
        return None
    found = f.visititems_links(check)
    if found:
        raise CheckpointError(f"Weights file {where!r} {found}; distdl reads nothing from outside the archive.")


def _compile_from_keras(model, cc: dict, spath: str) -> None:
    """Compile with Keras's compile_config: optimizer, loss(es), metrics, loss weights by Keras name."""
    try:
        opt = strip_object(cc.get("optimizer") or "rmsprop")
        model.compile(optimizer=opt if isinstance(opt, str) else dict(opt), loss=nested_from_keras(cc.get("loss")),
                      metrics=nested_from_keras(cc.get("metrics")), loss_weights=cc.get("loss_weights"),
                      weighted_metrics=cc.get("weighted_metrics"))
    except DistdlError as e:
        raise CheckpointError(f"Keras archive {spath!r}: its compile_config cannot be rebuilt in distdl ({e}); "
                              "load it with compile=False to skip compiling.") from None


def _restore_optimizer(model, layers, values: list, where: str) -> None:
    """Keras's optimizer/vars into the distdl optimizer; an archive of a Keras optimizer never built
    (iterations and learning rate only) leaves the slots at zero."""
    opt = model.optimizer
    plan = _slot_plan(model, layers)
    if not values or plan is None:
        return
    has_lr = not isinstance(opt.get_config()["learning_rate"], dict)
    head, tail = 1 + has_lr, len(_TRAILING.get(type(opt).__name__, lambda _: [])(opt))
    if len(values) not in (head, head + len(plan) + tail):
        raise CheckpointError(f"Weights file {where!r} holds {len(values)} optimizer variables, but "
                              f"{type(opt).__name__} over this model has {head + len(plan) + tail} (iterations, "
                              f"{'learning rate, ' if has_lr else ''}{len(plan) + tail} slots).")
    state = {name: np.zeros_like(arr) for name, arr in opt.get_state().items()}
    for (name, v, (a, b), shape), arr in zip(plan, values[head:]):
        if tuple(np.shape(arr)) != shape:
            raise CheckpointError(f"Weights file {where!r}: the optimizer's {name} for weight {v.name!r} has shape "
                                  f"{tuple(np.shape(arr))}, but it must be {shape}.")
        state[name][a:b] = np.asarray(arr).reshape(-1)
    if len(values) > head:
        opt.set_state(state)
    opt.iterations = int(values[0])
    if has_lr and np.float32(values[1]) != np.float32(opt.learning_rate):  # e.g. lowered by ReduceLROnPlateau;
        opt.learning_rate = float(values[1])  # else the config's value, which is not rounded to float32

"""`model.summary()`: the Keras table of layers, output shapes and parameter counts."""
from __future__ import annotations

__all__ = ["summary_lines"]


def _shape(s):
    if isinstance(s, list):
        return "[" + ", ".join(_shape(x) for x in s) + "]"
    return "(None, " + ", ".join(str(d) for d in s) + ")" if s else "(None,)"


def _size(n_params, itemsize):
    """Keras 3's readable size: 1024-based units, two decimals ("18.79 KB", "0.00 B")."""
    size = float(n_params * itemsize)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.2f} {unit}"
        size /= 1024


def summary_lines(model, line_length=None) -> list[str]:
    """Rows: Layer (type) | Output Shape | Param # [| Connected to], then the totals.

    Args:
        model: a built model.
        line_length: the table's width in characters (None: Keras's default for the columns).
    """
    connected = model.connections()
    cols = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    rows = []
    for layer in model.layers:  # an unbuilt layer (a Sequential without input shape) shows as Keras 3's
        built = layer.built and layer.output_shape is not None
        row = [f"{layer.name} ({type(layer).__name__})", _shape(layer.output_shape) if built else "?",
               f"{layer.count_params():,}" if built else "0 (unbuilt)"]
        if connected:
            row.append(", ".join(connected.get(layer.name, [])) or "-")
        rows.append(row)
    widths = [max(len(c), *(len(r[i]) for r in rows)) + 2 if rows else len(c) + 2 for i, c in enumerate(cols)]
    total = line_length or sum(widths)
    fmt = lambda r: "".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
    trainable = sum(v.value.size for layer in model.layers for v in layer.trainable_weights)
    nontrain = sum(v.value.size for layer in model.layers for v in layer.non_trainable_weights)
    itemsize = model.dtype_itemsize()
    out = [f'Model: "{model.name}"', "=" * total, fmt(cols), "=" * total]
    for i, r in enumerate(rows):
        out.append(fmt(r))
        out.append("-" * total if i < len(rows) - 1 else "=" * total)
    out += [f" Total params: {trainable + nontrain:,} ({_size(trainable + nontrain, itemsize)})",
            f" Trainable params: {trainable:,} ({_size(trainable, itemsize)})",
            f" Non-trainable params: {nontrain:,} ({_size(nontrain, itemsize)})"]
    return out

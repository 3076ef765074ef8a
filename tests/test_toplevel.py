"""`import distdl` gives Keras's top level; modules declare `__all__`; the package imports lazily
and its modules import each other without a cycle (imports inside functions counted)."""
import ast
import inspect
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import distdl

ROOT = Path(__file__).resolve().parent.parent


def test_keras_top_level_names():
    from distdl import layers, losses, metrics, models, optimizers
    assert distdl.Sequential is models.Sequential and distdl.Model is models.Model
    assert distdl.Input is layers.Input and distdl.Layer is layers.Layer
    assert distdl.Loss is losses.Loss and distdl.Metric is metrics.Metric and distdl.Optimizer is optimizers.Optimizer
    for module in ("layers", "models", "optimizers", "losses", "metrics", "callbacks", "activations",
                   "initializers", "regularizers", "constraints", "datasets", "utils", "saving", "backend"):
        assert getattr(distdl, module) is importlib.import_module(f"distdl.{module}")
        assert module in distdl.__all__ and module in dir(distdl)
    assert distdl.version() == distdl.__version__
    with pytest.raises(AttributeError, match="has no attribute 'Sequentail'"):
        distdl.Sequentail  # noqa: B018


def test_the_keras_example_runs_from_the_top_level():
    import numpy as np
    distdl.utils.set_random_seed(0)
    inputs = distdl.Input(shape=(4,))
    outputs = distdl.layers.Dense(2, activation="softmax")(distdl.layers.Dense(8, activation="relu")(inputs))
    model = distdl.Model(inputs, outputs)
    model.compile(optimizer=distdl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    history = model.fit(x, (x[:, 0] > 0).astype("int64"), epochs=40, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.9


def test_import_distdl_alone_loads_no_numpy():
    code = "import sys, distdl; print('numpy' in sys.modules, 'distdl.models' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# the modules this part of the code owns (the others are listed in the lead's note)
OWNED = ["distdl", "distdl.errors", "distdl.registry", "distdl.log", "distdl.configs", "distdl.callbacks.core",
         "distdl.callbacks.monitor", "distdl.callbacks.progress", "distdl.cli", "distdl.cli.config",
         "distdl.cli.run", "distdl.cli.plot", "distdl.cli.shm", "distdl_launch.cli", "distdl_launch.mpirun",
         "distdl_launch.hosts", "distdl_launch.supervise", "distdl_launch.preflight", "distdl_launch.guard",
         "distdl_launch.rankwrap", "distdl_launch.pyrun"]


@pytest.mark.parametrize("name", OWNED)
def test_public_modules_declare_all_and_everything_in_it_exists(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list) and module.__all__
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which it lacks"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "launch":
        parts[0] = "distdl_launch"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, is_package: bool) -> set[str]:
    """Modules of distdl this file imports, anywhere in it (function bodies included)."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_no_import_cycle_between_modules():
    """Edges from a module to the modules it imports; a package's own __init__ re-exporting its
    submodules is the usual layout, so edges into a package that contains the importer are left out."""
    files = [p for p in (ROOT / "distdl").rglob("*.py")] + [p for p in (ROOT / "launch").rglob("*.py")]
    names = {_module_name(p): p for p in files if "__pycache__" not in p.parts}
    graph = {}
    for name, path in names.items():
        targets = {t for t in _imports(path, name, path.name == "__init__.py") if t in names and t != name}
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


# modules documented in issue 14's second pass: `__all__`, and argument docstrings checked below
DOCUMENTED = ["distdl.arena", "distdl.backend", "distdl.constraints", "distdl.initializers",
              "distdl.regularizers", "distdl.special", "distdl.utils", "distdl.comm", "distdl.comm.base",
              "distdl.callbacks.base", "distdl.registry", "distdl.saving"] + [
    f"distdl.{package}{sub}" for package, subs in {
        "losses": ("", ".base", ".crossentropy", ".elementwise", ".focal", ".functions", ".overlap"),
        "metrics": ("", ".base", ".confusion", ".curves", ".fscore", ".functions", ".iou", ".mean_metrics",
                    ".probabilistic", ".regression"),
        "optimizers": ("", ".adam", ".adam_variants", ".adaptive", ".base", ".ftrl", ".layerwise", ".schedules",
                       ".sgd"),
        "activations": ("", ".base", ".elementwise", ".functions", ".softmax"),
        "datasets": ("", ".common", ".files", ".hdf5", ".shipped"),
        "models": ("", ".model", ".compiling", ".weights", ".batch_calls", ".sequential", ".nested", ".loading"),
        "engine": ("", ".graph", ".step", ".loops", ".batch_calls", ".inputs", ".objectives", ".data_order",
                   ".summary", ".train_state"),
        "comm": (".agree", ".mpi", ".shm", ".strategies"),
        "callbacks": ("", ".core", ".monitor", ".progress", ".checkpoint"),
        "layers": (".base", ".weights", ".context", ".core", ".embedding", ".masking", ".lambda_layer",
                   ".tensor_op", ".scratch", ".inner_calls", ".merge", ".reshaping",
                   ".pooling", ".normalization", ".convolutional", ".wrappers", ".layer_utils",
                   ".rnn_masking", ".recorded_shapes", ".recorded", ".im2col", ".winograd"),
        "saving": (".atomic", ".checkpoint", ".checkpoint_files", ".checksum", ".checkpoint_fields", ".h5_safety",
                   ".keras_format", ".keras_archive", ".keras_config", ".keras_graph", ".model_io")}.items()
    for sub in subs]


def _undocumented_args(doc: str | None, fn) -> list[str]:
    """The parameters of `fn` (bar self/cls/*args/**kwargs) that `doc`'s `Args:` section does not name."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    names = [p.name for p in params if p.name not in ("self", "cls")
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    section = (doc or "").partition("Args:")[2]
    return [n for n in names if not re.search(rf"^\s+{re.escape(n)}\b[^:\n]*:", section, re.M)]


def _doc_problems(qualname: str, obj) -> list[str]:
    """What a public function or class (and its public methods) lacks: a docstring, an Args entry."""
    if inspect.isclass(obj):
        problems = [] if obj.__doc__ else [f"{qualname}: no docstring"]
        # constructor arguments are documented by the class that defines __init__ (or its __init__)
        owner = next(c for c in obj.__mro__ if "__init__" in vars(c))
        if owner.__module__ not in ("builtins", "typing"):  # object, Protocol
            docs = f"{obj.__doc__}\n{owner.__doc__}\n{owner.__init__.__doc__}"
            missing = _undocumented_args(docs, obj.__init__)
            problems += [f"{qualname}(): Args lacks {missing}"] if missing else []
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(member, property):
                problems += [] if member.__doc__ else [f"{qualname}.{name}: no docstring"]
            elif inspect.isfunction(getattr(member, "__func__", member)):
                problems += _doc_problems(f"{qualname}.{name}", getattr(obj, name))
        return problems
    doc = inspect.getdoc(obj)  # an override inherits the contract its base class documents
    if not doc:
        return [f"{qualname}: no docstring"]
    missing = _undocumented_args(doc, obj)
    return [f"{qualname}: Args lacks {missing}"] if missing else []


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_modules_list_their_public_api_and_every_argument(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list) and module.__all__
    assert not [a for a in module.__all__ if a.startswith("_")], f"{name}.__all__ names private names"
    defined = [a for a, obj in vars(module).items() if not a.startswith("_")
               and (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == name]
    assert not set(defined) - set(module.__all__), f"{name} defines public names missing from __all__"
    problems = []
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which it lacks"
        obj = getattr(module, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            problems += _doc_problems(f"{name}.{attr}", obj)
    assert not problems, "\n".join(problems)


def test_the_docstring_check_catches_a_missing_argument():
    def documented(a: int, b: int = 0) -> None:
        """Add.

        Args:
            a: first.
        """
    assert _doc_problems("documented", documented) == ["documented: Args lacks ['b']"]
    assert _doc_problems("bare", lambda x: x) == ["bare: no docstring"]

    class Documented:
        """A class.

        Args:
            size: documented.
        """

        def __init__(self, size: int, name: str = "") -> None:
            pass

        def run(self, steps: int) -> None:
            """Run, with no Args section."""
    assert _doc_problems("Documented", Documented) == ["Documented(): Args lacks ['name']",
                                                       "Documented.run: Args lacks ['steps']"]

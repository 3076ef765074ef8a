"""fit's validation options as Keras 3's (keras/src/trainers/trainer.py): validation_freq (validate
after every N epochs; History holds val_ logs only for those), validation_batch_size and
validation_steps (the validation batches evaluated), and their refusals."""
from __future__ import annotations

import numpy as np
import pytest

from distdl import utils
from distdl.errors import ConfigError
from distdl.layers import Dense, Input
from distdl.models import Sequential


def _setup():
    utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model = Sequential([Input(shape=(3,)), Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    return model, x, y


def test_validation_freq_validates_every_nth_epoch_only():
    model, x, y = _setup()
    hist = model.fit(x[:30], y[:30], epochs=4, batch_size=10, validation_data=(x[30:], y[30:]),
                     validation_freq=2, verbose=0).history
    assert len(hist["loss"]) == 4 and len(hist["val_loss"]) == 2 and len(hist["val_mae"]) == 2
    # the second validation is the model's evaluation after epoch 4
    assert hist["val_loss"][-1] == pytest.approx(model.evaluate(x[30:], y[30:], verbose=0)[0], rel=1e-6)


def test_validation_steps_and_batch_size_pick_the_rows_evaluated():
    model, x, y = _setup()
    hist = model.fit(x[:30], y[:30], epochs=1, batch_size=10, validation_data=(x[30:], y[30:]),
                     validation_batch_size=3, validation_steps=2, verbose=0).history
    # 2 batches of 3 rows: the first 6 validation rows
    want = model.evaluate(x[30:36], y[30:36], batch_size=3, verbose=0)[0]
    assert hist["val_loss"][0] == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [({"validation_freq": 0}, "validation_freq must be a positive integer"),
                                           ({"validation_batch_size": 2.5}, "validation_batch_size"),
                                           ({"validation_steps": -1}, "validation_steps")])
def test_bad_validation_options_are_refused_with_a_sentence(kwargs, match):
    model, x, y = _setup()
    with pytest.raises(ConfigError, match=match):
        model.fit(x, y, epochs=1, validation_split=0.2, verbose=0, **kwargs)


def test_fit_validation_runs_the_test_hooks_in_keras_order():
    """Keras 3's fit validates through evaluate with the same callbacks: on_test_begin, the test
    batch hooks and on_test_end (with unprefixed logs) come before on_epoch_end (val_ logs)."""
    from distdl.callbacks import Callback

    class Recorder(Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __getattribute__(self, name):
            attr = super().__getattribute__(name)
            if name.startswith("on_") and callable(attr):
                def hook(*args, **kwargs):
                    logs = kwargs.get("logs", args[-1] if args and isinstance(args[-1], dict) else None)
                    self.calls.append((name, sorted(logs) if logs else []))
                    return attr(*args, **kwargs)
                return hook
            return attr

    model, x, y = _setup()
    rec = Recorder()
    model.fit(x[:20], y[:20], epochs=1, batch_size=10, validation_data=(x[20:30], y[20:30]), callbacks=[rec],
              verbose=0)
    names = [n for n, _ in rec.calls if not n.startswith("on_batch_")]  # Keras's old aliases
    assert names[:6] == ["on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
                         "on_train_batch_begin", "on_train_batch_end"]
    i = names.index("on_test_begin")
    assert names[i:] == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
                         "on_epoch_end", "on_train_end"]
    assert dict(rec.calls)["on_test_end"] == ["loss", "mae"]
    assert dict(rec.calls)["on_epoch_end"] == ["loss", "mae", "val_loss", "val_mae"]

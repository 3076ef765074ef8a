"""Make the golden Keras 3 archives the tests read without Keras: run it where Keras 3 is installed.

    python3 -m venv /tmp/kerasenv && /tmp/kerasenv/bin/pip install keras "jax[cpu]"
    KERAS_BACKEND=jax /tmp/kerasenv/bin/python tests/data/keras/make_golden.py

For each model, Keras trains a few steps, writes NAME.keras, and NAME.npz gets a fixed input
(`x0`, `x1`, ...), Keras's predictions for it (`pred0`, ...), the optimizer's `iterations`, and one
more training batch (`step_x*`, `step_y*`) with the predictions after Keras's `train_on_batch` on it
(`after0`, ...), so a reader can check the optimizer state too. The functional `masked` model has
the mask ops (NotEqual, Any) and `mask=` / `training=` call arguments that Keras 3 writes for
Masking and Embedding(mask_zero=True).
"""
import os

import keras
import numpy as np
from keras import layers as L

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp(rng):
    m = keras.Sequential([keras.Input((6,)), L.Dense(16, activation="relu"),
                          L.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
                          L.Dense(3, activation="softmax")], name="mlp")
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    return m, [rng.standard_normal((32, 6))], [np.eye(3)[rng.integers(0, 3, 32)]]


def cnn_bn(rng):
    m = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(),
                          L.MaxPooling2D(), L.Flatten(), L.Dense(3, activation="softmax")], name="cnn_bn")
    m.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m, [rng.standard_normal((32, 8, 8, 1))], [rng.integers(0, 3, 32)]


def lstm_embedding(rng):
    m = keras.Sequential([keras.Input((6,)), L.Embedding(15, 4, mask_zero=True), L.LSTM(5),
                          L.Dense(1, activation="sigmoid")], name="lstm_embedding")
    m.compile(optimizer=keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True), loss="binary_crossentropy",
              metrics=["accuracy"])
    ids = rng.integers(1, 15, (32, 6))
    ids[::3, 4:] = 0  # padding that the mask hides
    return m, [ids], [rng.integers(0, 2, (32, 1))]


def two_inputs(rng):
    a, b = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    x = L.Dense(8, activation="relu")(a)
    y = L.Dense(4, activation="tanh")(L.Dense(6)(b))
    z = L.Concatenate()([x, y])
    out1 = L.Dense(2, name="reg")(z)
    out2 = L.Dense(1, activation="sigmoid", name="cls")(L.Add()([y, L.Dense(4)(x)]))
    m = keras.Model([a, b], [out1, out2], name="two_inputs")
    m.compile(optimizer=keras.optimizers.AdamW(0.01, amsgrad=True), loss=["mse", "binary_crossentropy"],
              loss_weights=[1.0, 0.5], metrics=[["mae"], ["accuracy"]])
    return m, [rng.standard_normal((32, 5)), rng.standard_normal((32, 3))], \
        [rng.standard_normal((32, 2)), rng.integers(0, 2, (32, 1))]


def sequence(rng):
    m = keras.Sequential([keras.Input((6, 3)), L.Conv1D(4, 2, padding="same"), L.TimeDistributed(L.Dense(3)),
                          L.Bidirectional(L.GRU(2, return_sequences=True)), L.LayerNormalization(),
                          L.GlobalAveragePooling1D(), L.Dense(2)], name="sequence")
    m.compile(optimizer=keras.optimizers.Adagrad(0.05), loss="mse")
    return m, [rng.standard_normal((32, 6, 3))], [rng.standard_normal((32, 2))]


def masked(rng):
    seq, ids = keras.Input((5, 3), name="seq"), keras.Input((5,), name="ids")
    s = L.GRU(3, return_sequences=True)(L.Masking()(seq))
    s = L.GlobalAveragePooling1D()(L.BatchNormalization()(s))
    e = L.LSTM(3)(L.Embedding(10, 3, mask_zero=True)(ids))
    m = keras.Model([seq, ids], L.Dense(2)(L.Concatenate()([s, e])), name="masked")
    m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = rng.standard_normal((32, 5, 3))
    x[::4, 3:] = 0.0  # masked steps
    i = rng.integers(1, 10, (32, 5))
    i[1::3, 2:] = 0
    return m, [x, i], [rng.standard_normal((32, 2))]


def make(build):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    m, xs, ys = build(rng)
    xs = [x.astype("float32") for x in xs]
    ys = [y.astype("float32") for y in ys]
    one = lambda v: v if len(v) > 1 else v[0]
    m.fit(one(xs), one(ys), batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = os.path.join(HERE, f"{build.__name__}.keras")
    m.save(path)
    probe = [x[:6] for x in xs]
    step_x, step_y = [x[8:20] for x in xs], [y[8:20] for y in ys]
    pred = m.predict(one(probe), verbose=0)
    iterations = int(m.optimizer.iterations)
    m.train_on_batch(one(step_x), one(step_y))
    after = m.predict(one(probe), verbose=0)
    listed = lambda p: p if isinstance(p, list) else [p]
    arrays = {f"x{i}": v for i, v in enumerate(probe)}
    arrays.update({f"pred{i}": v for i, v in enumerate(listed(pred))})
    arrays.update({f"step_x{i}": v for i, v in enumerate(step_x)})
    arrays.update({f"step_y{i}": v for i, v in enumerate(step_y)})
    arrays.update({f"after{i}": v for i, v in enumerate(listed(after))})
    arrays["iterations"] = np.array(iterations)
    np.savez(os.path.join(HERE, f"{build.__name__}.npz"), **arrays)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    for fn in (mlp, cnn_bn, lstm_embedding, two_inputs, sequence, masked):
        make(fn)

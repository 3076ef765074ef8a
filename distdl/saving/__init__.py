"""Persistence: files in, arrays and config dicts out (h5py lives here and in `distdl.datasets`).

| module | its one job |
| --- | --- |
| `checkpoint` | distdl's HDF5 checkpoint: write atomically, read, verify the checksum |
| `checkpoint_fields` | what each object and field of a checkpoint may be, checked before use |
| `checksum` | the checkpoint checksums: arrays only (versions 1-2), the whole file (version 3) |
| `checkpoint_files` | checkpoint file names in a folder: newest, pruning, stale temp files |
| `atomic` | HDF5 files written atomically: built in memory, temp file, fsync, rename |
| `h5_safety` | HDF5 files from elsewhere: no links or storage outside the file, sizes bounded by it |
| `keras_format` | Keras 3 `.weights.h5` files, read and written |
| `keras_config` | one layer's (optimizer's, loss's) Keras 3 config <-> distdl's; refusing code |
| `keras_graph` | Keras 3 Sequential / functional model configs <-> distdl's; Keras's layer order |
| `keras_archive` | Keras 3 `.keras` archives: `save("x.keras")`, `load_model("x.keras")` |
| `model_io` | a model's arrays and configs onto those files and back (`save`, `save_weights`, `load_weights`) |

Nothing here imports a model class: `distdl.models` turns what is read into models (so Keras's
`keras.saving.load_model` is `distdl.models.load_model`). Keras 3's custom-object API lives in
`distdl.registry` and is re-exported here, as `keras.saving` has it: `register_keras_serializable`,
`get_registered_name`, `get_registered_object`, `get_custom_objects`, `custom_object_scope` /
`CustomObjectScope`.
"""
from ..registry import (CustomObjectScope, custom_object_scope, get_custom_objects, get_registered_name,
                        get_registered_object, register_keras_serializable)

__all__ = ["register_keras_serializable", "get_registered_name", "get_registered_object", "get_custom_objects",
           "custom_object_scope", "CustomObjectScope"]

"""Keras's batch calls on a model: `train_on_batch`, `test_on_batch`, `predict_on_batch` and
`reset_metrics` (the work is in distdl.engine.batch_calls)."""
from __future__ import annotations

from ..engine import batch_calls

__all__ = ["ModelBatchCalls"]


class ModelBatchCalls:
    """The batch-call half of `Model`. Collective: call them on every rank with the same arrays
    (the global batch); each rank computes on its slice."""

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch, as Keras 3's.

        Args:
            x: the batch's inputs (an array, or a list or dict of arrays for several inputs).
            y: its targets.
            sample_weight: a weight per row, or None.
            class_weight: a dict class -> weight applied to each row by its label, or None.
            return_dict: return a dict of the logs instead of a list.

        Returns:
            The running loss (and metrics, in `metrics_names` order) since the last
            `reset_metrics()`, including this batch: a float, a list or a dict.
        """
        return batch_calls.train_on_batch(self, x, y, sample_weight, class_weight, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss and metrics of one batch, added to the running ones, as Keras 3's.

        Args:
            x: the batch's inputs.
            y: its targets.
            sample_weight: a weight per row, or None.
            return_dict: return a dict of the logs instead of a list.

        Returns:
            The running loss (and metrics) of the test batches since the last `reset_metrics()`.
        """
        return batch_calls.test_on_batch(self, x, y, sample_weight, return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch (every rank gets all rows).

        Args:
            x: the batch's inputs.
        """
        return batch_calls.predict_on_batch(self, x)

    def reset_metrics(self) -> None:
        """Start the running loss and metrics of `train_on_batch` and `test_on_batch` again."""
        batch_calls.reset_metrics(self)

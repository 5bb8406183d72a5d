"""The decision rule: how a read-out becomes a predicted class (docs/SEMANTICS.md §5).

Every prediction snn-deploy makes or compares (the float-vs-quantized agreement of
``report.json``, ``convert``'s SNN-vs-ANN agreement, examples/kws) goes through ``decide``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NO_DECISION = -1
"""The prediction of an undecided read-out (every output equal, e.g. all silent)."""

DECISION_RULE = (
    "class = argmax of the read-out summed over time; a tie between some outputs goes to the "
    "lowest index; a read-out with every output equal (silent: all zero) is no decision (-1)"
)
"""The rule in words, as ``report.json`` (``agreement.decision_rule``) and the summary give it."""


def decide(summed: npt.ArrayLike, *, undecided: int = NO_DECISION) -> npt.NDArray[np.int64]:
    """Predicted class per sample from read-outs summed over time (``[..., classes]``).

    The class is the output with the largest sum; among tied largest outputs, the lowest
    index wins. When every output has the same sum (a silent read-out sums to zero
    everywhere) the read-out carries no information and the prediction is ``undecided``: by
    default ``NO_DECISION``, which matches no label; a label set with a class for "nothing
    heard" (keyword spotting's ``_silence_``) may pass that class instead.

    Args:
        summed: the read-out summed (or averaged) over time steps, classes on the last axis.
        undecided: the prediction of a read-out whose outputs are all equal.

    Returns:
        ``summed.shape[:-1]`` class indices.

    Examples:
        >>> decide([[0.0, 2.0, 1.0], [3.0, 0.0, 3.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]).tolist()
        [1, 0, -1, -1]
        >>> decide([[0, 0, 0], [0, 1, 1]], undecided=2).tolist()
        [2, 1]
    """
    x = np.asarray(summed)
    pred: npt.NDArray[np.int64] = np.argmax(x, axis=-1).astype(np.int64)  # the first maximum
    flat = np.all(x == x[..., :1], axis=-1)
    pred[flat] = undecided
    return pred


def confusion(
    labels: npt.ArrayLike, predicted: npt.ArrayLike, classes: int
) -> npt.NDArray[np.int64]:
    """Sample counts ``[classes, classes + 1]``: row = label, column = predicted class, the last
    column the undecided read-outs (``NO_DECISION``), which match no label.

    Args:
        labels: the class of each sample, in ``range(classes)``.
        predicted: ``decide``'s class of each sample, in ``range(classes)`` or ``NO_DECISION``.
        classes: the number of classes (the output's size).

    Returns:
        The counts; their diagonal sum is the number of correct predictions.

    Examples:
        >>> confusion([0, 0, 1, 2], [0, -1, 2, 2], 3).tolist()
        [[1, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, 0]]
    """
    y, p = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    counts = np.zeros((classes, classes + 1), dtype=np.int64)
    np.add.at(counts, (y, np.where(p == NO_DECISION, classes, p)), 1)
    return counts

"""The built-in tasks: what they accept, their losses and their metrics, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.models.dnn import AnomalyDNN
from fedsim.tasks import BinaryAnomalyDetection, Classification, Regression


def data(y_train, y_test, shape=(3,)) -> Dataset:
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    return Dataset(np.zeros((len(y_train), *shape), np.float32), y_train, np.zeros((len(y_test), *shape), np.float32), y_test, name="toy")


class Fixed(nn.Module):
    """Returns the same output rows whatever the input (a model whose predictions a test chooses)."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.out[: len(x)] + 0 * self.w


def test_classification_takes_its_class_count_from_the_labels_and_refuses_what_is_not_a_label():
    assert Classification().prepare(data([0, 2, 1], [1, 3])).num_classes == 4
    assert Classification(num_classes=10).prepare(data([0, 2], [1])).num_classes == 10
    with pytest.raises(FedsimError, match="float values .*task=regression"):
        Classification().prepare(data([0.5, 1.0], [1.0]))
    with pytest.raises(FedsimError, match="class 3, beyond task.num_classes=3"):
        Classification(num_classes=3).prepare(data([0, 3], [1]))
    assert Classification().prepare(data(np.array([0.0, 2.0]), [1.0])).num_classes == 3  # whole floats are labels


def test_binary_anomaly_refuses_three_classes_and_a_missing_class():
    with pytest.raises(FedsimError, match=r"\[0, 1, 2\].*task=binary_anomaly needs labels 0 .* and 1 .*task=classification"):
        BinaryAnomalyDetection().prepare(data([0, 1, 2], [0, 1]))
    with pytest.raises(FedsimError, match="hold no anomalous rows"):
        BinaryAnomalyDetection().prepare(data([0, 0], [0, 1]))
    assert BinaryAnomalyDetection().prepare(data([0, 1, 1, 1], [0, 1])).anomaly_ratio == 0.75


def test_a_model_whose_output_is_not_the_tasks_is_refused_in_one_line():
    task = Classification().prepare(data([0, 1, 2], [0]))
    with pytest.raises(FedsimError, match=r"output shape \(2, 5\).*needs \(2, 3\)") as err:
        task.check_model(nn.Linear(3, 5), torch.zeros(2, 3))
    assert "\n" not in str(err.value)
    task.check_model(nn.Linear(3, 3), torch.zeros(2, 3))
    BinaryAnomalyDetection().check_model(AnomalyDNN(3, hidden=(4,)), torch.zeros(2, 3))  # its own score: not checked


def test_classification_metrics_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 2.0]])
    y = torch.tensor([0, 1, 2, 2])  # row 2 (class 2) is called class 1
    out = Classification(num_classes=3, top_k=2).evaluate(Fixed(logits), torch.zeros(4, 1), y)
    assert out["accuracy"] == 0.75 and out["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, y)))
    assert (out["recall_0"], out["recall_1"], out["recall_2"]) == (1.0, 1.0, 0.5)
    f1 = [1.0, 2 * 0.5 * 1.0 / 1.5, 2 * 1.0 * 0.5 / 1.5]  # per class: precision and recall
    assert out["macro_f1"] == pytest.approx(np.mean(f1))
    assert out["top2_accuracy"] == 1.0  # row 2's true class is its second choice
    assert set(out) == set(Classification(num_classes=3, top_k=2).metric_names())


def test_regression_metrics_by_hand_and_its_target_is_r2():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    pred = torch.tensor([[1.0], [2.0], [3.0], [2.0]])
    task = Regression().prepare(data([0.1, 0.2], [0.3]))
    out = task.evaluate(Fixed(pred), torch.zeros(4, 1), y)
    assert out["mse"] == out["loss"] == 1.0 and out["mae"] == 0.5 and out["r2"] == pytest.approx(1 - 1.0 / 1.25)
    assert task.target_metric == "r2" and task.num_outputs == 1
    with pytest.raises(FedsimError, match="finite numbers"):
        Regression().prepare(data([0.1, np.nan], [0.3]))

"""The dense backbones the baselines share, and how their parameters are counted.

The baselines are task-incremental and multi-head: a shared feature extractor
and one output head per task (Avalanche's :class:`MultiHeadClassifier`), the
task label choosing the head. PackNet instead gets the same extractor with one
output layer over all classes, masked per task by
:class:`avalanche_nispa.harness.baselines.TaskMaskedPackNetModel`.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from avalanche.models import IncrementalClassifier, MultiHeadClassifier, MultiTaskModule

from .params import Backbone

__all__ = [
    "MultiHeadNet",
    "build_features",
    "count_dense_parameters",
    "multi_head_net",
    "single_head_net",
]


def _mlp_features(backbone: Backbone) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(backbone.input_shape)
    for hidden in backbone.hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers), width


def _cnn_features(backbone: Backbone) -> tuple[nn.Sequential, int]:
    channels, height, width_px = backbone.input_shape
    if height % 4 or width_px % 4:
        raise ValueError(
            f"the paper CNN pools twice by 2, so the input size must be a multiple "
            f"of 4, got {height}x{width_px}"
        )
    features = nn.Sequential(
        nn.Conv2d(channels, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * (height // 4) * (width_px // 4), backbone.fc_size),
        nn.ReLU(),
    )
    return features, backbone.fc_size


#: The dense feature extractor of each backbone kind.
_FEATURES = {"mlp": _mlp_features, "cnn": _cnn_features}


def build_features(backbone: Backbone) -> tuple[nn.Sequential, int]:
    """The backbone without its output layer, and the width of its output."""
    return _FEATURES[backbone.kind](backbone)


class MultiHeadNet(MultiTaskModule):
    """A shared feature extractor followed by one classification head per task.

    Heads are Avalanche :class:`MultiHeadClassifier` heads, created when a task
    label is first seen and masked to the classes the task trained on.
    """

    def __init__(self, features: nn.Module, feature_size: int) -> None:
        super().__init__()
        self.features = features
        self.classifier = MultiHeadClassifier(feature_size)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.classifier(self.features(x), task_label)


def multi_head_net(backbone: Backbone) -> MultiHeadNet:
    """The dense multi-head network of ``backbone``."""
    return MultiHeadNet(*build_features(backbone))


def single_head_net(backbone: Backbone, n_classes: int) -> nn.Sequential:
    """The dense network of ``backbone`` with one output layer of ``n_classes``."""
    features, width = build_features(backbone)
    return nn.Sequential(*features, nn.Linear(width, n_classes))


def count_dense_parameters(model: nn.Module) -> dict[str, int]:
    """Active, frozen and total parameters of a dense network.

    Every trainable weight and bias is active and nothing is frozen. In
    multi-head networks only the head rows of classes a head trained on are
    counted: Avalanche sizes each head by the largest global class id, and the
    rows of other tasks' classes are masked out and never used.
    """
    counted: set[int] = set()
    active = 0

    def count_rows(linear: nn.Linear, rows: int) -> int:
        counted.update(id(p) for p in linear.parameters())
        return rows * linear.in_features + (rows if linear.bias is not None else 0)

    for module in model.modules():
        if isinstance(module, MultiHeadClassifier) and module.masking:
            for task, head in module.classifiers.items():
                rows = int(getattr(module, f"active_units_T{task}").sum())
                active += count_rows(head.classifier, rows)
        elif isinstance(module, IncrementalClassifier) and module.masking:
            if id(module.classifier.weight) not in counted:
                active += count_rows(module.classifier, int(module.active_units.sum()))
    active += sum(
        p.numel() for p in model.parameters() if p.requires_grad and id(p) not in counted
    )
    return {"active": active, "frozen": 0, "total": active}

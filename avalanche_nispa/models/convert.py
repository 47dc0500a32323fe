"""Make a user's own Sequential-style model NISPA-ready."""
from __future__ import annotations

from typing import List, Optional

from torch import nn

from avalanche.models import IncrementalClassifier, MultiHeadClassifier

from ..sparse import MaskedConv2d, MaskedLinear, MaskInit, check_density, sparsify_
from .network import CLEAN_MASKED_LOGIT, SparseMultiTaskNet

__all__ = ["to_nispa", "SUPPORTED_LAYERS"]

_PASS_THROUGH = (
    nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity,
)
SUPPORTED_LAYERS = (nn.Linear, nn.Conv2d) + _PASS_THROUGH
_CLASSIFIERS = (MultiHeadClassifier, IncrementalClassifier)
_NORMALISATION = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                  nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
                  nn.InstanceNorm3d)


def _leaves(module: nn.Module, path: str) -> List[tuple]:
    """Modules in registration order, descending into the model and into
    ``nn.Sequential`` s; any other module with children is refused (its forward may
    add, branch or reorder, which a chain of its children would silently get wrong)."""
    if isinstance(module, SUPPORTED_LAYERS) or isinstance(module, _CLASSIFIERS):
        return [(path, module)]
    children = list(module.named_children())
    if not children or (path and not isinstance(module, nn.Sequential)):
        raise _unsupported(path, module)
    found: List[tuple] = []
    for name, child in children:
        found += _leaves(child, f"{path}.{name}" if path else name)
    return found


def _unsupported(path: str, module: nn.Module) -> ValueError:
    kind = type(module).__name__
    hint = ""
    if isinstance(module, _NORMALISATION):
        hint = (" Normalisation layers keep running statistics or shared affine weights that "
                "later tasks would change, which breaks NISPA's frozen stable units; remove it.")
    elif isinstance(module, nn.RNNBase):
        hint = " Recurrent layers have no unit-level sparse form in NISPA; use a feed-forward model."
    elif list(module.children()):
        hint = (" It is a custom block: its forward (a residual sum, a branch) cannot be read "
                "from its layers. Write the model as an nn.Sequential of supported layers.")
    names = ", ".join(t.__name__ for t in SUPPORTED_LAYERS)
    return ValueError(
        f"to_nispa cannot convert layer {path or '<model>'} ({kind}).{hint} Supported layers: "
        f"{names}, with a final Linear or Avalanche MultiHeadClassifier as the classifier."
    )


def to_nispa(
    model: nn.Module,
    density: float = 0.2,
    *,
    dense_first_layer: Optional[bool] = None,
    num_classes: Optional[int] = None,
    mask_init: MaskInit = "bernoulli",
    head_bias_init: str = "default",
    masked_logit_value: float = CLEAN_MASKED_LOGIT,
    class_incremental: bool = False,
    shared_head: bool = False,
    head_fan_out: str = "output_width",
) -> SparseMultiTaskNet:
    """Convert a feed-forward model into a :class:`SparseMultiTaskNet`.

    The model's leaf modules are taken in registration order (``nn.Sequential`` s are
    walked into), which must be the order of its forward pass: ``Linear``, ``Conv2d``,
    ``ReLU``, pooling, ``Flatten``, ``Dropout``. The last ``Linear`` (or an Avalanche
    ``MultiHeadClassifier`` / ``IncrementalClassifier``, as in ``MTSimpleMLP``) is the
    classifier: it is replaced by NISPA's per-task sparse heads reading its input
    features. Other layers keep their current weights, masked at ``density``. A
    ``Flatten`` is inserted before the first ``Linear`` when none precedes it (Avalanche's
    MLPs flatten inside ``forward``).

    ``dense_first_layer``: keep the first weight layer dense. ``None`` (default) follows
    the paper's networks: a first ``Conv2d`` stays dense (as ``NISPACNN``'s
    ``dense_first_conv=True``, the official ``skip_first``), a first ``Linear`` is masked
    at ``density`` (as ``NISPAMLP``). ``True`` / ``False`` force either.

    ``class_incremental=True`` (with ``num_classes``) gives one shared output layer for
    NISPA-Replay instead of a head per task; ``shared_head=True`` (with ``num_classes``)
    the official code's single task-masked output layer for NISPA. ``head_fan_out``: as
    :class:`SparseMultiTaskNet`'s.

    Raises ``ValueError`` naming the layer for anything else (BatchNorm, recurrent
    layers, custom modules with parameters, custom blocks that are not ``nn.Sequential``).
    """
    check_density(density)
    if isinstance(model, SparseMultiTaskNet):
        raise ValueError("the model is already a NISPA network")
    leaves = _leaves(model, "")
    classifier_index = None
    for i, (_, module) in enumerate(leaves):
        if isinstance(module, (nn.Linear,) + _CLASSIFIERS):
            classifier_index = i
    if classifier_index is None:
        raise ValueError(
            "to_nispa found no Linear layer or Avalanche classifier to turn into task heads"
        )
    path, classifier = leaves[classifier_index]
    if classifier_index != len(leaves) - 1:
        trailing = [p for p, m in leaves[classifier_index + 1:] if not isinstance(m, (nn.Dropout, nn.Identity))]
        if trailing:
            raise ValueError(
                f"the classifier {path} must be the model's last layer, but {trailing} follow it"
            )
    if isinstance(classifier, _CLASSIFIERS):
        in_features = _classifier_in_features(classifier)
    else:
        in_features = classifier.in_features
    body: List[nn.Module] = []
    first_weight_layer = True
    for layer_path, module in leaves[:classifier_index]:
        if isinstance(module, _CLASSIFIERS):
            raise _unsupported(layer_path, module)
        if isinstance(module, nn.Linear):
            if first_weight_layer and not any(isinstance(m, nn.Flatten) for m in body):
                body.append(nn.Flatten())
            masked = MaskedLinear.from_dense(module)
        elif isinstance(module, nn.Conv2d):
            masked = MaskedConv2d.from_dense(module)
        else:
            body.append(module)
            continue
        dense = isinstance(module, nn.Conv2d) if dense_first_layer is None else dense_first_layer
        if not (first_weight_layer and dense):
            sparsify_(masked, density, method=mask_init)
        first_weight_layer = False
        body.append(masked)
    if first_weight_layer:
        raise ValueError(
            "to_nispa needs at least one Linear or Conv2d layer before the classifier: "
            "NISPA selects stable units among hidden layers"
        )
    net = SparseMultiTaskNet(
        nn.Sequential(*body), in_features, density=density, mask_init=mask_init,
        num_classes=num_classes, head_bias_init=head_bias_init,  # type: ignore[arg-type]
        masked_logit_value=masked_logit_value, class_incremental=class_incremental,
        shared_head=shared_head, head_fan_out=head_fan_out,  # type: ignore[arg-type]
    )
    reference = next(model.parameters())
    return net.to(reference.device)


def _classifier_in_features(classifier: nn.Module) -> int:
    linears = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the Avalanche classifier has no Linear layer to read its width from")
    return linears[0].in_features

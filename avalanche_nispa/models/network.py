"""The sparse multi-task network NISPA trains: a body of masked layers and one sparse
output head per task.

Why per-task heads instead of the official single masked output layer (spec §2.7, §9.3):
Avalanche experiences already say which classes and task each experience brings, so no
total class count has to be known up front, and streams whose tasks reuse the same
class labels (Permuted MNIST: every task is classes 0-9) work unchanged. Each head is a
:class:`~avalanche_nispa.sparse.MaskedLinear` from the last hidden layer to the task's
classes, drawn at the network's density, whose units count as *stable* from the start,
as the seen-class outputs do in the official code: connections from plastic units into
it are dropped, and at the end of the task it is frozen whole. The head of a past task
therefore never changes, and neither do its logits.

The logits of a head are scattered into a vector indexed by global class id; the other
entries hold ``masked_logit_value``: ``0`` reproduces the official ×0 masking (a
non-task class with logit 0 can win the argmax and enters the softmax), a large
negative value (the clean default) removes them.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor, nn

from avalanche.models import MultiTaskModule

from ..algorithm.links import LayerLink
from ..experiences import (
    check_disjoint_classes,
    check_known_classes,
    classes_of,
    experience_name,
    task_label_of,
    task_labels_of,
)
from ..sparse import PLASTIC, STABLE, MaskedLayer, MaskInit, check_density, sparsify_
from ..sparse.layers import is_masked_layer
from .growth import replay_growth_
from .heads import (HeadBiasInit, HeadFanOut, HeadWeightInit, TaskClasses, TaskHead,
                    check_head_init, init_head_)

__all__ = ["SparseMultiTaskNet", "TaskHead", "LayerLink", "CLEAN_MASKED_LOGIT", "SHARED_HEAD"]

SHARED_HEAD = "0"
"""Key of the one output layer of a class-incremental network."""

#: the name a whole network pickled before models/heads.py existed refers to
_TaskClasses = TaskClasses

CLEAN_MASKED_LOGIT = -1e9
"""Logit of non-task classes in the clean mode: ``exp`` of it is exactly 0 in float32,
so it acts as −∞ in the softmax without producing infinities or NaNs downstream."""

class SparseMultiTaskNet(MultiTaskModule):
    """A feed-forward body of masked layers plus one :class:`TaskHead` per task.

    :param body: modules run in order (masked layers, activations, pooling, flatten,
        dropout). Its masked layers are the hidden layers NISPA ranks and rewires; the
        recorded activation of each is the output of the last module before the next
        masked layer (so after ReLU and pooling, as in the official code), ignoring
        ``Flatten``.
    :param head_in_features: width of the body's output.
    :param density: connection density of new heads.
    :param mask_init: ``"bernoulli"`` (official) or ``"exact"`` for new heads.
    :param num_classes: optional fixed width of the output vector (the official single
        output layer's width, e.g. 10 for MNIST). ``None``: the largest class id seen + 1.
    :param head_bias_init: ``"default"`` (PyTorch ``Linear``'s uniform), ``"zero"`` (the
        official ConvNet) or ``"default_then_zero"`` (the official MLP with its end-of-task
        re-initialisation: the first task's output rows keep PyTorch's uniform biases and
        every later task's rows start at zero, the value the re-initialisation leaves in
        the official layer's unseen-class rows; the original mode sets it).
    :param head_weight_init: ``"fan_out"`` (``kaiming_normal_(fan_out, relu)`` over the
        output width, the official MLP) or ``"fan_in_then_fan_out"`` (the official
        ConvNet: the first head ``kaiming_normal_`` over its fan-in, std √(2/fan_in),
        later heads fan-out, as the official re-initialisation redraws them).
    :param head_fan_out: the fan-out a head's weights are drawn over. ``"output_width"``
        (default): the output vector's width when the head is added (``num_classes``
        when given, the official layer's; else the largest class id trained so far + 1,
        so a head's scale depends on its class ids). ``"head"``: the head's own number of
        classes, a per-task layer's fan-out as ``kaiming_normal_`` reads it, so equal
        class counts get equal draws whatever their ids.
    :param masked_logit_value: value of the logits of classes outside the task.
    :param class_incremental: one shared output layer of ``num_classes`` units instead
        of a head per task (NISPA-Replay, replay spec §2.7): every class's logit is live
        (no masking), the units of classes seen in training are stable (connections
        from plastic units into them are dropped) and those of unseen classes plastic
        (regrown connections go there). Needs ``num_classes``; task labels are ignored.
    :param shared_head: task-incremental with the official code's single output layer
        (spec §2.7) instead of a head per task: one sparse layer of ``num_classes``
        units whose rows of classes not trained yet are plastic and receive regrown
        connections; each task's logits are its own classes' rows (the others hold
        ``masked_logit_value``), and its rows turn stable when it starts and are frozen
        when it ends. Needs ``num_classes`` and tasks with disjoint class ids (not
        Permuted MNIST, whose tasks share ids 0-9).
    """

    def __init__(
        self,
        body: nn.Sequential,
        head_in_features: int,
        *,
        density: float,
        mask_init: MaskInit = "bernoulli",
        num_classes: Optional[int] = None,
        head_bias_init: HeadBiasInit = "default",
        head_weight_init: HeadWeightInit = "fan_out",
        head_fan_out: HeadFanOut = "output_width",
        masked_logit_value: float = CLEAN_MASKED_LOGIT,
        class_incremental: bool = False,
        shared_head: bool = False,
    ) -> None:
        super().__init__()
        check_density(density)
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer or None, got {num_classes}")
        if class_incremental and num_classes is None:
            raise ValueError(
                "a class-incremental network needs num_classes, the width of its one shared "
                "output layer (e.g. num_classes=10 for Split MNIST)")
        if shared_head and num_classes is None:
            raise ValueError(
                "shared_head=True needs num_classes, the width of the one output layer of "
                "every task (e.g. num_classes=10 for Split MNIST)")
        check_head_init(head_bias_init, head_weight_init, head_fan_out)
        self.body = body
        self.heads = nn.ModuleDict()
        self.head_in_features = int(head_in_features)
        #: input blocks of every head: one, plus one per growth of the last hidden layer
        self.head_col_blocks: List[int] = [self.head_in_features]
        self.density = float(density)
        self.mask_init: MaskInit = mask_init
        self.num_classes = num_classes
        #: ``num_classes`` as built (the original mode may widen a None to the stream's
        #: class count when it trains; checkpoints compare this one)
        self.configured_num_classes = num_classes
        self.head_bias_init: HeadBiasInit = head_bias_init
        self.head_weight_init: HeadWeightInit = head_weight_init
        self.head_fan_out: HeadFanOut = head_fan_out
        self._body_masked_index: List[int] = [
            i for i, m in enumerate(body) if is_masked_layer(m)
        ]
        if not self._body_masked_index:
            raise ValueError(
                "the network body has no masked layer (MaskedLinear or MaskedConv2d); "
                "build it with avalanche_nispa.models.to_nispa() or the model zoo"
            )
        self.register_buffer("masked_logit_value", torch.tensor(
            float(masked_logit_value), device=_first_parameter(body).device))
        self._record_index = self._activation_points()
        self._guarded_inputs = frozenset(self._body_masked_index[1:])
        self._head_classes_end = 0  # largest class id of any head + 1, kept by _new_head
        self.class_incremental = bool(class_incremental)
        #: one output layer for every experience (class-incremental, or ``shared_head``)
        self.shared_head = self.class_incremental or bool(shared_head)
        #: with a task-incremental shared head, the classes of each task trained
        self.task_classes = nn.ModuleDict()
        if self.shared_head:
            self.heads[SHARED_HEAD] = self._new_head(range(int(num_classes)))
            self.heads[SHARED_HEAD].unit_state.fill_(PLASTIC)  # no class seen yet

    # ----------------------------------------------------------------- topology
    def _activation_points(self) -> List[int]:
        """Per masked layer, the module whose output is recorded as its units'
        activation: the last one before the next masked layer, or before a ``Flatten``
        if one comes first (modules after a flatten, such as ``Dropout``, see one value
        per pixel instead of one per unit)."""
        points = []
        bounds = self._body_masked_index[1:] + [len(self.body)]
        for start, stop in zip(self._body_masked_index, bounds):
            point = start
            for j in range(start + 1, stop):
                if isinstance(self.body[j], nn.Flatten):
                    break
                point = j
            points.append(point)
        return points

    def hidden_layers(self) -> List[MaskedLayer]:
        return [self.body[i] for i in self._body_masked_index]  # type: ignore[misc]

    def named_hidden_layers(self) -> Iterator[Tuple[str, MaskedLayer]]:
        for i in self._body_masked_index:
            yield f"body.{i}", self.body[i]  # type: ignore[misc]

    def layer_links(self, task_label: Optional[int] = None) -> List[LayerLink]:
        """The masked layers in data-flow order, with the head of ``task_label`` last
        (if it exists)."""
        links: List[LayerLink] = []
        previous: Optional[MaskedLayer] = None
        chain: List[tuple] = [(name, layer, False) for name, layer in self.named_hidden_layers()]
        key = self.head_key(task_label)
        if key is not None and key in self.heads:
            chain.append((f"heads.{key}", self.heads[key], True))
        for name, layer, is_head in chain:
            group = None if previous is None else _source_group(previous, layer, name)
            links.append(LayerLink(name, layer, group, is_head))
            previous = layer
        return links

    # ------------------------------------------------------------------ forward
    def features(self, x: Tensor, activation_sums: Optional[List[Tensor]] = None) -> Tensor:
        """Run the body. If ``activation_sums`` is given (one tensor per hidden layer,
        or an empty list), add each hidden layer's per-unit activation summed over the
        batch (and over H×W for conv maps) to it.

        In eval mode the input of every masked layer after the first, and the body's
        output, pass through ``nan_to_num``: a stable unit reads a plastic unit only
        through an absent (zero) weight, and ``0 * inf`` is NaN, so a diverged plastic
        unit would otherwise turn old tasks' predictions into NaN. Finite values are
        untouched, so predictions of old tasks stay bit-identical. (Training mode skips
        it: there a divergence raises, see :class:`~avalanche_nispa.plugins.MaskingPlugin`.)
        """
        record = activation_sums is not None
        guard = not self.training
        k = 0
        for i, module in enumerate(self.body):
            if guard and i in self._guarded_inputs:
                x = torch.nan_to_num(x)
            x = module(x)
            if record and k < len(self._record_index) and i == self._record_index[k]:
                dims = [0] + list(range(2, x.dim()))
                summed = x.detach().sum(dim=dims)
                if len(activation_sums) <= k:  # type: ignore[arg-type]
                    activation_sums.append(summed)  # type: ignore[union-attr]
                else:
                    activation_sums[k] += summed  # type: ignore[index]
                k += 1
        return torch.nan_to_num(x) if guard else x

    def output_width(self) -> int:
        """Width of the output vector: every class id a head or an experience has
        shown (and ``num_classes`` if set). Plain ints, no tensor read per forward."""
        return max(int(self.max_class_label), self.num_classes or 0, self._head_classes_end)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.task_logits(self.features(x), int(task_label))

    def trained_classes(self) -> Dict[int, Set[int]]:
        """Per task label, the classes training has shown (a class-incremental network:
        task 0, the classes whose output units are stable)."""
        if self.class_incremental:
            head = self.heads[SHARED_HEAD]
            return {0: set((head.unit_state == STABLE).nonzero().squeeze(1).tolist())}
        if self.shared_head:
            return {int(t): set(c.classes.tolist()) for t, c in self.task_classes.items()}
        return {int(t): set(h.classes.tolist()) for t, h in self.heads.items()}

    def head_key(self, task_label: Optional[int]) -> Optional[str]:
        """The key in ``heads`` of the head that serves ``task_label``."""
        if self.shared_head:
            return SHARED_HEAD
        return None if task_label is None else str(task_label)

    def task_logits(self, features: Tensor, task_label: int) -> Tensor:
        """The output vector of task ``task_label``'s head on body ``features``: its
        classes' logits, ``masked_logit_value`` for every other class."""
        fill = self.masked_logit_value.to(features.dtype)
        out = fill.expand(features.shape[0], self.output_width())
        key = self.head_key(task_label)
        head = self.heads[key] if key in self.heads else None
        if self.shared_head and not self.class_incremental:
            own = self.task_classes[str(task_label)] if str(task_label) in self.task_classes else None
            if own is None:
                return torch.zeros_like(out)  # a task never trained
            return out.index_copy(1, own.classes, head(features).index_select(1, own.classes))
        if head is None:
            # A task never trained: no head yet, every class equally (un)likely.
            return torch.zeros_like(out)
        return out.index_copy(1, head.classes, head(features))

    def forward(self, x: Tensor, task_labels=None) -> Tensor:  # type: ignore[override]
        if self.class_incremental:
            return self.task_logits(self.features(x), 0)
        if task_labels is None:
            return self.forward_all_tasks(x)
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels)
        return self.forward_per_row(x, task_labels)

    def forward_per_row(self, x: Tensor, task_labels: Tensor) -> Tensor:
        """Each row through the head of its own task label, without reading the labels
        on the host (no synchronisation with the device, as a training step needs):
        every head runs on the whole batch and each row keeps its task's output; a row
        whose task has no head gets zeros. A row's logits are those of
        :meth:`forward_single_task` bit for bit; the other heads receive zero gradients."""
        features = self.features(x)
        labels = torch.as_tensor(task_labels, device=features.device).reshape(-1, 1)
        out = features.new_zeros(x.shape[0], self.output_width())
        tasks = self.task_classes if self.shared_head and not self.class_incremental else self.heads
        for key in tasks:
            out = torch.where(labels == int(key), self.task_logits(features, int(key)), out)
        return out

    # --------------------------------------------------------------- adaptation
    def adaptation(self, experience) -> None:
        # Avalanche's MultiTaskModule.adaptation, written out: it reads
        # classes_in_this_experience, which streams of the newer benchmark API lack.
        task_labels = task_labels_of(experience)
        classes = classes_of(experience)
        if not classes:
            raise ValueError(f"{experience_name(experience)} has no classes (is it empty?)")
        self.max_class_label = max(self.max_class_label, max(classes) + 1)
        if not self.training:
            return
        self.known_train_tasks_labels = self.known_train_tasks_labels.union(task_labels)
        task = task_label_of(experience)
        key = str(task)
        if self.shared_head:
            head = self.heads[SHARED_HEAD]
            if not self.class_incremental:
                if key in self.task_classes:
                    check_known_classes(experience, task, classes,
                                        set(self.task_classes[key].classes.tolist()))
                    return
                check_disjoint_classes(experience, task, classes, self.trained_classes())
                self.task_classes[key] = TaskClasses(classes, device=head.unit_state.device)
            head.unit_state[torch.as_tensor(classes, device=head.unit_state.device)] = STABLE
            return
        if key in self.heads:
            check_known_classes(experience, task, classes, set(self.heads[key].classes.tolist()))
            return
        self.heads[key] = self._new_head(classes)

    def _new_head(self, classes: Sequence[int]) -> TaskHead:
        reference = _first_parameter(self.body)
        head = TaskHead(self.head_in_features, classes, device=reference.device,
                        dtype=reference.dtype)
        head.col_blocks = list(self.head_col_blocks)
        # The width of the output vector when this head is added, from what training
        # has seen (never from evaluations, so evaluating cannot change later draws).
        width = max(self.num_classes or 0, max(classes) + 1, self._head_classes_end)
        fan_out = len(classes) if self.head_fan_out == "head" else width
        first = self._head_classes_end == 0  # no head was made before this one
        self._head_classes_end = max(self._head_classes_end, max(classes) + 1)
        init_head_(head, first=first, fan_out=fan_out, bias_init=self.head_bias_init,
                   weight_init=self.head_weight_init)
        sparsify_(head, self.density, method=self.mask_init)
        return head

    # ------------------------------------------------------------- checkpoints
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Grow to the saved shapes, create the heads a saved state has and this
        network lacks, then load."""
        replay_growth_(self, state_dict)
        prefix = "heads."
        for key, value in state_dict.items():
            if key.startswith("task_classes.") and key.endswith(".classes"):
                task = key[len("task_classes."):-len(".classes")]
                if task not in self.task_classes:
                    self.task_classes[task] = TaskClasses(
                        value.tolist(), device=_first_parameter(self.body).device)
                    self.known_train_tasks_labels.add(int(task))
            if key.startswith(prefix) and key.endswith(".classes"):
                task = key[len(prefix):-len(".classes")]
                if task not in self.heads:
                    self.heads[task] = self._new_head(value.tolist())
                    self.known_train_tasks_labels.add(int(task))
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        for head in self.heads.values():
            self.max_class_label = max(self.max_class_label, int(head.classes.max()) + 1)
        return result


def _first_parameter(body: nn.Module) -> Tensor:
    """The body's first parameter (it has one: every masked layer has a weight)."""
    return next(body.parameters())


def _source_group(previous: MaskedLayer, layer: MaskedLayer, name: str) -> int:
    if layer.in_units == previous.out_units:
        return 1
    if isinstance(layer, nn.Linear) and layer.in_units % previous.out_units == 0:
        return layer.in_units // previous.out_units
    raise ValueError(
        f"cannot map the inputs of {name} ({layer.in_units}) onto the "
        f"{previous.out_units} units of the layer before it; NISPA needs each layer to "
        "read the previous masked layer's units directly or through a flatten"
    )

"""On a CUDA device (tests marked ``gpu``, skipped without one; ``scripts/gpu_check.sh``
runs them): NISPA and NISPA-Replay keep every tensor on the device, never wait for it
inside a training step, forget nothing, and their checkpoints cross between devices."""
import pytest
import torch

from avalanche_nispa import load_checkpoint, save_checkpoint
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.harness.gpu_check import zero_forgetting_run
from avalanche_nispa.invariants import frozen_changes, frozen_snapshot
from avalanche_nispa.tensor_audit import StepAuditPlugin, TensorAudit

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def _off_device(module):
    return [name for name, t in [*module.named_parameters(), *module.named_buffers()]
            if t.device.type != "cuda"]


@pytest.mark.parametrize("kind", ["nispa", "replay"])
def test_training_on_cuda_keeps_tensors_there_and_never_waits_inside_a_step(small_nispa, kind, quiet_evaluator):
    stream = split_digits(seed=0, return_task_id=kind == "nispa").train_stream
    audit = TensorAudit()
    strategy = small_nispa(kind, quiet_evaluator(), [StepAuditPlugin(audit)], device=CUDA)
    with audit:
        for experience in stream[:3]:
            strategy.train(experience)
    assert audit.steps > 20
    assert not audit.step_syncs, audit.report()
    assert not _off_device(strategy.model)
    if kind == "replay":
        assert {t.device.type for t in strategy.replay_plugin.memory.tensors()} == {"cuda"}


def test_frozen_weights_are_bit_identical_on_cuda(small_nispa, quiet_evaluator):
    stream = split_digits(seed=0).train_stream
    strategy = small_nispa("nispa", quiet_evaluator(), device=CUDA)
    strategy.train(stream[0])
    snapshot = frozen_snapshot(strategy.model)
    for experience in stream[1:4]:
        strategy.train(experience)
    assert frozen_changes(strategy.model, snapshot) == []


def test_the_zero_forgetting_check_passes_on_cuda():
    run = zero_forgetting_run("split_digits", device="cuda", max_phases=2, log=lambda _: None)
    assert run["violations"] == [] and run["frozen_entries"] > 0


@pytest.mark.parametrize("kind", ["nispa", "replay"])
def test_a_cuda_checkpoint_continues_on_the_cpu_and_a_cpu_one_on_cuda(small_nispa, kind, quiet_evaluator, tmp_path):
    stream = split_digits(seed=0, return_task_id=kind == "nispa").train_stream
    on_gpu = small_nispa(kind, quiet_evaluator(), device=CUDA)
    on_gpu.train(stream[0])
    path = save_checkpoint(on_gpu, tmp_path / "gpu.ckpt")
    on_cpu = small_nispa(kind, quiet_evaluator(), device=torch.device("cpu"))
    assert load_checkpoint(on_cpu, path) == 1
    for (name, a), (_, b) in zip(on_gpu.model.state_dict().items(), on_cpu.model.state_dict().items()):
        assert b.device.type == "cpu" and torch.equal(a.cpu(), b), name
    on_cpu.train(stream[1])
    back = save_checkpoint(on_cpu, tmp_path / "cpu.ckpt")
    again = small_nispa(kind, quiet_evaluator(), device=CUDA)
    assert load_checkpoint(again, back) == 2
    assert not _off_device(again.model)
    again.train(stream[2])

"""``scripts/gpu_check.sh`` on a machine without CUDA, and its zero-forgetting check on
the CPU: it runs, skips what needs a GPU saying so, and catches a forgotten weight."""
import subprocess
from pathlib import Path

import pytest
import torch

from avalanche_nispa.harness import gpu_check
from avalanche_nispa.invariants import frozen_changes, frozen_snapshot
from avalanche_nispa.sparse import is_masked_layer

REPO = Path(__file__).resolve().parent.parent
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
def test_the_script_skips_every_gpu_part_on_a_cpu_only_machine():
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert "CUDA is not available here" in done.stdout and "skipping the gpu tests" in done.stdout
    assert lines[-1].startswith("gpu_check: SKIPPED (no CUDA device")


def _first_masked(model):
    return next((n, m) for n, m in model.named_modules() if is_masked_layer(m))


def test_the_zero_forgetting_run_checks_every_experience_and_finds_no_violation(capsys):
    assert gpu_check.main(["--device", "cpu", "--benchmark", "split_digits", "--max-phases", "2",
                           "--skip-tests", "--skip-speed"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert sum(line.startswith("  experience ") for line in out) == 5
    summary = out[-1]
    assert summary.startswith("gpu_check: OK on cpu: tests skipped; split_digits ")
    assert "zero forgetting ok" in summary and summary.endswith("speed skipped")


def test_a_changed_frozen_weight_or_a_forgotten_experience_is_reported(monkeypatch, capsys):
    """The check is not vacuous: a run whose frozen weights move fails, naming them."""
    from avalanche_nispa import NISPA

    real_train = NISPA.train
    disturbed = []

    def train_then_disturb(self, experience, **kwargs):
        result = real_train(self, experience, **kwargs)
        if self.clock.train_exp_counter == 3:  # after the third experience
            name, layer = _first_masked(self.model)
            disturbed.append(name)
            with torch.no_grad():
                layer.weight[layer.frozen_connections] *= -1  # what forgetting looks like
        return result

    monkeypatch.setattr(NISPA, "train", train_then_disturb)
    assert gpu_check.main(["--device", "cpu", "--benchmark", "split_digits", "--max-phases", "2",
                           "--skip-tests", "--skip-speed"]) == 1
    out = capsys.readouterr().out
    assert f"VIOLATION after experience 2, frozen by 0: {disturbed[0]}: " in out
    assert "accuracy went from" in out
    assert out.strip().splitlines()[-1].startswith("gpu_check: FAILED on cpu")


def test_frozen_changes_names_a_released_entry():
    from avalanche_nispa.models import NISPAMLP

    torch.manual_seed(0)
    model = NISPAMLP(16, (8,), density=0.5)
    name, layer = _first_masked(model)
    layer.frozen_connections[:2] = layer.connection_mask[:2].bool()
    assert frozen_changes(model, snapshot := frozen_snapshot(model)) == []
    layer.frozen_connections[:2] = False
    assert frozen_changes(model, snapshot) == [f"{name}: a frozen connection was released"]


def test_a_class_incremental_benchmark_is_refused():
    with pytest.raises(ValueError, match="class-incremental"):
        gpu_check.zero_forgetting_run("split_digits_cil", device="cpu")

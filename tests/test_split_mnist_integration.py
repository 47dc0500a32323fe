"""NISPA on the real Split MNIST (from the shared IDX files), small budget: the
quickstart example's pipeline must reach >= 97 % average task-incremental accuracy
with zero forgetting."""
import pytest


@pytest.fixture
def real_mnist(monkeypatch, shared_data_dir):
    monkeypatch.setenv("NISPA_DATA_DIR", str(shared_data_dir))
    return shared_data_dir


def test_quickstart_on_real_split_mnist_reaches_97_percent_with_zero_forgetting(real_mnist, load_example):
    quickstart = load_example("quickstart")
    summary = quickstart.run(max_phases=3, phase_epochs=1, verbose=False, seed=0)
    assert summary["average_accuracy"] >= 0.97, summary["per_task_accuracy"]
    assert summary["forgetting"] == 0.0
    assert summary["bwt"] == 0.0
    assert summary["phases"] == [3, 3, 3, 3, 3] or all(2 <= p <= 3 for p in summary["phases"])
    params = summary["parameters"]
    assert params["active"] < 0.25 * params["total"]

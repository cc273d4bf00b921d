"""The samplers and the pruner that leave a trace only in Optuna's storage: each runs a real tiny study,
and the test finds what that algorithm alone writes there (so it fails if the flag were ignored and,
say, TPE or the median pruner ran instead)."""

from __future__ import annotations

import pytest

from tests.tune.conftest import kmeans_chain, one_json, write_spec

#: two parameters: CMA-ES samples a search space of one dimension independently, without its optimizer
KMEANS_SPACE = {"n_clusters": {"type": "int", "low": 2, "high": 6},
                "tol": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True}}


def _study(folder):
    from dltool.tune.study import load_study, read_study_file

    ref = read_study_file(folder)
    return load_study(ref.storage, ref.name)


def _cma_es_generations(folder) -> bool:
    """CmaEsSampler records its optimizer's generation on every trial it samples (after the first)."""
    return any("cma:generation" in t.system_attrs for t in _study(folder).get_trials(deepcopy=False))


def _sobol_points(folder) -> bool:
    """QMCSampler counts the points it has drawn from its sequence in a study attribute 'qmc:<hash>'
    (Optuna 5's Study no longer shows system attributes: the storage does)."""
    from dltool.tune.study import open_storage, read_study_file

    ref = read_study_file(folder)
    storage = open_storage(ref.storage)
    return any(key.startswith("qmc:")
               for key in storage.get_study_system_attrs(storage.get_study_id_from_name(ref.name)))


@pytest.mark.parametrize("sampler,written_by_it", [("cmaes", _cma_es_generations), ("qmc", _sobol_points)])
def test_sampler_is_the_one_asked_for(cli, tmp_path, blob_table, sampler, written_by_it):
    spec = write_spec(tmp_path / "s.toml", command=kmeans_chain(blob_table), metric="silhouette", trials=3,
                      sampler=sampler, space=KMEANS_SPACE)
    r = cli("tune", "run", spec, "--out", tmp_path / "st", "--quiet")
    assert r.code == 0, r.stderr
    assert one_json(r.stdout)["complete"] == 3
    assert written_by_it(tmp_path / "st")


def test_hyperband_prunes_by_successive_halving_rungs(cli, tmp_path):
    """Hyperband learns the longest run from the first complete trial, then every later trial reports
    into one of its successive-halving brackets, which writes `completed_rung_N` on the trial (the
    median pruner writes nothing of the kind)."""
    from tests.core.train_commands import REDUCE_AUTOENCODER

    table = REDUCE_AUTOENCODER.make_data(tmp_path / "data")
    command = ["reduce", "autoencoder", str(table), "--hidden", "8", "--code-dim", "2", "--epochs", "3",
               "--batch-size", "32", "--device", "cpu", "--quiet", "-o", "{out}/codes.csv"]
    spec = write_spec(tmp_path / "h.toml", command=command, metric="val_recon", direction="minimize", trials=3,
                      sampler="random", pruner="hyperband",
                      space={"lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}})
    r = cli("tune", "run", spec, "--out", tmp_path / "st", "--quiet")
    assert r.code == 0, r.stderr
    first, *later = _study(tmp_path / "st").get_trials(deepcopy=False)
    assert sorted(first.intermediate_values) == [1, 2, 3]  # every epoch reported
    assert later and all("completed_rung_0" in t.system_attrs for t in later)

"""Outputs pipe between subcommands: CNN embeddings -> PCA -> k-means -> evaluate, as a real shell pipe."""

import json
import shlex
import subprocess
import sys


def test_two_stage_clustering_pipe(trained, digits):
    dl = f"{shlex.quote(sys.executable)} -m dltool"
    pipe = (f"{dl} vision classify predict {trained}/model.pt {digits[1]} --embed"
            f" | {dl} reduce pca - -n 4 -q | {dl} cluster kmeans - -k 3 -q"
            f" | {dl} cluster evaluate - --truth true_label")
    r = subprocess.run(["bash", "-o", "pipefail", "-c", pipe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["n_samples"] == 60
    assert metrics["adjusted_rand"] > 0.6  # the trained features separate the three digits

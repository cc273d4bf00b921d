"""`dltool text word2vec train` vs calling gensim directly with the same settings, in the same run.

Both sides train on gensim's lee_background.cor (300 news stories) from a file with `corpus_file`
and save word2vec binary vectors; dltool's side is the whole command in-process (reading and
tokenizing the corpus into its temporary file, building the vocabulary, training, saving). Runs
alternate and the medians are compared. Prints `ratio=<dltool / gensim>` per worker count, then
the vectors' evaluation on questions-words.txt and wordsim353.tsv (the issue's end-to-end bar).
Usage: python benchmarks/word2vec.py [--epochs 20] [--dim 100] [--repeats 5] [--workers 1 2]
"""

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from gensim.models import Word2Vec
from gensim.test.utils import datapath

from dltool.cli import main
from dltool.text.word2vec import stable_hash

LEE = datapath("lee_background.cor")


def dltool_train(out, args):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        try:
            main(["text", "word2vec", "train", LEE, "-o", str(out), "-q", *args])
        except SystemExit as e:
            assert e.code == 0, e.code
    return json.loads(stdout.getvalue())


def gensim_train(out, settings):
    model = Word2Vec(corpus_file=LEE, hashfxn=stable_hash, **settings)
    model.wv.save_word2vec_format(str(out), binary=True)


def main_bench():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    for workers in a.workers:
        settings = dict(vector_size=a.dim, window=5, min_count=a.min_count, epochs=a.epochs, workers=workers,
                        sg=1, hs=0, negative=5, seed=0)
        args = ["--sg", "--dim", str(a.dim), "--min-count", str(a.min_count), "--epochs", str(a.epochs),
                "--workers", str(workers), "--seed", "0"]
        times = {"dltool": [], "gensim": []}
        for _ in range(a.repeats):
            for side in ("gensim", "dltool"):
                start = time.perf_counter()
                if side == "dltool":
                    dltool_train(tmp / "dltool.bin", args)
                else:
                    gensim_train(tmp / "gensim.bin", settings)
                times[side].append(time.perf_counter() - start)
        d, g = statistics.median(times["dltool"]), statistics.median(times["gensim"])
        same = (tmp / "dltool.bin").read_bytes() == (tmp / "gensim.bin").read_bytes()
        print(f"workers={workers} sg dim={a.dim} epochs={a.epochs}: dltool {d:.3f}s  gensim {g:.3f}s  "
              f"ratio={d / g:.3f}  identical_vectors={same}")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        with contextlib.suppress(SystemExit):
            main(["text", "word2vec", "evaluate", str(tmp / "dltool.bin"), "--analogies",
                  datapath("questions-words.txt"), "--similarity", datapath("wordsim353.tsv"), "--format", "json"])
    m = json.loads(stdout.getvalue())
    print(json.dumps({k: m[k] for k in m if ":" not in k}))


if __name__ == "__main__":
    main_bench()

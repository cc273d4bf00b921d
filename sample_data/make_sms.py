"""Write sample_data/text/sms/{train,test}.csv from the SMS Spam Collection (../shared/data/sms_spam/).

Each line of the original is `label<TAB>text`; it is split on the first tab (messages hold quotes,
so a CSV reader would merge lines). The split is 80/20, stratified by label, seed 0; the CSVs have
columns id (the line number in the original file), label, text, written with Python's csv module
(quoted where needed). The text is kept as is: HTML entities and stray bytes stay (SOURCE.md).
Re-running gives byte-identical files.
Usage: python sample_data/make_sms.py [SMSSpamCollection] [OUT_DIR]
"""

import csv
import shutil
import sys
from pathlib import Path

from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"


def main(source: Path, out: Path) -> None:
    rows = []
    with open(source, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, 1):
            label, text = line.rstrip("\n").split("\t", 1)
            rows.append((str(lineno), label, text))
    labels = [r[1] for r in rows]
    train, test = train_test_split(rows, test_size=0.2, random_state=0, stratify=labels)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("test", test)):
        with open(out / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["id", "label", "text"])
            writer.writerows(sorted(part, key=lambda r: int(r[0])))
    readme = source.parent / "readme"
    if readme.exists():
        shutil.copyfile(readme, out / "readme")
    print(f"wrote {len(train)} train and {len(test)} test messages under {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else DEFAULT_SOURCE, Path(args[1]) if len(args) > 1 else HERE / "text" / "sms")

"""The README runs as written: every ```sh block, in order, from a fresh copy of the repository (its tracked files
only), in one folder, so a block may use what an earlier one wrote, and nothing else. A ```toml block whose first
line is `# NAME.toml` is the file NAME.toml the next commands read. The only changes made to the text are the length
of training (every trainer runs one epoch: `--epochs 1`, `--time-limit` and `--passes` likewise, a study two trials,
a genetic search two generations) and the number of images the README's generators make (a tenth),
so one run can afford the whole README: about 7 minutes on 2 cores (`make test-readme`); `make test` runs it at nice
19 beside the suite, in the idle time the suite leaves, about 1.5 minutes more than the suite alone. What is checked is
that each command exists, finds its inputs and pipes into the next."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# The commands that train: one epoch each is enough to prove the block runs.
TRAINERS = r"(?:train|pretrain|prune|autoencoder|rbm|deep)"


def readme_blocks() -> list[tuple[int, str, str]]:
    """(first line, kind, text) of each ```sh block and each ```toml block that names its file, in README order."""
    blocks, kind, start, text = [], None, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if kind is None:
                kind, start, text = line[3:].strip(), number + 1, []
            else:
                if kind == "sh" or (kind == "toml" and re.match(r"# [\w.-]+\.toml$", text[0] if text else "")):
                    blocks.append((start, kind, "\n".join(text) + "\n"))
                kind = None
            continue
        if kind is not None:
            text.append(line)
    return blocks


def shortened(line: str) -> str:
    """One line of a block with its training cut to one epoch (a study to two trials, a genetic search to two
    generations, DEC's autoencoder to one epoch) and the images the README generates to a tenth."""
    if line.lstrip().startswith("#"):
        return line
    if re.search(r"sample_data/make_\w+\.py", line):
        line = re.sub(r"--(train|test) (\d+)", lambda m: f"--{m[1]} {max(10, int(m[2]) // 10)}", line)
    line = re.sub(r"--(pretrain-)?epochs \d+", r"--\1epochs 1", line)
    line = re.sub(r"--generations \d+", "--generations 2", line)
    line = re.sub(r"(\bdltool cluster deep)(?= )", r"\1 --pretrain-epochs 1", line)
    line = re.sub(r"--time-limit [\d.]+", "--epochs 1", line)
    line = re.sub(r"--passes \d+", "--passes 1", line)
    if not re.search(r"--model (?:tfidf|bigram)\b", line):  # fitted in one pass: --epochs does not apply
        line = re.sub(rf"(\bdltool (?:[\w-]+ )*?{TRAINERS})(?= |$)", r"\1 --epochs 1", line)
    line = re.sub(r"(\bdltool tune run [\w./-]+)", r"\1 --trials 2", line)
    return line


def runnable(kind: str, text: str) -> str:
    """The bash script for a block: sh blocks shortened, toml blocks written to their file."""
    if kind == "toml":
        name = text.splitlines()[0][2:].strip()
        body = re.sub(r'"--epochs", "\d+"', '"--epochs", "1"', text)
        return f"cat > {name} <<'README_TOML'\n{body}README_TOML\n"
    if text.lstrip().startswith("make "):
        return ""  # `make demo` / `make test`: setting up and running this suite is what the suite is
    return "\n".join(shortened(line) for line in text.splitlines()) + "\n"


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A fresh copy of the tracked files, and the environment its blocks run in: the test's Python first on PATH,
    and before it a `dltool` served by tests/readme_server.py (the same main(), without seconds of imports each)."""
    where = tmp_path_factory.mktemp("readme")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, where / name)
    bin_dir = tmp_path_factory.mktemp("bin")
    env = {**os.environ, "PYTHONPATH": str(where), "MPLBACKEND": "Agg",
           "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])}
    socket_path = tempfile.mktemp(prefix="dltool-readme-", suffix=".sock")  # short: a socket path has ~100 bytes
    # its own process group (killed as one), not its own session: a session is its own scheduling autogroup,
    # which the nice of `make test`'s README run would not reach
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("readme_server.py")), socket_path, str(bin_dir)],
                              cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              process_group=0, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", "the README test's dltool server did not start"
        yield where, env
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and any command of a failed block still running
        server.wait()
        Path(socket_path).unlink(missing_ok=True)


def test_the_readme_has_its_blocks():
    kinds = [kind for _, kind, _ in BLOCKS]
    assert kinds.count("sh") > 20 and "toml" in kinds


def test_shortening_touches_only_the_length_of_training():
    assert shortened("dltool vision classify train d --epochs 30 --out r") == \
        "dltool vision classify train --epochs 1 d --epochs 1 --out r"
    assert shortened("dltool text lm train t.txt --time-limit 10") == "dltool text lm train --epochs 1 t.txt --epochs 1"
    assert shortened("dltool vision classify eval r/model.pt d") == "dltool vision classify eval r/model.pt d"
    assert shortened("dltool text classify train t.csv --model tfidf") == "dltool text classify train t.csv --model tfidf"
    assert shortened("dltool tune run digits.toml --out x") == "dltool tune run digits.toml --trials 2 --out x"
    assert shortened("dltool cluster deep d.jsonl -k 10") == "dltool cluster deep --epochs 1 --pretrain-epochs 1 d.jsonl -k 10"
    assert shortened("dltool reduce select d --method genetic --generations 10") == \
        "dltool reduce select d --method genetic --generations 2"
    assert shortened("python sample_data/make_shapes.py /tmp/s --single --train 2400 --test 300") == \
        "python sample_data/make_shapes.py /tmp/s --single --train 240 --test 30"
    assert shortened("# dltool vision classify train photos/ --epochs 30") == "# dltool vision classify train photos/ --epochs 30"


@pytest.mark.readme  # about 7 minutes: `make test-readme`, and beside the suite in `make test`
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("line", "kind", "text"), BLOCKS, ids=[f"README:{n}" for n, _, _ in BLOCKS])
def test_each_readme_block_runs(checkout, line, kind, text):
    where, env = checkout
    script = runnable(kind, text)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=where, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README block at line {line} failed ({done.returncode}):\n{script}\n{done.stderr[-3000:]}"

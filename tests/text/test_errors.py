"""Bad input: exit 1, one `error: what — what to do` line, no output file left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.text.conftest import assert_error

COMMANDS = {  # each reads documents; the output flag a partial file could be left at
    "tokenize": ["text", "tokenize"],
    "word2vec": ["text", "word2vec", "train"],
    "topics": ["text", "topics"],
    "embed": ["text", "embed"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_empty_input(cli, tmp_path, command, source):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    out = tmp_path / ("out.bin" if command == "word2vec" else "out.csv")
    r = cli(*COMMANDS[command], empty if source == "file" else "-", "-o", out, input="")
    assert_error(r, "no documents in", "(the input is empty)", output=out)


@pytest.mark.parametrize("command", COMMANDS)
def test_csv_without_the_text_column(cli, tmp_path, command):
    path = tmp_path / "docs.csv"
    path.write_text("id,label,txt\n1,ham,hello\n")
    out = tmp_path / ("out.bin" if command == "word2vec" else "out.csv")
    r = cli(*COMMANDS[command], path, "-o", out)
    assert_error(r, "no text column 'text'", "columns: id, label, txt", "did you mean 'txt'?", output=out)
    r = cli(*COMMANDS[command], path, "--column", "body", "-o", out)
    assert_error(r, "no text column 'body'", output=out)


@pytest.mark.parametrize("command", COMMANDS)
def test_non_utf8_bytes_name_line_and_byte(cli, tmp_path, command):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\ncaf\u00e9 cr\u00e8me\n".encode("latin-1"))
    out = tmp_path / ("out.bin" if command == "word2vec" else "out.csv")
    r = cli(*COMMANDS[command], path, "-o", out)
    assert_error(r, "line 2 is not valid utf-8", "byte 0xe9", "--encoding", output=out)


def test_non_utf8_is_read_with_its_encoding(cli, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    r = cli("text", "tokenize", path, "--encoding", "latin-1")
    assert r.code == 0 and r.stdout == "caf\u00e9 cr\u00e8me\n"


def test_analogy_with_a_word_not_in_the_vocabulary(cli, lee_vectors):
    r = cli("text", "word2vec", "analogy", lee_vectors, "man", "king", "polise")
    assert_error(r, "'polise' is not in the vocabulary of", "did you mean 'police'?")
    r = cli("text", "word2vec", "similar", lee_vectors, "qwxzv")
    assert_error(r, "'qwxzv' is not in the vocabulary", "--fasttext")


def test_stopwords_for_a_language_whose_nltk_data_is_missing(cli, tmp_path, nltk_data_missing):
    out = tmp_path / "out.txt"
    r = cli("text", "tokenize", "-", "--stopwords", "russian", "-o", out, input="\u043f\u0440\u0438\u0432\u0435\u0442\n")
    assert_error(r, "--stopwords russian needs NLTK's 'stopwords' data", "python -m nltk.downloader stopwords",
                 output=out)


def test_lemmatize_without_wordnet_data(cli, tmp_path, nltk_data_missing):
    out = tmp_path / "out.txt"
    r = cli("text", "tokenize", "-", "--lemmatize", "-o", out, input="cats\n")
    assert_error(r, "--lemmatize needs NLTK's 'wordnet' data", "python -m nltk.downloader wordnet", output=out)


@pytest.mark.parametrize("args, fragments", [
    (["--tokenizer", "regexp"], ["unknown --tokenizer 'regexp'", "did you mean 'regex'?"]),
    (["--stem", "porter", "--lemmatize"], ["--stem and --lemmatize", "choose one"]),
    (["--stem", "porter", "--language", "german"], ["porter is for English", "snowball"]),
    (["--stem", "snowball", "--language", "klingon"], ["unknown --language 'klingon'"]),
    (["--stopwords", "missing/list.txt"], ["--stopwords file 'missing/list.txt' does not exist"]),
    (["--corpus-stopwords", "-1"], ["--corpus-stopwords -1 is negative"]),
    (["--encoding", "utf-9"], ["--encoding 'utf-9'"]),
])
def test_impossible_tokenizer_options(cli, tmp_path, args, fragments):
    out = tmp_path / "out.txt"
    assert_error(cli("text", "tokenize", "-", *args, "-o", out, input="text\n"), *fragments, output=out)


@pytest.mark.parametrize("args, fragments", [
    (["--min-count", "100000"], ["no word occurs --min-count 100000 times"]),
    (["--fasttext", "-o", "ft.vec"], ["fastText model is saved in Facebook's .bin format"]),
    (["--negative", "0"], ["--negative 0", "--hs"]),
])
def test_impossible_training_options(cli, tmp_path, lee_tokens, args, fragments, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out_args = [] if "-o" in args else ["-o", "vec.bin"]
    r = cli("text", "word2vec", "train", lee_tokens, *out_args, *args)
    assert_error(r, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_topics_and_embed_options(cli, tmp_path, lee_tokens):
    out = tmp_path / "out.csv"
    assert_error(cli("text", "topics", lee_tokens, "--no-below", "1000", "-o", out),
                 "no word is left after --no-below 1000", output=out)
    assert_error(cli("text", "embed", lee_tokens, "--method", "word2vec", "-o", out),
                 "--method word2vec needs --vectors FILE", output=out)
    assert_error(cli("text", "embed", lee_tokens, "-n", "100000", "-o", out), "-n 100000 must be less than", output=out)


def test_corrupt_vectors_file(cli, tmp_path):
    bad = tmp_path / "vec.bin"
    bad.write_bytes(b"not vectors at all\x00\x01")
    assert_error(cli("text", "word2vec", "similar", bad, "x"), "not a word2vec binary file nor a fastText .bin")


def test_device_cuda_without_cuda(cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out.txt"
    assert_error(cli("text", "tokenize", "-", "--device", "cuda", "-o", out, input="a\n"),
                 "CUDA is not available", output=out)


@pytest.mark.parametrize("path", [["text"], ["text", "word2vec", "train"], ["text", "embed"]], ids=" ".join)
def test_help_imports_nothing_heavy(path):
    code = ("import sys\nfrom dltool.cli import main\ntry:\n    main({!r})\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('torch', 'gensim', 'nltk', 'sklearn', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy").format(path + ["--help"])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Example" in r.stdout or path == ["text"]

"""dltool text tokenize: tokenizers, normalisation, stop words, stemming, stats, formats, ids."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from tests.text.conftest import jsonl

TEXT = "Hello, World! Don't stop the well-known show...\nThe show must go on, and on.\n"


def lines(r):
    assert r.code == 0, r.stderr
    return r.stdout.splitlines()


def test_regex_tokenizer_keeps_words_with_apostrophes_and_hyphens(cli):
    assert lines(cli("text", "tokenize", "-", input=TEXT)) == [
        "Hello , World ! Don't stop the well-known show ...", "The show must go on , and on ."]


def test_lower_and_strip_punct(cli):
    assert lines(cli("text", "tokenize", "-", "--lower", "--strip-punct", input=TEXT)) == [
        "hello world don't stop the well-known show", "the show must go on and on"]


def test_regex_tokenizer_is_nltks_on_any_script():
    """The default tokenizer is NLTK's RegexpTokenizer with dltool's pattern, without importing NLTK."""
    from nltk.tokenize import RegexpTokenizer

    from dltool.text.tokenize import REGEX_PATTERN, Tokenizer, TokenizerConfig

    texts = [*TEXT.splitlines(), "naïve café — 3.5 km", "हिन्दी भाषा", "日本語のテキスト", "x\u0301y rock'n'roll 42nd"]
    ours = Tokenizer(TokenizerConfig(tokenizer="regex", lower=False))
    assert [ours(t) for t in texts] == [RegexpTokenizer(REGEX_PATTERN).tokenize(t) for t in texts]
    assert ours("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # combining marks stay in their word


@pytest.mark.parametrize("name", ["treebank", "wordpunct", "whitespace"])
def test_other_tokenizers_are_nltks(cli, name):
    from nltk.tokenize import TreebankWordTokenizer, WhitespaceTokenizer, WordPunctTokenizer

    reference = {"treebank": TreebankWordTokenizer, "wordpunct": WordPunctTokenizer,
                 "whitespace": WhitespaceTokenizer}[name]().tokenize
    got = lines(cli("text", "tokenize", "-", "--tokenizer", name, input=TEXT))
    assert got == [" ".join(reference(line)) for line in TEXT.splitlines()]


def test_english_stopwords_fall_back_to_scikit_learn(cli, nltk_data_missing):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    got = lines(cli("text", "tokenize", "-", "--lower", "--strip-punct", "--stopwords", "english", input=TEXT))
    words = " ".join(got).split()
    assert words == [w for w in "hello world don't stop the well-known show the show must go on and on".split()
                     if w not in ENGLISH_STOP_WORDS]
    assert "hello" in words and "the" not in words and "show" not in words  # scikit-learn lists "show"


def test_stopwords_from_a_file_are_case_insensitive(cli, tmp_path):
    stop = tmp_path / "stop.txt"
    stop.write_text("# my list\nshow\nTHE\n")
    got = lines(cli("text", "tokenize", "-", "--strip-punct", "--stopwords", stop, input=TEXT))
    assert got[1] == "must go on and on"


@pytest.mark.parametrize("stem, language, word, expected", [
    ("porter", "english", "running generously", "run gener"),
    ("snowball", "german", "häuser laufen", None),
])
def test_stemmers_are_nltks(cli, stem, language, word, expected):
    from nltk.stem import PorterStemmer, SnowballStemmer

    stemmer = PorterStemmer() if stem == "porter" else SnowballStemmer(language)
    got = lines(cli("text", "tokenize", "-", "--stem", stem, "--language", language, input=word + "\n"))
    assert got == [" ".join(stemmer.stem(w) for w in word.split())]
    if expected:
        assert got == [expected]


def test_corpus_stopwords_drop_the_most_frequent_tokens_from_stdin(cli):
    text = "a a a b b c\na b d\n"  # a: 4, b: 3 -> dropped; stdin is read twice through a temp file
    assert lines(cli("text", "tokenize", "-", "--corpus-stopwords", "2", input=text)) == ["c", "d"]


def test_stats_table_counts_tokens_and_documents(cli, tmp_path, lee_tokens):
    stats = tmp_path / "stats.csv"
    r = cli("text", "tokenize", lee_tokens, "--tokenizer", "whitespace", "--stats", stats, "-o", tmp_path / "t.txt")
    assert r.code == 0, r.stderr
    docs = [line.split() for line in lee_tokens.read_text().splitlines() if line.strip()]
    count, df = Counter(t for d in docs for t in d), Counter(t for d in docs for t in set(d))
    rows = list(csv.DictReader(open(stats)))
    assert len(rows) == len(count)
    assert [int(r["count"]) for r in rows] == sorted(count.values(), reverse=True)
    for row in rows[:50]:
        assert int(row["count"]) == count[row["token"]] and int(row["document_frequency"]) == df[row["token"]]
    assert (tmp_path / "t.txt").read_text().splitlines() == [" ".join(d) for d in docs]


def test_csv_column_ids_and_labels_carried_to_jsonl(cli, tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text('id,label,text\nm1,ham,"Hi, there"\nm2,spam,"WIN ""cash"" now"\n')
    out = jsonl(lines_out := cli("text", "tokenize", path, "--column", "text", "--lower", "--format", "jsonl").stdout)
    assert lines_out
    assert out == [{"id": "m1", "label": "ham", "tokens": ["hi", ",", "there"]},
                   {"id": "m2", "label": "spam", "tokens": ["win", '"', "cash", '"', "now"]}]
    # text output is fastText's format: labels first
    assert lines(cli("text", "tokenize", path, "--strip-punct")) == ["__label__ham Hi there", "__label__spam WIN cash now"]


def test_fasttext_labels_plain_lines_and_several_inputs(cli, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("__label__pos good film\n\n__label__neg bad film\n")
    b.write_text("no label here\n")
    got = jsonl(cli("text", "tokenize", a, b, "--format", "jsonl").stdout)
    assert got == [{"id": "1", "path": str(a), "label": "pos", "tokens": ["good", "film"]},
                   {"id": "3", "path": str(a), "label": "neg", "tokens": ["bad", "film"]},
                   {"id": "1", "path": str(b), "tokens": ["no", "label", "here"]}]


def test_tokenized_jsonl_is_read_back_as_tokens(cli, tmp_path):
    """tokenize --format jsonl | tokenize -: the tokens are normalised, not split again."""
    first = cli("text", "tokenize", "-", "--format", "jsonl", input="Don't STOP\n").stdout
    again = jsonl(cli("text", "tokenize", "-", "--lower", "--format", "jsonl", input=first).stdout)
    assert again == [{"id": "1", "tokens": ["don't", "stop"]}]


def test_output_file_is_written_and_settings_round_trip(cli, tmp_path):
    from dltool.text.tokenize import TokenizerConfig

    out = tmp_path / "tokens.txt"
    r = cli("text", "tokenize", "-", "-o", out, input="one two\n")
    assert r.code == 0 and r.stdout == "" and out.read_text() == "one two\n"
    cfg = TokenizerConfig(tokenizer="treebank", lower=True, stopwords="english", stem="porter")
    data = json.loads(json.dumps(cfg.to_dict()))  # plain data, as a model file carries it
    assert TokenizerConfig.from_dict(data) == cfg
    portable = cfg.portable()
    assert portable.stopwords is None and "the" in portable.stop_words


def test_tsv_keeps_quotes_and_csv_fields_span_lines(cli, tmp_path):
    tsv, multi = tmp_path / "docs.tsv", tmp_path / "multi.csv"
    tsv.write_text('label\ttext\nham\t"Quoted" start\nspam\tplain\n')
    multi.write_text('id,text\na,"two\nlines"\nb,one\n')
    assert lines(cli("text", "tokenize", tsv, "--tokenizer", "whitespace")) == [
        '__label__ham "Quoted" start', "__label__spam plain"]
    assert jsonl(cli("text", "tokenize", multi, "--format", "jsonl").stdout) == [
        {"id": "a", "tokens": ["two", "lines"]}, {"id": "b", "tokens": ["one"]}]

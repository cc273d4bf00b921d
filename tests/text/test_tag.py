"""text tag: the CRF against brute force, every tagger's shape, learning a tiny BIO corpus, eval against
seqeval and an independent count, predict (raw text, CoNLL out, entity spans), the readers, and bad input.
--nproc 2 and exact resume run for `text tag train` in tests/core/test_train_commands.py."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch

from dltool.text.models.tagger import TAGGERS
from tests.text.conftest import assert_error, jsonl

PEOPLE = ["alice", "bob", "carol", "dave", "erin"]
SURNAMES = ["smith", "jones", "brown"]
PLACES = [["paris"], ["rome"], ["oslo"], ["new", "york"], ["san", "diego"]]
FILLER = ["went", "to", "met", "in", "the", "and", "saw", "visited", "with", "today"]


def bio_corpus(n: int, seed: int) -> list[dict]:
    """Sentences of filler words, people (a name, sometimes a surname: B-PER I-PER) and places (B-LOC I-LOC)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(3, 7)):
            kind = rng.random()
            if kind < 0.25:
                name = [rng.choice(PEOPLE)] + ([rng.choice(SURNAMES)] if rng.random() < 0.5 else [])
                tokens += name
                tags += ["B-PER"] + ["I-PER"] * (len(name) - 1)
            elif kind < 0.45:
                place = rng.choice(PLACES)
                tokens += place
                tags += ["B-LOC"] + ["I-LOC"] * (len(place) - 1)
            else:
                tokens.append(rng.choice(FILLER))
                tags.append("O")
        rows.append({"id": f"s{i}", "tokens": tokens, "tags": tags})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def bio(tmp_path_factory):
    from tests.text.conftest import run_main

    base = tmp_path_factory.mktemp("tag")
    train = write_jsonl(base / "train.jsonl", bio_corpus(120, 0))
    test = write_jsonl(base / "test.jsonl", bio_corpus(40, 1))
    run = base / "crf"
    code, _, err = run_main("text", "tag", "train", train, "--model", "bilstm-crf_tiny", "--epochs", "6",
                            "--batch-size", "16", "--lr", "0.03", "--min-count", "1", "--device", "cpu", "--out", run,
                            "-q")
    assert code == 0, err
    return {"train": train, "test": test, "run": run, "base": base}


# -- the CRF -----------------------------------------------------------------------------------------

def _brute_force(crf, emissions, n):
    """Every tag sequence of a sentence of n tokens, with its score: (sequences, scores)."""
    seqs = list(itertools.product(range(emissions.shape[-1]), repeat=n))
    scores = []
    for seq in seqs:
        s = crf.start_transitions[seq[0]] + crf.end_transitions[seq[-1]]
        s = s + sum(emissions[i, t] for i, t in enumerate(seq))
        s = s + sum(crf.transitions[a, b] for a, b in zip(seq, seq[1:]))
        scores.append(s)
    return seqs, torch.stack(scores)


def test_crf_viterbi_marginals_and_likelihood_equal_brute_force():
    torch.manual_seed(0)
    model = TAGGERS.create("bilstm-crf_tiny", vocab_size=10, num_tags=3, n_chars=5)
    for p in model.crf.parameters():
        torch.nn.init.uniform_(p, -2, 2)  # transitions that matter
    emissions = torch.randn(3, 4, 3) * 2
    lengths = torch.tensor([4, 2, 1])
    tags = torch.randint(0, 3, (3, 4))
    with torch.no_grad():
        best = model.decode(emissions, lengths)
        marginals = model.marginals(emissions, lengths)
        loss = model.loss(emissions, tags, lengths)
    nll = 0.0
    for b, n in enumerate(lengths.tolist()):
        with torch.no_grad():
            seqs, scores = _brute_force(model.crf, emissions[b], n)
        assert tuple(best[b]) == seqs[int(scores.argmax())]
        probs = scores.softmax(0)
        for i in range(n):
            for k in range(3):
                expected = sum(p for seq, p in zip(seqs, probs) if seq[i] == k)
                assert abs(float(marginals[b, i, k]) - float(expected)) < 1e-5
        nll -= float(scores[seqs.index(tuple(tags[b, :n].tolist()))] - scores.logsumexp(0))
    assert abs(float(loss) - nll / int(lengths.sum())) < 1e-5


@pytest.mark.parametrize("name", TAGGERS.names(folder=None))  # bert: from a folder, tested below
def test_every_tagger_trains_and_ignores_padding(name):
    torch.manual_seed(0)
    model = TAGGERS.create(name, vocab_size=20, num_tags=4, n_chars=12)
    words = torch.randint(2, 20, (3, 5))
    chars = torch.randint(2, 12, (3, 5, 4))
    lengths = torch.tensor([5, 3, 1])
    for b, n in enumerate(lengths.tolist()):
        words[b, n:], chars[b, n:] = 0, 0
    tags = torch.randint(0, 4, (3, 5))
    loss = model(words, lengths, chars, tags)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    model.eval()
    with torch.no_grad():
        alone = model(words[1:2, :3], lengths[1:2], chars[1:2, :3])
        batch = model(words, lengths, chars)
    assert torch.allclose(alone[0], batch[1, :3], atol=1e-5)
    assert [len(s) for s in model.decode(batch, lengths)] == [5, 3, 1]


# -- train, eval, predict ---------------------------------------------------------------------------

def test_learns_bio_and_eval_is_seqeval(cli, bio, tmp_path):
    from seqeval.metrics import f1_score, precision_score, recall_score

    out = tmp_path / "eval"
    r = cli("text", "tag", "eval", bio["run"], bio["test"], "--out", out, "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    rows = [json.loads(line) for line in bio["test"].read_text().splitlines()]
    p = cli("text", "tag", "predict", bio["run"], bio["test"], "--entities", "--quiet")
    assert p.code == 0, p.stderr
    pred = jsonl(p.stdout)
    assert [x["id"] for x in pred] == [x["id"] for x in rows]
    true_tags, pred_tags = [x["tags"] for x in rows], [x["tags"] for x in pred]
    pairs = [(a, b) for t, q in zip(true_tags, pred_tags) for a, b in zip(t, q)]
    assert m["accuracy"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs)) and m["accuracy"] > 0.9
    ent = m["entities"]
    assert ent["f1"] == pytest.approx(f1_score(true_tags, pred_tags)) and ent["f1"] > 0.8
    assert ent["precision"] == pytest.approx(precision_score(true_tags, pred_tags))
    assert ent["recall"] == pytest.approx(recall_score(true_tags, pred_tags))
    assert set(ent["per_type"]) == {"PER", "LOC"}
    assert (out / "confusion.png").stat().st_size > 0 and json.loads((out / "metrics.json").read_text())["n"] == len(pairs)
    first = pred[0]
    assert len(first["scores"]) == len(first["tokens"]) and all(0 < s <= 1 for s in first["scores"])
    from seqeval.metrics.sequence_labeling import get_entities

    assert [(e["type"], e["start"], e["end"] - 1) for e in first["entities"]] == get_entities(first["tags"])


def test_predict_raw_text_and_conll_out(cli, bio, tmp_path):
    r = cli("text", "tag", "predict", bio["run"], "--entities", input="alice smith visited new york today\n\n"
            "bob went to rome\n")
    assert r.code == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [x["id"] for x in recs] == ["1", "3"]  # the lines they came from
    assert recs[0]["tokens"] == ["alice", "smith", "visited", "new", "york", "today"]
    assert {(e["type"], e["text"]) for e in recs[0]["entities"]} == {("PER", "alice smith"), ("LOC", "new york")}
    out = tmp_path / "tags.conll"
    r = cli("text", "tag", "predict", bio["run"], bio["test"], "--format", "conll", "-o", out, "--quiet")
    assert r.code == 0, r.stderr
    blocks = out.read_text().strip().split("\n\n")
    rows = [json.loads(line) for line in bio["test"].read_text().splitlines()]
    assert len(blocks) == len(rows) and [x.split("\t")[0] for x in blocks[0].splitlines()] == rows[0]["tokens"]
    # the CoNLL written is a tagged file eval reads (its tags: the model's own, so accuracy 1)
    r = cli("text", "tag", "eval", bio["run"], out, "--format", "json", "--quiet")
    assert r.code == 0 and json.loads(r.stdout)["accuracy"] == 1.0


def test_conllu_columns_and_a_tag_never_seen(cli, tmp_path):
    conllu = tmp_path / "tiny.conllu"
    sent = ("# sent_id = a\n# text = Ali geldi .\n1\tAli\tali\tPROPN\tNNP\t_\t2\tnsubj\t_\t_\n"
            "2-3\tgeldi.\t_\t_\t_\t_\t_\t_\t_\t_\n2\tgeldi\tgel\tVERB\tVB\t_\t0\troot\t_\t_\n"
            "3\t.\t.\tPUNCT\t.\t_\t2\tp\t_\t_\n\n")
    conllu.write_text(sent * 12)
    run = tmp_path / "run"
    r = cli("text", "tag", "train", conllu, "--column", "xpos", "--model", "bilstm_tiny", "--char-dim", "0",
            "--epochs", "2", "--min-count", "1", "--device", "cpu", "--out", run, "--quiet", "--format", "json")
    assert r.code == 0, r.stderr
    saved = torch.load(run / "model.pt", weights_only=True)
    assert saved["classes"] == [".", "NNP", "VB"]  # the range line skipped
    assert not any(k.startswith("chars.") for k in saved["state_dict"])  # --char-dim 0: words alone
    other = tmp_path / "other.conllu"
    other.write_text(sent.replace("\tNNP\t", "\tNN\t"))
    r = cli("text", "tag", "eval", run, other, "--format", "json")  # xpos: the model's column
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["unseen_tags"] == {"NN": 1} and m["n"] == 3 and m["accuracy"] <= 2 / 3
    assert "tags the model was never trained on (NN): counted as errors" in r.stderr


def test_bad_input(cli, bio, tmp_path):
    run = tmp_path / "run"
    train = ("text", "tag", "train")
    fast = ("--model", "bilstm_tiny", "--epochs", "1", "--out", run)
    mismatched = write_jsonl(tmp_path / "m.jsonl", [{"tokens": ["a", "b"], "tags": ["O", "O"]},
                                                    {"tokens": ["a", "b", "c"], "tags": ["O", "O"]}])
    assert_error(cli(*train, mismatched, *fast), "line 2 has 3 tokens but 2 tags")
    columns = tmp_path / "c.conll"
    columns.write_text("EU NNP B-ORG\nrejects VBZ O\n\nGerman JJ B-MISC\ncall\n")
    assert_error(cli(*train, columns, *fast), "line 5 has 1 column, where line 1 has 3")
    assert_error(cli(*train, columns, "--column", "7", *fast), "line 1 has 3 columns, no tag in column 7")
    empty = write_jsonl(tmp_path / "e.jsonl", [{"tokens": ["a"], "tags": ["O"]}, {"tokens": [], "tags": []}])
    assert_error(cli(*train, empty, *fast), "line 2 is an empty sentence")
    conllu = tmp_path / "x.conllu"
    conllu.write_text("# sent_id = one\n1\ta\ta\tX\tX\t_\t0\troot\t_\t_\n\n# sent_id = two\n\n")
    assert_error(cli(*train, conllu, *fast), "the sentence at line 4 ('two') has no tokens")
    assert_error(cli(*train, conllu, "--column", "lemma", *fast), "CoNLL-U --column 'lemma'")
    assert_error(cli(*train, bio["train"], "--column", "2", *fast), "--column 2 does not apply to JSON Lines")
    assert_error(cli(*train, bio["train"], "--model", "bilstm_tiny", "--heads", "2", "--out", run),
                 "--heads does not apply to --model bilstm_tiny")
    assert not run.exists()
    r = cli("text", "tag", "predict", bio["run"], bio["test"], "--format", "conll", "--entities")
    assert r.code == 1 and "--entities" in r.stderr


def test_bert_from_a_folder_tags_by_first_word_piece(cli, bio, tmp_path):
    """--model bert --pretrained DIR: a tiny BERT folder built here (no download); words split into several
    pieces are tagged by their first; the model file alone evaluates and predicts."""
    pytest.importorskip("transformers")
    from tests.text.test_classify_hf import _bert_folder

    folder = tmp_path / "bert"
    _bert_folder(folder, [" ".join(FILLER)])  # whole filler words; names and places split into letters
    run = tmp_path / "run"
    r = cli("text", "tag", "train", bio["train"], "--model", "bert", "--pretrained", folder, "--epochs", "8",
            "--batch-size", "16", "--lr", "0.005", "--device", "cpu", "--out", run, "--quiet", "--format", "json")
    assert r.code == 0, r.stderr
    from dltool.text.tag import load

    lm = load(run, "cpu")
    pieces, lengths, first = lm.task.vocab.encode([["alice", "visited", "oslo"]])
    assert pieces[0, 0] == 2 and lengths.tolist() == [3]  # [CLS] first
    assert first[0].tolist() == [1, 6, 7]  # a l i c e | visited | o s l o
    r = cli("text", "tag", "eval", run, bio["test"], "--format", "json", "--quiet")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] > 0.8
    assert_error(cli("text", "tag", "train", bio["train"], "--model", "bert", "--out", run / "x"), "needs --pretrained")
    assert_error(cli("text", "tag", "train", bio["train"], "--model", "bert", "--pretrained", folder, "--min-count",
                     "1", "--out", run / "x"), "--min-count does not apply to --model bert")
    assert not (run / "x").exists()

"""Text classification: train (TF-IDF + a linear model, or a neural network on the shared engine), eval,
predict, and documents as the trained network's pooled representation (`embed`).

Data: CSV/TSV/JSON Lines with a text and a label column, or fastText's `__label__x text` lines (read by
dltool.text.corpus). The sequence models read token ids from a `Vocab` (dltool.text.vocab) built on the
training texts; the vocabulary and every tokenizer setting travel in the model file.

`tfidf`: scikit-learn's TF-IDF of word 1-2-grams and character 2-5-grams (within word boundaries), then a
linear SVM (default) or logistic regression. Its model file holds the fitted vocabularies, idf weights
and coefficients as tensors and plain data, so it loads with weights_only like every model file.

`mlp` (the default) is a network on those same n-grams (dltool.text.models.bag), those in two or more
training texts: no vocabulary of token ids, its batches rows of the sparse TF-IDF matrix (BagTask); its
model file keeps the fitted n-grams and idf weights as the tfidf one does.

`--model bert --pretrained DIR` starts from a local Hugging Face BERT folder instead: transformers' own
BertModel with the folder's weights and tokenizer (dltool.text.models.bert_hf says why it is wrapped, not
converted); the model file's arch is then `bert_hf`, and it needs the `hf` extra to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from dltool.core import classification
from dltool.core import run as runs
from dltool.core.applies import Applies, given_fields
from dltool.core.classification import ClassifierTask, Decoded, EvalConfig, PredictConfig
from dltool.core.console import info
from dltool.core.errors import InputError, ModelFileError, OptionError, unknown_name
from dltool.core.modelfile import LoadedModel, load_model, load_model_file, save_model
from dltool.core.registry import arch_options, option_flag
from dltool.core.run import RunConfig, recipe
from dltool.core.train import Engine, EngineConfig
from dltool.text.corpus import CorpusSpec, read_documents
from dltool.text.models import MODELS, create_model
from dltool.text.plan import BAG_MODELS
from dltool.text.tokenize import TokenizerConfig
from dltool.text.vocab import MASK, PAD, UNK, Vocab, VocabConfig, drop_words

TASK = "text-classify"
PRETRAIN_TASK = "text-pretrain"
MODEL_NAMES = ("tfidf", *MODELS.names(folder=None))  # bert_hf comes from --pretrained DIR, not by name
CLASSIFIERS = ("svm", "logreg")
SUBWORD_KINDS = ("wordpiece", "bpe")
# the `train` options that shape a network (TrainConfig fields; None: the model's own default)
ARCH_OPTIONS = ("embed_dim", "hidden", "layers", "bidirectional", "heads", "filters", "kernel_sizes", "dropout")
# what a --pretrained folder brings itself (its tokenizer, vocabulary, shape): refused when changed
FOLDER_SETS = ("tokenizer", "lower", "strip_punct", "subword", "subword_model", "vocab_size", "min_count",
               "embeddings", "freeze_embeddings", "init_from", "word_dropout", *ARCH_OPTIONS)


# what --model tfidf (scikit-learn's linear models) uses of the engine's and the run's options: the rest of
# them, and every option of the vocabulary and the network, would do nothing, so giving one is refused
_TFIDF_USES = ("seed", "val_split", "val", "out", "force", "device")
_NEURAL_ONLY = (*(f.name for f in fields(EngineConfig) if f.compare and f.name not in _TFIDF_USES),  # options only
                "batch_size", "tokenizer", "lower", "strip_punct", "subword", "subword_model", "vocab_size",
                "min_count", "max_len", "embeddings", "freeze_embeddings", "init_from", "pretrained", "word_dropout",
                *ARCH_OPTIONS)
#: the bag models take only the engine's options and their width and dropout
_BAG_USES = (*(f.name for f in fields(EngineConfig) if f.compare and f.name not in _TFIDF_USES), "batch_size",
             "hidden", "dropout")
MODEL_OPTIONS = Applies("model", takes={"tfidf": ("classifier",), **dict.fromkeys(BAG_MODELS, _BAG_USES)},
                        otherwise=_NEURAL_ONLY, otherwise_named="cnn|lstm|gru|rnn|transformer|fasttext|bert")

#: schedules that end with the learning rate near 0: the model.pt of a run with one is its last epoch
ANNEALED = ("onecycle", "cosine")
#: --lr of `train --init-from` unless given: the from-scratch 3e-3 wipes out much of what pretraining
#: learnt (the figures: README, Text classify).
FINETUNE_LR = 1e-3

@dataclass(frozen=True)
class Labelled:
    ids: list[str]
    texts: list[str]
    labels: list[str]


def read_labelled(path, text_column: str | None, label_column: str, encoding: str = "utf-8") -> Labelled:
    """Texts and labels of a CSV/TSV/JSONL file (text and label columns) or of fastText `__label__` lines."""
    ids, texts, labels = [], [], []
    for doc in read_documents(CorpusSpec(inputs=(str(path),), column=text_column, encoding=encoding)):
        label = doc.fields.get(label_column)
        if label in (None, ""):
            where = f"line {doc.id}" if not doc.fields else f"row {doc.id}"
            raise InputError(f"{path}: {where} has no label (column '{label_column}', or __label__x for fastText "
                             "lines)", "label every document, or name the label column with --label-column")
        ids.append(doc.id)
        texts.append(doc.text if doc.text is not None else " ".join(doc.tokens))
        labels.append(str(label))
    return Labelled(ids, texts, labels)


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    engine: EngineConfig
    model: str = "mlp"
    text_column: str | None = None
    label_column: str = "label"
    encoding: str = "utf-8"
    # tfidf
    classifier: str = "svm"
    # tokenization of the neural models
    tokenizer: str = "regex"
    lower: bool = True
    strip_punct: bool = False
    subword: int = 0                    # > 0: a subword vocabulary of this many tokens
    subword_model: str = "wordpiece"
    vocab_size: int = 20_000
    min_count: int = 1
    max_len: int = 64
    word_dropout: float = 0.0           # training tokens replaced by UNK with this probability
    embeddings: Path | None = None
    freeze_embeddings: bool = False
    init_from: Path | None = None
    pretrained: Path | None = None      # a local Hugging Face BERT folder (--model bert)
    # architecture (None: the model's default)
    embed_dim: int | None = None
    hidden: int | None = None
    layers: int | None = None
    bidirectional: bool | None = None
    heads: int | None = None
    filters: int | None = None          # cnn: filters of each width
    kernel_sizes: str | None = None     # cnn: the filters' widths, comma-separated ("3,4,5")
    dropout: float | None = None
    run: RunConfig = RunConfig()
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)
    options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.model not in MODEL_NAMES:
            raise unknown_name("model", self.model, MODEL_NAMES)
        values = {f.name: getattr(part, f.name) for part in (self.engine, self.run, self) for f in fields(part)}
        MODEL_OPTIONS.check_values(given_fields(self), values)
        if self.pretrained is not None:
            self._validate_pretrained()
        if self.classifier not in CLASSIFIERS:
            raise unknown_name("--classifier", self.classifier, CLASSIFIERS)
        if self.subword_model not in SUBWORD_KINDS:
            raise unknown_name("--subword-model", self.subword_model, SUBWORD_KINDS)
        if self.subword < 0:
            raise OptionError(f"--subword {self.subword} must be >= 0 (0: a word vocabulary)")
        if not 0 <= self.word_dropout < 1:
            raise OptionError(f"--word-dropout {self.word_dropout} must be in [0, 1)", "e.g. --word-dropout 0.1")
        if self.freeze_embeddings and self.embeddings is None:
            raise OptionError("--freeze-embeddings needs --embeddings FILE", "pass word2vec vectors to freeze")
        if self.embeddings is not None and self.subword:
            raise OptionError("--embeddings are word vectors; --subword makes subword tokens",
                              "drop one of them")
        if self.init_from is not None and (self.model not in MODELS.names(mlm="bert_mlm") or self.subword
                                           or self.embeddings):
            raise OptionError("--init-from starts a bert model from 'text classify pretrain' (its vocabulary too)",
                              "use --model bert (or bert_tiny) without --subword/--embeddings")
        if self.model == "tfidf":
            return
        self.engine.validate()
        VocabConfig(kind="word", size=self.vocab_size, min_count=self.min_count, max_len=self.max_len)
        arch_options(self, MODELS, ARCH_OPTIONS)  # refuses what the model does not take
        kernel_widths(self.kernel_sizes)
        if self.filters is not None and self.filters < 1:
            raise OptionError(f"--filters {self.filters} must be at least 1")

    def _validate_pretrained(self) -> None:
        if self.model != "bert":
            raise OptionError(f"--pretrained DIR loads a Hugging Face BERT folder, not a '{self.model}' model",
                              "use --model bert (the folder's config.json sets its size)")
        defaults = {f.name: f.default for f in fields(self)}
        given = [option_flag(o, getattr(self, o)) for o in FOLDER_SETS if getattr(self, o) != defaults[o]]
        if given:
            raise OptionError(f"--pretrained brings its own tokenizer, vocabulary and shape: {', '.join(given)} "
                              "would not apply", "drop them")

    def tokenizer_config(self) -> TokenizerConfig:
        return TokenizerConfig(tokenizer=self.tokenizer, lower=self.lower, strip_punct=self.strip_punct)

    def vocab_config(self) -> VocabConfig:
        kind = self.subword_model if self.subword else "word"
        return VocabConfig(kind=kind, size=self.subword or self.vocab_size, min_count=self.min_count,
                           max_len=self.max_len)


def kernel_widths(text: str | None) -> tuple[int, ...] | None:
    """--kernel-sizes "3,4,5" -> (3, 4, 5); None stays None (the model's default)."""
    if text is None:
        return None
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise OptionError(f"--kernel-sizes '{text}' must be comma-separated widths >= 1", "e.g. --kernel-sizes 3,4,5")
    return widths


def _split(cfg: TrainConfig, data: Labelled):
    """(train, validation or None) as Labelled, classes, and the class indices of both."""
    classes = sorted(set(data.labels))
    if len(classes) < 2:
        raise InputError(f"'{cfg.data}' has {len(classes)} label", "a classifier needs at least two labels")
    y = np.array([classes.index(c) for c in data.labels])
    if cfg.run.val is not None:
        val = read_labelled(cfg.run.val, cfg.text_column, cfg.label_column, cfg.encoding)
        unknown = sorted(set(val.labels) - set(classes))
        if unknown:
            raise InputError(f"--val has labels not in the training data: {', '.join(unknown[:5])}")
        return data, val, classes
    from dltool.core.data import stratified_split

    tr, va = stratified_split(y, cfg.run.val_split, cfg.engine.seed)
    return _subset(data, tr), (_subset(data, va) if va is not None else None), classes


def _subset(data: Labelled, idx) -> Labelled:
    return Labelled([data.ids[i] for i in idx], [data.texts[i] for i in idx], [data.labels[i] for i in idx])


def train(cfg: TrainConfig) -> dict:
    cfg.validate()
    if cfg.model == "tfidf":
        return _train_tfidf(cfg)
    data = read_labelled(cfg.data, cfg.text_column, cfg.label_column, cfg.encoding)
    cfg, plan = _planned(cfg, data)
    device, run_dir = runs.start(cfg, TASK)
    batch_size = cfg.run.batch_size
    tr, va, classes = _split(cfg, data)
    if cfg.model in BAG_MODELS:
        return _train_bag(cfg, plan, device, run_dir, tr, va, classes)

    arch, pretrained, folder = cfg.model, None, None
    if cfg.pretrained is not None:
        from dltool.text.models.bert_hf import read_folder

        folder = read_folder(cfg.pretrained)
        arch, vocab = "bert_hf", Vocab.from_hf(folder.tokenizer_json, cfg.max_len)
        arch_kwargs = _folder_arch_kwargs(cfg, folder, len(classes))
    else:
        if cfg.init_from is not None:
            pretrained = load_model_file(cfg.init_from, task=PRETRAIN_TASK)
            vocab = Vocab.from_dict(pretrained["preprocess"]["vocab"])
        else:
            vocab = Vocab.build(tr.texts, cfg.tokenizer_config(), cfg.vocab_config())
        arch_kwargs = _arch_kwargs(cfg, len(vocab), len(classes), pretrained)
    model = create_model(arch, **arch_kwargs)
    if hasattr(model, "set_words"):  # fasttext: each word's character n-grams, from the vocabulary
        model.set_words(vocab.tokens)
    engine_cfg = cfg.engine
    if pretrained is not None or folder is not None:
        from dltool.core.train import init_weights

        init_weights(model, cfg.engine.init)  # --init for what starts fresh (pooler, head), then the weights
        if folder is not None:
            _load_folder(model, folder, cfg.pretrained)
        else:
            _load_encoder(model, pretrained, cfg.init_from)
        engine_cfg = replace(cfg.engine, init="default")  # applied already: the engine must not redo it
    if cfg.embeddings is not None:
        _load_word_vectors(model, vocab, cfg.embeddings, cfg.freeze_embeddings)

    if plan is not None:  # said once everything that can fail on bad input has been checked
        info(plan.line())
    info(f"data: {len(tr.texts)} training texts, {0 if va is None else len(va.texts)} validation, "
         f"{len(classes)} labels, {vocab.kind} vocabulary of {len(vocab)}, on {device.type}")
    train_batches = _batches(vocab, tr, classes, batch_size, shuffle=True, seed=cfg.engine.seed, device=device)
    val_batches = (_batches(vocab, va, classes, max(256, batch_size), shuffle=False, seed=0, device=device)
                   if va is not None else None)
    task = TextClassifyTask(arch, arch_kwargs, classes, vocab, device, word_dropout=cfg.word_dropout)
    if cfg.engine.scheduler in ANNEALED and not cfg.engine.early_stop:
        # the annealed last epoch did as well as the best validation one in 8 of 9 runs (README, Planned
        # defaults): a few hundred validation texts pick an epoch by noise
        task.monitor_mode = "last"
    with small_work_on_one_thread(model, device, batch_size, train_batches.tensors[1]):
        return Engine(task, model, engine_cfg, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)


def _planned(cfg: TrainConfig, data: Labelled):
    """(cfg with the options the user did not set planned from the data (dltool.text.plan), the Plan or
    None); the plan goes into the recipe, so config.toml saves it ([plan])."""
    from dltool.core.plan import plan_run
    from dltool.text.plan import fingerprint, plan_classify

    cfg, plan = plan_run(cfg, plan_classify, lambda: fingerprint(data.texts, data.labels, cfg.tokenizer_config()))
    return cfg, plan


def small_work_on_one_thread(model, device, batch_size: int, lengths: torch.Tensor):
    """A CPU run on one torch thread when a step is small (dltool.core.threads' threshold): batch x the mean
    text length x the dense weights (embeddings are lookups). Text models this size run 2-8x faster on one
    thread than on two on the busy 2-core machine (benchmarked while other jobs ran)."""
    from dltool.core.threads import single_thread_below

    dense = sum(p.numel() for name, p in model.named_parameters() if p.dim() > 1 and "embedding" not in name)
    work = int(batch_size * float(lengths.float().mean()) * dense)
    return single_thread_below(device, work)


def _arch_kwargs(cfg: TrainConfig, vocab_size: int, num_classes: int, pretrained: dict | None) -> dict:
    if pretrained is not None:  # the encoder's shape is the pretrained one
        kw = {k: v for k, v in pretrained["arch_kwargs"].items() if k != "vocab_size"}
        if pretrained["arch"] != cfg.model:
            raise ModelFileError(f"--init-from {cfg.init_from} pretrained '{pretrained['arch']}', not '{cfg.model}'",
                                 f"use --model {pretrained['arch']}")
        return {"vocab_size": vocab_size, "num_classes": num_classes, **kw}
    kw = {o: getattr(cfg, o) for o in ARCH_OPTIONS if getattr(cfg, o) is not None and o in MODELS.takes(cfg.model)}
    if "kernel_sizes" in kw:
        kw["kernel_sizes"] = list(kernel_widths(cfg.kernel_sizes))
    if "max_len" in MODELS.takes(cfg.model):
        kw["max_len"] = cfg.max_len
    if cfg.embeddings is not None:
        from dltool.text.word2vec import load_vectors

        dim = load_vectors(cfg.embeddings).vector_size
        if cfg.embed_dim is not None and cfg.embed_dim != dim:
            raise OptionError(f"--embed-dim {cfg.embed_dim} differs from the {dim} dimensions of {cfg.embeddings}",
                              "drop --embed-dim (the vectors set it)")
        kw["embed_dim"] = dim
    return {"vocab_size": vocab_size, "num_classes": num_classes, **kw}


def _folder_arch_kwargs(cfg: TrainConfig, folder, num_classes: int) -> dict:
    positions = folder.config["max_position_embeddings"]
    if cfg.max_len > positions:
        raise OptionError(f"--max-len {cfg.max_len} exceeds the {positions} positions of --pretrained {cfg.pretrained}",
                          f"use --max-len {positions} or less")
    return {"config": folder.config, "num_classes": num_classes}


def _load_folder(model, folder, path) -> None:
    """The folder's BertModel weights; the head (and a pooler the folder lacks) start fresh."""
    model.bert.load_state_dict(folder.state_dict, strict=not folder.missing)
    c = folder.config
    fresh = " (its pooler is not in the folder, a masked-LM one: it starts fresh)" if folder.missing else ""
    layers = c["num_hidden_layers"]
    info(f"pretrained: BERT of {layers} layer{'s' if layers != 1 else ''}, width {c['hidden_size']}, vocabulary of "
         f"{c['vocab_size']} from {path}{fresh}")


def _load_encoder(model, pretrained: dict, path) -> None:
    """The pretrained encoder's weights (`bert.*`); the pooler and head start fresh."""
    own = model.state_dict()
    encoder = {k: v for k, v in pretrained["state_dict"].items() if k.startswith("bert.")}
    mismatched = [k for k, v in encoder.items() if k not in own or own[k].shape != v.shape]
    if not encoder or mismatched:
        raise ModelFileError(f"--init-from {path}: its encoder does not fit the model ({len(mismatched)} tensors "
                             "differ)", "pretrain with the same --model")
    model.load_state_dict(encoder, strict=False)
    info(f"init-from: loaded the {len(encoder)} encoder tensors of {path}")


def _load_word_vectors(model, vocab: Vocab, path, freeze: bool) -> None:
    from dltool.text.word2vec import load_vectors

    kv = load_vectors(path)
    weight = model.embedding.weight
    found = 0
    with torch.no_grad():
        for i, token in enumerate(vocab.tokens):
            if i > PAD and token in kv.key_to_index:
                weight[i] = torch.from_numpy(np.array(kv[token], dtype=np.float32))
                found += 1
    if found == 0:
        raise InputError(f"no word of the vocabulary has a vector in {path}",
                         "tokenize as the vectors' corpus was (e.g. --lower), or train vectors on this data")
    weight.requires_grad_(not freeze)
    info(f"embeddings: {found} of {len(vocab) - 4} words from {path}{' (frozen)' if freeze else ''}")


def _batches(vocab: Vocab, data: Labelled, classes: list[str], batch_size: int, *, shuffle: bool, seed: int, device):
    from dltool.core.data import TensorBatches

    ids, lengths = vocab.encode_batch(data.texts)
    y = torch.tensor([classes.index(c) for c in data.labels], dtype=torch.long)
    return TensorBatches((ids.to(device), lengths.to(device), y.to(device)), batch_size, shuffle=shuffle, seed=seed)


def _trim(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Drop the padding columns no text of this batch reaches (batches are padded to the longest text)."""
    return ids[:, : int(lengths.max())]


class TextClassifyTask(ClassifierTask):
    """A text classifier's batches: token ids and lengths from the vocabulary, which travels in the model file."""

    name = TASK

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], vocab: Vocab, device,
                 word_dropout: float = 0.0):
        super().__init__(arch, arch_kwargs, classes, {"vocab": vocab.to_dict()})
        self.vocab, self.device, self.word_dropout = vocab, device, word_dropout

    def forward(self, model, batch, train: bool = False):
        ids, lengths, y = batch
        ids = _trim(ids, lengths)
        if train and self.word_dropout:  # the text without some of its words (never its specials)
            ids = drop_words(ids, self.word_dropout, ids > MASK, UNK)
        return model(ids, lengths), y

    def model_inputs(self, texts: list[str]) -> tuple:
        ids, lengths = self.vocab.encode_batch(texts)
        return ids.to(self.device), lengths.to(self.device)


class TfidfTask:
    """Inference of a tfidf model: the raw texts are its input."""

    def model_inputs(self, texts: list[str]) -> tuple:
        return (texts,)


# -- tfidf ------------------------------------------------------------------------------------

WORD_NGRAMS, CHAR_NGRAMS = (1, 2), (2, 5)


def _vectorizers(min_df: int = 1, max_features: int | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return tuple(TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, lowercase=True, sublinear_tf=True,
                                 min_df=min_df, max_features=max_features)
                 for analyzer, ngrams in (("word", WORD_NGRAMS), ("char_wb", CHAR_NGRAMS)))


def _tfidf_features(vectorizers, texts: list[str], fit: bool = False):
    from scipy.sparse import hstack

    return hstack([v.fit_transform(texts) if fit else v.transform(texts) for v in vectorizers]).tocsr()


def _train_tfidf(cfg: TrainConfig) -> dict:
    import time

    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    from dltool.core.device import placed_on
    from dltool.core.io import prepare_run_dir, write_json
    from dltool.core.seed import seed_everything

    placed_on(cfg.run.device, "a tfidf model")  # --device cuda without CUDA is an error; with it, a note
    seed_everything(cfg.engine.seed)
    run_dir = prepare_run_dir(cfg.run.out, TASK, force=cfg.run.force, resume=False)
    data = read_labelled(cfg.data, cfg.text_column, cfg.label_column, cfg.encoding)
    tr, va, classes = _split(cfg, data)
    t0 = time.perf_counter()
    vectorizers = _vectorizers()
    X = _tfidf_features(vectorizers, tr.texts, fit=True)
    y = np.array([classes.index(c) for c in tr.labels])
    clf = (LinearSVC(C=1.0, random_state=cfg.engine.seed) if cfg.classifier == "svm"
           else LogisticRegression(C=10.0, max_iter=2000, random_state=cfg.engine.seed))
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
    metrics = {"train_accuracy": float((clf.predict(X) == y).mean())}
    if va is not None:
        from dltool.core.classification import classification_metrics

        m = classification_metrics([classes.index(c) for c in va.labels],
                                   clf.predict(_tfidf_features(vectorizers, va.texts)), classes)
        metrics.update(val_accuracy=m["accuracy"], val_f1_macro=m["f1_macro"])
    info(f"data: {len(tr.texts)} training texts, {0 if va is None else len(va.texts)} validation, "
         f"{len(classes)} labels, {X.shape[1]} TF-IDF features")
    run_dir.mkdir(parents=True, exist_ok=True)
    state, vocabularies = _tfidf_state(vectorizers, clf)
    save_model(run_dir / "model.pt", task=TASK, arch="tfidf",
               arch_kwargs={"classifier": cfg.classifier, "word_ngrams": list(WORD_NGRAMS),
                            "char_ngrams": list(CHAR_NGRAMS)},
               state_dict=state, classes=classes, preprocess={"vocabularies": vocabularies}, metrics=metrics)
    import tomli_w

    from dltool.core.io import atomic_open
    from dltool.core.train import toml_ready

    with atomic_open(run_dir / "config.toml") as f:
        f.write(tomli_w.dumps(toml_ready(recipe(cfg))))
    summary = {"run_dir": str(run_dir), "model": str(run_dir / "model.pt"), **metrics,
               "train_time_s": round(seconds, 3)}
    write_json(run_dir / "summary.json", summary)
    return summary


def _tfidf_state(vectorizers, clf):
    """Tensors (idf weights, coefficients) and plain data (the terms in column order) of a fitted tfidf model."""
    vocabularies, (word_idf, char_idf) = _fitted(vectorizers)
    coef, intercept = np.atleast_2d(clf.coef_), np.atleast_1d(clf.intercept_)
    state = {"word_idf": word_idf, "char_idf": char_idf,
             "coef": torch.from_numpy(coef.copy()), "intercept": torch.from_numpy(intercept.copy())}
    return state, vocabularies


def _fitted(vectorizers) -> tuple[list[list[str]], list[torch.Tensor]]:
    """What a model file keeps of fitted vectorizers: each one's terms in column order, and its idf weights."""
    return ([sorted(v.vocabulary_, key=v.vocabulary_.get) for v in vectorizers],
            [torch.from_numpy(v.idf_.copy()) for v in vectorizers])


def _restored(vocabularies, idfs):
    """The vectorizers of a model file (_fitted), ready to transform."""
    vectorizers = _vectorizers()
    for v, terms, idf in zip(vectorizers, vocabularies, idfs):
        v.vocabulary_ = {t: i for i, t in enumerate(terms)}
        v.idf_ = idf.numpy()
    return vectorizers


class TfidfModel:
    """A tfidf model file, restored: class scores of raw texts (the SVM's margins or the log-odds)."""

    def __init__(self, ckpt: dict):
        self.vectorizers = _restored(ckpt["preprocess"]["vocabularies"],
                                     (ckpt["state_dict"]["word_idf"], ckpt["state_dict"]["char_idf"]))
        self.coef = ckpt["state_dict"]["coef"].numpy()
        self.intercept = ckpt["state_dict"]["intercept"].numpy()

    def forward_features(self, texts: list[str]):
        raise OptionError("--embed needs a neural model; a tfidf model has no pooled representation",
                          "train a neural model: --model lstm, transformer, ...")

    def __call__(self, texts: list[str]) -> torch.Tensor:
        z = np.asarray(_tfidf_features(self.vectorizers, texts) @ self.coef.T) + self.intercept
        if z.shape[1] == 1:  # binary: one margin for the second class
            z = np.hstack([-z / 2, z / 2])
        return torch.from_numpy(z).float()


# -- mlp: a network on the TF-IDF n-grams -----------------------------------------------------

#: an n-gram is a feature of `mlp` when at least this many training texts have it: one text's n-gram tells
#: nothing of another, and each feature is a row of the network (R8's 280,489 word and character n-grams
#: become 113,361; tfidf's SVM scores 0.974 on either)
BAG_MIN_DF = 2
#: and at most this many word n-grams and as many character n-grams, the commonest (scikit-learn's
#: max_features), so a large corpus keeps the network's table bounded (64 MiB at --hidden 64); R8 has
#: 62,156 and 51,205
BAG_MAX_FEATURES = 2**17


def _train_bag(cfg: TrainConfig, plan, device, run_dir, tr: Labelled, va: Labelled | None, classes) -> dict:
    from dltool.core.data import SparseRowBatches

    vectorizers = _vectorizers(min_df=BAG_MIN_DF, max_features=BAG_MAX_FEATURES)
    try:
        X = _tfidf_features(vectorizers, tr.texts, fit=True)
    except ValueError:  # scikit-learn: "After pruning, no terms remain"
        raise InputError(f"{cfg.data}: no word is in {BAG_MIN_DF} or more of the {len(tr.texts)} training texts",
                         "an mlp learns from n-grams texts share: give more texts, or use --model tfidf") from None
    vocabularies, idfs = _fitted(vectorizers)
    features = X.shape[1]
    arch_kwargs = _arch_kwargs(cfg, features, len(classes), None)
    model = create_model(cfg.model, **arch_kwargs)
    if plan is not None:
        info(plan.line())
    info(f"data: {len(tr.texts)} training texts, {0 if va is None else len(va.texts)} validation, "
         f"{len(classes)} labels, {features} TF-IDF n-grams (those in {BAG_MIN_DF}+ texts), on {device.type}")

    def batches(data: Labelled, batch_size: int, shuffle: bool):
        rows = X if data is tr else _tfidf_features(vectorizers, data.texts)
        y = torch.tensor([classes.index(c) for c in data.labels], dtype=torch.long)
        return SparseRowBatches(rows, features, (y,), batch_size, shuffle=shuffle, seed=cfg.engine.seed,
                                device=device)

    batch_size = cfg.run.batch_size
    task = BagTask(cfg.model, arch_kwargs, classes, vocabularies, idfs, device)
    if cfg.engine.scheduler in ANNEALED and not cfg.engine.early_stop:
        task.monitor_mode = "last"  # as the other networks (train)
    return Engine(task, model, cfg.engine, run_dir, device, recipe(cfg)).fit(
        batches(tr, batch_size, True), batches(va, max(256, batch_size), False) if va is not None else None)


class BagTask(ClassifierTask):
    """A bag-of-n-grams network's batches (dltool.text.models.bag): each text's TF-IDF n-gram ids and values,
    padded (dltool.core.data.padded_rows); the fitted vectorizers travel in the model file."""

    name = TASK

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], vocabularies: list, idfs: list, device):
        super().__init__(arch, arch_kwargs, classes, {"vocabularies": vocabularies, "idf": list(idfs)})
        self.vectorizers, self.device = _restored(vocabularies, idfs), device
        self.pad = arch_kwargs["vocab_size"]  # the bag's padding row

    def forward(self, model, batch, train: bool = False):
        ids, values, y = batch
        return model(ids, values), y

    def model_inputs(self, texts: list[str]) -> tuple:
        from dltool.core.data import padded_rows

        ids, values = padded_rows(_tfidf_features(self.vectorizers, texts), np.arange(len(texts)), self.pad)
        return ids.to(self.device), values.to(self.device)


# -- inference --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TextEvalConfig(EvalConfig):
    text_column: str | None = None
    label_column: str = "label"
    encoding: str = "utf-8"


@dataclass(frozen=True)
class TextPredictConfig(PredictConfig):
    text_column: str | None = None
    label_column: str = "label"   # a column of true labels, if any, carried as true_label
    encoding: str = "utf-8"


def load(path, device="auto") -> LoadedModel:
    """A model file on --device (a tfidf model runs on the CPU: said once when another was asked for)."""
    from dltool.core.device import placed_on

    ckpt = load_model_file(path, task=TASK)
    if ckpt["arch"] == "tfidf":
        placed_on(str(device), "a tfidf model")
        return LoadedModel(TfidfModel(ckpt), TfidfTask(), ckpt, torch.device("cpu"))
    if ckpt["arch"] in BAG_MODELS:
        def make_task(ck, dev):
            return BagTask(ck["arch"], ck["arch_kwargs"], ck["classes"], ck["preprocess"]["vocabularies"],
                           ck["preprocess"]["idf"], dev)
    else:
        def make_task(ck, dev):
            return TextClassifyTask(ck["arch"], ck["arch_kwargs"], ck["classes"],
                                    Vocab.from_dict(ck["preprocess"]["vocab"]), dev)
    return load_model(path, task=TASK, registry=MODELS, device=device, make_task=make_task)


def pooled(lm: LoadedModel, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """The network's pooled representation of raw texts (`predict --embed`, `text embed --method model`)."""
    from dltool.core.classification import infer

    return infer(lm, texts, batch_size, embed=True).numpy()


def _read_labelled(lm: LoadedModel, cfg: TextEvalConfig) -> Decoded:
    data = read_labelled(cfg.data, cfg.text_column, cfg.label_column, cfg.encoding)
    return Decoded(data.texts, data.labels, [{"id": i} for i in data.ids])


def _scan(cfg: TextPredictConfig) -> list:
    return list(read_documents(CorpusSpec(inputs=tuple(str(i) for i in cfg.inputs), column=cfg.text_column,
                                          encoding=cfg.encoding)))


def _decode(lm: LoadedModel, docs: list, cfg: TextPredictConfig) -> Decoded:
    texts = [d.text if d.text is not None else " ".join(d.tokens) for d in docs]
    truth = [d.fields.get(cfg.label_column) for d in docs]
    return Decoded(texts, truth, [_id_fields(d) for d in docs], [{"text": t} for t in texts])


def _id_fields(doc) -> dict:
    rec = {"id": doc.id}
    if "path" in doc.fields:
        rec["path"] = doc.fields["path"]
    return rec


def evaluate(cfg: TextEvalConfig) -> dict:
    return classification.evaluate(cfg, load=load, read=_read_labelled)


def predict(cfg: TextPredictConfig):
    """Records in input order (or the --embed feature table); dltool.core.classification.predict."""
    return classification.predict(cfg, load=load, scan=_scan, decode=_decode)

"""dltool text tokenize | word2vec train|similar|analogy|vectors|evaluate | topics | embed
| classify pretrain|train|eval|predict | lm train|eval|sample|score.

Thin: each command turns its options into the domain's frozen configs, makes one call into
dltool.text and writes the result. Nothing heavy (nltk, gensim, sklearn, numpy, torch) is imported at
module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    FormatOpt,
    OutFileOpt,
    QuietOpt,
    SeedOpt,
    apply_console_options,
)
from dltool.cli.train_options import (
    InferNprocOpt,
    ShardOpt,
    engine_options,
    task_config,
)

app = typer.Typer(help="Text: tokenize, word2vec and fastText vectors, LDA topics, feature tables, classifiers.",
                  no_args_is_help=True)
word2vec_app = typer.Typer(help="Word vectors with gensim: word2vec (skip-gram, CBOW) and fastText.",
                           no_args_is_help=True)
app.add_typer(word2vec_app, name="word2vec")
classify_app = typer.Typer(help="Text classifiers: TF-IDF + linear model, RNN/LSTM/GRU, CNN, Transformer, BERT (pretrain by MLM).",
                           no_args_is_help=True)
app.add_typer(classify_app, name="classify")

InputsArg = Annotated[list[str], typer.Argument(
    help="Documents: text files (one a line), CSV/TSV/JSON Lines with --column; '-' reads stdin.")]
ColumnOpt = Annotated[str | None, typer.Option(
    "--column", help="Text column of a CSV/TSV/JSON Lines input (default 'text').")]
IdColumnOpt = Annotated[str, typer.Option("--id-column", help="Column carried as each document's id.")]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Encoding of the input; other bytes are an error.")]
TokenizerOpt = Annotated[str, typer.Option("--tokenizer", help="regex|treebank|wordpunct|whitespace (NLTK's; no downloads).")]
LowerOpt = Annotated[bool, typer.Option("--lower", help="Lower-case every token.")]
StripPunctOpt = Annotated[bool, typer.Option("--strip-punct", help="Drop tokens made only of punctuation or symbols.")]
StopwordsOpt = Annotated[str | None, typer.Option(
    "--stopwords", help="Drop stop words: a language (NLTK's lists; English falls back to scikit-learn's) or a FILE.")]
StemOpt = Annotated[str | None, typer.Option("--stem", help="porter|snowball (Snowball in --language).")]
LanguageOpt = Annotated[str, typer.Option("--language", help="Language of the Snowball stemmer.")]
LemmatizeOpt = Annotated[bool, typer.Option("--lemmatize", help="Reduce words to their WordNet lemma (needs NLTK's wordnet data).")]
VectorsArg = Annotated[Path, typer.Argument(help="Vectors from 'word2vec train': word2vec .bin/.txt or a fastText .bin.")]

_CORPUS = ("inputs", "column", "id_column", "encoding")
_TOKENIZER = ("tokenizer", "lower", "strip_punct", "stopwords", "stem", "language", "lemmatize")


def _corpus(opts: dict):
    from dltool.text.corpus import CorpusSpec

    return CorpusSpec(inputs=tuple(opts["inputs"]), column=opts["column"], id_column=opts["id_column"],
                      encoding=opts["encoding"])


def _tokenizer(opts: dict):
    from dltool.text.tokenize import TokenizerConfig

    return TokenizerConfig(**{k: opts[k] for k in _TOKENIZER})


def _start(quiet: bool, device: str, what: str, fmt: str | None = None) -> None:
    """Console switches, then --device: validated, and a note that these algorithms run on CPU."""
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.device import placed_on

    placed_on(device, what)


@app.command("tokenize")
def tokenize(
    inputs: InputsArg,
    tokenizer: TokenizerOpt = "regex",
    lower: LowerOpt = False,
    strip_punct: StripPunctOpt = False,
    stopwords: StopwordsOpt = None,
    corpus_stopwords: Annotated[int, typer.Option(
        "--corpus-stopwords", help="Also drop the corpus's N most frequent tokens (reads the input twice).")] = 0,
    stem: StemOpt = None,
    language: LanguageOpt = "english",
    lemmatize: LemmatizeOpt = False,
    stats: Annotated[str | None, typer.Option(
        "--stats", help="Also write a frequency table (token, count, document_frequency) to FILE (.csv/.jsonl).")] = None,
    output: OutFileOpt = "-",
    fmt: Annotated[str, typer.Option("--format", help="text: space-joined tokens a line (fastText __label__ kept) | jsonl: {id, ..., tokens}.")] = "text",
    column: ColumnOpt = None,
    id_column: IdColumnOpt = "id",
    encoding: EncodingOpt = "utf-8",
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Split documents into tokens and normalise them; streams, so memory stays flat on large files.

    Example: dltool text tokenize corpus.txt --lower --strip-punct --stopwords english --stem porter > tokens.txt
    """
    _start(quiet, device, "text tokenize")
    from dltool.core.errors import OptionError
    from dltool.core.io import atomic_open
    from dltool.text import tokenize as task

    if stats == "-" and output == "-":
        raise OptionError("--stats - and the tokens both go to stdout", "write one of them to a file (-o or --stats)")
    cfg = task.TokenizeConfig(corpus=_corpus(locals()), tokenizer=_tokenizer(locals()),
                              corpus_stopwords=corpus_stopwords, output_format=fmt, with_stats=stats is not None)
    with atomic_open(output) as f:
        counts = task.tokenize(cfg, lambda line: f.write(line + "\n"))
    if counts is not None:
        from dltool.core.tables import write_table

        write_table(task.stats_table(counts), stats)



@word2vec_app.command("train")
def word2vec_train(
    inputs: InputsArg,
    output: Annotated[str, typer.Option("--output", "-o", help="Vectors file: .bin (word2vec binary), .txt/.vec (text); fastText: .bin.")],
    fasttext: Annotated[bool, typer.Option("--fasttext", help="fastText (gensim's FastText): subword vectors, so unseen words get vectors too.")] = False,
    sg: Annotated[bool, typer.Option("--sg/--cbow", help="Skip-gram, or CBOW (the default).")] = False,
    hs: Annotated[bool, typer.Option("--hs", help="Hierarchical softmax instead of negative sampling.")] = False,
    negative: Annotated[int, typer.Option("--negative", help="Noise words per positive (negative sampling).")] = 5,
    dim: Annotated[int, typer.Option("--dim", help="Vector size.")] = 100,
    window: Annotated[int, typer.Option("--window", help="Context words on each side.")] = 5,
    min_count: Annotated[int, typer.Option("--min-count", help="Ignore words seen fewer times.")] = 5,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the corpus.")] = 5,
    workers: Annotated[int, typer.Option("--workers", help="Training threads; only --workers 1 is reproducible with --seed.")] = 1,
    bucket: Annotated[int, typer.Option("--bucket", help="fastText: hash buckets for character n-grams (the .bin holds bucket x dim floats).")] = 2_000_000,
    min_n: Annotated[int, typer.Option("--min-n", help="fastText: shortest character n-gram.")] = 3,
    max_n: Annotated[int, typer.Option("--max-n", help="fastText: longest character n-gram.")] = 6,
    tokenizer: TokenizerOpt = "whitespace",
    lower: LowerOpt = False,
    strip_punct: StripPunctOpt = False,
    stopwords: StopwordsOpt = None,
    stem: StemOpt = None,
    language: LanguageOpt = "english",
    lemmatize: LemmatizeOpt = False,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = "id",
    encoding: EncodingOpt = "utf-8",
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Train word2vec or fastText vectors; prints a JSON summary.

    Reads tokenized text by default (one document a line, tokens split on whitespace); tokenizer
    options tokenize raw text here. --seed gives identical vectors with --workers 1.

    Example: dltool text word2vec train tokens.txt -o vec.bin --sg   (tokens.txt: from dltool text tokenize)
    """
    _start(quiet, device, "text word2vec train", fmt)
    from dltool.core.console import info
    from dltool.core.output import emit_object
    from dltool.text import word2vec as task

    cfg = task.TrainConfig(corpus=_corpus(locals()), output=output, tokenizer=_tokenizer(locals()),
                           fasttext=fasttext, sg=sg, hs=hs, negative=negative, dim=dim, window=window,
                           min_count=min_count, epochs=epochs, workers=workers, seed=seed, bucket=bucket,
                           min_n=min_n, max_n=max_n)
    result = task.train(cfg)
    info(f"saved {result['words']:,} vectors of {dim} dims to {output}")
    emit_object(result, fmt)


TopnOpt = Annotated[int, typer.Option("--topn", "-n", help="How many words to list.")]


@word2vec_app.command("similar")
def word2vec_similar(
    vectors: VectorsArg,
    words: Annotated[list[str], typer.Argument(help="Query words.")],
    topn: TopnOpt = 10,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """The nearest words (cosine similarity) of each query word: one row per (query, neighbour).

    Example: dltool text word2vec similar vec.bin king queen -n 5
    """
    _start(quiet, device, "text word2vec similar", fmt)
    from dltool.core.output import emit_records
    from dltool.text import word2vec as task

    emit_records(task.similar(task.load_vectors(vectors), words, topn), fmt)


@word2vec_app.command("analogy")
def word2vec_analogy(
    vectors: VectorsArg,
    a: Annotated[str, typer.Argument(help="A, in 'A is to B as C is to ?'.")],
    b: Annotated[str, typer.Argument(help="B")],
    c: Annotated[str, typer.Argument(help="C")],
    topn: TopnOpt = 5,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """A is to B as C is to ?: the words nearest to B - A + C (the three inputs left out).

    Example: dltool text word2vec analogy vec.bin man king woman
    """
    _start(quiet, device, "text word2vec analogy", fmt)
    from dltool.core.output import emit_records
    from dltool.text import word2vec as task

    emit_records(task.analogy(task.load_vectors(vectors), a, b, c, topn), fmt)


@word2vec_app.command("vectors")
def word2vec_vectors(
    vectors: VectorsArg,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the N most frequent words.")] = None,
    output: OutFileOpt = "-",
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """The vectors as a feature table (word, e0, e1, ...) for 'dltool reduce' and 'dltool cluster'.

    Example: dltool text word2vec vectors vec.bin --limit 1000 | dltool reduce pca - -n 2 --plot words.png
    """
    _start(quiet, device, "text word2vec vectors")
    from dltool.core.tables import write_table
    from dltool.text import word2vec as task

    write_table(task.vectors_table(task.load_vectors(vectors), limit), output, fmt)


@word2vec_app.command("evaluate")
def word2vec_evaluate(
    vectors: VectorsArg,
    analogies: Annotated[Path | None, typer.Option("--analogies", help="Analogy questions (questions-words.txt format).", dir_okay=False)] = None,
    similarity: Annotated[list[Path] | None, typer.Option("--similarity", help="Word pairs with human scores (WordSim-353/SimLex-999 format); repeatable.", dir_okay=False)] = None,
    restrict_vocab: Annotated[int, typer.Option("--restrict-vocab", help="Only the N most frequent words answer or count as known.")] = 300_000,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Score vectors on analogy and word-similarity sets: one JSON object.

    Analogy accuracy (overall and per section), Spearman and Pearson correlation with human
    similarity scores, and out-of-vocabulary rates. Case-insensitive; questions with unknown words
    are skipped and counted in the OOV rate.

    Example: dltool text word2vec evaluate vec.bin --analogies questions-words.txt --similarity wordsim353.tsv
    """
    _start(quiet, device, "text word2vec evaluate", fmt)
    from dltool.core.errors import OptionError
    from dltool.core.output import emit_object
    from dltool.text import word2vec as task

    if restrict_vocab < 1:
        raise OptionError(f"--restrict-vocab {restrict_vocab} must be at least 1")
    emit_object(task.evaluate(task.load_vectors(vectors), analogies, similarity or [], restrict_vocab), fmt)


@app.command("topics")
def topics(
    inputs: InputsArg,
    k: Annotated[int, typer.Option("--k", "-k", help="Number of topics.")] = 10,
    passes: Annotated[int, typer.Option("--passes", help="Passes over the corpus.")] = 10,
    iterations: Annotated[int, typer.Option("--iterations", help="Inference iterations per document and pass.")] = 50,
    no_below: Annotated[int, typer.Option("--no-below", help="Drop words in fewer documents than this.")] = 5,
    no_above: Annotated[float, typer.Option("--no-above", help="Drop words in more than this share of documents.")] = 0.5,
    top_words: Annotated[int, typer.Option("--top-words", help="Words shown (and scored for coherence) per topic.")] = 10,
    workers: Annotated[int, typer.Option("--workers", help="LdaMulticore worker processes; only --workers 1 is reproducible with --seed.")] = 1,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the per-document topic table (id, ..., topic_0..) to FILE ('-' = stdout).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw each topic's top words as bars (PNG).", dir_okay=False)] = None,
    tokenizer: TokenizerOpt = "whitespace",
    lower: LowerOpt = False,
    strip_punct: StripPunctOpt = False,
    stopwords: StopwordsOpt = None,
    stem: StemOpt = None,
    language: LanguageOpt = "english",
    lemmatize: LemmatizeOpt = False,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = "id",
    encoding: EncodingOpt = "utf-8",
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """LDA topics (gensim's LdaMulticore): top words per topic and coherence, one JSON object.

    Prints each topic's top words and the coherence (c_v, u_mass); -o writes the per-document
    topic table (with -o -, the table is the output and the topics and coherence go to stderr).
    Reads tokenized text by default; tokenizer options tokenize raw text here. --seed gives the
    same topics with --workers 1.

    Example: dltool text topics tokens.txt -k 10 -o doc-topics.csv --plot topics.png
    """
    _start(quiet, device, "text topics", fmt)
    from dltool.core.console import info
    from dltool.core.output import emit_object
    from dltool.core.tables import write_table
    from dltool.text import topics as task

    cfg = task.TopicsConfig(corpus=_corpus(locals()), tokenizer=_tokenizer(locals()), k=k, passes=passes,
                            iterations=iterations, no_below=no_below, no_above=no_above, top_words=top_words,
                            workers=workers, seed=seed)
    result = task.fit(cfg)
    for t in result.topics:
        info(f"topic {t['topic']}: {' '.join(t['words'])}")
    info(f"coherence: c_v {result.coherence['c_v']:.4f}, u_mass {result.coherence['u_mass']:.4f}")
    if plot is not None:
        task.plot_topics(result, plot)
    if output == "-":  # the table is the result on stdout; the summary was said on stderr
        write_table(result.table, "-", fmt)
        return
    if output is not None:
        write_table(result.table, output)
    emit_object(result.summary(), fmt)


@app.command("embed")
def embed(
    inputs: InputsArg,
    method: Annotated[str, typer.Option("--method", help="tfidf (TF-IDF + truncated SVD) | word2vec (mean of word vectors) | model (a classifier's pooled representation).")] = "tfidf",
    n_components: Annotated[int, typer.Option("-n", "--n-components", help="tfidf: dimensions kept by the SVD.")] = 100,
    min_df: Annotated[int, typer.Option("--min-df", help="tfidf: ignore terms in fewer documents than this.")] = 1,
    vectors: Annotated[Path | None, typer.Option("--vectors", help="word2vec: vectors from 'word2vec train' (.bin/.txt, fastText .bin).", dir_okay=False)] = None,
    tfidf_weight: Annotated[bool, typer.Option("--tfidf-weight", help="word2vec: weight each word by TF-IDF instead of its count.")] = False,
    model: Annotated[Path | None, typer.Option("--model", help="model: a 'text classify train' model file (neural) or its run folder.")] = None,
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="Scale each row to unit length (cosine geometry).")] = True,
    output: OutFileOpt = "-",
    tokenizer: TokenizerOpt = "whitespace",
    lower: LowerOpt = False,
    strip_punct: StripPunctOpt = False,
    stopwords: StopwordsOpt = None,
    stem: StemOpt = None,
    language: LanguageOpt = "english",
    lemmatize: LemmatizeOpt = False,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = "id",
    encoding: EncodingOpt = "utf-8",
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Documents as a feature table (e0, e1, ...), for 'dltool reduce' and 'dltool cluster'.

    The id and other columns pass through. Reads tokenized text by default; tokenizer options
    tokenize raw text here.

    Example: dltool text embed sms.csv --tokenizer regex --lower -n 50 | dltool cluster kmeans - -k 2
    """
    if method == "model":  # a network: it runs on --device
        apply_console_options(quiet=quiet)
    else:
        _start(quiet, device, "text embed")
    from dltool.core.inputs import parse_shard
    from dltool.core.tables import write_table
    from dltool.text import embed as task

    cfg = task.EmbedConfig(corpus=_corpus(locals()), tokenizer=_tokenizer(locals()), method=method,
                           n_components=n_components, min_df=min_df, normalize=normalize, vectors=vectors,
                           tfidf_weight=tfidf_weight, model=model, device=device, seed=seed,
                           shard=parse_shard(shard))
    table = task.embed(cfg)
    if table is not None:  # None on ranks other than 0
        write_table(table, output, fmt)


# -- classify -------------------------------------------------------------------------------------

DataFileArg = Annotated[Path, typer.Argument(
    help="Labelled texts: CSV/TSV/JSON Lines with text and label columns, or fastText '__label__x text' lines.")]
ModelFileArg = Annotated[Path, typer.Argument(help="A model file (model.pt) or its run folder.")]
TextColumnOpt = Annotated[str | None, typer.Option("--text-column", help="Text column of a CSV/TSV/JSON Lines input (default 'text').")]
LabelColumnOpt = Annotated[str, typer.Option("--label-column", help="Label column ('label' is also where fastText's __label__ goes).")]
ClassifyTokenizerOpt = Annotated[str, typer.Option("--tokenizer", help="Words for the neural models: regex|treebank|wordpunct|whitespace.")]
ClassifyLowerOpt = Annotated[bool, typer.Option("--lower/--no-lower", help="Lower-case every token.")]
SubwordOpt = Annotated[int, typer.Option("--subword", help="A subword vocabulary of N tokens trained on the training texts (0: words).")]
SubwordModelOpt = Annotated[str, typer.Option("--subword-model", help="wordpiece|bpe (with --subword).")]
VocabSizeOpt = Annotated[int, typer.Option("--vocab-size", help="Most words kept (the rest become UNK).")]
MinCountOpt = Annotated[int, typer.Option("--min-count", help="Drop words seen fewer times in the training texts.")]
MaxLenOpt = Annotated[int, typer.Option("--max-len", help="Tokens per text (longer texts are cut).")]
InferBatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Texts per forward pass.")]

@classify_app.command("train")
@engine_options(epochs=8, optimizer="adamw", scheduler="onecycle", weight_decay=0.01, clip_norm=1.0,
                # adamw, onecycle to 3e-3: the SMS bars in 3 CPU minutes (README, Text classify)
                lr=0.003)
def classify_train(
    data: DataFileArg,
    model: Annotated[str, typer.Option("--model", "-m", help="tfidf | mlp (a network on tfidf's n-grams) | rnn|lstm|gru | cnn | fasttext | transformer | bert; *_tiny for tests.")] = "mlp",
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = "label",
    encoding: EncodingOpt = "utf-8",
    classifier: Annotated[str, typer.Option("--classifier", help="tfidf: svm (linear SVM) | logreg (logistic regression).")] = "svm",
    tokenizer: ClassifyTokenizerOpt = "regex",
    lower: ClassifyLowerOpt = True,
    strip_punct: StripPunctOpt = False,
    subword: SubwordOpt = 0,
    subword_model: SubwordModelOpt = "wordpiece",
    vocab_size: VocabSizeOpt = 20_000,
    min_count: MinCountOpt = 1,
    max_len: MaxLenOpt = 64,
    word_dropout: Annotated[float, typer.Option("--word-dropout", help="Replace each training token by UNK with this probability (0: off).")] = 0.0,
    embeddings: Annotated[Path | None, typer.Option("--embeddings", help="Start the embedding layer from word2vec vectors (.bin/.txt).", dir_okay=False)] = None,
    freeze_embeddings: Annotated[bool, typer.Option("--freeze-embeddings", help="Keep the --embeddings fixed (static vectors).")] = False,
    init_from: Annotated[Path | None, typer.Option("--init-from", help="bert: start from a 'text classify pretrain' model file (its vocabulary too); --lr defaults to 1e-3 then.")] = None,
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="bert: start from a local Hugging Face BERT folder (config.json, weights, vocab.txt), its tokenizer too; never downloads; needs dltool[hf].")] = None,
    embed_dim: Annotated[int | None, typer.Option("--embed-dim", help="Embedding (and Transformer) width (default: the model's).")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="rnn, lstm, gru: hidden units per direction; mlp: its hidden layer's width (default 64).")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Recurrent or encoder layers.")] = None,
    bidirectional: Annotated[bool | None, typer.Option("--bidirectional/--no-bidirectional", help="rnn, lstm, gru: read both ways (default: yes).")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="transformer, bert: attention heads.")] = None,
    filters: Annotated[int | None, typer.Option("--filters", help="cnn: convolution filters of each width (default 100).")] = None,
    kernel_sizes: Annotated[str | None, typer.Option("--kernel-sizes", help="cnn: the filters' widths in tokens, e.g. 3,4,5 (the default).")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout (default: the model's).")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="A separate labelled validation file (overrides --val-split).", dir_okay=False)] = None,
    *,
    options: dict,
):
    """Train a text classifier; the vocabulary and tokenizer settings are saved in the model file.

    Example: dltool text classify train sample_data/text/sms/train.csv --model transformer --out runs/sms
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    if options["init_from"] is not None and "lr" not in options["given"]:
        from dltool.text.classify import FINETUNE_LR

        options = {**options, "lr": FINETUNE_LR}  # fine-tuning a pretrained encoder: a gentler default
    from dltool.core.output import emit_object
    from dltool.text import classify as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@classify_app.command("pretrain")
@engine_options(epochs=30, optimizer="adamw", scheduler="onecycle", weight_decay=0.01, clip_norm=1.0,
                without=("val",))
def classify_pretrain(
    inputs: Annotated[list[str], typer.Argument(help="Raw text: files of one text a line, or CSV/TSV/JSON Lines (--text-column).")],
    model: Annotated[str, typer.Option("--model", "-m", help="bert | bert_tiny: the encoder to pretrain.")] = "bert",
    text_column: TextColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    tokenizer: ClassifyTokenizerOpt = "regex",
    lower: ClassifyLowerOpt = True,
    strip_punct: StripPunctOpt = False,
    subword: SubwordOpt = 0,
    subword_model: SubwordModelOpt = "wordpiece",
    vocab_size: VocabSizeOpt = 20_000,
    min_count: MinCountOpt = 1,
    max_len: MaxLenOpt = 64,
    mask_prob: Annotated[float, typer.Option("--mask-prob", help="Share of the tokens to predict (80% masked, 10% random, 10% kept).")] = 0.15,
    embed_dim: Annotated[int | None, typer.Option("--embed-dim", help="Encoder width (default: the model's).")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="Attention heads.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Encoder layers.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout (default: the model's).")] = None,
    *,
    options: dict,
):
    """Pretrain a BERT encoder by masked-language modelling on raw text; fine-tune with train --init-from.

    Example: dltool text classify pretrain lee_background.cor train.csv --out runs/bert-mlm
    """
    options["inputs"] = tuple(options["inputs"])
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.text import pretrain as task

    emit_object(task.pretrain(task_config(task.PretrainConfig, options)), options["fmt"])


@classify_app.command("eval")
def classify_eval(
    model: ModelFileArg,
    data: DataFileArg,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = "label",
    encoding: EncodingOpt = "utf-8",
    out: Annotated[Path | None, typer.Option("--out", help="Also write metrics.json, confusion.json and confusion.png here.")] = None,
    batch_size: InferBatchOpt = 256,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a text classifier: accuracy, macro precision/recall/F1, per-class table, confusion matrix.

    Example: dltool text classify eval runs/sms/model.pt sample_data/text/sms/test.csv --out runs/sms/eval
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.text import classify as task

    emit_object(task.evaluate(task.TextEvalConfig(model=model, data=data, text_column=text_column,
                                                  label_column=label_column, encoding=encoding, out=out,
                                                  batch_size=batch_size, device=device)), fmt)


@classify_app.command("predict")
def classify_predict(
    model: ModelFileArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Texts: files of one text a line, or CSV/TSV/JSON Lines (--text-column); '-' or nothing: stdin.")] = None,
    text_column: TextColumnOpt = None,
    label_column: Annotated[str, typer.Option("--label-column", help="A column of true labels, if any, carried as true_label.")] = "label",
    encoding: EncodingOpt = "utf-8",
    output: OutFileOpt = "-",
    topk: Annotated[int, typer.Option("--topk", help="How many ranked labels to list per text.")] = 3,
    embed: Annotated[bool, typer.Option("--embed", help="Write the pooled representation as a feature table instead.")] = False,
    batch_size: InferBatchOpt = 256,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Predict labels as JSON Lines {id, text, label, score, topk}, or features with --embed.

    Example: dltool text classify predict runs/sms/model.pt messages.txt   (or pipe texts in: one a line)
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output if embed else None)
    from dltool.core.inputs import parse_shard
    from dltool.core.output import write_predictions
    from dltool.text import classify as task

    cfg = task.TextPredictConfig(model=model, inputs=tuple(inputs or ["-"]), text_column=text_column,
                                 label_column=label_column, encoding=encoding, topk=topk, embed=embed,
                                 batch_size=batch_size, device=device, shard=parse_shard(shard))
    write_predictions(task.predict(cfg), output, fmt)


# `text lm`, `text tag` and `text seq2seq` live in their own modules (dltool.cli.text_lm, ...)
from dltool.cli import text_lm, text_seq2seq, text_tag  # noqa: E402

app.add_typer(text_lm.app, name="lm")
app.add_typer(text_tag.app, name="tag")
app.add_typer(text_seq2seq.app, name="seq2seq")

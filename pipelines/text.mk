# Text: tokenize -> word2vec train and evaluate; LDA topics for k = 5, 10, 20; SMS documents as a
# feature table -> reduce -> cluster -> evaluate against spam/ham; SMS classifiers (tfidf, lstm)
# train -> eval -> predict, and the lstm's pooled representation (text embed --method model) -> cluster.
#   make -f pipelines/text.mk DLTOOL=.venv/bin/dltool PYTHON=.venv/bin/python [OUT=runs/text]
# The news corpus and the evaluation sets ship with gensim (gensim.test.utils.datapath); the SMS
# set is sample_data/text/sms. Every target is a file written atomically.
DLTOOL ?= dltool
PYTHON ?= python
OUT    ?= runs/text
SEED   ?= 0
SMS    ?= sample_data/text/sms
GENSIM := $(shell $(PYTHON) -c "from gensim.test.utils import datapath; print(datapath(''))")

.PHONY: all clean
all: $(OUT)/word2vec-eval.json $(OUT)/topics-5.json $(OUT)/topics-10.json $(OUT)/topics-20.json \
     $(OUT)/sms-kmeans-eval.json $(OUT)/sms-tfidf-eval.json $(OUT)/sms-lstm-eval.json \
     $(OUT)/sms-tfidf-predict.jsonl $(OUT)/sms-lstm-predict.jsonl $(OUT)/sms-lstm-kmeans-eval.json
	@echo "word2vec: $$(grep -o '"analogy_accuracy": [0-9.e-]*' $(OUT)/word2vec-eval.json)  $$(grep -o '"wordsim353_spearman": [0-9.e-]*' $(OUT)/word2vec-eval.json)"
	@for k in 5 10 20; do echo "topics k=$$k: $$(grep -o '"coherence_c_v": [0-9.e-]*' $(OUT)/topics-$$k.json)"; done
	@echo "SMS tfidf -> PCA 10 -> k-means 2: $$(grep -o '"adjusted_rand": [0-9.e-]*' $(OUT)/sms-kmeans-eval.json)"
	@for m in tfidf lstm; do echo "SMS classify $$m: $$(grep -o '"f1_macro": [0-9.e-]*' $(OUT)/sms-$$m-eval.json)"; done
	@echo "SMS lstm representation -> k-means 2: $$(grep -o '"adjusted_rand": [0-9.e-]*' $(OUT)/sms-lstm-kmeans-eval.json)"

# -- tokenize: one for word vectors (every word), one for topics (no stop words) --------------------
$(OUT)/lee.tok:
	@mkdir -p $(OUT)
	$(DLTOOL) text tokenize $(GENSIM)/lee_background.cor --lower --strip-punct -o $@

$(OUT)/lee-topics.tok:
	@mkdir -p $(OUT)
	$(DLTOOL) text tokenize $(GENSIM)/lee_background.cor --lower --strip-punct --stopwords english \
	  --stats $(OUT)/lee-stats.csv -o $@

# -- word2vec --------------------------------------------------------------------------------------
$(OUT)/vec.bin: $(OUT)/lee.tok
	$(DLTOOL) text word2vec train $< -o $@ --sg --dim 100 --epochs 20 --min-count 2 --seed $(SEED) -q > $(OUT)/train.json

$(OUT)/word2vec-eval.json: $(OUT)/vec.bin
	$(DLTOOL) text word2vec evaluate $< --analogies $(GENSIM)/questions-words.txt \
	  --similarity $(GENSIM)/wordsim353.tsv --similarity $(GENSIM)/simlex999.txt --format json > $@.tmp && mv $@.tmp $@

# -- topics ----------------------------------------------------------------------------------------
$(OUT)/topics-%.json: $(OUT)/lee-topics.tok
	$(DLTOOL) text topics $< -k $* --passes 10 --seed $(SEED) -o $(OUT)/doc-topics-$*.csv \
	  --plot $(OUT)/topics-$*.png -q --format json > $@.tmp && mv $@.tmp $@

# -- SMS: embed -> reduce -> cluster -> evaluate ---------------------------------------------------
$(OUT)/sms-embed.jsonl: $(SMS)/train.csv
	@mkdir -p $(OUT)
	$(DLTOOL) text embed $< --method tfidf --tokenizer regex --lower -n 100 --seed $(SEED) -o $@

$(OUT)/sms-kmeans.jsonl: $(OUT)/sms-embed.jsonl
	$(DLTOOL) reduce pca $< -n 10 -q | $(DLTOOL) cluster kmeans - -k 2 --seed $(SEED) -q -o $@

$(OUT)/sms-kmeans-eval.json: $(OUT)/sms-kmeans.jsonl
	$(DLTOOL) cluster evaluate $< --truth label --format json -q > $@.tmp && mv $@.tmp $@

# -- SMS classify: two models, train -> eval -> predict; the lstm's representation -> cluster -----------
$(OUT)/sms-tfidf/model.pt: $(SMS)/train.csv
	$(DLTOOL) text classify train $< --model tfidf --out $(OUT)/sms-tfidf --force --seed $(SEED) -q > /dev/null

$(OUT)/sms-lstm/model.pt: $(SMS)/train.csv
	$(DLTOOL) text classify train $< --model lstm --out $(OUT)/sms-lstm --force --seed $(SEED) -q > /dev/null

$(OUT)/sms-%-eval.json: $(OUT)/sms-%/model.pt $(SMS)/test.csv
	$(DLTOOL) text classify eval $< $(SMS)/test.csv --out $(OUT)/sms-$*/eval --format json -q > $@.tmp && mv $@.tmp $@

$(OUT)/sms-%-predict.jsonl: $(OUT)/sms-%/model.pt $(SMS)/test.csv
	$(DLTOOL) text classify predict $< $(SMS)/test.csv -o $@ -q

$(OUT)/sms-lstm-embed.jsonl: $(OUT)/sms-lstm/model.pt $(SMS)/test.csv
	$(DLTOOL) text embed $(SMS)/test.csv --method model --model $< -o $@ -q

$(OUT)/sms-lstm-kmeans-eval.json: $(OUT)/sms-lstm-embed.jsonl
	$(DLTOOL) cluster kmeans $< -k 2 --seed $(SEED) -q | $(DLTOOL) cluster evaluate - --truth label --format json -q > $@.tmp && mv $@.tmp $@

clean:
	rm -rf $(OUT)

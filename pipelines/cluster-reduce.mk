# Digits as feature tables -> reduce -> cluster -> evaluate against the true digits.
#   make -f pipelines/cluster-reduce.mk DLTOOL=.venv/bin/dltool [PYTHON=.venv/bin/python] [OUT=runs/cluster]
# Two tables: raw pixels (1,797 x 64) and the embeddings of a trained CNN on the test digits.
# Every target is a file written atomically, so make re-runs only what is out of date.
DLTOOL ?= dltool
PYTHON ?= python
DATA   ?= sample_data/digits
DEVICE ?= auto
OUT    ?= runs/cluster-reduce
SEED   ?= 0

.PHONY: all clean
all: $(OUT)/pixels-kmeans-eval.json $(OUT)/pixels-ward-eval.json $(OUT)/embed-kmeans-eval.json \
     $(OUT)/tsne.png $(OUT)/choose-k.json $(OUT)/selected.jsonl
	@echo "ARI, pixels -> PCA 30 -> k-means:      $$(grep -o '"adjusted_rand": [0-9.]*' $(OUT)/pixels-kmeans-eval.json)"
	@echo "ARI, pixels -> PCA 30 -> ward:         $$(grep -o '"adjusted_rand": [0-9.]*' $(OUT)/pixels-ward-eval.json)"
	@echo "ARI, CNN embeddings -> PCA 8 -> k-means: $$(grep -o '"adjusted_rand": [0-9.]*' $(OUT)/embed-kmeans-eval.json)"
	@echo "pictures: $(OUT)/tsne.png $(OUT)/pca-variance.png $(OUT)/choose-k.png $(OUT)/dendrogram.png"

# -- the tables ------------------------------------------------------------------------------------
$(OUT)/pixels.jsonl:
	$(PYTHON) sample_data/make_digits.py --pixels $@.tmp && mv $@.tmp $@

$(OUT)/model/model.pt:
	$(DLTOOL) vision classify train $(DATA)/train --device $(DEVICE) --seed $(SEED) --out $(OUT)/model --force -q

$(OUT)/embed.jsonl: $(OUT)/model/model.pt
	$(DLTOOL) vision classify predict $< $(DATA)/test --embed --device $(DEVICE) -o $@

# -- reduce ----------------------------------------------------------------------------------------
$(OUT)/pca30.jsonl: $(OUT)/pixels.jsonl
	$(DLTOOL) reduce pca $< -n 30 --variance-plot $(OUT)/pca-variance.png -q -o $@

$(OUT)/tsne.png: $(OUT)/pca30.jsonl
	$(DLTOOL) reduce tsne $< --perplexity 30 --seed $(SEED) --plot $@ --color-by label -q -o $(OUT)/tsne.jsonl

# -- cluster and evaluate --------------------------------------------------------------------------
$(OUT)/pixels-kmeans.jsonl: $(OUT)/pca30.jsonl
	$(DLTOOL) cluster kmeans $< -k 10 --seed $(SEED) --device $(DEVICE) -q -o $@

$(OUT)/pixels-ward.jsonl: $(OUT)/pca30.jsonl
	$(DLTOOL) cluster agglomerative $< -k 10 --linkage ward --dendrogram $(OUT)/dendrogram.png -q -o $@

$(OUT)/%-eval.json: $(OUT)/%.jsonl
	$(DLTOOL) cluster evaluate $< --truth $(if $(findstring embed,$*),true_label,label) --format json -q > $@.tmp && mv $@.tmp $@

# two-stage clustering: CNN features -> PCA -> k-means, as one pipe (see the README)
$(OUT)/embed-kmeans.jsonl: $(OUT)/embed.jsonl
	$(DLTOOL) reduce pca $< -n 8 -q | $(DLTOOL) cluster kmeans - -k 10 --seed $(SEED) -q -o $@

$(OUT)/choose-k.json: $(OUT)/pca30.jsonl
	$(DLTOOL) cluster choose-k $< --k 2..15 --method silhouette --seed $(SEED) --plot $(OUT)/choose-k.png \
	  --format json -q > $@.tmp && mv $@.tmp $@

# -- feature selection: the 16 pixels that carry most information about the digit -----------------
$(OUT)/selected.jsonl: $(OUT)/pixels.jsonl
	$(DLTOOL) reduce select $< --target label --method mi --k 16 --seed $(SEED) \
	  --ranking $(OUT)/ranking.csv -q -o $@

clean:
	rm -rf $(OUT)

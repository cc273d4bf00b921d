# Tune a digits classifier and a DBSCAN clustering of the digits, then re-run the best configuration
# of each (from `dltool tune show --best-command`). Every spec key is a flag here, so no spec file.
#   make -f pipelines/tune.mk DLTOOL=.venv/bin/dltool [PYTHON=.venv/bin/python] [OUT=runs/tune] [TRIALS=12]
# A study folder that exists is resumed (the same study name again), so re-running make adds nothing
# once a study's summary is written; `make -f pipelines/tune.mk clean` starts over.
DLTOOL ?= dltool
PYTHON ?= python
DATA   ?= sample_data/digits
DEVICE ?= auto
OUT    ?= runs/tune
TRIALS ?= 12
EPOCHS ?= 8
# the best command of a study as dltool prints it, run with this Makefile's dltool
BEST    = $(DLTOOL) tune show $(1) --best-command | sed 's|^dltool |$(DLTOOL) |; s| && dltool | \&\& $(DLTOOL) |g' | sh

.PHONY: all clean
all: $(OUT)/digits/best/model.pt $(OUT)/dbscan/best.json
	@echo "digits: best $$(grep -o '"val_accuracy": [0-9.]*' $(OUT)/digits/study.json | head -1), re-run in $(OUT)/digits/best"
	@echo "dbscan: best silhouette $$(grep -o '"silhouette": [0-9.-]*' $(OUT)/dbscan/best.json)"
	@echo "plots: $(OUT)/digits/plots/ $(OUT)/dbscan/plots/"

# -- a vision classify study: lr, optimizer (momentum under sgd), batch size, dropout; bad trials pruned
$(OUT)/digits/study.json:
	@mkdir -p $(@D)
	$(DLTOOL) tune run --study digits --out $(OUT)/digits --trials $(TRIALS) --pruner median \
	  --command "vision classify train $(DATA)/train --epochs $(EPOCHS) --device $(DEVICE) --quiet" \
	  --metric val_accuracy \
	  --space 'lr = { type = "float", low = 1e-4, high = 1e-1, log = true }' \
	  --space 'optimizer = { type = "categorical", choices = ["sgd", "adam"] }' \
	  --space 'momentum = { type = "float", low = 0.0, high = 0.99, when = { optimizer = "sgd" } }' \
	  --space 'batch_size = { type = "int", low = 16, high = 128, step = 16 }' \
	  --space 'dropout = { type = "float", low = 0.0, high = 0.5 }' \
	  --quiet --format json > $@.tmp && mv $@.tmp $@
	$(DLTOOL) tune show $(OUT)/digits --format csv > $(OUT)/digits/trials.csv

$(OUT)/digits/best/model.pt: $(OUT)/digits/study.json
	rm -rf $(OUT)/digits/best
	$(call BEST,$(OUT)/digits) > /dev/null

# -- a cluster dbscan study on a feature table: eps and min_samples, metric silhouette --------------
# (silhouette leaves DBSCAN's noise out, so a tiny eps that calls most points noise can score well:
#  the eps range starts where most digits fall in some cluster on these standardised PCA features)
$(OUT)/pixels.jsonl:
	$(PYTHON) sample_data/make_digits.py --pixels $@.tmp && mv $@.tmp $@

$(OUT)/pca.jsonl: $(OUT)/pixels.jsonl
	$(DLTOOL) reduce pca $< -n 10 --format jsonl -o $@

$(OUT)/dbscan/study.json: $(OUT)/pca.jsonl
	@mkdir -p $(@D)
	$(DLTOOL) tune run --study dbscan --out $(OUT)/dbscan --trials $(TRIALS) --sampler tpe \
	  --command "cluster dbscan $< --standardize -o {out}/clusters.jsonl --quiet" \
	  --command "cluster evaluate {out}/clusters.jsonl --quiet" \
	  --metric silhouette \
	  --space 'eps = { type = "float", low = 1.0, high = 4.0, log = true }' \
	  --space 'min_samples = { type = "int", low = 3, high = 30 }' \
	  --quiet --format json > $@.tmp && mv $@.tmp $@
	$(DLTOOL) tune show $(OUT)/dbscan --format csv > $(OUT)/dbscan/trials.csv

$(OUT)/dbscan/best.json: $(OUT)/dbscan/study.json
	rm -rf $(OUT)/dbscan/best
	$(call BEST,$(OUT)/dbscan) > $@.tmp && mv $@.tmp $@

clean:
	rm -rf $(OUT)

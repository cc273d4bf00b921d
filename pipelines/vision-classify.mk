# Train, evaluate and predict a digit classifier on sample_data/ (the README's `make demo`).
# Override anything: make -f pipelines/vision-classify.mk DATA=photos DEVICE=cuda EPOCHS=30 OUT=runs/photos
# Each step's output is a file, so make re-runs only what is out of date; files land atomically.
DLTOOL ?= dltool
DATA   ?= sample_data/digits
DEVICE ?= auto
EPOCHS ?= 20
OUT    ?= runs/demo

.PHONY: all clean
all: $(OUT)/eval.json $(OUT)/predictions.jsonl
	@echo "test metrics: $(OUT)/eval.json   predictions: $(OUT)/predictions.jsonl   curves: $(OUT)/model/curves.png"

$(OUT)/model/model.pt: | $(DATA)/train
	$(DLTOOL) vision classify train $(DATA)/train --epochs $(EPOCHS) --device $(DEVICE) --out $(OUT)/model --force

$(OUT)/eval.json: $(OUT)/model/model.pt
	$(DLTOOL) vision classify eval $< $(DATA)/test --device $(DEVICE) --out $(OUT)/eval --format jsonl > $@.tmp
	mv $@.tmp $@
	@grep -o '"\(accuracy\|precision_macro\|recall_macro\|f1_macro\|n\)": [0-9.]*' $@

$(OUT)/predictions.jsonl: $(OUT)/model/model.pt
	$(DLTOOL) vision classify predict $< $(DATA)/test --device $(DEVICE) -o $@

clean:
	rm -rf $(OUT)

# Train, evaluate and predict a shapes segmenter on sample_data/shapes.
# Override anything: make -f pipelines/vision-segment.mk DATA=mydata DEVICE=cuda EPOCHS=60 OUT=runs/seg
# Each step's output is a file, so make re-runs only what is out of date; files land atomically.
DLTOOL ?= dltool
DATA   ?= sample_data/shapes
DEVICE ?= auto
EPOCHS ?= 30
OUT    ?= runs/segment

.PHONY: all clean
all: $(OUT)/eval.json $(OUT)/predictions.jsonl
	@echo "test metrics: $(OUT)/eval.json   masks: $(OUT)/pred/masks   overlays: $(OUT)/vis"

$(OUT)/model/model.pt: | $(DATA)/train
	$(DLTOOL) vision segment train $(DATA)/train --epochs $(EPOCHS) --device $(DEVICE) --out $(OUT)/model --force

$(OUT)/eval.json: $(OUT)/model/model.pt
	$(DLTOOL) vision segment eval $< $(DATA)/test --device $(DEVICE) --format jsonl > $@.tmp
	mv $@.tmp $@
	@grep -o '"\(pixel_accuracy\|miou\|dice\|n\)": [0-9.]*' $@

$(OUT)/predictions.jsonl: $(OUT)/model/model.pt
	$(DLTOOL) vision segment predict $< $(DATA)/test --out $(OUT)/pred --save-vis $(OUT)/vis --device $(DEVICE) -o $@

clean:
	rm -rf $(OUT)

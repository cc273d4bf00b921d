# Train, evaluate and predict a shapes detector on sample_data/shapes (YOLO labels + data.yaml).
# Override anything: make -f pipelines/vision-detect.mk DATA=mydata DEVICE=cuda MINUTES=30 OUT=runs/det
# Each step's output is a file, so make re-runs only what is out of date; files land atomically.
DLTOOL  ?= dltool
DATA    ?= sample_data/shapes
DEVICE  ?= auto
MINUTES ?= 10
OUT     ?= runs/detect

.PHONY: all clean
all: $(OUT)/eval.json $(OUT)/predictions.jsonl $(OUT)/model.onnx
	@echo "test metrics: $(OUT)/eval.json (PR curve, confusion: $(OUT)/eval)   drawings: $(OUT)/vis"

$(OUT)/model/model.pt: | $(DATA)/train
	$(DLTOOL) vision detect train $(DATA)/train --time-limit $(MINUTES) --device $(DEVICE) --out $(OUT)/model --force

$(OUT)/eval.json: $(OUT)/model/model.pt
	$(DLTOOL) vision detect eval $< $(DATA)/test --device $(DEVICE) --out $(OUT)/eval --format jsonl > $@.tmp
	mv $@.tmp $@
	@grep -o '"\(map50\|map\|precision\|recall\|n\)": [0-9.]*' $@

$(OUT)/predictions.jsonl: $(OUT)/model/model.pt
	$(DLTOOL) vision detect predict $< $(DATA)/test --save-vis $(OUT)/vis --save-txt $(OUT)/labels \
	    --coco-json $(OUT)/coco_results.json --device $(DEVICE) -o $@

$(OUT)/model.onnx: $(OUT)/model/model.pt
	$(DLTOOL) vision detect export $< -o $@ --nms --device cpu

clean:
	rm -rf $(OUT)

# Text tag: part-of-speech tagging of the Turkish UD sample (sample_data/text/ud_turkish, UPOS):
# bilstm-crf train -> eval (token accuracy, unknown-word accuracy, confusion.png) -> predict the test
# sentences' raw text (their `# text` comments, tokenized by dltool's regex tokenizer: whole words, not the
# treebank's derivational splits) as CoNLL columns.
#   make -f pipelines/text-tag.mk DLTOOL=.venv/bin/dltool [OUT=runs/text-tag]
# Every target is a file written atomically.
DLTOOL ?= dltool
OUT    ?= runs/text-tag
SEED   ?= 0
UD     ?= sample_data/text/ud_turkish

.PHONY: all clean
all: $(OUT)/pos-eval.json $(OUT)/pos-predict.conll
	@echo "UPOS bilstm-crf: $$(grep -o '"accuracy": [0-9.e-]*' $(OUT)/pos-eval.json | head -1)  $$(grep -o '"oov_accuracy": [0-9.e-]*' $(OUT)/pos-eval.json)"

$(OUT)/pos/model.pt: $(UD)/train.conllu
	$(DLTOOL) text tag train $< --column upos --model bilstm-crf --seed $(SEED) --out $(OUT)/pos --force -q > /dev/null

$(OUT)/pos-eval.json: $(OUT)/pos/model.pt $(UD)/test.conllu
	$(DLTOOL) text tag eval $(OUT)/pos $(UD)/test.conllu --out $(OUT)/pos-eval -q --format json > $@.tmp && mv $@.tmp $@

$(OUT)/test.txt: $(UD)/test.conllu
	@mkdir -p $(OUT)
	sed -n 's/^# text = //p' $< > $@.tmp && mv $@.tmp $@

$(OUT)/pos-predict.conll: $(OUT)/pos/model.pt $(OUT)/test.txt
	$(DLTOOL) text tag predict $(OUT)/pos $(OUT)/test.txt --format conll -o $@ -q

clean:
	rm -rf $(OUT)

# Augmentation against overfitting, offline: the seed's two cures (more data by changing
# the training images, and dropout) on a few pet-synth images per class, each with and
# without, over several seeds; every model is also scored on the mirrored test set.
# make -f pipelines/augment.mk [AUGDIR=dir] [FEW=n] [SEEDS="1 2 3"] [EPOCHS=n] [SPEC=...]

AUGDIR    ?= augment
BREEDS    ?= samoyed,shiba_inu
PER_BREED ?= 150
FEW       ?= 20
SIZE      ?= 64
EPOCHS    ?= 60
SEEDS     ?= 1 2 3
LR        ?= 1e-4
SPEC      ?= flip,shift:6,scale:0.6-1,rotate:10,color:0.3
DROPOUT   ?= --keep-conv 0.8 --keep-fc 0.5
NODROPOUT ?= --keep-conv 1 --keep-fc 1
THREADS   ?= $(shell nproc)
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BIN ?= $(if $(wildcard $(TOP)/bin/cnn-train),$(TOP)/bin/,)
A := $(AUGDIR)
TRAIN := $(BIN)cnn-train -q --init he --lr $(LR) --epochs $(EPOCHS) --threads $(THREADS)

.PHONY: augment
.DELETE_ON_ERROR:
.DEFAULT_GOAL := augment

$(A)/mirror/SHA256SUMS:
	$(BIN)pet-synth -q -o $(A)/mirror --breeds $(BREEDS) --per-breed $(PER_BREED) --seed 7

$(A)/data/fetched: $(A)/mirror/SHA256SUMS
	$(BIN)pet-fetch -q -o $(A)/data --mirror file://$(abspath $(A)/mirror)
	touch $@

$(A)/lists/train.tsv $(A)/lists/test.tsv &: $(A)/data/fetched
	$(BIN)pet-split -q $(A)/data --breeds $(BREEDS) --test 0.3 --seed 1 -o $(A)/lists

# the first FEW training images of each class (the lists go by class)
$(A)/lists/few.tsv: $(A)/lists/train.tsv
	awk -F'\t' '/^#/ || n[$$2]++ < $(FEW)' $< > $@

$(A)/%.npy: $(A)/lists/%.tsv
	$(BIN)pet-pack -q --size $(SIZE) --list $< -o $@

# the test set mirrored left-right: flip with probability 1
$(A)/mirrored.npy: $(A)/test.npy
	$(BIN)cnn-apply -q --augment flip:1 $< -o $@

# per seed, dropout and augmentation: accuracy on the test set and on its mirror image
$(A)/results.tsv: $(A)/few.npy $(A)/test.npy $(A)/mirrored.npy
	printf 'seed\tdropout\taugment\taccuracy\tmirrored\tseconds\n' > $@.new
	for s in $(SEEDS); do for d in no yes; do for a in no yes; do \
	    m=$(A)/m-$$s-$$d-$$a.npz; t0=$$(date +%s%N); \
	    $(TRAIN) --train $(A)/few.npy --seed $$s $$([ $$d = yes ] && echo '$(DROPOUT)' || echo '$(NODROPOUT)') \
	        $$([ $$a = yes ] && echo '--augment $(SPEC)') -o $$m > /dev/null || exit 1; \
	    t1=$$(date +%s%N); \
	    p=$$($(BIN)cnn-eval -m $$m $(A)/test.npy | awk '/^accuracy/ {print $$2}'); \
	    q=$$($(BIN)cnn-eval -m $$m $(A)/mirrored.npy | awk '/^accuracy/ {print $$2}'); \
	    echo "$$s $$d $$a $$p $$q $$t0 $$t1" | \
	        awk '{ printf "%s\t%s\t%s\t%s\t%s\t%.1f\n", $$1, $$2, $$3, $$4, $$5, ($$7 - $$6) / 1e9 }' >> $@.new; \
	done; done; done
	mv $@.new $@

# mean accuracy of each of the four settings over the seeds
$(A)/summary.tsv: $(A)/results.tsv
	awk -F'\t' 'NR > 1 { k = $$2 "\t" $$3; n[k]++; a[k] += $$4; m[k] += $$5; \
	    if (!(k in lo) || $$4 < lo[k]) lo[k] = $$4; if (!(k in hi) || $$4 > hi[k]) hi[k] = $$4 } \
	    END { print "dropout\taugment\tmean accuracy\tmin\tmax\tmirrored (mean)"; \
	    for (k in n) printf "%s\t%.3f\t%.3f\t%.3f\t%.3f\n", k, a[k] / n[k], lo[k], hi[k], m[k] / n[k] }' $< | \
	    (read h; echo "$$h"; sort) > $@

augment: $(A)/summary.tsv
	@echo
	@cat $(A)/results.tsv
	@echo
	@cat $<

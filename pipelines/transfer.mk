# Transfer learning, offline: a network pretrained on other breeds, fine-tuned on a few
# samoyed and shiba_inu images, against the same few images trained from scratch.
# make -f pipelines/transfer.mk [TRANSFER=dir] [FEW=n] [SEEDS="1 2 3"] [EPOCHS=n] ...
#
# pet-synth draws every breed with a look of its own but from shared parts (coats,
# patterns, ears, outlines on clutter), so features learnt on six breeds carry over to two
# new ones, as ImageNet's do to the real pets. The pretrained convolutions are frozen
# (--freeze-below fc1) and the head is new (two classes, not six).

TRANSFER  ?= transfer
SOURCE    ?= beagle,boxer,havanese,keeshond,pomeranian,pug
TARGET    ?= samoyed,shiba_inu
PER_BREED ?= 150
FEW       ?= 15
SIZE      ?= 64
PRE_EPOCHS ?= 8
EPOCHS    ?= 15
SEEDS     ?= 1 2 3
LR        ?= 1e-4
FREEZE    ?= --freeze-below fc1
THREADS   ?= $(shell nproc)
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BIN ?= $(if $(wildcard $(TOP)/bin/cnn-train),$(TOP)/bin/,)
T := $(TRANSFER)
TRAIN := $(BIN)cnn-train -q --init he --lr $(LR) --keep-conv 0.8 --threads $(THREADS)

.PHONY: transfer
.DELETE_ON_ERROR:
.DEFAULT_GOAL := transfer

$(T)/mirror/SHA256SUMS:
	$(BIN)pet-synth -q -o $(T)/mirror --breeds $(SOURCE),$(TARGET) --per-breed $(PER_BREED) --seed 7

$(T)/data/fetched: $(T)/mirror/SHA256SUMS
	$(BIN)pet-fetch -q -o $(T)/data --mirror file://$(abspath $(T)/mirror)
	touch $@

$(T)/src/train.tsv $(T)/src/test.tsv &: $(T)/data/fetched
	$(BIN)pet-split -q $(T)/data --breeds $(SOURCE) --test 0.15 --seed 1 -o $(T)/src
$(T)/tgt/train.tsv $(T)/tgt/test.tsv &: $(T)/data/fetched
	$(BIN)pet-split -q $(T)/data --breeds $(TARGET) --test 0.3 --seed 1 -o $(T)/tgt

# the first FEW training images of each target class (the lists go by class)
$(T)/tgt/few.tsv: $(T)/tgt/train.tsv
	awk -F'\t' '/^#/ || n[$$2]++ < $(FEW)' $< > $@

$(T)/%.npy: $(T)/%.tsv
	$(BIN)pet-pack -q --size $(SIZE) --list $< -o $@

$(T)/pre.npz: $(T)/src/train.npy $(T)/src/test.npy
	$(TRAIN) --train $(T)/src/train.npy --test $(T)/src/test.npy --epochs $(PRE_EPOCHS) \
	    --seed 1 -o $@ > $(T)/pre.tsv

# one fine-tuned and one from-scratch model per seed, their accuracies and times
$(T)/results.tsv: $(T)/pre.npz $(T)/tgt/few.npy $(T)/tgt/test.npy
	printf 'seed\tfine-tuned\tseconds\tfrom scratch\tseconds\n' > $@.new
	for s in $(SEEDS); do \
	    t0=$$(date +%s%N); \
	    $(TRAIN) --train $(T)/tgt/few.npy --epochs $(EPOCHS) --seed $$s --init-from $(T)/pre.npz \
	        $(FREEZE) -o $(T)/ft-$$s.npz > /dev/null || exit 1; \
	    t1=$$(date +%s%N); \
	    $(TRAIN) --train $(T)/tgt/few.npy --epochs $(EPOCHS) --seed $$s -o $(T)/scratch-$$s.npz > /dev/null || exit 1; \
	    t2=$$(date +%s%N); \
	    a=$$($(BIN)cnn-eval -m $(T)/ft-$$s.npz $(T)/tgt/test.npy | awk '/^accuracy/ {print $$2}'); \
	    b=$$($(BIN)cnn-eval -m $(T)/scratch-$$s.npz $(T)/tgt/test.npy | awk '/^accuracy/ {print $$2}'); \
	    echo "$$s $$a $$t0 $$t1 $$b $$t2" | \
	        awk '{ printf "%s\t%s\t%.1f\t%s\t%.1f\n", $$1, $$2, ($$4 - $$3) / 1e9, $$5, ($$6 - $$4) / 1e9 }' >> $@.new; \
	done
	mv $@.new $@

transfer: $(T)/results.tsv
	@echo
	@cat $<

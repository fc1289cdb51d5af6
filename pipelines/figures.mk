# The tutorial's figures from the pipeline's files: four 7x7 filters over a grayscale photo,
# max-pooling (the 4x4 example and the filtered photo), SAME against VALID padding, the
# trained model's feature maps, and the GIFs of conv1_2's and conv2_2's maps evolving; then
# why it decides: Grad-CAM over a rightly and a wrongly classified test image, the first
# layer's filters, and an input that maximises one channel of each mapped layer.
#   make -f pipelines/figures.mk WORK=demo      after pets.mk or demo.mk has run, or
#   include pipelines/figures.mk                at the end of pets.mk, then `all: figures`
# Reads WORK/test.npy (the photo is test image FIG_IMAGE), WORK/model.npz and SNAPSHOTS;
# writes FIGS/*.png, *.gif and padding.txt, each redone only when its inputs or knobs change.

WORK      ?= pets
FIGS      ?= $(WORK)/figures
FIG_IMAGE ?= 0
FIG_SCALE ?= 1
FIG_LAYERS ?= conv1_2 conv2_2
# the first layer, whose filters are drawn, and the channel maximised in each FIG_LAYERS
FIG_FIRST ?= conv1_1
FIG_CHANNEL ?= 0
GIF_DELAY ?= 20
# cnn-train --snapshots FILE: per snapshot two arrays, conv1_2 maps [1, H, W, 32] then
# conv2_2 maps [1, H/2, W/2, 64], so --every 2 --first 0|1 picks one layer's frames.
SNAPSHOTS ?= $(WORK)/snapshots.npy
# The GIFs come along when the snapshot file exists at parse time; once pets.mk's train step
# writes SNAPSHOTS, set FIG_GIFS to both GIFs unconditionally so a fresh run makes them too.
FIG_GIFS ?= $(if $(wildcard $(SNAPSHOTS)),$(FIGS)/evolution-conv1_2.gif $(FIGS)/evolution-conv2_2.gif)

FIG_TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BIN     ?= $(if $(wildcard $(FIG_TOP)/bin/cnn-apply),$(FIG_TOP)/bin/,)
FILTERS ?= $(FIG_TOP)/pipelines/filters7x7.npy
POOL4X4 ?= $(FIG_TOP)/pipelines/pool4x4.npy

FIGURES := $(FIGS)/photo.png $(FIGS)/gray.png $(FIGS)/filters.png $(FIGS)/filters-pooled.png \
	$(FIGS)/maxpool-in.png $(FIGS)/maxpool-out.png $(FIGS)/same.png $(FIGS)/valid.png \
	$(FIGS)/padding.txt $(FIG_LAYERS:%=$(FIGS)/maps-%.png) $(FIG_GIFS) \
	$(FIGS)/gradcam-right.png $(FIGS)/gradcam-wrong.png $(FIGS)/weights-$(FIG_FIRST).png \
	$(FIG_LAYERS:%=$(FIGS)/maximize-%.png)

.PHONY: figures
.DELETE_ON_ERROR:
figures: $(FIGURES)

# The knobs as a stamp file, rewritten only when they change (as pets.mk does; defined
# here too so this file also runs on its own).
args ?= $(shell mkdir -p $(WORK) && f='$(WORK)/$(1).args' && printf '%s\n' '$(2)' > "$$f.new" && \
	{ cmp -s "$$f.new" "$$f" && rm -f "$$f.new" || mv -f "$$f.new" "$$f"; } && echo "$$f")
FIG_ARGS := $(call args,figures,$(FIG_IMAGE) $(FIG_SCALE) $(GIF_DELAY) $(FIG_FIRST) $(FIG_CHANNEL))

TPNG = $(BIN)tensor-png

# The photo, and its grayscale (the channel mean) as the filters' input.
$(FIGS)/photo.png: $(WORK)/test.npy $(FIG_ARGS)
	@mkdir -p $(@D)
	$(TPNG) --index $(FIG_IMAGE) --scale $(FIG_SCALE) -o $@ $<
$(FIGS)/gray.npy: $(WORK)/test.npy $(FIG_ARGS)
	@mkdir -p $(@D)
	$(BIN)cnn-apply -q --gray --index $(FIG_IMAGE) -o $@ $<
$(FIGS)/gray.png: $(FIGS)/gray.npy
	$(TPNG) --scale $(FIG_SCALE) -o $@ $<

# The four filters (0 horizontal edges, 1 vertical edges, 2 blur, 3 sharpen), SAME stride 1,
# then a 2x2 max-pool with stride 2 halving each map.
$(FIGS)/filters.npy: $(FIGS)/gray.npy $(FILTERS)
	$(BIN)cnn-apply -q --conv $(FILTERS) -o $@ $<
$(FIGS)/filters.png: $(FIGS)/filters.npy
	$(TPNG) --cols 2 --scale $(FIG_SCALE) -o $@ $<
$(FIGS)/filters-pooled.npy: $(FIGS)/filters.npy
	$(BIN)cnn-apply -q --maxpool 2 -o $@ $<
$(FIGS)/filters-pooled.png: $(FIGS)/filters-pooled.npy
	$(TPNG) --cols 2 --scale $(FIG_SCALE) -o $@ $<

# The classic example: a 4x4 input, 2x2 windows with stride 2 keep 6 8 / 3 4. Both
# pictures share one gray scale (0..8), 24 pixels a value.
$(FIGS)/maxpool-in.png: $(POOL4X4)
	@mkdir -p $(@D)
	$(TPNG) --range 0,8 --scale 24 --no-labels -o $@ $<
$(FIGS)/maxpool-out.png: $(POOL4X4)
	@mkdir -p $(@D)
	$(BIN)cnn-apply -q --maxpool 2 -o $@.npy $<
	$(TPNG) --range 0,8 --scale 24 --no-labels -o $@ $@.npy
	rm -f $@.npy

# SAME keeps the size (zero padding, the odd pixel at the bottom/right); VALID shrinks by
# the window less one. padding.txt lists the output shapes for both, strides 1 and 2.
$(FIGS)/same.png $(FIGS)/valid.png: $(FIGS)/%.png: $(FIGS)/gray.npy $(FILTERS)
	$(BIN)cnn-apply -q --conv $(FILTERS) --padding $* -o $@.npy $<
	$(TPNG) --cols 2 --scale $(FIG_SCALE) -o $@ $@.npy
	rm -f $@.npy
$(FIGS)/padding.txt: $(FIGS)/gray.npy $(FILTERS)
	@set -e; t=$@.npy; \
	shape() { $(BIN)tensor-info "$$1" | cut -f3; }; \
	printf '%-30s %s\n' "input (the gray photo)" "$$(shape $<)" > $@.tmp; \
	for s in 1 2; do for p in SAME VALID; do \
		$(BIN)cnn-apply -q --conv $(FILTERS) --stride $$s --padding $$p -o $$t $<; \
		printf '%-30s %s\n' "conv 7x7 stride $$s $$p" "$$(shape $$t)" >> $@.tmp; \
	done; done; \
	for p in SAME VALID; do \
		$(BIN)cnn-apply -q --maxpool 3 --stride 2 --padding $$p -o $$t $<; \
		printf '%-30s %s\n' "maxpool 3x3 stride 2 $$p" "$$(shape $$t)" >> $@.tmp; \
	done; \
	rm -f $$t; mv $@.tmp $@; cat $@

# What the trained network sees in the photo: each layer's maps, one cell per channel.
$(FIGS)/maps-%.png: $(WORK)/model.npz $(WORK)/test.npy $(FIG_ARGS)
	@mkdir -p $(@D)
	$(BIN)cnn-apply -q --layer $* -m $(WORK)/model.npz --index $(FIG_IMAGE) -o $@.npy $(WORK)/test.npy
	$(TPNG) --scale $(FIG_SCALE) -o $@ $@.npy
	rm -f $@.npy

# The filters learning: one frame per snapshot, each map scaled by its own range.
$(FIGS)/evolution-conv1_2.gif: $(SNAPSHOTS) $(FIG_ARGS)
	@mkdir -p $(@D)
	$(TPNG) --gif --every 2 --first 0 --delay $(GIF_DELAY) -o $@ $<
$(FIGS)/evolution-conv2_2.gif: $(SNAPSHOTS) $(FIG_ARGS)
	@mkdir -p $(@D)
	$(TPNG) --gif --every 2 --first 1 --delay $(GIF_DELAY) -o $@ $<

# Where the network looks (Grad-CAM for its prediction) in the first test image it gets
# right and the first it gets wrong (cnn-eval -p: index, label, predicted); with none
# wrong, the wrong figure is the least sure right one and gradcam.txt says so.
$(FIGS)/gradcam.npy: $(WORK)/model.npz $(WORK)/test.npy
	@mkdir -p $(@D)
	$(BIN)cnn-apply -q --gradcam pred -m $(WORK)/model.npz -o $@ $(WORK)/test.npy
$(FIGS)/predictions.tsv: $(WORK)/model.npz $(WORK)/test.npy
	@mkdir -p $(@D)
	$(BIN)cnn-eval -q -m $(WORK)/model.npz -p $@ $(WORK)/test.npy > /dev/null
$(FIGS)/gradcam-right.png $(FIGS)/gradcam-wrong.png &: $(FIGS)/gradcam.npy $(FIGS)/predictions.tsv $(FIG_ARGS)
	@set -e; p=$(FIGS)/predictions.tsv; \
	right=$$(awk -F'\t' 'NR > 1 && $$2 == $$3 { print $$1; exit }' $$p); \
	wrong=$$(awk -F'\t' 'NR > 1 && $$2 >= 0 && $$2 != $$3 { print $$1; exit }' $$p); \
	if [ -z "$$wrong" ]; then \
		wrong=$$(awk -F'\t' 'NR > 1 { m = 0; for (i = 4; i <= NF; i++) if ($$i > m) m = $$i; \
			if (!n++ || m < best) { best = m; w = $$1 } } END { print w }' $$p); \
		echo "no test image was misclassified: gradcam-wrong.png is image $$wrong, the least sure" > $(FIGS)/gradcam.txt; \
	else \
		echo "right: test image $${right:-none}; wrong: test image $$wrong" > $(FIGS)/gradcam.txt; \
	fi; \
	$(TPNG) --overlay $(WORK)/test.npy --index $${right:-0} --scale $(FIG_SCALE) -o $(FIGS)/gradcam-right.png $<; \
	$(TPNG) --overlay $(WORK)/test.npy --index $$wrong --scale $(FIG_SCALE) -o $(FIGS)/gradcam-wrong.png $<; \
	cat $(FIGS)/gradcam.txt

# The first layer's filters, RGB (the seed noticed conv1_1 hardly changes: here it shows).
$(FIGS)/weights-$(FIG_FIRST).png: $(WORK)/model.npz $(FIG_ARGS)
	@mkdir -p $(@D)
	$(BIN)cnn-apply -q --weights $(FIG_FIRST) -m $(WORK)/model.npz -o $@.npy
	$(TPNG) --scale 8 -o $@ $@.npy
	rm -f $@.npy

# What excites channel FIG_CHANNEL of a layer: an input grown from grey by gradient ascent.
$(FIGS)/maximize-%.png: $(WORK)/model.npz $(FIG_ARGS)
	@mkdir -p $(@D)
	$(BIN)cnn-apply -q --maximize $*:$(FIG_CHANNEL) -m $(WORK)/model.npz -o $@.npy
	$(TPNG) --scale $(FIG_SCALE) -o $@ $@.npy
	rm -f $@.npy

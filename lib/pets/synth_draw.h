/* synth_draw: one picture of a breed for the synthetic pet set (pixels, trimap, head box),
 * every choice drawn from the rng given, so a picture depends on nothing else. */
#ifndef PETCNN_SYNTH_DRAW_H
#define PETCNN_SYNTH_DRAW_H

#include <stdint.h>

#include "util/rng.h"

/* Renders one w x h RGB picture of breed b (0..SYNTH_NBREEDS-1, synth_breed_at's index; pix:
 * h*w*3) and its trimap (h*w, may be NULL: 1 pet, 2 background, 3 border); box (may be NULL)
 * gets the head's xmin, ymin, xmax, ymax (0-based, inclusive). */
void synth_draw(int b, rng *r, int w, int h, uint8_t *pix, uint8_t *trimap, int box[4]);

#endif

/* mask.c - the MLM masking of Hugging Face's DataCollatorForLanguageModeling,
 * drawn from a counter-based stream so that the mask of a sample depends
 * only on (seed, step, sample, position): not on threads, micro-batch
 * split or resume.  Draws per position t: 4t (chosen?), 4t+1 ([MASK]?),
 * 4t+2 (random?), 4t+3 (which random id). */
#include "trainer/model.h"

int bt_mask_batch(uint64_t seed, uint64_t step, uint64_t sample_index, const uint16_t *ids, int seq_len,
                  int vocab_size, int32_t *out_inputs, int32_t *out_labels) {
    uint64_t key = bt_mask_key(seed, step, sample_index);
    int n = 0;
    for (int t = 0; t < seq_len; t++) {
        int id = ids[t];
        int chosen = bt_mask_chosen(key, t, id);
        out_inputs[t] = chosen ? bt_mask_input(key, t, id, vocab_size) : id;
        out_labels[t] = chosen ? id : BT_IGNORE;
        n += chosen;
    }
    return n;
}

int bt_mask_count(uint64_t seed, uint64_t step, uint64_t sample_index, const uint16_t *ids, int seq_len) {
    uint64_t key = bt_mask_key(seed, step, sample_index);
    int n = 0;
    for (int t = 0; t < seq_len; t++) n += bt_mask_chosen(key, t, ids[t]);
    return n;
}

/* The pointwise part of each recurrent cell, written once and included twice
 * by rnn_sequence.c: with V = float (the `__ref` twin, one lane) and with
 * V = __m256 (AVX2, eight lanes). Each body handles lanes [j, j + LANES) of
 * one batch row; see rnn_row for what the pointers hold. No include guard on
 * purpose. Gate order is Keras's: LSTM i f c o, GRU z r h.
 *
 * The macros a includer defines: ATTR, V, LANES, FN(name), LD(p), ST(p, v),
 * SET1(x), ADD, SUB, MUL, SIG(x), TANH(x); this file undefines them at its
 * end, ready for the next instantiation. */

/* SimpleRNN: h = tanh(x + z), z the state's product. */
ATTR CK_INLINE void FN(simple_forward)(const rnn_row *a, int64_t j) { ST(a->h + j, TANH(ADD(LD(a->x + j), LD(a->z + j)))); }

/* dz = dh (1 - h^2); the carried dh is all in dz U^T. */
ATTR CK_INLINE void FN(simple_backward)(const rnn_row *a, int64_t j) {
    V h = LD(a->hs + j);
    ST(a->dz + j, MUL(LD(a->dh + j), SUB(SET1(1.0f), MUL(h, h))));
    ST(a->dh + j, SET1(0.0f));
}

/* LSTM: c = f c_prev + i g, h = o tanh(c); the gates' pre-activations are
 * x + z. In two passes over the row: the four gates of every lane (written
 * over z, the step's scratch), then the states. Each pass's vectors are
 * independent, so the core overlaps them, where one pass per vector chained
 * the gates' exp and divide into tanh(c)'s. */
ATTR static int64_t FN(lstm_forward_row)(const rnn_row *a, int64_t j0) {
    const int64_t n = a->units;
    const float *x = a->x;
    float *z = (float *)a->z;
    int64_t j;
    for (j = j0; j + LANES <= n; j += LANES) {
        ST(z + j, SIG(ADD(LD(x + j), LD(z + j))));
        ST(z + n + j, SIG(ADD(LD(x + n + j), LD(z + n + j))));
        ST(z + 2 * n + j, TANH(ADD(LD(x + 2 * n + j), LD(z + 2 * n + j))));
        ST(z + 3 * n + j, SIG(ADD(LD(x + 3 * n + j), LD(z + 3 * n + j))));
    }
    for (j = j0; j + LANES <= n; j += LANES) {
        V c = ADD(MUL(LD(z + n + j), LD(a->cp + j)), MUL(LD(z + j), LD(z + 2 * n + j)));
        ST(a->c + j, c);
        ST(a->h + j, MUL(LD(z + 3 * n + j), TANH(c)));
    }
    return j;
}

ATTR CK_INLINE void FN(lstm_backward)(const rnn_row *a, int64_t j) {
    const int64_t n = a->units;
    const V one = SET1(1.0f);
    V i = SIG(LD(a->z + j)), f = SIG(LD(a->z + n + j)), g = TANH(LD(a->z + 2 * n + j)), o = SIG(LD(a->z + 3 * n + j));
    V tc = TANH(LD(a->cs + j)), dh = LD(a->dh + j);
    V dc = ADD(LD(a->dc + j), MUL(MUL(dh, o), SUB(one, MUL(tc, tc))));
    ST(a->dz + j, MUL(MUL(dc, g), MUL(i, SUB(one, i))));
    ST(a->dz + n + j, MUL(MUL(dc, LD(a->cp + j)), MUL(f, SUB(one, f))));
    ST(a->dz + 2 * n + j, MUL(MUL(dc, i), SUB(one, MUL(g, g))));
    ST(a->dz + 3 * n + j, MUL(MUL(dh, tc), MUL(o, SUB(one, o))));
    ST(a->dc + j, MUL(dc, f));
    ST(a->dh + j, SET1(0.0f));
}

/* GRU, reset_after: z holds h_prev U + recurrent bias, x the input part.
 * hh = tanh(x_h + r (z_h)), h = hh + zg (h_prev - hh). */
ATTR CK_INLINE void FN(gru_forward)(const rnn_row *a, int64_t j) {
    const int64_t n = a->units;
    V zg = SIG(ADD(LD(a->x + j), LD(a->z + j))), r = SIG(ADD(LD(a->x + n + j), LD(a->z + n + j)));
    V hh = TANH(ADD(LD(a->x + 2 * n + j), MUL(r, LD(a->z + 2 * n + j))));
    ST(a->h + j, ADD(hh, MUL(zg, SUB(LD(a->hp + j), hh))));
}

/* dz: the input side [dzg, dr, dhh]; drec: the recurrent side [dzg, dr, dhh r]. */
ATTR CK_INLINE void FN(gru_backward)(const rnn_row *a, int64_t j) {
    const int64_t n = a->units;
    const V one = SET1(1.0f);
    V zh = LD(a->z + 2 * n + j);
    V zg = SIG(ADD(LD(a->x + j), LD(a->z + j))), r = SIG(ADD(LD(a->x + n + j), LD(a->z + n + j)));
    V hh = TANH(ADD(LD(a->x + 2 * n + j), MUL(r, zh)));
    V dh = LD(a->dh + j);
    V dzg = MUL(MUL(dh, SUB(LD(a->hp + j), hh)), MUL(zg, SUB(one, zg)));
    V dhh = MUL(MUL(dh, SUB(one, zg)), SUB(one, MUL(hh, hh)));
    V dr = MUL(MUL(dhh, zh), MUL(r, SUB(one, r)));
    ST(a->dz + j, dzg); ST(a->dz + n + j, dr); ST(a->dz + 2 * n + j, dhh);
    ST(a->drec + j, dzg); ST(a->drec + n + j, dr); ST(a->drec + 2 * n + j, MUL(dhh, r));
    ST(a->dh + j, MUL(dh, zg));
}

/* GRU, reset_before, in two phases around the candidate's GEMM. Phase 1:
 * rh = r h_prev from the complete z_r. */
ATTR CK_INLINE void FN(gru_rb_reset)(const rnn_row *a, int64_t j) {
    ST(a->rh + j, MUL(SIG(LD(a->z + a->units + j)), LD(a->hp + j)));
}

/* Phase 2, with the complete z_h = x_h + rh U_h. */
ATTR CK_INLINE void FN(gru_rb_forward)(const rnn_row *a, int64_t j) {
    const int64_t n = a->units;
    V zg = SIG(LD(a->z + j)), hh = TANH(LD(a->z + 2 * n + j));
    ST(a->h + j, ADD(hh, MUL(zg, SUB(LD(a->hp + j), hh))));
}

/* Backward phase 1: dzg and dhh; the carried dh starts at dh zg. */
ATTR CK_INLINE void FN(gru_rb_backward)(const rnn_row *a, int64_t j) {
    const int64_t n = a->units;
    const V one = SET1(1.0f);
    V zg = SIG(LD(a->z + j)), hh = TANH(LD(a->z + 2 * n + j)), dh = LD(a->dh + j);
    ST(a->dz + j, MUL(MUL(dh, SUB(LD(a->hp + j), hh)), MUL(zg, SUB(one, zg))));
    ST(a->dz + 2 * n + j, MUL(MUL(dh, SUB(one, zg)), SUB(one, MUL(hh, hh))));
    ST(a->dh + j, MUL(dh, zg));
}

/* Backward phase 2, with t = dhh U_h^T (the cotangent of rh): dr and the
 * part of dh_prev that goes through rh. */
ATTR CK_INLINE void FN(gru_rb_backward_reset)(const rnn_row *a, int64_t j) {
    const V one = SET1(1.0f);
    V r = SIG(LD(a->z + a->units + j)), t = LD(a->t + j);
    ST(a->dz + a->units + j, MUL(MUL(t, LD(a->hp + j)), MUL(r, SUB(one, r))));
    ST(a->dh + j, ADD(LD(a->dh + j), MUL(t, r)));
}

/* Each body over lanes [j, units), a vector at a time, in one call: the
 * constants are set once per row and consecutive vectors overlap in the
 * core, where a call per vector set them again each time. Returns where it
 * stopped (the lanes left are fewer than a vector). */
#define CK_RNN_ROW(name)                                                   \
    ATTR static int64_t FN(name##_row)(const rnn_row *a, int64_t j) {      \
        for (; j + LANES <= a->units; j += LANES) FN(name)(a, j);          \
        return j;                                                          \
    }
CK_RNN_ROW(simple_forward)
CK_RNN_ROW(simple_backward)
CK_RNN_ROW(lstm_backward)
CK_RNN_ROW(gru_forward)
CK_RNN_ROW(gru_backward)
CK_RNN_ROW(gru_rb_reset)
CK_RNN_ROW(gru_rb_forward)
CK_RNN_ROW(gru_rb_backward)
CK_RNN_ROW(gru_rb_backward_reset)
#undef CK_RNN_ROW

#undef ATTR
#undef V
#undef LANES
#undef FN
#undef LD
#undef ST
#undef SET1
#undef ADD
#undef SUB
#undef MUL
#undef SIG
#undef TANH

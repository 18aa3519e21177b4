/* Batch Keccak-256 (the original Keccak padding, as Ethereum's keccak256) for GridFlex's
 * report trees: many messages per call, so settlement does not pay a Python call per hash.
 * Portable C99; with GCC or Clang, 8 messages of equal length are hashed at once in vector
 * lanes (AVX-512 or AVX2 with -march=native, plain SSE2 or scalar code otherwise).
 * Results are byte-identical to pycryptodome's keccak (tests/unit/test_native_keccak.py).
 * Built by `python -m gridflex.native.build`; loaded by gridflex/native/__init__.py.
 *
 * The round below is generated (theta, rho+pi, chi, iota over 25 named lanes) so that it is
 * unrolled for both lane types. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RATE 136

static const uint64_t RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

#define ROL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

#define KECCAK_ROUND(T, ROL, A, rc) do { \
    T C0 = A[0] ^ A[5] ^ A[10] ^ A[15] ^ A[20]; \
    T C1 = A[1] ^ A[6] ^ A[11] ^ A[16] ^ A[21]; \
    T C2 = A[2] ^ A[7] ^ A[12] ^ A[17] ^ A[22]; \
    T C3 = A[3] ^ A[8] ^ A[13] ^ A[18] ^ A[23]; \
    T C4 = A[4] ^ A[9] ^ A[14] ^ A[19] ^ A[24]; \
    T D0 = C4 ^ ROL(C1, 1); \
    T D1 = C0 ^ ROL(C2, 1); \
    T D2 = C1 ^ ROL(C3, 1); \
    T D3 = C2 ^ ROL(C4, 1); \
    T D4 = C3 ^ ROL(C0, 1); \
    T B0 = A[0] ^ D0; \
    T B16 = ROL(A[5] ^ D0, 36); \
    T B7 = ROL(A[10] ^ D0, 3); \
    T B23 = ROL(A[15] ^ D0, 41); \
    T B14 = ROL(A[20] ^ D0, 18); \
    T B10 = ROL(A[1] ^ D1, 1); \
    T B1 = ROL(A[6] ^ D1, 44); \
    T B17 = ROL(A[11] ^ D1, 10); \
    T B8 = ROL(A[16] ^ D1, 45); \
    T B24 = ROL(A[21] ^ D1, 2); \
    T B20 = ROL(A[2] ^ D2, 62); \
    T B11 = ROL(A[7] ^ D2, 6); \
    T B2 = ROL(A[12] ^ D2, 43); \
    T B18 = ROL(A[17] ^ D2, 15); \
    T B9 = ROL(A[22] ^ D2, 61); \
    T B5 = ROL(A[3] ^ D3, 28); \
    T B21 = ROL(A[8] ^ D3, 55); \
    T B12 = ROL(A[13] ^ D3, 25); \
    T B3 = ROL(A[18] ^ D3, 21); \
    T B19 = ROL(A[23] ^ D3, 56); \
    T B15 = ROL(A[4] ^ D4, 27); \
    T B6 = ROL(A[9] ^ D4, 20); \
    T B22 = ROL(A[14] ^ D4, 39); \
    T B13 = ROL(A[19] ^ D4, 8); \
    T B4 = ROL(A[24] ^ D4, 14); \
    A[0] = B0 ^ (~B1 & B2); \
    A[1] = B1 ^ (~B2 & B3); \
    A[2] = B2 ^ (~B3 & B4); \
    A[3] = B3 ^ (~B4 & B0); \
    A[4] = B4 ^ (~B0 & B1); \
    A[5] = B5 ^ (~B6 & B7); \
    A[6] = B6 ^ (~B7 & B8); \
    A[7] = B7 ^ (~B8 & B9); \
    A[8] = B8 ^ (~B9 & B5); \
    A[9] = B9 ^ (~B5 & B6); \
    A[10] = B10 ^ (~B11 & B12); \
    A[11] = B11 ^ (~B12 & B13); \
    A[12] = B12 ^ (~B13 & B14); \
    A[13] = B13 ^ (~B14 & B10); \
    A[14] = B14 ^ (~B10 & B11); \
    A[15] = B15 ^ (~B16 & B17); \
    A[16] = B16 ^ (~B17 & B18); \
    A[17] = B17 ^ (~B18 & B19); \
    A[18] = B18 ^ (~B19 & B15); \
    A[19] = B19 ^ (~B15 & B16); \
    A[20] = B20 ^ (~B21 & B22); \
    A[21] = B21 ^ (~B22 & B23); \
    A[22] = B22 ^ (~B23 & B24); \
    A[23] = B23 ^ (~B24 & B20); \
    A[24] = B24 ^ (~B20 & B21); \
    A[0] ^= (rc); \
} while (0)


static inline uint64_t load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

static inline void store64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static void permute(uint64_t *A) {
    for (int i = 0; i < 24; ++i) KECCAK_ROUND(uint64_t, ROL64, A, RC[i]);
}

static void keccak256(const uint8_t *msg, size_t len, uint8_t *out) {
    uint64_t A[25] = {0};
    while (len >= RATE) {
        for (int j = 0; j < RATE / 8; ++j) A[j] ^= load64(msg + 8 * j);
        permute(A);
        msg += RATE;
        len -= RATE;
    }
    uint8_t last[RATE] = {0};
    memcpy(last, msg, len);
    last[len] ^= 0x01;
    last[RATE - 1] ^= 0x80;
    for (int j = 0; j < RATE / 8; ++j) A[j] ^= load64(last + 8 * j);
    permute(A);
    for (int j = 0; j < 4; ++j) store64(out + 8 * j, A[j]);
}

#if defined(__GNUC__) && !defined(GRIDFLEX_KECCAK_SCALAR)
#define WAYS 8
typedef uint64_t lanes_t __attribute__((vector_size(8 * WAYS)));

static void permute_x(lanes_t *A) {
    for (int i = 0; i < 24; ++i) KECCAK_ROUND(lanes_t, ROL64, A, RC[i]);
}

/* WAYS messages of the same length `len`. */
static void keccak256_x(const uint8_t *const *msgs, size_t len, uint8_t *const *outs) {
    lanes_t A[25];
    memset(A, 0, sizeof A);
    size_t done = 0;
    uint8_t last[WAYS][RATE];
    for (;;) {
        const uint8_t *blocks[WAYS];
        int final = len - done < RATE;
        for (int w = 0; w < WAYS; ++w) {
            if (final) {
                size_t rest = len - done;
                memset(last[w], 0, RATE);
                memcpy(last[w], msgs[w] + done, rest);
                last[w][rest] ^= 0x01;
                last[w][RATE - 1] ^= 0x80;
                blocks[w] = last[w];
            } else {
                blocks[w] = msgs[w] + done;
            }
        }
        for (int j = 0; j < RATE / 8; ++j) {
            lanes_t v;
            for (int w = 0; w < WAYS; ++w) v[w] = load64(blocks[w] + 8 * j);
            A[j] ^= v;
        }
        permute_x(A);
        if (final) break;
        done += RATE;
    }
    for (int w = 0; w < WAYS; ++w)
        for (int j = 0; j < 4; ++j) store64(outs[w] + 8 * j, A[j][w]);
}
#else
#define WAYS 1
#endif

static void run_one(const uint8_t *m, size_t len, const uint8_t *prefix, int stage,
                    uint8_t *out) {
    uint8_t buf[64];
    if (stage == 0) {
        keccak256(m, len, out);
    } else if (stage == 1) {
        keccak256(m, len, buf);
        keccak256(buf, 32, out);
    } else if (prefix) {
        memcpy(buf, prefix, 32);
        keccak256(m, len, buf + 32);
        keccak256(buf, 64, buf);
        keccak256(buf, 32, out);
    }
}

/* Hashes message i = data[bounds[2i]:bounds[2i + 1]] into out[32 * i:32 * i + 32], running
 * WAYS consecutive messages at once when their lengths are equal. `stage` selects what is
 * hashed: 0 keccak(m); 1 keccak(keccak(m)); 2 keccak(keccak(prefix_i || keccak(m))) with
 * prefix_i = prefix[32 * i:32 * i + 32] (the used-readings leaf). */
static void run(const uint8_t *data, const int64_t *bounds, int64_t n, const uint8_t *prefix,
                int stage, uint8_t *out) {
    for (int64_t i = 0; i < n; i += WAYS) {
        int64_t stop = i + WAYS < n ? i + WAYS : n;
        size_t len = (size_t)(bounds[2 * i + 1] - bounds[2 * i]);
        int equal = stop - i == WAYS && WAYS > 1;
        for (int64_t k = i + 1; k < stop && equal; ++k)
            equal = (size_t)(bounds[2 * k + 1] - bounds[2 * k]) == len;
#if WAYS > 1
        if (equal) {
            const uint8_t *msgs[WAYS], *again[WAYS];
            uint8_t *outs[WAYS], *inner[WAYS];
            uint8_t buf[WAYS][64];
            for (int w = 0; w < WAYS; ++w) {
                msgs[w] = data + bounds[2 * (i + w)];
                outs[w] = out + 32 * (i + w);
                inner[w] = buf[w] + (stage == 2 ? 32 : 0);
                again[w] = buf[w];
            }
            if (stage == 0) {
                keccak256_x(msgs, len, outs);
                continue;
            }
            keccak256_x(msgs, len, inner);
            if (stage == 2) {
                for (int w = 0; w < WAYS; ++w) memcpy(buf[w], prefix + 32 * (i + w), 32);
                keccak256_x(again, 64, inner);
                for (int w = 0; w < WAYS; ++w) again[w] = inner[w];
            }
            keccak256_x(again, 32, outs);
            continue;
        }
#endif
        for (int64_t k = i; k < stop; ++k)
            run_one(data + bounds[2 * k], (size_t)(bounds[2 * k + 1] - bounds[2 * k]),
                    prefix ? prefix + 32 * k : 0, stage, out + 32 * k);
    }
}

int gf_keccak_ways(void) { return WAYS; }

/* Bumped whenever an exported function's signature or meaning changes, so that a library
 * built from an older source is not used (gridflex/native/__init__.py: ABI_VERSION). */
int gf_abi_version(void) { return 2; }

void gf_keccak256_batch(const uint8_t *data, const int64_t *bounds, int64_t n, uint8_t *out) {
    run(data, bounds, n, 0, 0, out);
}

void gf_double_keccak256_batch(const uint8_t *data, const int64_t *bounds, int64_t n,
                               uint8_t *out) {
    run(data, bounds, n, 0, 1, out);
}

void gf_used_readings_leaves(const uint8_t *data, const int64_t *bounds, int64_t n,
                             const uint8_t *device_words, uint8_t *out) {
    run(data, bounds, n, device_words, 2, out);
}

/* Hashes inner nodes `first` down to 0 of a StandardMerkleTree node array
 * (`nodes[i] = hash_pair(nodes[2i+1], nodes[2i+2])`, sorted pair). */
static void merkle_levels(uint8_t *nodes, int64_t first) {
    int64_t i = first;
#if WAYS > 1
    /* WAYS consecutive nodes are independent once their children lie above them. */
    for (; i - (WAYS - 1) >= WAYS; i -= WAYS) {
        uint8_t pairs[WAYS][64];
        const uint8_t *msgs[WAYS];
        uint8_t *outs[WAYS];
        for (int w = 0; w < WAYS; ++w) {
            int64_t k = i - w;
            const uint8_t *l = nodes + 32 * (2 * k + 1), *r = nodes + 32 * (2 * k + 2);
            if (memcmp(l, r, 32) < 0) {
                memcpy(pairs[w], l, 32);
                memcpy(pairs[w] + 32, r, 32);
            } else {
                memcpy(pairs[w], r, 32);
                memcpy(pairs[w] + 32, l, 32);
            }
            msgs[w] = pairs[w];
            outs[w] = nodes + 32 * k;
        }
        keccak256_x(msgs, 64, outs);
    }
#endif
    for (; i >= 0; --i) {
        uint8_t pair[64];
        const uint8_t *l = nodes + 32 * (2 * i + 1), *r = nodes + 32 * (2 * i + 2);
        if (memcmp(l, r, 32) < 0) {
            memcpy(pair, l, 32);
            memcpy(pair + 32, r, 32);
        } else {
            memcpy(pair, r, 32);
            memcpy(pair + 32, l, 32);
        }
        keccak256(pair, 64, nodes + 32 * i);
    }
}

static inline uint64_t load_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}

typedef struct {
    uint64_t key; /* the leaf's first 8 bytes, big-endian: orders as memcmp does */
    int64_t index;
} keyed_t;

/* Sorts leaf indices by leaf bytes (memcmp order): LSD radix sort on the first 8 bytes, then
 * insertion sort on the full 32 bytes within runs of equal first bytes. */
static int sort_leaves(const uint8_t *leaves, int64_t n, int64_t *order) {
    keyed_t *a = malloc(sizeof(keyed_t) * (size_t)n), *b = malloc(sizeof(keyed_t) * (size_t)n);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    for (int64_t i = 0; i < n; ++i) a[i] = (keyed_t){load_be64(leaves + 32 * i), i};
    for (int shift = 0; shift < 64; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; ++i) ++count[((a[i].key >> shift) & 0xff) + 1];
        for (int k = 0; k < 256; ++k) count[k + 1] += count[k];
        for (int64_t i = 0; i < n; ++i) b[count[(a[i].key >> shift) & 0xff]++] = a[i];
        keyed_t *t = a;
        a = b;
        b = t;
    }
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && a[j].key == a[i].key) ++j;
        for (int64_t k = i + 1; k < j; ++k) { /* rare: equal 8-byte prefixes */
            keyed_t x = a[k];
            int64_t m = k;
            for (; m > i && memcmp(leaves + 32 * a[m - 1].index, leaves + 32 * x.index, 32) > 0;
                 --m)
                a[m] = a[m - 1];
            a[m] = x;
        }
        i = j;
    }
    for (int64_t i = 0; i < n; ++i) order[i] = a[i].index;
    free(a);
    free(b);
    return 0;
}

/* `MerkleTree.from_leaf_hashes(leaves).nodes` in `nodes` (2n - 1 x 32 bytes): leaves sorted
 * ascending at the end in reverse order, then the inner nodes. `leaves` is not modified.
 * Returns -1 for no leaves or out of memory. */
int gf_merkle_tree(const uint8_t *leaves, int64_t n, uint8_t *nodes) {
    if (n < 1) return -1;
    int64_t size = 2 * n - 1;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
    if (!order || sort_leaves(leaves, n, order)) {
        free(order);
        return -1;
    }
    for (int64_t i = 0; i < n; ++i) memcpy(nodes + 32 * (size - 1 - i), leaves + 32 * order[i], 32);
    free(order);
    merkle_levels(nodes, size - 1 - n);
    return 0;
}

static inline void store_be64(uint8_t *p, uint64_t v) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
#else
    for (int i = 7; i >= 0; --i, v >>= 8) p[i] = (uint8_t)v;
#endif
}

/* Device i's packed used readings (`gridflex.reports.pack_used_readings` of
 * `gridflex.report_batch.pack_used_readings_batch`), read straight from the history block:
 * for each day d in day_list[day_offsets[i]:day_offsets[i + 1]] (ascending) and each column
 * c from col_begin[i] to the last, (uint64 BE first_day_s + d * 86400 + column_s[c],
 * int64 BE history[i, d, c]). Returns the length in bytes. */
typedef struct {
    const uint8_t *history;
    int64_t itemsize, days, columns, first_day_s;
    const int64_t *day_offsets, *day_list, *col_begin, *column_s;
} block_t;

#define BLOCK_ROW(T)                                                                       \
    do {                                                                                   \
        const T *row = (const T *)b->history + (i * b->days + d) * b->columns;             \
        for (int64_t c = b->col_begin[i]; c < b->columns; ++c, p += 16) {                  \
            store_be64(p, (uint64_t)(day_s + b->column_s[c]));                             \
            store_be64(p + 8, (uint64_t)(int64_t)row[c]);                                  \
        }                                                                                  \
    } while (0)

static size_t block_message(const block_t *b, int64_t i, uint8_t *out) {
    uint8_t *p = out;
    for (int64_t k = b->day_offsets[i]; k < b->day_offsets[i + 1]; ++k) {
        int64_t d = b->day_list[k], day_s = b->first_day_s + d * 86400;
        if (b->itemsize == 4)
            BLOCK_ROW(int32_t);
        else
            BLOCK_ROW(int64_t);
    }
    return (size_t)(p - out);
}

/* Asks for device i's rows ahead of use: at 10^6 devices the history is far larger than the
 * caches and each device reads a few short rows of its block, so hashing one group while the
 * next group's rows arrive hides the memory latency. */
static void prefetch_rows(const block_t *b, int64_t i) {
#if defined(__GNUC__)
    size_t first = (size_t)b->col_begin[i] * (size_t)b->itemsize;
    size_t last = (size_t)b->columns * (size_t)b->itemsize;
    for (int64_t k = b->day_offsets[i]; k < b->day_offsets[i + 1]; ++k) {
        const uint8_t *row = b->history + (size_t)((i * b->days + b->day_list[k]) * b->columns) *
                                              (size_t)b->itemsize;
        for (size_t at = first; at < last; at += 64) __builtin_prefetch(row + at);
        __builtin_prefetch(row + last - 1);
    }
#else
    (void)b;
    (void)i;
#endif
}

/* `used_readings_leaf(id_i, packed_i)` for devices [0, n) of the block (pointers already
 * offset to the first device): messages are built WAYS at a time in a scratch buffer and
 * hashed in vector lanes when their lengths are equal. Returns -1 if out of memory. */
int gf_used_readings_block(const uint8_t *history, int64_t itemsize, int64_t days,
                           int64_t columns, int64_t first_day_s, const int64_t *column_s,
                           const int64_t *day_offsets, const int64_t *day_list,
                           const int64_t *col_begin, const uint8_t *device_words, int64_t n,
                           uint8_t *out) {
    block_t b = {history, itemsize, days, columns, first_day_s,
                 day_offsets, day_list, col_begin, column_s};
    int64_t longest = 0;
    for (int64_t i = 0; i < n; ++i) {
        int64_t len = (day_offsets[i + 1] - day_offsets[i]) * (columns - col_begin[i]) * 16;
        if (len > longest) longest = len;
    }
    uint8_t *scratch = malloc((size_t)(WAYS * longest + 1));
    if (!scratch) return -1;
    int64_t bounds[2 * WAYS];
    for (int64_t i = 0; i < n; i += WAYS) {
        int64_t stop = i + WAYS < n ? i + WAYS : n;
        for (int64_t k = stop; k < stop + WAYS && k < n; ++k) prefetch_rows(&b, k);
        for (int64_t k = i; k < stop; ++k) {
            bounds[2 * (k - i)] = (k - i) * longest;
            bounds[2 * (k - i) + 1] =
                (k - i) * longest + (int64_t)block_message(&b, k, scratch + (k - i) * longest);
        }
        run(scratch, bounds, stop - i, device_words + 32 * i, 2, out + 32 * i);
    }
    free(scratch);
    return 0;
}

/* Baseline kernels (gridflex.baselines_np): one pass over a [n, days, columns] history block
 * of int32 or int64 readings, rows already offset to the first device. */

/* For the first `stats_days` days of each device: complete[i, d] = 1 when no reading equals
 * `missing`, totals[i, d] = the sum of columns [total_from, columns). */
#define DAY_STATS(T)                                                                         \
    for (int64_t i = 0; i < n; ++i)                                                         \
        for (int64_t d = 0; d < stats_days; ++d) {                                          \
            const T *row = (const T *)history + (i * days + d) * columns;                   \
            int all = 1;                                                                     \
            int64_t total = 0;                                                               \
            for (int64_t c = 0; c < columns; ++c) all &= row[c] != (T)missing;              \
            for (int64_t c = total_from; c < columns; ++c) total += row[c];                 \
            complete[i * stats_days + d] = (uint8_t)all;                                     \
            totals[i * stats_days + d] = total;                                              \
        }

void gf_block_day_stats(const void *history, int64_t itemsize, int64_t n, int64_t days,
                        int64_t columns, int64_t stats_days, int64_t total_from,
                        int64_t missing, uint8_t *complete, int64_t *totals) {
    if (itemsize == 4) {
        DAY_STATS(int32_t)
    } else {
        DAY_STATS(int64_t)
    }
}

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* sums[i, c] = the sum of history[i, d, c] over the days d < mask_days with mask[i, d]
 * (rows of device i + 2 requested ahead). */
#define MASKED_SUMS(T)                                                                       \
    for (int64_t i = 0; i < n; ++i) {                                                       \
        int64_t *s = sums + i * columns;                                                     \
        for (int64_t c = 0; c < columns; ++c) s[c] = 0;                                     \
        if (i + 2 < n)                                                                       \
            for (int64_t d = 0; d < mask_days; ++d)                                          \
                if (mask[(i + 2) * mask_days + d]) {                                         \
                    const char *ahead = (const char *)((const T *)history +                  \
                                                       ((i + 2) * days + d) * columns);      \
                    PREFETCH(ahead);                                                         \
                    PREFETCH(ahead + columns * (int64_t)sizeof(T) - 1);                      \
                }                                                                            \
        for (int64_t d = 0; d < mask_days; ++d) {                                           \
            if (!mask[i * mask_days + d]) continue;                                          \
            const T *row = (const T *)history + (i * days + d) * columns;                   \
            for (int64_t c = 0; c < columns; ++c) s[c] += row[c];                           \
        }                                                                                    \
    }

void gf_block_masked_sums(const void *history, int64_t itemsize, int64_t n, int64_t days,
                          int64_t columns, const uint8_t *mask, int64_t mask_days,
                          int64_t *sums) {
    if (itemsize == 4) {
        MASKED_SUMS(int32_t)
    } else {
        MASKED_SUMS(int64_t)
    }
}

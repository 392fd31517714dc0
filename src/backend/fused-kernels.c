/*
 * Fused TensorFlow kernels for the training step (native CPU backend), registered at run time
 * through TensorFlow's C kernel API into the TensorFlow library that tfjs-node has loaded, and run by name
 * through tfjs-node's eager binding like any other op (src/backend/fused-kernels.ts).
 *
 * Why: on 2 threads TensorFlow hands every elementwise op on a batch-sized tensor to its thread pool, and
 * waking the other thread costs ~80 µs per op here, more than the op itself; a layer's bias, ReLU, dropout
 * and gate products and their gradients are a dozen such ops. Each kernel here replaces a chain of them with
 * one pass on the calling thread, and the parameter update (w - g * step) with one pass instead of two. A
 * pooled conv layer's max-pool is in its kernel too: TensorFlow's MaxPoolGrad recomputes every window's
 * maximum with 64-bit indices and was the AlexNet's largest backward kernel; here the forward kernel records
 * each window's route (which value, its dropout and ReLU state) and the gradient kernel reads only that.
 *
 * Bit for bit the same as the chains they replace: every kernel performs the same float32 operations in the
 * same order, each rounded once (this file is compiled with -ffp-contract=off: no fused multiply-add), so
 * results do not change. Reductions (sums) stay TensorFlow's. test/fused-kernels.test.ts checks every kernel
 * against the TensorFlow ops it replaces.
 *
 * No TensorFlow headers are needed: the few C API functions used are declared below and looked up in the
 * loaded libtensorflow_framework with dlsym, so a missing symbol (another TensorFlow) means "not available",
 * and the TypeScript side keeps TensorFlow's own ops.
 */
#define NAPI_VERSION 8
#include <dlfcn.h>
#include <pthread.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* ---- the TensorFlow C API used (tensorflow/c/{tf_status,tf_tensor,ops,kernels}.h) ---- */
typedef struct TF_Status TF_Status;
typedef struct TF_Tensor TF_Tensor;
typedef struct TF_OpDefinitionBuilder TF_OpDefinitionBuilder;
typedef struct TF_KernelBuilder TF_KernelBuilder;
typedef struct TF_OpKernelConstruction TF_OpKernelConstruction;
typedef struct TF_OpKernelContext TF_OpKernelContext;
enum { TF_OK = 0, TF_INVALID_ARGUMENT = 3 };
enum { TF_FLOAT = 1, TF_INT32 = 3 };

static struct {
  TF_Status *(*NewStatus)(void);
  void (*DeleteStatus)(TF_Status *);
  int (*GetCode)(const TF_Status *);
  const char *(*Message)(const TF_Status *);
  void (*SetStatus)(TF_Status *, int, const char *);
  TF_OpDefinitionBuilder *(*NewOpDefinitionBuilder)(const char *);
  void (*OpDefinitionBuilderAddInput)(TF_OpDefinitionBuilder *, const char *);
  void (*OpDefinitionBuilderAddOutput)(TF_OpDefinitionBuilder *, const char *);
  void (*OpDefinitionBuilderAddAttr)(TF_OpDefinitionBuilder *, const char *);
  void (*RegisterOpDefinition)(TF_OpDefinitionBuilder *, TF_Status *);
  TF_KernelBuilder *(*NewKernelBuilder)(const char *, const char *, void *(*)(TF_OpKernelConstruction *),
                                        void (*)(void *, TF_OpKernelContext *), void (*)(void *));
  void (*RegisterKernelBuilder)(const char *, TF_KernelBuilder *, TF_Status *);
  void (*OpKernelConstruction_GetAttrFloat)(TF_OpKernelConstruction *, const char *, float *, TF_Status *);
  void (*OpKernelConstruction_GetAttrInt32)(TF_OpKernelConstruction *, const char *, int32_t *, TF_Status *);
  void (*OpKernelConstruction_Failure)(TF_OpKernelConstruction *, TF_Status *);
  void (*GetInput)(TF_OpKernelContext *, int, TF_Tensor **, TF_Status *);
  TF_Tensor *(*AllocateOutput)(TF_OpKernelContext *, int, int, const int64_t *, int, size_t, TF_Status *);
  void (*OpKernelContext_Failure)(TF_OpKernelContext *, TF_Status *);
  void *(*TensorData)(const TF_Tensor *);
  int (*NumDims)(const TF_Tensor *);
  int64_t (*Dim)(const TF_Tensor *, int);
  int64_t (*TensorElementCount)(const TF_Tensor *);
  int (*TensorType)(const TF_Tensor *);
  void (*DeleteTensor)(TF_Tensor *);
} tf;

#define SYMBOLS(X)                                                                                              \
  X(NewStatus) X(DeleteStatus) X(GetCode) X(Message) X(SetStatus) X(NewOpDefinitionBuilder)                    \
  X(OpDefinitionBuilderAddInput) X(OpDefinitionBuilderAddOutput) X(OpDefinitionBuilderAddAttr)                 \
  X(RegisterOpDefinition) X(NewKernelBuilder) X(RegisterKernelBuilder) X(OpKernelConstruction_GetAttrFloat)   \
  X(OpKernelConstruction_GetAttrInt32) X(OpKernelConstruction_Failure) X(GetInput) X(AllocateOutput) X(OpKernelContext_Failure) X(TensorData)       \
  X(NumDims) X(Dim) X(TensorElementCount) X(TensorType) X(DeleteTensor)

/* ---- kernel plumbing ---- */

#define MAX_IO 8

/* The inputs and outputs of one kernel call; outputs take the shape of input `like`. */
typedef struct {
  TF_OpKernelContext *ctx;
  TF_Status *status;
  int n_in, n_out;
  TF_Tensor *in[MAX_IO], *out[MAX_IO];
} Call;

static float *data(TF_Tensor *t) { return (float *)tf.TensorData(t); }
static int64_t count(TF_Tensor *t) { return tf.TensorElementCount(t); }
static int64_t last_dim(TF_Tensor *t) { return tf.NumDims(t) ? tf.Dim(t, tf.NumDims(t) - 1) : 1; }

/* Whether the call has not failed so far. */
static int ok(Call *c) { return tf.GetCode(c->status) == TF_OK; }

static void fail(Call *c, const char *message) {
  if (tf.GetCode(c->status) == TF_OK) tf.SetStatus(c->status, TF_INVALID_ARGUMENT, message);
}

/* Reads the n_in inputs; input `seed_at` (if >= 0) is the int32 seed pair, the others float32. */
static int open_call_seeded(Call *c, TF_OpKernelContext *ctx, int n_in, int seed_at) {
  memset(c, 0, sizeof *c);
  c->ctx = ctx;
  c->status = tf.NewStatus();
  if (n_in > MAX_IO) return fail(c, "hat fused kernel: too many inputs"), 0;
  for (int i = 0; i < n_in; i++) {
    tf.GetInput(ctx, i, &c->in[i], c->status);
    if (tf.GetCode(c->status) != TF_OK) return 0;
    c->n_in = i + 1;
    if (i == seed_at ? tf.TensorType(c->in[i]) != TF_INT32 || count(c->in[i]) != 2 : tf.TensorType(c->in[i]) != TF_FLOAT)
      return fail(c, i == seed_at ? "hat fused kernel: the seed must be two int32" : "hat fused kernel: float32 inputs only"), 0;
  }
  return 1;
}
static int open_call(Call *c, TF_OpKernelContext *ctx, int n_in) { return open_call_seeded(c, ctx, n_in, -1); }


static float *output(Call *c, int i, TF_Tensor *like) {
  int rank = tf.NumDims(like);
  int64_t dims[8];
  if (rank > 8) return fail(c, "hat fused kernel: rank above 8"), NULL;
  for (int d = 0; d < rank; d++) dims[d] = tf.Dim(like, d);
  c->out[i] = tf.AllocateOutput(c->ctx, i, TF_FLOAT, dims, rank, (size_t)count(like) * sizeof(float), c->status);
  if (tf.GetCode(c->status) != TF_OK) return NULL;
  c->n_out = i + 1;
  return data(c->out[i]);
}

/* Output i of shape dims[0 .. rank). */
static float *shaped_output(Call *c, int i, const int64_t *dims, int rank) {
  int64_t n = 1;
  for (int d = 0; d < rank; d++) n *= dims[d];
  c->out[i] = tf.AllocateOutput(c->ctx, i, TF_FLOAT, dims, rank, (size_t)n * sizeof(float), c->status);
  if (tf.GetCode(c->status) != TF_OK) return NULL;
  c->n_out = i + 1;
  return data(c->out[i]);
}

static float *scalar_output(Call *c, int i) {
  c->out[i] = tf.AllocateOutput(c->ctx, i, TF_FLOAT, NULL, 0, sizeof(float), c->status);
  if (tf.GetCode(c->status) != TF_OK) return NULL;
  c->n_out = i + 1;
  return data(c->out[i]);
}

static void close_call(Call *c) {
  if (tf.GetCode(c->status) != TF_OK) tf.OpKernelContext_Failure(c->ctx, c->status);
  for (int i = 0; i < c->n_in; i++) tf.DeleteTensor(c->in[i]);
  for (int i = 0; i < c->n_out; i++) tf.DeleteTensor(c->out[i]);
  tf.DeleteStatus(c->status);
}

static int same_size(Call *c, TF_Tensor *a, TF_Tensor *b) {
  if (count(a) == count(b)) return 1;
  return fail(c, "hat fused kernel: operands differ in size"), 0;
}
static int channel_vector(Call *c, TF_Tensor *v, TF_Tensor *x) {
  if (tf.NumDims(v) == 1 && count(v) == last_dim(x) && count(v) > 0) return 1;
  return fail(c, "hat fused kernel: a per-channel vector must match the last axis"), 0;
}

/*
 * A gradient mask m broadcast over a gradient g the way TensorFlow broadcasts it: m's dimensions, aligned to
 * g's last ones, equal them, and any extra leading ones are 1 (a per-unit [1, units] or a conv layer's
 * [1, 1, in, out]). Then m repeats along g's flat order with period count(m).
 */
static int trailing_broadcast(Call *c, TF_Tensor *m, TF_Tensor *g) {
  const int rm = tf.NumDims(m), rg = tf.NumDims(g);
  int d = rm - 1;
  int64_t tail = 1;
  for (; d >= 0 && rg - rm + d >= 0 && tf.Dim(m, d) == tf.Dim(g, rg - rm + d); d--) tail *= tf.Dim(m, d);
  for (; d >= 0; d--)
    if (tf.Dim(m, d) != 1) return fail(c, "hat fused kernel: the mask does not broadcast over the gradient's last axes"), 0;
  if (tail == 0 || count(g) % tail) return fail(c, "hat fused kernel: the mask does not broadcast"), 0;
  return 1;
}

/*
 * A kernel's attributes, read once per kernel instance: dropout's rate and keep factor, and for the pooled
 * gradients the height and width of the layer before its pool. Each op declares only those it has (OpSpec);
 * the others stay 0.
 */
typedef struct {
  float rate, keep, clip;
  int32_t height, width;
} Attrs;

static void *create_attrs(TF_OpKernelConstruction *ctx) {
  Attrs *a = calloc(1, sizeof *a);
  TF_Status *s = tf.NewStatus();
  /* an attribute the op does not declare sets an error in s, which is only cleared here */
  tf.OpKernelConstruction_GetAttrFloat(ctx, "rate", &a->rate, s);
  tf.OpKernelConstruction_GetAttrFloat(ctx, "keep", &a->keep, s);
  tf.OpKernelConstruction_GetAttrFloat(ctx, "clip", &a->clip, s);
  tf.OpKernelConstruction_GetAttrInt32(ctx, "height", &a->height, s);
  tf.OpKernelConstruction_GetAttrInt32(ctx, "width", &a->width, s);
  tf.DeleteStatus(s);
  return a;
}
static void delete_state(void *state) { free(state); }

/*
 * Each formula below is the chain of TensorFlow ops it replaces, one rounding per op:
 *   mask = Cast(GreaterEqual(noise, rate)) * keep        -> noise >= rate ? 1.0f * keep : 0.0f * keep
 *   Relu(x) = max(x, 0) as Eigen's vector path gives it   -> x <= 0 ? 0 : x (+0 for -0, NaN kept); Eigen's
 *     scalar path (a few tail elements) keeps -0, but x = z + b is -0 only if b is -0, which a bias that
 *     starts nonzero never becomes (a - a is +0)
 *   ReluGrad(g, r) = g * Cast(r > 0)                      -> g * (r > 0 ? 1.0f : 0.0f)
 */
static inline float dropout_mask(float noise, float rate, float keep) { return (float)(noise >= rate) * keep; }
static inline float relu(float x) { return x <= 0.0f ? 0.0f : x; }
static inline float relu_grad(float g, float r) { return g * (float)(r > 0.0f); }

/*
 * The loops, on restrict-qualified pointers (outputs never alias inputs) so that the compiler vectorises them,
 * each compiled for AVX-512, AVX2 and plain x86-64 and picked at load time for the CPU it runs on (the same
 * results on each: elementwise float32 operations round the same at any vector width).
 */
#define R *__restrict
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOOP __attribute__((target_clones("avx512f", "avx2", "default"))) static
#else
#define LOOP static
#endif

LOOP void sgd_update_loop(int64_t n, const float R w, const float R g, float step, float R out) {
  for (int64_t i = 0; i < n; i++) {
    const float t = g[i] * step;
    out[i] = w[i] - t;
  }
}

/* w - (g * m) * step over one stretch where the mask runs on without wrapping */
LOOP void masked_update_loop(int64_t n, const float R w, const float R g, const float R m, float step, float R out) {
  for (int64_t i = 0; i < n; i++) {
    const float gm = g[i] * m[i];
    const float t = gm * step;
    out[i] = w[i] - t;
  }
}

/*
 * Sum of squares: float32 over blocks of 1024 values in 16 independent lanes (so that it vectorises without
 * reassociating; 64 terms per lane, so a relative error within 64 float32 roundings), the blocks added in double.
 */
LOOP double sum_squares_loop(int64_t n, const float R x) {
  double total = 0;
  int64_t i = 0;
  for (; i + 1024 <= n; i += 1024) {
    float lane[16] = {0};
    for (int k = 0; k < 1024; k += 16)
      for (int j = 0; j < 16; j++) lane[j] += x[i + k + j] * x[i + k + j];
    for (int j = 0; j < 16; j++) total += lane[j];
  }
  for (; i < n; i++) total += (double)x[i] * (double)x[i];
  return total;
}

LOOP void dropout_loop(int64_t n, const float R x, const float R noise, float rate, float keep, float R y,
                         float R mask) {
  for (int64_t i = 0; i < n; i++) {
    mask[i] = dropout_mask(noise[i], rate, keep);
    y[i] = x[i] * mask[i];
  }
}

LOOP void bias_relu_dropout_loop(int64_t rows, int64_t channels, const float R z, const float R b,
                                   const float R noise, float rate, float keep, float R r, float R mask, float R d) {
  for (int64_t i = 0; i < rows; i++, z += channels, noise += channels, r += channels, mask += channels, d += channels)
    for (int64_t j = 0; j < channels; j++) {
      r[j] = relu(z[j] + b[j]);
      mask[j] = dropout_mask(noise[j], rate, keep);
      d[j] = r[j] * mask[j];
    }
}

LOOP void gate_loop(int64_t rows, int64_t channels, const float R d, const float R gate, float R y) {
  for (int64_t i = 0; i < rows; i++, d += channels, y += channels)
    for (int64_t j = 0; j < channels; j++) y[j] = d[j] * gate[j];
}

LOOP void dropout_relu_grad_loop(int64_t n, const float R g, const float R mask, const float R r, float R dz) {
  for (int64_t i = 0; i < n; i++) dz[i] = relu_grad(g[i] * mask[i], r[i]);
}

LOOP void gate_dropout_relu_grad_loop(int64_t rows, int64_t channels, const float R dy, const float R p,
                                        const float R gate, const float R mask, const float R r, float R dyp,
                                        float R dz) {
  for (int64_t i = 0; i < rows; i++, dy += channels, p += channels, mask += channels, r += channels, dyp += channels,
               dz += channels)
    for (int64_t j = 0; j < channels; j++) {
      dyp[j] = dy[j] * p[j];
      const float g = dy[j] * gate[j];
      dz[j] = relu_grad(g * mask[j], r[j]);
    }
}

/*
 * A 2x2 max-pool (stride 2, valid) fused into the layer before it (NHWC): for one pooled row, from the two
 * input rows above it (z, their noise), the pooled values p of d = relu(z + b) * mask (each the first maximum
 * of its window in row-major order, as TensorFlow's MaxPoolGrad picks it), y = p * gate when gated, and a
 * route code per pooled value for the gradient: which of the window's four values it is (bits 0-1, dh * 2 +
 * dw), whether dropout kept it (bit 2) and whether its ReLU was positive (bit 3); small integers, exact in
 * float32. d is never stored.
 */
LOOP void pool_row_loop(int64_t width, int64_t pw, int64_t channels, const float R z, const float R b,
                          const float R noise, float rate, float keep, const float R gate, float R p, float R route,
                          float R y) {
  for (int64_t j = 0; j < pw; j++, p += channels, route += channels, y += gate ? channels : 0)
    for (int64_t c = 0; c < channels; c++) {
      float best = 0.0f, code = 0.0f;
      for (int k = 0; k < 4; k++) {
        const int64_t at = ((k >> 1) * width + 2 * j + (k & 1)) * channels + c;
        const float r = relu(z[at] + b[c]), d = r * dropout_mask(noise[at], rate, keep);
        if (k == 0 || best < d) best = d, code = (float)(k + 4 * (noise[at] >= rate) + 8 * (r > 0.0f));
      }
      p[c] = best;
      route[c] = code;
      if (gate) y[c] = best * gate[c];
    }
}

/*
 * The gradient through such a pooled layer, for one pooled row: TensorFlow's MaxPoolGrad puts 0 + g at each
 * window's routed position (+0 elsewhere, and in a last row or column no window covers), then the dropout and
 * ReLU gradient (g * mask) * (r > 0); +0 stays +0 under it. Gated: g = dy * gate, and dy * p for dgate. dz
 * holds the two input rows (already zeroed).
 */
LOOP void pool_grad_row_loop(int64_t width, int64_t pw, int64_t channels, int64_t c0, int64_t c1, const float R dy,
                               const float R route, float keep, const float R p, const float R gate, float R dyp,
                               float R dz) {
  for (int64_t j = 0; j < pw; j++)
    for (int64_t c = c0; c < c1; c++) {
      const int64_t at = j * channels + c;
      const int code = (int)route[at], k = code & 3;
      const float g = gate ? dy[at] * gate[c] : dy[at];
      if (gate) dyp[at] = dy[at] * p[at];
      const float v = 0.0f + g, m = (float)((code >> 2) & 1) * keep;
      dz[((k >> 1) * width + 2 * j + (k & 1)) * channels + c] = (v * m) * (float)((code >> 3) & 1);
    }
}

/*
 * HAT's gate sigmoid(e * s), its gradient w.r.t. e as tfjs's chain computes it: Sigmoid's dy * (y * (1 - y)),
 * then Mul's (that) * s.
 */
LOOP void sigmoid_scale_grad_loop(int64_t n, const float R dy, const float R y, float s, float R de) {
  for (int64_t i = 0; i < n; i++) {
    const float u = 1.0f - y[i], v = y[i] * u;
    de[i] = (dy[i] * v) * s;
  }
}

/*
 * HAT's embedding-gradient compensation (approaches/hat/masks.ts) applied to g: g * ((cosh(clip(e * s, -c, c))
 * + 1) / (cosh(e) + 1) * k), k = smax / s, as TensorFlow's Mul, ClipByValue (min, then max), Cosh (glibc's
 * coshf: TensorFlow's Cosh calls it element by element), Add, RealDiv and Mul compute it.
 */
static void compensate_loop(int64_t n, const float *g, const float *e, float s, float k, float c, float *out) {
  for (int64_t i = 0; i < n; i++) {
    float x = e[i] * s;
    x = x < c ? x : c;
    x = x > -c ? x : -c;
    const float num = coshf(x) + 1.0f, den = coshf(e[i]) + 1.0f, ratio = num / den;
    out[i] = g[i] * (ratio * k);
  }
}

LOOP void add_loop(int64_t n, float R acc, const float R x) {
  for (int64_t i = 0; i < n; i++) acc[i] = acc[i] + x[i];
}

/*
 * TensorFlow's StatelessRandomUniform (float32), reproduced so that the dropout kernels draw their noise where
 * they use it: Philox4x32-10 keyed and started from the seed pair as TensorFlow's GenerateKey scrambles it,
 * element i the (i mod 4)-th output of the block of counter i div 4, mapped to [0, 1) by the 23 mantissa
 * bits. test/fused-kernels.test.ts checks it against TensorFlow's op bit for bit.
 */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* A stream: the key and the counter's two high words (its low words are the block index). */
typedef struct {
  uint32_t k0, k1, c2, c3;
} Philox;

/* Philox4x32-10 of one counter block (ten rounds, the key raised between them). */
static void philox10(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
    const uint64_t p0 = (uint64_t)PHILOX_M0 * c[0], p1 = (uint64_t)PHILOX_M1 * c[2];
    const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
    c[0] = n0, c[1] = (uint32_t)p1, c[2] = n2, c[3] = (uint32_t)p0;
  }
}

/* TensorFlow's GenerateKey for an int32 seed pair (each sign-extended to 64 bits). */
static Philox philox_of_seed(int32_t s0, int32_t s1) {
  const uint64_t a = (uint64_t)(int64_t)s0, b = (uint64_t)(int64_t)s1;
  uint32_t c[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
  philox10(c, 0x3ec8f720u, 0x02461e29u);
  return (Philox){c[0], c[1], c[2], c[3]};
}

static inline float uniform_of_bits(uint32_t x) {
  const uint32_t v = 0x3f800000u | (x & 0x7fffffu); /* in [1, 2) */
  float f;
  memcpy(&f, &v, sizeof f);
  return f - 1.0f;
}

/* The ten rounds on 16 counter blocks side by side (lanes j of c0..c3), so that they vectorise. */
LOOP void philox_rounds16(uint32_t R c0, uint32_t R c1, uint32_t R c2, uint32_t R c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1)
    for (int j = 0; j < 16; j++) {
      const uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j], p1 = (uint64_t)PHILOX_M1 * c2[j];
      const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
      c0[j] = n0, c1[j] = (uint32_t)p1, c2[j] = n2, c3[j] = (uint32_t)p0;
    }
}

/* The 64 values of blocks g .. g+15, in element order (portable; the compiler vectorises the rounds). */
static void philox_blocks16_portable(Philox p, uint64_t g, float out[64]) {
  uint32_t c0[16], c1[16], c2[16], c3[16];
  for (int j = 0; j < 16; j++) c0[j] = (uint32_t)(g + j), c1[j] = (uint32_t)((g + j) >> 32), c2[j] = p.c2, c3[j] = p.c3;
  philox_rounds16(c0, c1, c2, c3, p.k0, p.k1);
  for (int j = 0; j < 16; j++) {
    out[4 * j] = uniform_of_bits(c0[j]);
    out[4 * j + 1] = uniform_of_bits(c1[j]);
    out[4 * j + 2] = uniform_of_bits(c2[j]);
    out[4 * j + 3] = uniform_of_bits(c3[j]);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/*
 * The same with AVX-512 by hand (about 3x the compiler's): one register holds word w of 16 blocks; the
 * 32x32 -> 64-bit products of even and odd lanes are taken separately and their halves blended back.
 */
__attribute__((target("avx512f"))) static inline void mul_hi_lo(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
  const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

__attribute__((target("avx512f"))) static void philox_blocks16_avx512(Philox p, uint64_t g, float out[64]) {
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  /* blocks g .. g+15: low words g + j (with the carry into the next word when g + j wraps 2^32) */
  const __m512i lo = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)g), lane);
  const __mmask16 wrapped = _mm512_cmplt_epu32_mask(lo, _mm512_set1_epi32((int)(uint32_t)g));
  __m512i c0 = lo, c1 = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(g >> 32)), wrapped,
                                              _mm512_set1_epi32((int)(uint32_t)(g >> 32)), _mm512_set1_epi32(1));
  __m512i c2 = _mm512_set1_epi32((int)p.c2), c3 = _mm512_set1_epi32((int)p.c3);
  const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
  uint32_t k0 = p.k0, k1 = p.k1;
  for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
    __m512i hi0, lo0, hi1, lo1;
    mul_hi_lo(c0, m0, &hi0, &lo0);
    mul_hi_lo(c2, m1, &hi1, &lo1);
    const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
    const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
  }
  /* to [1, 2) by the mantissa bits, minus 1, then interleaved: element 4j + w is word w of block j */
  const __m512i man = _mm512_set1_epi32(0x7fffff), one = _mm512_set1_epi32(0x3f800000);
  const __m512 minus1 = _mm512_set1_ps(1.0f);
  __m512 f[4];
  const __m512i words[4] = {c0, c1, c2, c3};
  for (int w = 0; w < 4; w++)
    f[w] = _mm512_sub_ps(_mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(words[w], man), one)), minus1);
  float lanes[4][16];
  for (int w = 0; w < 4; w++) _mm512_storeu_ps(lanes[w], f[w]);
  for (int j = 0; j < 16; j++)
    for (int w = 0; w < 4; w++) out[4 * j + w] = lanes[w][j];
}
#endif

static void philox_blocks16(Philox p, uint64_t g, float out[64]) {
#if defined(__x86_64__) && defined(__GNUC__)
  static int avx512 = -1;
  if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
  if (avx512) return philox_blocks16_avx512(p, g, out);
#endif
  philox_blocks16_portable(p, g, out);
}

/* The noise of elements [begin, end) of the stream, into out[0 .. end - begin). */
static void uniform_range(Philox p, int64_t begin, int64_t end, float *out) {
  float block[64];
  for (int64_t g = begin / 4; 4 * g < end; g += 16) {
    philox_blocks16(p, (uint64_t)g, block);
    const int64_t lo = 4 * g > begin ? 4 * g : begin, hi = 4 * g + 64 < end ? 4 * g + 64 : end;
    memcpy(out + (lo - begin), block + (lo - 4 * g), (size_t)(hi - lo) * sizeof(float));
  }
}

static Philox seed_stream(TF_Tensor *seed) {
  const int32_t *s = (const int32_t *)tf.TensorData(seed);
  return philox_of_seed(s[0], s[1]);
}

#undef R

/*
 * TensorFlow's Sum over the rows of a [rows, cols] matrix (a bias's or a gate's gradient) in TensorFlow's own
 * order, so that a gradient kernel can return it with the gradient (bit for bit; fused-kernels.ts checks the
 * order at start-up and sets sum_packet). Eigen's reduction that keeps the inner dimension takes the columns
 * below cols rounded down to its packet size a packet at a time and, from 16 rows on, adds rows 0, 4, 8, ...
 * into one accumulator, rows 1, 5, 9, ... into a second, and so on, then a0 + a1, + a2, + a3, then the rows
 * left over by 4 one by one; the other columns (all of them below 16 rows) row by row. Sums start at +0, so a
 * zero of either sign never changes one. A single row is copied (TensorFlow reduces nothing then). Rows must
 * come in order; a caller may cover only its columns [c0, c1) (threads split a layer by columns).
 */
static int sum_packet = 0; /* Eigen's packet size in floats; 0: unknown, and the kernels return no sums */

typedef struct {
  int64_t rows, cols, vec, r4;
  float *acc; /* 4 lanes of cols */
} Colsum;

static int colsum_open(Colsum *s, int64_t rows, int64_t cols) {
  s->rows = rows, s->cols = cols;
  s->vec = sum_packet ? cols / sum_packet * sum_packet : 0;
  s->r4 = rows >= 16 ? rows / 4 * 4 : 0;
  s->acc = calloc((size_t)(4 * cols), sizeof(float));
  return s->acc != NULL;
}

static void colsum_combine(Colsum *s, int64_t c0, int64_t c1) {
  const int64_t hi = c1 < s->vec ? c1 : s->vec;
  for (int l = 1; l < 4 && hi > c0; l++) add_loop(hi - c0, s->acc + c0, s->acc + l * s->cols + c0);
}

/* Row r (x its start) into the sums of columns [c0, c1). */
static void colsum_row(Colsum *s, int64_t r, const float *x, int64_t c0, int64_t c1) {
  if (s->rows == 1) return (void)memcpy(s->acc + c0, x + c0, (size_t)(c1 - c0) * sizeof(float));
  if (r < s->r4) {
    const int64_t hi = c1 < s->vec ? c1 : s->vec, lo = c0 > s->vec ? c0 : s->vec;
    if (hi > c0) add_loop(hi - c0, s->acc + (r & 3) * s->cols + c0, x + c0);
    if (c1 > lo) add_loop(c1 - lo, s->acc + lo, x + lo);
    return;
  }
  if (r == s->r4 && s->r4 > 0) colsum_combine(s, c0, c1);
  add_loop(c1 - c0, s->acc + c0, x + c0);
}

/* The sums of columns [c0, c1) into out, once every row is in. */
static void colsum_close(Colsum *s, int64_t c0, int64_t c1, float *out) {
  if (s->r4 > 0 && s->r4 == s->rows) colsum_combine(s, c0, c1);
  memcpy(out + c0, s->acc + c0, (size_t)(c1 - c0) * sizeof(float));
}

/* Elements per stretch of noise: drawn just before use, so that it stays in the L1/L2 cache. */
#define NOISE_CHUNK 4096

/*
 * Threads (TensorFlow's intra-op threads, given at registration) for the passes over whole weight matrices and
 * over the first convolution layer's maps: memory-bound work of a millisecond or more, which one core's
 * bandwidth cannot match, so a pass over SPLIT_MIN values or more is cut into one contiguous part per thread.
 * Every pass here is elementwise or per window, so the result does not depend on the split. Batch-sized work
 * of the dense layers stays on the calling thread: waking a thread costs more than it saves.
 */
static int threads = 1;
#define SPLIT_MIN (1 << 20)
#define MAX_THREADS 16

typedef void (*RangeWork)(void *ctx, int part, int64_t begin, int64_t end);
typedef struct {
  RangeWork work;
  void *ctx;
  int part;
  int64_t begin, end;
} Range;

static void *run_range(void *arg) {
  const Range *r = arg;
  r->work(r->ctx, r->part, r->begin, r->end);
  return NULL;
}

/*
 * Runs `work` over the units [0, n) of a pass that touches `values` values: in one contiguous part per thread
 * from SPLIT_MIN values on, else in one part; part 0 on the calling thread, and a helper thread that cannot
 * start leaves its part to this one. Returns the number of parts.
 */
static int parallel(int64_t n, int64_t values, RangeWork work, void *ctx) {
  int parts = values >= SPLIT_MIN ? threads : 1;
  if (parts > MAX_THREADS) parts = MAX_THREADS;
  if (parts > n) parts = n > 0 ? (int)n : 1;
  Range range[MAX_THREADS];
  pthread_t thread[MAX_THREADS];
  int started = 0;
  const int64_t chunk = (n + parts - 1) / parts;
  for (int k = 0; k < parts; k++)
    range[k] = (Range){work, ctx, k, k * chunk < n ? k * chunk : n, (k + 1) * chunk < n ? (k + 1) * chunk : n};
  for (int k = 1; k < parts; k++)
    if (pthread_create(&thread[k], NULL, run_range, &range[k]) == 0) started |= 1 << k;
    else run_range(&range[k]);
  run_range(&range[0]);
  for (int k = 1; k < parts; k++)
    if (started & (1 << k)) pthread_join(thread[k], NULL);
  return parts;
}

/* A weight update's operands, and the sum of g^2 of each part. */
typedef struct {
  int64_t period;
  const float *w, *g, *m;
  float step, *out;
  double sum[MAX_THREADS];
} Update;

/*
 * The updates also add up the squares of g (sum_squares_loop) in stretches of UPDATE_CHUNK values, each right
 * after its update, while that stretch of g is still in the L1 cache: the clip norm's bound without another
 * pass over the gradients from memory.
 */
#define UPDATE_CHUNK 4096

static void update_part(void *ctx, int part, int64_t begin, int64_t end) {
  Update *u = ctx;
  double sum = 0;
  for (int64_t i = begin; i < end; i += UPDATE_CHUNK) {
    const int64_t n = end - i < UPDATE_CHUNK ? end - i : UPDATE_CHUNK;
    sgd_update_loop(n, u->w + i, u->g + i, u->step, u->out + i);
    sum += sum_squares_loop(n, u->g + i);
  }
  u->sum[part] = sum;
}

static void masked_update_part(void *ctx, int part, int64_t begin, int64_t end) {
  Update *u = ctx;
  double sum = 0;
  /* the mask repeats with period u->period: run stretch by stretch, each without a wrap */
  for (int64_t i = begin; i < end;) {
    const int64_t j = i % u->period, left = u->period - j < end - i ? u->period - j : end - i;
    const int64_t n = left < UPDATE_CHUNK ? left : UPDATE_CHUNK;
    masked_update_loop(n, u->w + i, u->g + i, u->m + j, u->step, u->out + i);
    sum += sum_squares_loop(n, u->g + i);
    i += n;
  }
  u->sum[part] = sum;
}

/* Runs an update over its n values; the sum of g^2 over the parts. */
static double update(int64_t n, Update *u, RangeWork work) {
  const int parts = parallel(n, n, work, u);
  double sum = 0;
  for (int k = 0; k < parts; k++) sum += u->sum[k];
  return sum;
}

/*
 * HatSgdUpdate(w, g, step) -> (w - g * step, sum of g^2): TensorFlow's Mul then Sub (the step is one scalar),
 * and the sum of the squares of g accumulated in double, rounded to float32 once. The sum is not TensorFlow's
 * L2Loss bit for bit (another order, more precision): it only tells that a gradient norm is far below the clip
 * norm, where the clip factor is exactly 1 whatever the rounding (approaches/base.ts sgdUpdate).
 */
static void sgd_update(void *state, TF_OpKernelContext *ctx) {
  (void)state;
  Call c;
  if (open_call(&c, ctx, 3) && same_size(&c, c.in[0], c.in[1])) {
    if (count(c.in[2]) != 1) fail(&c, "HatSgdUpdate: the step must be a scalar");
    float *out = output(&c, 0, c.in[0]), *sum = out ? scalar_output(&c, 1) : NULL;
    Update u = {.w = data(c.in[0]), .g = data(c.in[1]), .step = data(c.in[2])[0], .out = out};
    if (sum) sum[0] = (float)update(count(c.in[0]), &u, update_part);
  }
  close_call(&c);
}

/*
 * HatMaskedSgdUpdate(w, g, m, step) -> (w - (g * m) * step, sum of g^2): TensorFlow's Mul (the gradient mask,
 * broadcast), Mul and Sub, without the masked gradient ever being stored; the sum as HatSgdUpdate's (of the
 * unmasked g: masks in [0, 1] only shrink it).
 */
static void masked_sgd_update(void *state, TF_OpKernelContext *ctx) {
  (void)state;
  Call c;
  if (open_call(&c, ctx, 4) && same_size(&c, c.in[0], c.in[1]) && trailing_broadcast(&c, c.in[2], c.in[1])) {
    if (count(c.in[3]) != 1) fail(&c, "HatMaskedSgdUpdate: the step must be a scalar");
    float *out = output(&c, 0, c.in[0]), *sum = out ? scalar_output(&c, 1) : NULL;
    Update u = {.period = count(c.in[2]), .w = data(c.in[0]), .g = data(c.in[1]), .m = data(c.in[2]),
                .step = data(c.in[3])[0], .out = out};
    if (sum) sum[0] = (float)update(count(c.in[0]), &u, masked_update_part);
  }
  close_call(&c);
}

/* HatStatelessUniform(like, seed): TensorFlow's StatelessRandomUniform of like's shape (for the tests). */
static void stateless_uniform(void *state, TF_OpKernelContext *ctx) {
  (void)state;
  Call c;
  if (open_call_seeded(&c, ctx, 2, 1)) {
    float *out = output(&c, 0, c.in[0]);
    if (out) uniform_range(seed_stream(c.in[1]), 0, count(c.in[0]), out);
  }
  close_call(&c);
}

/* HatDropout(x, seed) -> (x * mask, mask): inverted dropout of x with a mask from the seed's noise. */
static void dropout(void *state, TF_OpKernelContext *ctx) {
  const Attrs *a = state;
  Call c;
  if (open_call_seeded(&c, ctx, 2, 1)) {
    float *y = output(&c, 0, c.in[0]), *mask = y ? output(&c, 1, c.in[0]) : NULL;
    const Philox p = seed_stream(c.in[1]);
    const float *x = data(c.in[0]);
    const int64_t n = count(c.in[0]);
    float noise[NOISE_CHUNK];
    for (int64_t s = 0; mask && s < n; s += NOISE_CHUNK) {
      const int64_t e = s + NOISE_CHUNK < n ? s + NOISE_CHUNK : n;
      uniform_range(p, s, e, noise);
      dropout_loop(e - s, x + s, noise, a->rate, a->keep, y + s, mask + s);
    }
  }
  close_call(&c);
}

/*
 * HatBiasReluDropout(z, b, seed) -> (r, mask, d) and HatBiasReluDropoutGate(z, b, seed, gate) -> (r, mask,
 * d, y): a hidden layer after its op (spec §3): r = relu(z + b), d = r * mask, y = d * gate; b and gate are
 * per channel (the last axis); the mask from the seed's noise.
 */
static void bias_relu_dropout_common(void *state, TF_OpKernelContext *ctx, int gated) {
  const Attrs *a = state;
  Call c;
  if (open_call_seeded(&c, ctx, gated ? 4 : 3, 2) && channel_vector(&c, c.in[1], c.in[0]) &&
      (!gated || channel_vector(&c, c.in[3], c.in[0]))) {
    float *r = output(&c, 0, c.in[0]), *mask = r ? output(&c, 1, c.in[0]) : NULL;
    float *d = mask ? output(&c, 2, c.in[0]) : NULL, *y = d && gated ? output(&c, 3, c.in[0]) : NULL;
    const int64_t channels = last_dim(c.in[0]), rows = count(c.in[0]) / channels;
    const int64_t step = channels < NOISE_CHUNK ? NOISE_CHUNK / channels : 1; /* rows per stretch of noise */
    float *noise = d ? malloc((size_t)(step * channels) * sizeof(float)) : NULL;
    if (d && !noise) fail(&c, "hat fused kernel: out of memory");
    const Philox p = noise ? seed_stream(c.in[2]) : (Philox){0};
    const float *z = data(c.in[0]), *b = data(c.in[1]);
    for (int64_t i = 0; noise && i < rows; i += step) {
      const int64_t n = (i + step < rows ? step : rows - i), at = i * channels;
      uniform_range(p, at, at + n * channels, noise);
      bias_relu_dropout_loop(n, channels, z + at, b, noise, a->rate, a->keep, r + at, mask + at, d + at);
      if (y) gate_loop(n, channels, d + at, data(c.in[3]), y + at);
    }
    free(noise);
  }
  close_call(&c);
}
static void bias_relu_dropout(void *state, TF_OpKernelContext *ctx) { bias_relu_dropout_common(state, ctx, 0); }
static void bias_relu_dropout_gate(void *state, TF_OpKernelContext *ctx) {
  bias_relu_dropout_common(state, ctx, 1);
}

/*
 * A pooled layer (NHWC, 2x2 max-pool of stride 2, valid) for the kernels below: the shapes, and one pooled
 * row (a batch item's row of windows) as the unit of work.
 */
typedef struct {
  const Attrs *a;
  Philox philox;
  int64_t batch, height, width, channels, ph, pw;
  const float *z, *b, *gate, *dy, *p, *route;
  float *p_out, *route_out, *y, *dyp, *dz;
  int out_of_memory;
} Pooled;

static void pool_part(void *ctx, int part, int64_t begin, int64_t end) {
  (void)part;
  Pooled *q = ctx;
  const int64_t rows = 2 * q->width * q->channels, out = q->pw * q->channels;
  float *noise = malloc((size_t)rows * sizeof(float));
  if (!noise) return (void)(q->out_of_memory = 1);
  for (int64_t u = begin; u < end; u++) {
    const int64_t at = ((u / q->ph) * q->height + 2 * (u % q->ph)) * q->width * q->channels;
    uniform_range(q->philox, at, at + rows, noise);
    pool_row_loop(q->width, q->pw, q->channels, q->z + at, q->b, noise, q->a->rate, q->a->keep, q->gate,
                  q->p_out + u * out, q->route_out + u * out, q->y ? q->y + u * out : NULL);
  }
  free(noise);
}

/*
 * HatBiasReluDropoutPool(z, b, seed) -> (p, route) and HatBiasReluDropoutPoolGate(z, b, seed, gate) -> (p,
 * route, y): a conv layer after its op with its pool: p = maxpool(relu(z + b) * mask), y = p * gate, and the
 * route codes of pool_row_loop for the gradient kernels below (in place of r, mask and d at full size).
 */
static void bias_relu_dropout_pool_common(void *state, TF_OpKernelContext *ctx, int gated) {
  Call c;
  if (open_call_seeded(&c, ctx, gated ? 4 : 3, 2) && channel_vector(&c, c.in[1], c.in[0]) &&
      (!gated || channel_vector(&c, c.in[3], c.in[0]))) {
    TF_Tensor *z = c.in[0];
    if (tf.NumDims(z) != 4 || tf.Dim(z, 1) < 2 || tf.Dim(z, 2) < 2) {
      fail(&c, "hat fused kernel: a pooled layer takes [batch, height >= 2, width >= 2, channels]");
    } else {
      Pooled q = {.a = state, .philox = seed_stream(c.in[2]), .height = tf.Dim(z, 1), .width = tf.Dim(z, 2),
                  .channels = tf.Dim(z, 3), .ph = tf.Dim(z, 1) / 2, .pw = tf.Dim(z, 2) / 2, .z = data(z),
                  .b = data(c.in[1]), .gate = gated ? data(c.in[3]) : NULL};
      const int64_t dims[4] = {tf.Dim(z, 0), q.ph, q.pw, q.channels};
      q.p_out = shaped_output(&c, 0, dims, 4);
      q.route_out = q.p_out ? shaped_output(&c, 1, dims, 4) : NULL;
      q.y = q.route_out && gated ? shaped_output(&c, 2, dims, 4) : NULL;
      if (q.route_out && (!gated || q.y)) {
        parallel(dims[0] * q.ph, count(z), pool_part, &q);
        if (q.out_of_memory) fail(&c, "hat fused kernel: out of memory");
      }
    }
  }
  close_call(&c);
}
static void bias_relu_dropout_pool(void *state, TF_OpKernelContext *ctx) {
  bias_relu_dropout_pool_common(state, ctx, 0);
}
static void bias_relu_dropout_pool_gate(void *state, TF_OpKernelContext *ctx) {
  bias_relu_dropout_pool_common(state, ctx, 1);
}

/*
 * A gradient's sum over rows (output i): [channels] when the kernels return sums (sum_packet set), else an
 * empty tensor, and the caller sums with TensorFlow's Sum. NULL (and *on 0) when not returned or on failure.
 */
static float *sum_output(Call *c, int i, int64_t channels, int *on) {
  const int64_t dims[1] = {sum_packet ? channels : 0};
  float *out = shaped_output(c, i, dims, 1);
  *on = out != NULL && sum_packet != 0;
  return *on ? out : NULL;
}

/* HatDropoutReluGrad(g, mask, r) -> (dz = ReluGrad(g * mask, r), the sum of dz over rows: the bias's gradient). */
static void dropout_relu_grad(void *state, TF_OpKernelContext *ctx) {
  (void)state;
  Call c;
  if (open_call(&c, ctx, 3) && same_size(&c, c.in[0], c.in[1]) && same_size(&c, c.in[0], c.in[2])) {
    const int64_t channels = last_dim(c.in[0]), rows = count(c.in[0]) / channels;
    float *dz = output(&c, 0, c.in[0]);
    int sums = 0;
    float *db = dz ? sum_output(&c, 1, channels, &sums) : NULL;
    Colsum s = {0};
    if (sums && !colsum_open(&s, rows, channels)) fail(&c, "hat fused kernel: out of memory"), sums = 0, dz = NULL;
    const float *g = data(c.in[0]), *m = data(c.in[1]), *r = data(c.in[2]);
    for (int64_t i = 0; dz && i < rows; i++) {
      const int64_t at = i * channels;
      dropout_relu_grad_loop(channels, g + at, m + at, r + at, dz + at);
      if (sums) colsum_row(&s, i, dz + at, 0, channels);
    }
    if (sums) colsum_close(&s, 0, channels, db);
    free(s.acc);
  }
  close_call(&c);
}

/*
 * HatGateDropoutReluGrad(dy, p, gate, mask, r) -> (dz = ReluGrad((dy * gate) * mask, r), the sum of dz over rows,
 * the sum of dy * p over rows: the gate's gradient, dy * p): a gated layer without a pool. With sums, dy * p
 * is not stored (an empty last output); without, the sums are empty and dy * p is returned.
 */
static void gate_dropout_relu_grad(void *state, TF_OpKernelContext *ctx) {
  (void)state;
  Call c;
  if (open_call(&c, ctx, 5) && same_size(&c, c.in[0], c.in[1]) && channel_vector(&c, c.in[2], c.in[0]) &&
      same_size(&c, c.in[0], c.in[3]) && same_size(&c, c.in[0], c.in[4])) {
    const int64_t channels = last_dim(c.in[0]), rows = count(c.in[0]) / channels, none[1] = {0};
    int sums = 0, gsums = 0;
    float *dz = output(&c, 0, c.in[0]);
    float *db = ok(&c) ? sum_output(&c, 1, channels, &sums) : NULL;
    float *dgate = ok(&c) ? sum_output(&c, 2, channels, &gsums) : NULL;
    /* dy * p: returned without sums; with them, one row of scratch at a time */
    float *dyp = !ok(&c) ? NULL : sums ? (shaped_output(&c, 3, none, 1), malloc((size_t)channels * sizeof(float)))
                                       : output(&c, 3, c.in[0]);
    Colsum sb = {0}, sg = {0};
    if (ok(&c) && (!dyp || (sums && (!colsum_open(&sb, rows, channels) || !colsum_open(&sg, rows, channels)))))
      fail(&c, "hat fused kernel: out of memory");
    const float *dy = data(c.in[0]), *p = data(c.in[1]), *gate = data(c.in[2]), *m = data(c.in[3]), *r = data(c.in[4]);
    for (int64_t i = 0; ok(&c) && i < rows; i++) {
      const int64_t at = i * channels;
      float *dp = sums ? dyp : dyp + at;
      gate_dropout_relu_grad_loop(1, channels, dy + at, p + at, gate, m + at, r + at, dp, dz + at);
      if (sums) colsum_row(&sb, i, dz + at, 0, channels), colsum_row(&sg, i, dp, 0, channels);
    }
    if (sums && ok(&c)) colsum_close(&sb, 0, channels, db), colsum_close(&sg, 0, channels, dgate);
    if (sums) free(dyp);
    free(sb.acc), free(sg.acc);
  }
  close_call(&c);
}

/* A pooled gradient's operands beyond Pooled's: the sums and the scratch of each thread. */
typedef struct {
  Pooled *q;
  int sums;
  Colsum sb, sg;
  float *db, *dgate;
  int64_t block; /* channels per unit of work */
  int out_of_memory;
} PoolGrad;

/* One thread's channels [c0, c1) of every pooled row, in order (the sums need the rows in order). */
static void pool_grad_part(void *ctx, int part, int64_t begin, int64_t end) {
  (void)part;
  PoolGrad *pg = ctx;
  Pooled *q = pg->q;
  const int64_t C = q->channels, c0 = begin * pg->block, c1 = end * pg->block < C ? end * pg->block : C;
  const int64_t row = q->width * C, out = q->pw * C, units = q->batch * q->ph;
  /* dy * p of one pooled row, when it is summed and not returned */
  float *scratch = q->gate && pg->sums ? malloc((size_t)out * sizeof(float)) : NULL;
  if (q->gate && pg->sums && !scratch) return (void)(pg->out_of_memory = 1);
  for (int64_t u = 0; u < units; u++) {
    const int64_t i = u % q->ph, h0 = (u / q->ph) * q->height + 2 * i;
    /* the last pooled row also covers the rows below its windows (an odd height's last row) */
    const int64_t h1 = h0 + (i == q->ph - 1 ? q->height - 2 * i : 2);
    for (int64_t x = h0 * q->width; x < h1 * q->width; x++) memset(q->dz + x * C + c0, 0, (size_t)(c1 - c0) * sizeof(float));
    float *dyp = q->gate ? (scratch ? scratch : q->dyp + u * out) : NULL;
    pool_grad_row_loop(q->width, q->pw, C, c0, c1, q->dy + u * out, q->route + u * out, q->a->keep,
                       q->p ? q->p + u * out : NULL, q->gate, dyp, q->dz + h0 * row);
    if (!pg->sums) continue;
    for (int64_t x = h0 * q->width; x < h1 * q->width; x++) colsum_row(&pg->sb, x, q->dz + x * C, c0, c1);
    for (int64_t j = 0; q->gate && j < q->pw; j++) colsum_row(&pg->sg, u * q->pw + j, dyp + j * C, c0, c1);
  }
  if (pg->sums) {
    colsum_close(&pg->sb, c0, c1, pg->db);
    if (q->gate) colsum_close(&pg->sg, c0, c1, pg->dgate);
  }
  free(scratch);
}

/*
 * HatPoolDropoutReluGrad(dy, route) -> (dz, the sum of dz over rows) and HatGatePoolDropoutReluGrad(dy, p, gate,
 * route) -> (dz, its sum, the sum of dy * p, dy * p): the gradient of a pooled layer (the kernels above) w.r.t.
 * z from the route codes, and its bias's and gate's gradients (empty without sums, when dy * p is returned
 * instead; with sums it is not stored). The height and width of z are attributes (a pool of stride 2 drops an
 * odd last row or column).
 */
static void pool_dropout_relu_grad_common(void *state, TF_OpKernelContext *ctx, int gated) {
  const Attrs *a = state;
  Call c;
  if (open_call(&c, ctx, gated ? 4 : 2)) {
    TF_Tensor *dy = c.in[0], *route = c.in[gated ? 3 : 1];
    if (tf.NumDims(dy) != 4 || a->height / 2 != tf.Dim(dy, 1) || a->width / 2 != tf.Dim(dy, 2) || a->height < 2 ||
        a->width < 2)
      fail(&c, "hat fused kernel: the pooled gradient does not match the layer's height and width");
    else if (same_size(&c, route, dy) && (!gated || (same_size(&c, c.in[1], dy) && channel_vector(&c, c.in[2], dy)))) {
      Pooled q = {.a = a, .batch = tf.Dim(dy, 0), .height = a->height, .width = a->width, .channels = tf.Dim(dy, 3),
                  .ph = tf.Dim(dy, 1), .pw = tf.Dim(dy, 2), .dy = data(dy), .route = data(route),
                  .p = gated ? data(c.in[1]) : NULL, .gate = gated ? data(c.in[2]) : NULL};
      const int64_t dims[4] = {q.batch, a->height, a->width, q.channels}, none[1] = {0};
      const int64_t rows = q.batch * a->height * a->width;
      PoolGrad pg = {.q = &q, .block = 16};
      int gsums = 0;
      q.dz = shaped_output(&c, 0, dims, 4);
      pg.db = ok(&c) ? sum_output(&c, 1, q.channels, &pg.sums) : NULL;
      if (gated && ok(&c)) {
        pg.dgate = sum_output(&c, 2, q.channels, &gsums);
        /* dy * p: returned without sums; with them, not stored (pool_grad_part's scratch) */
        if (ok(&c)) q.dyp = pg.sums ? (shaped_output(&c, 3, none, 1), NULL) : output(&c, 3, dy);
      }
      if (ok(&c) && pg.sums &&
          (!colsum_open(&pg.sb, rows, q.channels) || (gated && !colsum_open(&pg.sg, q.batch * q.ph * q.pw, q.channels))))
        fail(&c, "hat fused kernel: out of memory");
      if (ok(&c)) {
        parallel((q.channels + pg.block - 1) / pg.block, rows * q.channels, pool_grad_part, &pg);
        if (pg.out_of_memory) fail(&c, "hat fused kernel: out of memory");
      }
      free(pg.sb.acc), free(pg.sg.acc);
    }
  }
  close_call(&c);
}
static void pool_dropout_relu_grad(void *state, TF_OpKernelContext *ctx) {
  pool_dropout_relu_grad_common(state, ctx, 0);
}
static void gate_pool_dropout_relu_grad(void *state, TF_OpKernelContext *ctx) {
  pool_dropout_relu_grad_common(state, ctx, 1);
}

/* HatSigmoidScaleGrad(dy, y, s) -> (dy * (y * (1 - y))) * s: the gradient of y = sigmoid(e * s) w.r.t. e. */
static void sigmoid_scale_grad(void *state, TF_OpKernelContext *ctx) {
  (void)state;
  Call c;
  if (open_call(&c, ctx, 3) && same_size(&c, c.in[0], c.in[1])) {
    if (count(c.in[2]) != 1) fail(&c, "HatSigmoidScaleGrad: s must be a scalar");
    float *de = ok(&c) ? output(&c, 0, c.in[0]) : NULL;
    if (de) sigmoid_scale_grad_loop(count(c.in[0]), data(c.in[0]), data(c.in[1]), data(c.in[2])[0], de);
  }
  close_call(&c);
}

/* HatCompensate(g, e, [s, smax / s]) -> g times HAT's compensation of e at s (attribute clip: cosh's clip). */
static void compensate(void *state, TF_OpKernelContext *ctx) {
  const Attrs *a = state;
  Call c;
  if (open_call(&c, ctx, 3) && same_size(&c, c.in[0], c.in[1])) {
    if (count(c.in[2]) != 2) fail(&c, "HatCompensate: give [s, smax / s]");
    float *out = ok(&c) ? output(&c, 0, c.in[0]) : NULL;
    const float *sk = data(c.in[2]);
    if (out) compensate_loop(count(c.in[0]), data(c.in[0]), data(c.in[1]), sk[0], sk[1], a->clip, out);
  }
  close_call(&c);
}

/* ---- registration ---- */

typedef struct {
  const char *name;
  int n_in, n_out;
  const char *attrs;               /* attribute declarations, ';'-separated, or NULL */
  int seed_at;                     /* the int32 seed pair's input, or -1 */
  void (*compute)(void *, TF_OpKernelContext *);
} OpSpec;

#define DROPOUT_ATTRS "rate: float;keep: float"
#define POOL_GRAD_ATTRS "keep: float;height: int;width: int"

static const OpSpec OPS[] = {
    {"HatSgdUpdate", 3, 2, NULL, -1, sgd_update},
    {"HatMaskedSgdUpdate", 4, 2, NULL, -1, masked_sgd_update},
    {"HatStatelessUniform", 2, 1, NULL, 1, stateless_uniform},
    {"HatDropout", 2, 2, DROPOUT_ATTRS, 1, dropout},
    {"HatBiasReluDropout", 3, 3, DROPOUT_ATTRS, 2, bias_relu_dropout},
    {"HatBiasReluDropoutGate", 4, 4, DROPOUT_ATTRS, 2, bias_relu_dropout_gate},
    {"HatBiasReluDropoutPool", 3, 2, DROPOUT_ATTRS, 2, bias_relu_dropout_pool},
    {"HatBiasReluDropoutPoolGate", 4, 3, DROPOUT_ATTRS, 2, bias_relu_dropout_pool_gate},
    {"HatDropoutReluGrad", 3, 2, NULL, -1, dropout_relu_grad},
    {"HatGateDropoutReluGrad", 5, 4, NULL, -1, gate_dropout_relu_grad},
    {"HatPoolDropoutReluGrad", 2, 2, POOL_GRAD_ATTRS, -1, pool_dropout_relu_grad},
    {"HatGatePoolDropoutReluGrad", 4, 4, POOL_GRAD_ATTRS, -1, gate_pool_dropout_relu_grad},
    {"HatSigmoidScaleGrad", 3, 1, NULL, -1, sigmoid_scale_grad},
    {"HatCompensate", 3, 1, "clip: float", -1, compensate},
};
#define N_OPS (sizeof OPS / sizeof OPS[0])

static int registered = 0;
static char error[8192];

static int register_ops(const char *lib) {
  void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
  if (!h) h = dlopen(lib, RTLD_NOW);
  if (!h) return snprintf(error, sizeof error, "cannot open %s: %s", lib, dlerror()), 0;
#define LOOKUP(name)                                                                                           \
  if (!(*(void **)&tf.name = dlsym(h, "TF_" #name)))                                                            \
    return snprintf(error, sizeof error, "%s has no TF_%s (another TensorFlow version)", lib, #name), 0;
  SYMBOLS(LOOKUP)
#undef LOOKUP
  TF_Status *s = tf.NewStatus();
  char spec[64];
  for (size_t k = 0; k < N_OPS && tf.GetCode(s) == TF_OK; k++) {
    const OpSpec *op = &OPS[k];
    TF_OpDefinitionBuilder *b = tf.NewOpDefinitionBuilder(op->name);
    for (int i = 0; i < op->n_in; i++)
      snprintf(spec, sizeof spec, "in%d: %s", i, i == op->seed_at ? "int32" : "float"), tf.OpDefinitionBuilderAddInput(b, spec);
    for (int i = 0; i < op->n_out; i++)
      snprintf(spec, sizeof spec, "out%d: float", i), tf.OpDefinitionBuilderAddOutput(b, spec);
    for (const char *at = op->attrs; at && *at;) {
      const char *end = strchr(at, ';');
      const size_t n = end ? (size_t)(end - at) : strlen(at);
      snprintf(spec, sizeof spec, "%.*s", (int)n, at), tf.OpDefinitionBuilderAddAttr(b, spec);
      at += n + (end ? 1 : 0);
    }
    tf.RegisterOpDefinition(b, s);
    if (tf.GetCode(s) != TF_OK) break;
    TF_KernelBuilder *kb = tf.NewKernelBuilder(op->name, "CPU", create_attrs, op->compute, delete_state);
    tf.RegisterKernelBuilder(op->name, kb, s);
  }
  int ok = tf.GetCode(s) == TF_OK;
  if (!ok) snprintf(error, sizeof error, "registering the fused kernels failed: %s", tf.Message(s));
  tf.DeleteStatus(s);
  return ok;
}

/*
 * register(libtensorflowFramework: string, threads: number): string[] — the op names, registered once per
 * process; threads: TensorFlow's intra-op threads (the parameter update uses as many).
 */
static napi_value js_register(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t n = 1;
  char lib[4096];
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], lib, sizeof lib, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "register(path to libtensorflow_framework, threads)");
    return NULL;
  }
  if (argc > 1 && napi_get_value_int32(env, argv[1], &n) == napi_ok && n >= 1)
    threads = n < MAX_THREADS ? n : MAX_THREADS;
  if (!registered) {
    if (!register_ops(lib)) {
      napi_throw_error(env, NULL, error);
      return NULL;
    }
    registered = 1;
  }
  napi_create_array_with_length(env, N_OPS, &result);
  for (size_t k = 0; k < N_OPS; k++) {
    napi_value name;
    napi_create_string_utf8(env, OPS[k].name, NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, result, (uint32_t)k, name);
  }
  return result;
}

/*
 * setSumPacket(packet: number): the packet size (in floats) of the Eigen build TensorFlow's Sum reduces with, as
 * fused-kernels.ts found it by comparing the kernels' sums with TensorFlow's; 0: unknown, no sums returned.
 */
static napi_value js_set_sum_packet(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t p = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &p) != napi_ok || p < 0 || p > 64) {
    napi_throw_type_error(env, NULL, "setSumPacket(packet: 0 to 64)");
    return NULL;
  }
  sum_packet = p;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "register", NAPI_AUTO_LENGTH, js_register, NULL, &fn);
  napi_set_named_property(env, exports, "register", fn);
  napi_create_function(env, "setSumPacket", NAPI_AUTO_LENGTH, js_set_sum_packet, NULL, &fn);
  napi_set_named_property(env, exports, "setSumPacket", fn);
  return exports;
}

/**
 * Seeded randomness. Every random choice of a run (task order, splits, shuffles, initial weights, dropout)
 * comes from generators derived from the run seed, so a run is reproducible on any backend.
 */
import seedrandom from 'seedrandom';

/** The internal state of a generator (checkpoints save it, so a resumed run draws the same numbers). */
export type RngState = seedrandom.State.Alea;

export class Rng {
  private readonly gen: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  constructor(
    readonly seed: number | string,
    state?: RngState,
  ) {
    this.gen = seedrandom.alea(String(seed), { state: state ?? true });
  }
  state(): RngState {
    return this.gen.state();
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.gen();
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.gen() * n);
  }
  /** A 31-bit integer, e.g. to seed a tensor op. */
  int32(): number {
    return this.gen.int32() >>> 1;
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.gen();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.gen());
  }
  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }
  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
  uniformArray(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.gen();
    return out;
  }
  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }
  /** A child generator with its own stream, so adding draws in one place does not shift another. */
  fork(label: string): Rng {
    return new Rng(`${this.seed}/${label}`);
  }
}

/**
 * Inverted-dropout masks (0 or 1/(1-rate)) drawn in JS from a seeded stream, so training is reproducible on
 * every backend. A single multiply applies one; tf.dropout would cost four kernels and a slower generator.
 */
export class DropoutMasks {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  mask(n: number, rate: number): Float32Array {
    const out = new Float32Array(n);
    const keep = 1 / (1 - rate);
    // mulberry32: tiny, fast and good enough for Bernoulli masks
    let a = this.state;
    const threshold = rate * 4294967296;
    for (let i = 0; i < n; i++) {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      out[i] = (t ^ (t >>> 14)) >>> 0 >= threshold ? keep : 0;
    }
    this.state = a;
    return out;
  }
  getState(): number {
    return this.state;
  }
  setState(s: number): void {
    this.state = s >>> 0;
  }
}

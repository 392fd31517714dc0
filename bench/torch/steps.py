"""PyTorch (CPU) reference of the training steps timed by our benchmark: HAT and plain SGD on the spec's
networks (shared/spec/paper.md §2, §3, §4, §5), written from the spec, minimal, no tricks beyond stock PyTorch.

    bench/torch/.venv/bin/python bench/torch/steps.py [--reps 3] [--threads 2] [--out FILE] [--quick]

Configurations (batch 64 for training, 512 for evaluation; random inputs and labels from a fixed seed):
  hat-mlp      HAT step, MLP  input dropout 0.2, 784-2000-2000 (ReLU, dropout 0.5, gate), head 2000->10
  sgd-mlp      SGD step, MLP  784-800-800-800 (ReLU, dropout 0.5), head 800->10
  hat-alexnet  HAT step, AlexNet-like 3x32x32 (NCHW), gates after each pool and each fc block, head 2048->10
  sgd-alexnet  SGD step, the same AlexNet-like without gates
  eval-mlp     eval-mode forward of the HAT MLP at s = smax under torch.no_grad(), batch 512
  eval-alexnet eval-mode forward of the HAT AlexNet at s = smax under torch.no_grad(), batch 512
Every network has 10 tasks of 10 classes; a step computes only the current task's head.

The HAT step is the one of §2.3 at task t = 1: gates sigmoid(s*e) at the given (annealed) s, loss =
CE + c*R(a, A) with c = 0.75 and a fixed cumulative attention A = sigmoid(smax*e[task 0]) (random
embeddings, smax = 400), backward, gradient masks (§2.6, precomputed once), embedding-gradient compensation
(§2.7), global-norm clip 10000, plain SGD lr 0.05, embedding clamp [-6, 6].

--tuned-malloc (off by default): stock PyTorch frees its large temporaries back to the OS (glibc munmap/trim),
so every step page-faults them in again. The flag keeps them in the heap (glibc mallopt); in our runs here the
rates with it were within a few percent of stock.

Timing: warm-up steps, then --reps interleaved repetitions (each rep runs every configuration once for its
number of steps, starting from the same initial parameters: the parameter reset is untimed); samples/s per
rep, median, min and max per configuration. Prints a table; --out writes JSON.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

SMAX = 400.0
C = 0.75
LR = 0.05
CLIP = 10000.0
COSH_CLIP = 50.0
EMB_CLAMP = 6.0
TASKS = 10
CLASSES = 10


# ---------------------------------------------------------------------------------------------------------
# Networks (§3). nn.Linear / nn.Conv2d default init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
# the reference code's initialisation (§3.3).


class MLP(nn.Module):
    """MLP with optional HAT gates. hat=True: gate (per task embedding) after ReLU -> dropout of each hidden
    layer. Input dropout p_in (0.2 for HAT, 0 for the baselines)."""

    def __init__(self, sizes, hat, p_in, p_hidden=0.5, tasks=TASKS, classes=CLASSES):
        super().__init__()
        self.hat, self.p_in, self.p_hidden = hat, p_in, p_hidden
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.heads = nn.ModuleList(nn.Linear(sizes[-1], classes) for _ in range(tasks))
        self.embs = nn.ParameterList(nn.Parameter(torch.randn(tasks, n)) for n in sizes[1:]) if hat else nn.ParameterList()

    def gates(self, t, s):
        return [torch.sigmoid(s * e[t]) for e in self.embs]

    def forward(self, x, t, s=SMAX):
        gates = self.gates(t, s) if self.hat else None
        h = F.dropout(x, self.p_in, self.training) if self.p_in > 0 else x
        for i, fc in enumerate(self.fcs):
            h = F.dropout(F.relu(fc(h)), self.p_hidden, self.training)
            if gates is not None:
                h = h * gates[i]
        return self.heads[t](h), gates

    def gated_layers(self):
        """Per gated layer: (weight, bias, index of the gated layer feeding it or -1 for the raw input, H*W when
        its input is a flattened conv output else None). Used to build the gradient masks (§2.6)."""
        return [(fc.weight, fc.bias, i - 1, None) for i, fc in enumerate(self.fcs)]


class AlexNet(nn.Module):
    """AlexNet-like trunk of §3.1 for 3x32x32 inputs (NCHW) with optional HAT gates: conv -> ReLU -> dropout
    -> maxpool 2 -> gate (one value per channel); fc -> ReLU -> dropout 0.5 -> gate."""

    def __init__(self, hat, size=32, tasks=TASKS, classes=CLASSES):
        super().__init__()
        self.hat = hat
        k1, k2, k3 = size // 8, size // 10, 2
        self.convs = nn.ModuleList([nn.Conv2d(3, 64, k1), nn.Conv2d(64, 128, k2), nn.Conv2d(128, 256, k3)])
        self.conv_drop = [0.2, 0.2, 0.5]
        s = size
        for k in (k1, k2, k3):
            s = (s - k + 1) // 2
        self.hw = s * s  # spatial size after conv3 + pool (2*2 = 4 for 32x32)
        self.fcs = nn.ModuleList([nn.Linear(256 * self.hw, 2048), nn.Linear(2048, 2048)])
        self.heads = nn.ModuleList(nn.Linear(2048, classes) for _ in range(tasks))
        widths = [64, 128, 256, 2048, 2048]
        self.embs = nn.ParameterList(nn.Parameter(torch.randn(tasks, n)) for n in widths) if hat else nn.ParameterList()

    def gates(self, t, s):
        return [torch.sigmoid(s * e[t]) for e in self.embs]

    def forward(self, x, t, s=SMAX):
        gates = self.gates(t, s) if self.hat else None
        h = x
        for i, conv in enumerate(self.convs):
            h = F.max_pool2d(F.dropout(F.relu(conv(h)), self.conv_drop[i], self.training), 2)
            if gates is not None:
                h = h * gates[i].view(1, -1, 1, 1)
        h = h.flatten(1)  # channel-major: j = c*H*W + y*W + x
        for i, fc in enumerate(self.fcs):
            h = F.dropout(F.relu(fc(h)), 0.5, self.training)
            if gates is not None:
                h = h * gates[3 + i]
        return self.heads[t](h), gates

    def gated_layers(self):
        """As MLP.gated_layers: conv1 reads the raw input, fc1 the flattened conv3 output (H*W = self.hw)."""
        layers = [(c.weight, c.bias, i - 1, None) for i, c in enumerate(self.convs)]
        layers.append((self.fcs[0].weight, self.fcs[0].bias, 2, self.hw))  # input j -> conv3 channel j // (H*W)
        layers.append((self.fcs[1].weight, self.fcs[1].bias, 3, None))
        return layers


# ---------------------------------------------------------------------------------------------------------
# HAT pieces (§2.5 - §2.7)


@torch.no_grad()
def cumulative_attention(net, task=0, smax=SMAX):
    """A_l = sigmoid(smax * e_l[task]) (float, not thresholded): the cumulative attention after task 0."""
    return [torch.sigmoid(smax * e[task]).clone() for e in net.embs]


@torch.no_grad()
def gradient_masks(net, A):
    """[(parameter, multiplier)] for every gated layer's weight and bias (§2.6), computed once per task.
    Conv weight multipliers have shape [out, in, 1, 1] (same for all kh, kw; broadcast by mul_)."""
    masks = []
    for l, (w, b, prev, hw) in enumerate(net.gated_layers()):
        post = A[l]
        if prev < 0:
            mw = (1 - post).view(-1, *([1] * (w.dim() - 1)))
        else:
            pre = A[prev] if hw is None else A[prev].repeat_interleave(hw)
            mw = 1 - torch.minimum(post.view(-1, 1), pre.view(1, -1))
            if w.dim() == 4:
                mw = mw.view(*mw.shape, 1, 1)
        masks.append((w, mw.contiguous()))
        masks.append((b, (1 - post).contiguous()))
    return masks


def regulariser(gates, free, denom):
    """R(a, A) = sum_l sum_i a_li (1 - A_li) / sum_l sum_i (1 - A_li); free = [1 - A_l], denom precomputed."""
    total = sum((a * f).sum() for a, f in zip(gates, free))
    return total / denom if denom > 0 else total * 0


@torch.no_grad()
def compensate_embedding_gradients(embs, s, smax=SMAX):
    """grad *= smax * (cosh(clip(s e, -50, 50)) + 1) / (s (cosh(e) + 1))  (§2.7), on the full tables."""
    for e in embs:
        if e.grad is not None:
            num = torch.cosh(torch.clamp(s * e, -COSH_CLIP, COSH_CLIP)) + 1
            den = torch.cosh(e) + 1
            e.grad.mul_(smax / s * num / den)


class HatStep:
    """One HAT training step at task t > 0 with fixed cumulative attention A (masks precomputed here)."""

    def __init__(self, net, t, A, lr=LR, c=C, smax=SMAX, clip=CLIP):
        self.net, self.t, self.c, self.smax, self.clip = net, t, c, smax, clip
        self.params = list(net.parameters())
        self.opt = torch.optim.SGD(self.params, lr=lr)
        self.masks = gradient_masks(net, A)
        self.free = [1 - a for a in A]
        self.denom = float(sum(f.sum() for f in self.free))

    def backward(self, x, y, s):
        """Loss, backward, gradient masks, embedding compensation (everything before clipping)."""
        self.opt.zero_grad(set_to_none=True)
        out, gates = self.net(x, self.t, s)
        loss = F.cross_entropy(out, y) + self.c * regulariser(gates, self.free, self.denom)
        loss.backward()
        with torch.no_grad():
            for p, m in self.masks:
                p.grad.mul_(m)
        compensate_embedding_gradients(self.net.embs, s, self.smax)
        return loss

    def update(self):
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        with torch.no_grad():
            for e in self.net.embs:
                e.clamp_(-EMB_CLAMP, EMB_CLAMP)

    def __call__(self, x, y, s):
        loss = self.backward(x, y, s)
        self.update()
        return loss


class SgdStep:
    """One plain SGD step on task t: CE on head t, backward, clip, SGD update."""

    def __init__(self, net, t, lr=LR, clip=CLIP):
        self.net, self.t, self.clip = net, t, clip
        self.params = list(net.parameters())
        self.opt = torch.optim.SGD(self.params, lr=lr)

    def __call__(self, x, y, s=None):
        self.opt.zero_grad(set_to_none=True)
        out, _ = self.net(x, self.t)
        loss = F.cross_entropy(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        return loss


def annealed_s(b, batches, smax=SMAX):
    """Reference-code form of §2.4 with i = b*batch, N = batches*batch."""
    return 1 / smax + (smax - 1 / smax) * b / batches


# ---------------------------------------------------------------------------------------------------------
# Benchmark


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tune_malloc():
    """glibc only: keep freed memory in the heap (no munmap / trim of large blocks), so that the step's large
    temporaries do not page-fault anew every step. Must run before the models are built. Returns a note."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        return 'glibc mallopt: mmap threshold 32 MiB, trim threshold 1 GiB' if ok else 'mallopt refused'
    except (OSError, AttributeError) as err:
        return f'mallopt unavailable ({err})'


class OtherLoad:
    """CPU time used by everything but this process during the measurement (Linux /proc/stat), in cores."""

    @staticmethod
    def _busy():
        try:
            with open('/proc/stat') as f:
                v = [int(x) for x in f.readline().split()[1:]]
            return (sum(v) - v[3] - (v[4] if len(v) > 4 else 0)) / os.sysconf('SC_CLK_TCK')  # minus idle, iowait
        except (OSError, ValueError):
            return None

    def __enter__(self):
        self.busy, self.own, self.wall = self._busy(), sum(os.times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy = self._busy()
        wall = time.perf_counter() - self.wall
        self.cores = None if busy is None or self.busy is None else max(0.0, (busy - self.busy - (sum(os.times()[:2]) - self.own)) / wall)


CONFIGS = ('hat-mlp', 'sgd-mlp', 'hat-alexnet', 'sgd-alexnet', 'eval-mlp', 'eval-alexnet')


def make_configs(args, names):
    """name -> dict(network, batch, steps, reset, run) for the chosen configurations. run(n) performs n steps
    (or evaluation batches) and returns the number of samples; reset() restores the initial parameters. Only
    the needed networks are built; each network and input comes from its own fixed seed, so a subset sees the
    same weights and data as the full run. eval-* use the HAT networks of hat-* (same initial parameters)."""
    t = 1
    B, EB = args.batch, args.eval_batch
    builders = {
        'hat-mlp': lambda: MLP([784, 2000, 2000], hat=True, p_in=0.2),
        'sgd-mlp': lambda: MLP([784, 800, 800, 800], hat=False, p_in=0.0),
        'hat-alexnet': lambda: AlexNet(hat=True),
        'sgd-alexnet': lambda: AlexNet(hat=False),
    }
    nets, initial = {}, {}

    def net(key):
        if key not in nets:
            torch.manual_seed(args.seed * 100 + list(builders).index(key))
            nets[key] = builders[key]()
            initial[key] = [p.detach().clone() for p in nets[key].parameters()]
        return nets[key]

    def resetter(key):
        """Restore the network's initial parameters (untimed, before every rep and the warm-up): every rep
        does the same computation; the trained state drifts (e.g. HAT gates closing), which changes the cost."""
        def reset():
            with torch.no_grad():
                for p, p0 in zip(nets[key].parameters(), initial[key]):
                    p.copy_(p0)
        return reset

    def inputs(shape, n, k):
        gen = torch.Generator().manual_seed(args.seed * 100 + 10 + k)
        return torch.randn(n, *shape, generator=gen), torch.randint(0, CLASSES, (n,), generator=gen)

    def train(key, make_step, shape, steps):
        model, (x, y) = net(key), inputs(shape, B, len(shape))
        step = make_step(model)

        def run(n):
            model.train()
            for b in range(n):
                step(x, y, annealed_s(b % steps, steps))
            return n * B
        return resetter(key), run

    def evaluate(key, shape):
        model, (x, _) = net(key), inputs(shape, EB, 5 + len(shape))

        def run(n):
            model.eval()
            with torch.no_grad():
                for _ in range(n):
                    model(x, t, SMAX)
            return n * EB
        return resetter(key), run

    hat = lambda m: HatStep(m, t, cumulative_attention(m))  # noqa: E731
    sgd = lambda m: SgdStep(m, t)  # noqa: E731
    mlp, img = (784,), (3, 32, 32)
    specs = {
        'hat-mlp': ('HAT MLP 784-[drop 0.2]-2000-2000 gated, head 2000->10', B, args.mlp_steps,
                    lambda: train('hat-mlp', hat, mlp, args.mlp_steps)),
        'sgd-mlp': ('MLP 784-800-800-800, head 800->10', B, args.mlp_steps,
                    lambda: train('sgd-mlp', sgd, mlp, args.mlp_steps)),
        'hat-alexnet': ('HAT AlexNet-like 3x32x32 gated, head 2048->10', B, args.alexnet_steps,
                        lambda: train('hat-alexnet', hat, img, args.alexnet_steps)),
        'sgd-alexnet': ('AlexNet-like 3x32x32, head 2048->10', B, args.alexnet_steps,
                        lambda: train('sgd-alexnet', sgd, img, args.alexnet_steps)),
        'eval-mlp': ('HAT MLP (eval mode, s=smax, no_grad)', EB, args.mlp_eval_batches,
                     lambda: evaluate('hat-mlp', mlp)),
        'eval-alexnet': ('HAT AlexNet-like (eval mode, s=smax, no_grad)', EB, args.alexnet_eval_batches,
                         lambda: evaluate('hat-alexnet', img)),
    }
    out = {}
    for name in names:
        network, batch, steps, make = specs[name]
        reset, run = make()
        out[name] = dict(network=network, batch=batch, steps=steps, reset=reset, run=run)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--warmup', type=int, default=3, help='untimed steps (batches) per configuration before the reps')
    p.add_argument('--mlp-steps', type=int, default=30)
    p.add_argument('--alexnet-steps', type=int, default=15)
    p.add_argument('--mlp-eval-batches', type=int, default=20)
    p.add_argument('--alexnet-eval-batches', type=int, default=4)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--eval-batch', type=int, default=512)
    p.add_argument('--configs', default='', help='comma-separated subset (default: all)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--quick', action='store_true', help='smoke run of a few seconds')
    p.add_argument('--tuned-malloc', action='store_true',
                   help='glibc mallopt so that large temporaries are reused instead of munmapped and page-faulted every step')
    p.add_argument('--out', default='', help='write the results as JSON to this file')
    args = p.parse_args()
    if args.quick:
        args.reps, args.warmup = 1, 1
        args.mlp_steps, args.alexnet_steps, args.mlp_eval_batches, args.alexnet_eval_batches = 3, 2, 2, 1

    malloc = tune_malloc() if args.tuned_malloc else 'stock'
    torch.set_num_threads(args.threads)
    wanted = args.configs.split(',') if args.configs else list(CONFIGS)
    unknown = [c for c in wanted if c not in CONFIGS]
    if unknown:
        p.error(f'unknown configuration(s) {unknown}; choose from {",".join(CONFIGS)}')
    configs = make_configs(args, [c for c in CONFIGS if c in wanted])

    cpu = cpu_model()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}; train batch {args.batch}, eval batch {args.eval_batch}; '
          f'{args.reps} reps x ({args.mlp_steps} MLP / {args.alexnet_steps} AlexNet steps, '
          f'{args.mlp_eval_batches} / {args.alexnet_eval_batches} eval batches), warm-up {args.warmup}; malloc {malloc}', flush=True)
    for cfg in configs.values():
        cfg['reset']()
        cfg['run'](args.warmup)
    rates = {name: [] for name in configs}
    with OtherLoad() as other:
        for _ in range(args.reps):
            for name, cfg in configs.items():
                cfg['reset']()
                start = time.perf_counter()
                samples = cfg['run'](cfg['steps'])
                rates[name].append(samples / (time.perf_counter() - start))

    print(f"{'configuration':<14}{'median':>10}{'min':>10}{'max':>10}  samples/s   per rep")
    results = {}
    for name, cfg in configs.items():
        r = rates[name]
        med, lo, hi = statistics.median(r), min(r), max(r)
        results[name] = dict(network=cfg['network'], batch=cfg['batch'], steps_per_rep=cfg['steps'],
                             samples_per_s=[round(v, 2) for v in r], median=round(med, 2), min=round(lo, 2), max=round(hi, 2))
        print(f'{name:<14}{med:>10.0f}{lo:>10.0f}{hi:>10.0f}  {" ".join(f"{v:.0f}" for v in r)}')
    if other.cores is not None:
        note = '  WARNING: other processes competed for the CPU, numbers are unreliable' if other.cores > 0.25 else ''
        print(f'other processes used {other.cores:.2f} cores on average during the timed reps{note}')
    if args.out:
        doc = dict(torch=torch.__version__, threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
                   cpu=cpu, python=platform.python_version(), malloc=malloc,
                   other_load_cores=None if other.cores is None else round(other.cores, 3), reps=args.reps, warmup=args.warmup, seed=args.seed,
                   quick=args.quick, hat=dict(t=1, smax=SMAX, c=C, lr=LR, clip=CLIP), configs=results)
        with open(args.out, 'w') as f:
            json.dump(doc, f, indent=2)
            f.write('\n')
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()

"""Hand checks of the HAT step in steps.py on a tiny MLP (4-3-3, 2 tasks of 2 classes, batch 2, no dropout).

    bench/torch/.venv/bin/python bench/torch/check_steps.py

Checks (spec §2.5 - §2.7, §2.3):
  1. gradient masks equal the hand-written 1 - min(A_out, A_in) matrices (first layer 1 - A_out, biases
     1 - A_out), and the AlexNet fc1 mask maps flattened input j to conv3 channel j // (H*W);
  2. after one step (a) every weight/bias whose mask is 0 is bit-identical, every other parameter moved by
     exactly -lr * mask * (plain autograd gradient of CE + c*R), heads of other tasks and task-0 embeddings
     did not move; (b) embeddings stay in [-6, 6] (clamp engaged with a large lr);
  3. the compensated embedding gradient equals smax * sigma'(e) * dL/da, with dL/da from autograd through an
     independent hand-written forward with the gates as leaves (at an annealed s and at s = smax);
  4. float32, s*e beyond the cosh clip: sigma'(s*e) underflows, the compensated gradient is 0, not NaN;
  5. global-norm clipping scales the gradients to the clip norm.
Exits non-zero on the first failed check.
"""
import copy
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steps import C, SMAX, AlexNet, HatStep, MLP, cumulative_attention, gradient_masks  # noqa: E402

torch.manual_seed(0)
T = 1  # current task
LR = 0.05
passed = 0


def check(cond, what):
    global passed
    if not cond:
        print(f'FAIL: {what}')
        sys.exit(1)
    passed += 1
    print(f'ok   {what}')


def tiny(dtype=torch.float64):
    net = MLP([4, 3, 3], hat=True, p_in=0.0, p_hidden=0.0, tasks=2, classes=2).to(dtype)
    with torch.no_grad():
        # task 0: +-6 at s = smax gives gates of exactly 1 or 0 -> A1 = [1, 0, 1], A2 = [1, 1, 0]
        net.embs[0][0] = torch.tensor([6.0, -6.0, 6.0])
        net.embs[1][0] = torch.tensor([6.0, 6.0, -6.0])
        # task 1: small values, so that sigma'(smax * e) is not negligible
        net.embs[0][1] = torch.tensor([0.004, -0.003, 0.002])
        net.embs[1][1] = torch.tensor([-0.002, 0.005, 0.001])
    return net


x = torch.tensor([[0.5, -1.0, 2.0, 0.3], [1.5, 0.2, -0.7, 1.1]], dtype=torch.float64)
y = torch.tensor([1, 0])


def hand_loss(net, a1, a2, A):
    """Independent forward: relu(x W1' + b1) * a1 -> relu(. W2' + b2) * a2 -> head T; CE + c * R."""
    h = F.relu(x @ net.fcs[0].weight.T + net.fcs[0].bias) * a1
    h = F.relu(h @ net.fcs[1].weight.T + net.fcs[1].bias) * a2
    out = h @ net.heads[T].weight.T + net.heads[T].bias
    free = [1 - A[0], 1 - A[1]]
    reg = ((a1 * free[0]).sum() + (a2 * free[1]).sum()) / (free[0].sum() + free[1].sum())
    return F.cross_entropy(out, y) + C * reg


# 1. masks --------------------------------------------------------------------------------------------------
net = tiny()
A = cumulative_attention(net)
check(torch.equal(A[0], torch.tensor([1.0, 0, 1], dtype=torch.float64)) and torch.equal(A[1], torch.tensor([1.0, 1, 0], dtype=torch.float64)),
      'A = sigmoid(smax * e[task 0]) is exactly [1,0,1], [1,1,0]')
hand = {
    'fcs.0.weight': [[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]],  # 1 - A1[o]
    'fcs.0.bias': [0, 1, 0],
    'fcs.1.weight': [[0, 1, 0], [0, 1, 0], [1, 1, 1]],  # 1 - min(A2[o], A1[i])
    'fcs.1.bias': [0, 0, 1],
}
names = {id(p): n for n, p in net.named_parameters()}
masks = {names[id(p)]: m.expand_as(p) for p, m in gradient_masks(net, A)}  # stored broadcastable
check(set(masks) == set(hand), f'masked parameters are exactly the gated layers {sorted(hand)}')
for n, m in hand.items():
    check(torch.equal(masks[n], torch.tensor(m, dtype=torch.float64)), f'mask {n} = {m}')

alex = AlexNet(hat=True)
with torch.no_grad():
    for e in alex.embs:
        e[0] = torch.randn(e.shape[1]) * 0.01  # fractional attention values
Aa = cumulative_attention(alex)
am = {id(p): m for p, m in gradient_masks(alex, Aa)}
m1, m2, mf = am[id(alex.convs[0].weight)], am[id(alex.convs[1].weight)], am[id(alex.fcs[0].weight)]
check(alex.hw == 4 and mf.shape == (2048, 1024), 'AlexNet flatten size 256 * 2 * 2 = 1024')
o, j = torch.randint(0, 2048, (2000,)), torch.randint(0, 1024, (2000,))
check(torch.allclose(mf[o, j], 1 - torch.minimum(Aa[3][o], Aa[2][j // 4])), 'fc1 mask [o, j] = 1 - min(A_fc1[o], A_conv3[j // 4])')
check(torch.allclose((m2 * torch.ones_like(alex.convs[1].weight))[5, 7], (1 - torch.minimum(Aa[1][5], Aa[0][7])).expand(3, 3)),
      'conv2 mask [o, i, kh, kw] = 1 - min(A_conv2[o], A_conv1[i]) for all kh, kw')
check(torch.allclose((m1 * torch.ones_like(alex.convs[0].weight))[:, 1, 2, 3], 1 - Aa[0]), 'conv1 mask = 1 - A_conv1[o]')

# 2. one step ------------------------------------------------------------------------------------------------
for s in (2.5, SMAX):
    net = tiny()
    before = copy.deepcopy(net)
    A = cumulative_attention(net)
    # plain autograd gradient of the same objective, for the expected update
    ref = copy.deepcopy(net)
    a1, a2 = torch.sigmoid(s * ref.embs[0][T]), torch.sigmoid(s * ref.embs[1][T])
    hand_loss(ref, a1, a2, A).backward()
    grads = {n: p.grad for n, p in ref.named_parameters()}
    step = HatStep(net, T, A, lr=LR)
    step.backward(x, y, s)
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters() if p.grad is not None))
    check(norm < 10000, f's={s}: gradient norm {norm:.3g} below the clip (no rescaling in this check)')
    step.update()
    p_after = dict(net.named_parameters())
    for n, p0 in before.named_parameters():
        p1 = p_after[n]
        if n in hand:
            m = torch.tensor(hand[n], dtype=torch.float64)
            check(torch.equal(p1[m == 0], p0[m == 0]), f's={s}: {n}: the {int((m == 0).sum())} entries with mask 0 are unchanged')
            check(torch.allclose(p1, p0 - LR * m * grads[n], atol=1e-12), f's={s}: {n}: update = -lr * mask * gradient')
        elif n.startswith('heads.'):
            if n.startswith(f'heads.{T}.'):
                check(torch.allclose(p1, p0 - LR * grads[n], atol=1e-12) and not torch.equal(p1, p0), f's={s}: {n} (current head, unmasked) = -lr * gradient')
            else:
                check(torch.equal(p1, p0), f's={s}: {n} (other task) unchanged')
        else:  # embeddings
            check(torch.equal(p1[0], p0[0]), f's={s}: {n} row of task 0 unchanged')

# (b) clamp: with a huge lr the update overshoots [-6, 6]
net = tiny()
with torch.no_grad():
    net.embs[0][1] = torch.tensor([5.9, -5.9, 0.1])
    net.embs[1][1] = torch.tensor([-5.9, 5.9, -0.1])
step = HatStep(net, T, cumulative_attention(net), lr=1e4)
step.backward(x, y, 1.0)
unclamped = [(e - 1e4 * e.grad).detach() for e in net.embs]
step.update()
check(any(u.abs().max() > 6 for u in unclamped), 'large-lr step would leave [-6, 6] without the clamp')
check(all(e.abs().max() <= 6 for e in net.embs) and any((e.abs() == 6).any() for e in net.embs), 'embeddings clamped to [-6, 6]')

# 3. compensated embedding gradient = smax * sigma'(e) * dL/da ------------------------------------------------
for s in (2.5, 37.0, SMAX):
    net = tiny()
    A = cumulative_attention(net)
    e1, e2 = net.embs[0][T].detach(), net.embs[1][T].detach()
    a1 = torch.sigmoid(s * e1).requires_grad_()
    a2 = torch.sigmoid(s * e2).requires_grad_()
    hand_loss(net, a1, a2, A).backward()
    dsig = lambda e: torch.sigmoid(e) * (1 - torch.sigmoid(e))  # noqa: E731
    expected = [SMAX * dsig(e1) * a1.grad, SMAX * dsig(e2) * a2.grad]
    uncompensated = [s * dsig(s * e1) * a1.grad, s * dsig(s * e2) * a2.grad]
    step = HatStep(copy.deepcopy(net), T, A, lr=LR)
    step.backward(x, y, s)
    got = [e.grad for e in step.net.embs]
    k = int(expected[0].abs().argmax())
    check(all(torch.allclose(g[T], ex, rtol=1e-9, atol=1e-15) for g, ex in zip(got, expected)) and all(g[T].abs().max() > 0 for g in got),
          f's={s}: compensated embedding gradient = smax * sigma\'(e) * dL/da, e.g. {got[0][T][k].item():.6g} = {expected[0][k].item():.6g}')
    check(not all(torch.allclose(ex, un) for ex, un in zip(expected, uncompensated)), f's={s}: (and differs from the uncompensated s * sigma\'(s e) * dL/da)')
    check(all(torch.equal(g[0], torch.zeros_like(g[0])) for g in got), f's={s}: task-0 embedding rows have zero gradient')

# 4. float32 underflow: s*e far beyond the cosh clip --------------------------------------------------------------
net = tiny(torch.float32)
with torch.no_grad():
    net.embs[0][1] = torch.tensor([0.5, -0.5, 1.0])  # s*e = 200, -200, 400 at smax: sigma' underflows to 0
step = HatStep(net, T, cumulative_attention(net), lr=LR)
step.backward(x.float(), y, SMAX)
g = net.embs[0].grad
check(torch.isfinite(g).all() and torch.equal(g[T], torch.zeros(3)), 'float32, s*e >= 200: compensated gradient is exactly 0, not NaN')

# 5. clipping ----------------------------------------------------------------------------------------------------
net = tiny()
step = HatStep(net, T, cumulative_attention(net), lr=LR, clip=1e-3)
step.backward(x, y, 2.5)
torch.nn.utils.clip_grad_norm_(step.params, step.clip)
norm = torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters() if p.grad is not None))
check(abs(norm.item() - 1e-3) < 1e-8, f'global-norm clip to 1e-3 gives norm {norm.item():.9f}')

print(f'{passed} passed, 0 failed')

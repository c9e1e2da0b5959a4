"""Reference-formula tests for the KG scoring functions, negative sampling and losses."""

from __future__ import annotations

import math

import pytest
import torch

from pretrain.kg_scoring import (
    INTERACTIONS,
    corrupt,
    distmult,
    in_batch_loss,
    margin_ranking_loss,
    self_adversarial_nssa_loss,
    softplus_loss,
    transe,
)

# --- scoring functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "expected"), [(1, [-4.0, -5.0]), (2, [-math.sqrt(10.0), -3.0])])
def test_transe_against_hand_computed_norms(p, expected):
    # row 0: h + r - t = [1, 3, 0] - [2, 0, 0] = [-1, 3, 0]; row 1: h + r - t = [1, 2, 2]
    h = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    r = torch.tensor([[0.0, 1.0, 0.0], [1.0, 2.0, 2.0]])
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(transe(h, r, t, p=p), torch.tensor(expected))


def test_transe_defaults_to_l1():
    h, r, t = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    torch.testing.assert_close(transe(h, r, t), -(h + r - t).abs().sum(-1))


def test_distmult_against_hand_computed_value():
    h = torch.tensor([[1.0, 2.0, 3.0]])
    r = torch.tensor([[2.0, 0.0, -1.0]])
    t = torch.tensor([[1.0, 1.0, 2.0]])
    torch.testing.assert_close(distmult(h, r, t), torch.tensor([2.0 + 0.0 - 6.0]))


@pytest.mark.parametrize("name", sorted(INTERACTIONS))
def test_negatives_broadcast_against_a_batch_of_positives(name):
    score = INTERACTIONS[name]
    B, N, D = 4, 6, 8
    h, r, t = torch.randn(B, D), torch.randn(B, D), torch.randn(B, N, D)
    out = score(h, r, t)
    assert out.shape == (B, N)
    # each column equals scoring the positive's head and relation against that one tail
    for j in range(N):
        torch.testing.assert_close(out[:, j], score(h, r, t[:, j]))
    # corrupted heads against (B, D) relations and tails, and a single shared relation vector
    assert score(torch.randn(B, N, D), r, t[:, 0]).shape == (B, N)
    assert score(h, torch.randn(D), t).shape == (B, N)
    assert score(h, r, t[:, 0]).shape == (B,)


def test_distmult_is_symmetric_in_head_and_tail():
    h, r, t = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(distmult(h, r, t), distmult(t, r, h))


@pytest.mark.parametrize("p", [1, 2])
def test_perfect_transe_triple_scores_zero_and_beats_a_corrupted_one(p):
    h, r = torch.randn(3, 8), torch.randn(3, 8)
    t = h + r
    perfect = transe(h, r, t, p=p)
    corrupted = transe(h, r, t + torch.randn(3, 8), p=p)
    torch.testing.assert_close(perfect, torch.zeros(3))
    assert bool((perfect > corrupted).all())


@pytest.mark.parametrize("name", sorted(INTERACTIONS))
def test_gradient_flows_to_head_relation_and_tail(name):
    h, r, t = (torch.randn(3, 4, requires_grad=True) for _ in range(3))
    INTERACTIONS[name](h, r, t).sum().backward()
    for x in (h, r, t):
        assert x.grad is not None
        assert bool(torch.isfinite(x.grad).all())
        assert float(x.grad.abs().sum()) > 0.0


# --- negative sampling ---------------------------------------------------------------------------

DRUGS = torch.tensor([3, 0, 1, 2])  # deliberately unsorted
DISEASES = torch.tensor([10, 11, 12])
CANDIDATES = {"drug": DRUGS, "disease": DISEASES, "gene": torch.tensor([20])}


def _batch():
    heads = torch.tensor([0, 3, 1, 2])
    relations = torch.tensor([0, 0, 1, 2])
    tails = torch.tensor([10, 12, 20, 11])
    return heads, relations, tails, ["drug"] * 4, ["disease", "disease", "gene", "disease"]


def _corrupt(num_negatives, seed=0):
    heads, relations, tails, head_types, tail_types = _batch()
    generator = torch.Generator().manual_seed(seed)
    return corrupt(heads, relations, tails, num_negatives, CANDIDATES, head_types, tail_types, generator)


def test_corrupt_shapes_and_layout():
    heads, _, tails, _, _ = _batch()
    neg_heads, neg_tails = _corrupt(7)
    assert neg_heads.shape == neg_tails.shape == (4, 7)
    assert neg_heads.dtype == neg_tails.dtype == torch.long
    # the first 7 // 2 = 3 columns replace the head, the other 4 the tail
    assert bool((neg_tails[:, :3] == tails.unsqueeze(-1)).all())
    assert bool((neg_heads[:, 3:] == heads.unsqueeze(-1)).all())


def test_corrupt_respects_types_and_never_returns_the_true_entity():
    heads, _, tails, _, _ = _batch()
    neg_heads, neg_tails = _corrupt(400)
    replaced_heads, replaced_tails = neg_heads[:, :200], neg_tails[:, 200:]
    assert bool(torch.isin(replaced_heads, DRUGS).all())
    assert bool((replaced_heads != heads.unsqueeze(-1)).all())
    multi = torch.tensor([0, 1, 3])  # rows whose tail type has more than one candidate
    assert bool(torch.isin(replaced_tails[multi], DISEASES).all())
    assert bool((replaced_tails[multi] != tails[multi].unsqueeze(-1)).all())
    # a single-candidate type can only give back that candidate
    assert bool((replaced_tails[2] == 20).all())
    # and every other candidate of the type is reached
    for i in range(4):
        assert set(replaced_heads[i].tolist()) == set(DRUGS.tolist()) - {int(heads[i])}


def test_corrupt_is_uniform_over_the_other_candidates():
    heads = torch.zeros(1, dtype=torch.long)
    generator = torch.Generator().manual_seed(1)
    neg_heads, _ = corrupt(heads, heads, heads, 6000, {"drug": DRUGS}, ["drug"], ["drug"], generator)
    counts = torch.bincount(neg_heads[0, :3000], minlength=4)
    assert int(counts[0]) == 0
    assert all(abs(int(c) - 1000) < 120 for c in counts[1:])  # about 4 standard deviations


def test_corrupt_is_deterministic_given_a_seeded_generator():
    first, second, other = _corrupt(10, seed=7), _corrupt(10, seed=7), _corrupt(10, seed=8)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not (torch.equal(first[0], other[0]) and torch.equal(first[1], other[1]))


def test_corrupt_accepts_type_ids_as_a_tensor():
    heads, relations, tails = torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([10, 11])
    generator = torch.Generator().manual_seed(0)
    neg_heads, neg_tails = corrupt(
        heads, relations, tails, 4, {0: DRUGS, 1: DISEASES}, torch.tensor([0, 0]), torch.tensor([1, 1]), generator
    )
    assert bool(torch.isin(neg_heads[:, :2], DRUGS).all())
    assert bool(torch.isin(neg_tails[:, 2:], DISEASES).all())


def test_corrupt_rejects_an_entity_outside_its_type():
    heads, relations, tails = torch.tensor([10]), torch.tensor([0]), torch.tensor([11])
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="not among the candidates"):
        corrupt(heads, relations, tails, 2, CANDIDATES, ["drug"], ["disease"], generator)
    with pytest.raises(KeyError, match="no candidates"):
        corrupt(heads, relations, tails, 2, CANDIDATES, ["protein"], ["disease"], generator)


# --- losses --------------------------------------------------------------------------------------


def test_margin_ranking_loss_against_hand_computed_value():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.5, 2.0], [-1.0, 0.0]])
    # relu(1 - 1 + 0.5), relu(1 - 1 + 2), relu(1 - 0 - 1), relu(1 - 0 + 0) = 0.5, 2, 0, 1
    torch.testing.assert_close(margin_ranking_loss(pos, neg, margin=1.0), torch.tensor(3.5 / 4))
    # margin 0: relu(-0.5), relu(1), relu(-1), relu(0) = 0, 1, 0, 0
    torch.testing.assert_close(margin_ranking_loss(pos, neg, margin=0.0), torch.tensor(1.0 / 4))


def test_softplus_loss_against_hand_computed_value():
    ln3 = math.log(3.0)
    pos = torch.tensor([0.0, ln3])
    neg = torch.tensor([[ln3, 0.0], [-ln3, 0.0]])
    # positives: softplus(0) = ln 2, softplus(-ln 3) = ln(4/3); negatives: ln 4, ln 2, ln(4/3), ln 2
    expected = (math.log(2) + math.log(4 / 3)) / 2 + (math.log(4) + 2 * math.log(2) + math.log(4 / 3)) / 4
    torch.testing.assert_close(softplus_loss(pos, neg), torch.tensor(expected))


def test_in_batch_loss_against_hand_computed_value_and_mask():
    ln3 = math.log(3.0)
    pos = torch.tensor([0.0, ln3])
    scores = torch.tensor([[ln3, 0.0, 100.0], [0.0, 0.0, ln3]])
    allowed = torch.tensor([[True, True, False], [True, False, False]])
    # row 0: -log(1 / (1 + 3 + 1)) = ln 5 (the masked 100 takes no part); row 1: -log(3 / (3 + 1)) = ln(4/3)
    expected = (math.log(5) + math.log(4 / 3)) / 2
    torch.testing.assert_close(in_batch_loss(pos, scores, allowed), torch.tensor(expected))
    # no allowed negative: nothing to rank against, zero loss
    torch.testing.assert_close(in_batch_loss(pos, scores, torch.zeros(2, 3, dtype=torch.bool)), torch.tensor(0.0))
    with pytest.raises(ValueError, match="bool mask"):
        in_batch_loss(pos, scores, allowed.float())


def test_nssa_loss_against_hand_computed_value():
    ln3 = math.log(3.0)
    pos = torch.tensor([1.0])
    neg = torch.tensor([[0.0, ln3]])
    # weights softmax([0, ln 3]) = [1/4, 3/4]; -log sigmoid(x) = log(1 + exp(-x))
    expected = math.log1p(math.exp(-2.0)) + 0.25 * math.log1p(math.e) + 0.75 * math.log1p(3 * math.e)
    loss = self_adversarial_nssa_loss(pos, neg, margin=1.0, temperature=1.0)
    torch.testing.assert_close(loss, torch.tensor(expected))
    # temperature 0 weighs the negatives uniformly
    uniform = math.log1p(math.exp(-2.0)) + 0.5 * math.log1p(math.e) + 0.5 * math.log1p(3 * math.e)
    loss = self_adversarial_nssa_loss(pos, neg, margin=1.0, temperature=0.0)
    torch.testing.assert_close(loss, torch.tensor(uniform))


def test_nssa_weights_are_detached():
    pos = torch.tensor([0.5])
    neg = torch.tensor([[0.0, 1.0, -2.0]], requires_grad=True)
    self_adversarial_nssa_loss(pos, neg, margin=2.0, temperature=0.7).backward()
    weights = torch.softmax(0.7 * neg.detach(), dim=-1)
    # with the weights held constant, d/dneg_j [-w_j log sigmoid(-margin - neg_j)] = w_j sigmoid(margin + neg_j)
    torch.testing.assert_close(neg.grad, weights * torch.sigmoid(2.0 + neg.detach()))


@pytest.mark.parametrize("loss", [margin_ranking_loss, softplus_loss, self_adversarial_nssa_loss])
def test_losses_reward_ranking_positives_higher(loss):
    neg = torch.zeros(3, 5)
    good, bad = loss(torch.full((3,), 5.0), neg), loss(torch.full((3,), -5.0), neg)
    assert good.shape == ()
    assert float(good) < float(bad)


@pytest.mark.parametrize("loss", [margin_ranking_loss, softplus_loss, self_adversarial_nssa_loss])
def test_losses_reject_mismatched_shapes(loss):
    with pytest.raises(ValueError, match=r"\(B,\)"):
        loss(torch.zeros(3), torch.zeros(4, 5))

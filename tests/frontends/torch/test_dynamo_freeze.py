"""torch.compile(backend="kiln") freezes weights by default, guarded: a weight changed after
compiling (in place, replaced, reloaded) is seen, with the recompiles kiln/frontends/torch/
dynamo.py documents (one refreeze, then weights as inputs for good)."""

import warnings

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from torch import nn  # noqa: E402

from kiln.frontends.torch.dynamo import KilnFallbackWarning, kiln_backend  # noqa: E402
from kiln.frontends.torch.guards import WeightGuard  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


class Counting:
    """kiln_backend, counting the graphs Dynamo hands it."""

    def __init__(self, **options):
        self.graphs, self.options = [], options

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        return kiln_backend(gm, example_inputs, options=self.options)


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


def matches_eager(compiled, model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnFallbackWarning)
        with torch.no_grad():
            got, want = compiled(x), model(x)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    return got


def test_default_is_frozen_and_matches_eager(kiln_compiles):
    model, x = mlp(), torch.randn(3, 8)
    backend = Counting()
    compiled = torch.compile(model, backend=backend)
    for _ in range(3):
        matches_eager(compiled, model, x)
    (made,) = kiln_compiles
    assert len(made.frozen) == 4 and len(made.model.input_names) == 1     # only x
    assert made.recompiles == 0 and len(backend.graphs) == 1


def add_in_place(model):
    model[0].weight.add_(0.5)


def copy_through_detach(model):
    model[2].bias.detach().copy_(torch.randn(4))


def index_assign(model):
    model[0].weight[0, 0] = 3.0


def replace_storage(model):
    model[0].weight.data = torch.randn(16, 8)


def replace_parameter(model):
    model[2].weight = nn.Parameter(torch.randn(4, 16))


def load_state_dict(model):
    model.load_state_dict({k: torch.randn_like(v) for k, v in model.state_dict().items()})


def load_state_dict_assign(model):
    model.load_state_dict({k: torch.randn_like(v) for k, v in model.state_dict().items()},
                          assign=True)


CHANGES = [add_in_place, copy_through_detach, index_assign, replace_storage, replace_parameter,
           load_state_dict, load_state_dict_assign]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_a_changed_weight_is_seen_after_one_refreeze(kiln_compiles, change):
    model, x = mlp(), torch.randn(3, 8)
    backend = Counting()
    compiled = torch.compile(model, backend=backend)
    before = matches_eager(compiled, model, x)
    with torch.no_grad():
        change(model)
    after = matches_eager(compiled, model, x)
    assert not torch.allclose(before, after)            # the change mattered
    matches_eager(compiled, model, x)                   # and the guard holds again
    (made,) = kiln_compiles
    assert made.recompiles == 1 and len(made.frozen) == 4     # frozen again, new values
    assert len(backend.graphs) == 1                     # Dynamo did not recompile


def test_weights_that_keep_changing_become_inputs(kiln_compiles):
    model, x = mlp(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="kiln")
    matches_eager(compiled, model, x)
    (made,) = kiln_compiles
    for step in range(1, 5):
        with torch.no_grad():
            model[0].weight.mul_(0.9)
        matches_eager(compiled, model, x)
        # first change: refrozen; second: weights as inputs, and no compile after that
        assert made.recompiles == min(step, 2)
    assert made.frozen == {} and made.guard is None
    assert len(made.model.input_names) == 5             # x and the four weights


def test_a_buffer_the_graph_writes_is_not_frozen(kiln_compiles):
    """A buffer the forward updates in place (a step counter) changes on every call: it stays
    an input, the weights are frozen, nothing is compiled again; every call matches eager."""
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.lin = nn.Linear(4, 4)
            self.register_buffer("steps", torch.zeros(()))

        def forward(self, x):
            self.steps.add_(1)
            return self.lin(x) * self.steps

    compiled, reference = Counter(), Counter()
    run = torch.compile(compiled, backend="kiln")
    x = torch.randn(4)
    for _ in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("error", KilnFallbackWarning)
            with torch.no_grad():
                torch.testing.assert_close(run(x), reference(x), rtol=RTOL, atol=ATOL)
    (made,) = kiln_compiles
    assert made.recompiles == 0
    assert sorted(t.shape for t in made.frozen.values()) == [(4,), (4, 4)]    # not steps
    torch.testing.assert_close(compiled.steps, reference.steps)


def test_freeze_false_takes_weights_as_inputs(kiln_compiles):
    model, x = mlp(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="kiln", options={"freeze": False})
    matches_eager(compiled, model, x)
    with torch.no_grad():
        model[0].weight.add_(1)
        model[2].bias = nn.Parameter(torch.randn(4))
    matches_eager(compiled, model, x)
    (made,) = kiln_compiles
    assert made.frozen == {} and made.guard is None and made.recompiles == 0
    assert len(made.model.input_names) == 5


def test_writes_through_data_are_not_seen(kiln_compiles):
    """The documented limit: `.data` has a version counter of its own, so a write through it
    leaves the frozen graph stale (docs/torch.md); freeze=False sees it."""
    model, x = mlp(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="kiln")
    before = matches_eager(compiled, model, x)
    model[0].weight.data.add_(1)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), before)
        assert not torch.allclose(model(x), before)
    assert kiln_compiles[0].recompiles == 0


def test_inference_tensors_stay_inputs(kiln_compiles):
    """Weights made under inference_mode have no version counter to guard."""
    with torch.inference_mode():
        model = mlp()
        x = torch.randn(3, 8)
        compiled = torch.compile(model, backend="kiln")
        torch.testing.assert_close(compiled(x), model(x), rtol=RTOL, atol=ATOL)
        (made,) = kiln_compiles
        assert made.frozen == {} and len(made.model.input_names) == 5
        model[0].weight.add_(1)
        torch.testing.assert_close(compiled(x), model(x), rtol=RTOL, atol=ATOL)


def test_guard_reports_what_changed():
    a, b, c = torch.randn(3), torch.randn(3), torch.randn(2, 2)
    guard = WeightGuard({0: a, 2: b, 3: c})
    args = [a, "x", b, c]
    assert guard.holds(args) and guard.changes(args) == []
    b.add_(1)
    c.data = torch.randn(2, 2)
    args[0] = a.clone()
    assert not guard.holds(args)
    assert guard.changes(args) == ["input 0: another tensor object",
                                   "input 2: written in place (version 0 -> 1)",
                                   "input 3: its storage was replaced"]


def test_module_instances_sharing_a_graph_keep_their_own_frozen_weights(kiln_compiles):
    """Dynamo hands two instances of one class the same graph: each instance's weights get a
    frozen variant (one recompile), and alternating calls switch between them."""
    first, second, x = mlp(), mlp(), torch.randn(3, 8)
    with torch.no_grad():
        second[0].weight.mul_(2)
    a, b = torch.compile(first, backend="kiln"), torch.compile(second, backend="kiln")
    for _ in range(3):
        matches_eager(a, first, x)
        matches_eager(b, second, x)
    (made,) = kiln_compiles
    assert made.recompiles == 1 and len(made.variants) == 2 and made.switches == 4
    assert len(made.frozen) == 4


def test_a_failed_recompile_warns_and_runs_the_graph_eagerly(kiln_compiles, monkeypatch):
    from kiln.errors import LoweringError
    model, x = mlp(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="kiln")
    matches_eager(compiled, model, x)
    (made,) = kiln_compiles

    def refuse(frozen):
        raise LoweringError("no lowering today")
    monkeypatch.setattr(made, "_build", refuse)
    with torch.no_grad():
        model[0].weight.add_(1)
        with pytest.warns(KilnFallbackWarning, match="weights changed.*no lowering today"):
            got = compiled(x)
        torch.testing.assert_close(got, model(x), rtol=RTOL, atol=ATOL)
        model[0].weight.add_(1)                         # eager from now on: no more compiles
        torch.testing.assert_close(compiled(x), model(x), rtol=RTOL, atol=ATOL)
    assert made.recompiles == 1 and made.guard is None

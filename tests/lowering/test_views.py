"""View, movement and creation lowerings against the Graph IR interpreter."""

import numpy as np
import pytest

from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.loops.buffer import BufferKind

from .harness import check_graph, check_op, rand

I64 = np.int64


def ints(*values):
    return np.array(values, I64)


def kernel_count(program) -> int:
    return len(program.kernels)


# --- views ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,target,allowzero", [
    ((2, 3, 4), (6, 4), 0), ((2, 3, 4), (-1,), 0), ((2, 3, 4), (0, -1), 0),
    ((2, 3, 4), (4, 0, 2), 0), ((6,), (1, 2, 1, 3), 0), ((1, 5), (5,), 0), ((), (1, 1), 0),
    ((3, 0), (0, 3), 1), ((2, 0, 3), (0, -1), 0), ((7,), (7, 1), 0),
])
def test_reshape(backend, shape, target, allowzero):
    prog = check_op(backend, "Reshape", [rand(shape), ints(*target)], {"allowzero": allowzero},
                    consts=[1])
    assert kernel_count(prog) == 1          # only the copy into the output


def test_reshape_of_a_transposed_view(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, 2, 3, 4))
    t = b.Transpose(b.Neg(x), perm=[0, 2, 1])
    y = b.Reshape(t, b.constant(ints(2, 12)))
    z = b.Reshape(t, b.constant(ints(8, 3)))
    w = b.Reshape(t, b.constant(ints(24)))
    b.output(b.Abs(y), b.Abs(z), b.Abs(w))
    check_graph(backend, b.graph, {"x": rand((2, 3, 4))})


def test_reshape_with_a_shape_computed_from_a_symbolic_batch(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, "n", 3, 4))
    n = b.Gather(b.Shape(x), b.constant(ints(0)))
    target = b.Concat(n, b.constant(ints(-1)), axis=0)
    y = b.Reshape(b.Sqrt(x), target)
    b.output(b.Neg(y))
    prog = check_graph(backend, b.graph, {"x": rand((2, 3, 4), low=0, high=4)})
    assert kernel_count(prog) == 2          # Sqrt and Neg; the shape arithmetic is compiled away
    assert str(prog.outputs[0].shape[1]) == "Const(12, i64)"


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(backend, axis):
    check_op(backend, "Flatten", [rand((2, 3, 1, 5))], {"axis": axis})


def test_squeeze_unsqueeze(backend):
    x = rand((1, 3, 1, 2))
    check_op(backend, "Squeeze", [x])
    check_op(backend, "Squeeze", [x, ints(0)], consts=[1])
    check_op(backend, "Squeeze", [x, ints(-2, 0)], consts=[1])
    check_op(backend, "Squeeze", [np.ones((1, 1), np.float32)])
    check_op(backend, "Unsqueeze", [rand((3, 2)), ints(0, -1)], consts=[1])
    check_op(backend, "Unsqueeze", [rand((3, 2)), ints(1, 3)], consts=[1])
    check_op(backend, "Unsqueeze", [np.array(4.0, np.float32), ints(0)], consts=[1])
    check_op(backend, "Squeeze", [rand((4, 1)), ints(1)], consts=[1], dims={0: ("n", 1)})


@pytest.mark.parametrize("perm", [None, (0, 1, 2), (2, 0, 1), (1, 0, 2)])
def test_transpose(backend, perm):
    attrs = {} if perm is None else {"perm": perm}
    check_op(backend, "Transpose", [rand((2, 3, 5))], attrs)


def test_transpose_symbolic_and_integer(backend):
    x = rand((4, 3), np.int32, low=-9, high=9)
    check_op(backend, "Transpose", [x], dims={0: ("n", 3)})


@pytest.mark.parametrize("shape,target", [
    ((3, 1), (3, 4)), ((3, 1), (2, 3, 4)), ((), (2, 3)), ((1,), (5,)), ((2, 3), (1, 1)),
    ((4, 1), (1, 0)), ((2, 1, 3), (2, 4, 3)),
])
def test_expand(backend, shape, target):
    check_op(backend, "Expand", [rand(shape), ints(*target)], consts=[1])


@pytest.mark.parametrize("n", [1, 3])
def test_expand_symbolic_dim_that_may_be_one(backend, n):
    check_op(backend, "Expand", [rand((n, 1)), ints(3, 2)], consts=[1], dims={0: ("n", 1)})


def test_identity_and_dropout(backend):
    x = rand((3, 2))
    check_op(backend, "Identity", [x])
    check_op(backend, "Dropout", [x], outputs=2)
    check_op(backend, "Dropout", [x, np.array(0.3, np.float32), np.array(False)], consts=[1, 2],
             outputs=2)


SLICES = [
    # starts, ends, axes, steps
    ((1,), (4,), None, None), ((0, 1), (2, 3), (0, 1), None), ((-3,), (-1,), (1,), None),
    ((4,), (0,), (1,), (-1,)), ((-1,), (-2 ** 63,), (1,), (-2,)),
    ((0,), (2 ** 63 - 1,), (1,), (2,)),
    ((1,), (100,), (-1,), (3,)), ((10,), (20,), (0,), None), ((2,), (2,), (1,), None),
    ((-100,), (100,), (0,), (1,)), ((5,), (-100,), (1,), (-3,)),
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(backend, starts, ends, axes, steps):
    ops_in = [rand((3, 6)), ints(*starts), ints(*ends)]
    ops_in += [None if axes is None else ints(*axes), None if steps is None else ints(*steps)]
    if axes is None and steps is None:
        ops_in = ops_in[:3]
    elif steps is None:
        ops_in = ops_in[:4]
    present = [i for i in range(1, len(ops_in)) if ops_in[i] is not None]
    check_op(backend, "Slice", ops_in, consts=present)


@pytest.mark.parametrize("n", [0, 2, 5])
def test_slice_symbolic_dim(backend, n):
    x = rand((n, 3))
    for starts, ends, steps in [((1,), (2 ** 63 - 1,), (1,)), ((-2,), (100,), (1,)),
                                ((-1,), (-2 ** 63,), (-1,)), ((0,), (-1,), (2,))]:
        check_op(backend, "Slice", [x, ints(*starts), ints(*ends), ints(0), ints(*steps)],
                 consts=[1, 2, 3, 4], dims={0: ("n", 3)})


def test_split(backend):
    x = rand((2, 7))
    check_op(backend, "Split", [x], {"axis": 1, "num_outputs": 3}, outputs=3)
    check_op(backend, "Split", [x, ints(2, 0, 5)], {"axis": -1}, consts=[1], outputs=3)
    check_op(backend, "Split", [x], {"axis": 0, "num_outputs": 2}, outputs=2)
    check_op(backend, "Split", [rand((5, 2))], {"num_outputs": 2}, outputs=2, dims={0: ("n", 2)})


def test_views_are_not_copied_between_kernels(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, 4, 6))
    v = b.Slice(b.Transpose(b.Exp(x)), b.constant(ints(1)), b.constant(ints(5)),
                b.constant(ints(0)), b.constant(ints(2)))
    v = b.Unsqueeze(b.Reshape(v, b.constant(ints(-1))), b.constant(ints(0)))
    b.output(b.Log(v))
    prog = check_graph(backend, b.graph, {"x": rand((4, 6))})
    assert [k.name for k in prog.kernels] == ["exp", "log"]
    (log,) = [k for k in prog.kernels if k.name == "log"]
    views = [buf for buf in log.buffers if buf.base is not None]
    assert views and all(v.root.name == "exp" for v in views)


# --- movement ------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(backend, axis):
    shapes = [(2, 3), (2, 3), (2, 3)]
    shapes = [tuple(n if k == axis % 2 else d for k, d in enumerate(s))
              for s, n in zip(shapes, (1, 0, 4))]
    check_op(backend, "Concat", [rand(s, seed=i) for i, s in enumerate(shapes)], {"axis": axis})


def test_concat_integers_symbolic_and_fused_reads(backend):
    a, c = rand((3, 2), np.int32, seed=1), rand((3, 4), np.int32, seed=2)
    check_op(backend, "Concat", [a, c], {"axis": 1}, dims={0: ("n", 2), 1: ("n", 4)})
    check_op(backend, "Concat", [rand((1,)), rand((2,), seed=3)], {"axis": 0})
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, 2, 3))
    cat = b.Concat(x, b.Neg(x), axis=0)
    b.output(b.Transpose(cat))          # read through a view of the concatenation
    check_graph(backend, b.graph, {"x": rand((2, 3))})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [(1, 2, 2, 0), (0, 0, 0, 0), (-1, 1, 0, -2), (2, 2, 2, 2)])
def test_pad(backend, mode, pads):
    x = rand((3, 4))
    args = [x, ints(*pads)]
    if mode == "constant":
        args.append(np.array(9.5, np.float32))
    check_op(backend, "Pad", args, {"mode": mode}, consts=[1, 2])


def test_pad_axes_default_value_and_integers(backend):
    x = rand((2, 3, 4), np.int64, low=-5, high=5)
    check_op(backend, "Pad", [x, ints(1, 2), None, ints(-1)], consts=[1, 3])
    check_op(backend, "Pad", [x[0], ints(1, 0, 1, 2)], {"mode": "reflect"}, consts=[1])
    check_op(backend, "Pad", [x[0], ints(0, -4, 0, 2)], consts=[1])     # all of axis 1 cropped
    check_op(backend, "Pad", [rand((3, 3)), ints(1, 1, 1, 1), np.array(2.0, np.float32)],
             consts=[1])   # the pad value is a graph input: read at run time


@pytest.mark.parametrize("reps", [(1, 1), (2, 3), (1, 0), (3, 1)])
def test_tile(backend, reps):
    check_op(backend, "Tile", [rand((2, 3)), ints(*reps)], consts=[1])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather(backend, axis):
    x = rand((3, 4, 5))
    n = x.shape[axis]
    idx = np.array([[0, n - 1], [-1, -n], [1, 2 % n]], I64)
    check_op(backend, "Gather", [x, idx], {"axis": axis})
    check_op(backend, "Gather", [x, idx.astype(np.int32)], {"axis": axis}, consts=[1])
    check_op(backend, "Gather", [x, np.array(-2, I64)], {"axis": axis})


def test_gather_symbolic_and_empty(backend):
    check_op(backend, "Gather", [rand((4, 3)), ints(3, 0, -4)], dims={0: ("n", 3)})
    check_op(backend, "Gather", [rand((4, 3)), np.zeros((0,), I64)], {"axis": 1})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(backend, axis):
    x = rand((3, 4))
    n = x.shape[axis]
    idx = np.array([[0, 1, n - 1], [-1, 0, 1]], I64)
    check_op(backend, "GatherElements", [x, idx], {"axis": axis})


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_and_back(backend, mode):
    check_op(backend, "DepthToSpace", [rand((1, 8, 2, 3))], {"blocksize": 2, "mode": mode})
    check_op(backend, "SpaceToDepth", [rand((2, 2, 4, 6))], {"blocksize": 2, "mode": mode})
    check_op(backend, "DepthToSpace", [rand((1, 18, 1, 2))], {"blocksize": 3, "mode": mode})


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 1, -2, 10])
def test_trilu(backend, upper, k):
    args = [rand((2, 3, 4))] + ([] if k is None else [np.array(k, I64)])
    check_op(backend, "Trilu", args, {"upper": upper}, consts=[1])


# --- creation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,start,limit,delta", [
    (np.int64, 0, 7, 1), (np.int32, 10, -3, -4), (np.int16, 5, 5, 1), (np.float32, 0.5, 3.0, 0.4),
    (np.float64, -1.0, 1.0, 0.25), (np.float16, 0.0, 2.0, 0.3),
])
def test_range(backend, dtype, start, limit, delta):
    args = [np.array(v, dtype) for v in (start, limit, delta)]
    check_op(backend, "Range", args, consts=[0, 1, 2])


def test_range_up_to_a_symbolic_size(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, "n"))
    n = b.Squeeze(b.Shape(x), b.constant(ints(0)))
    r = b.Range(b.constant(np.array(0, I64)), n, b.constant(np.array(1, I64)))
    b.output(b.Add(b.Cast(r, to=DType.float32), x))
    for size in (0, 3):
        check_graph(backend, b.graph, {"x": rand((size,))})


def test_constant_of_shape_and_eye_like(backend):
    check_op(backend, "ConstantOfShape", [ints(2, 3)], consts=[0])
    check_op(backend, "ConstantOfShape", [ints(3)], {"value": np.array([7], np.int32)},
             consts=[0])
    check_op(backend, "ConstantOfShape", [ints()], {"value": np.array([True])}, consts=[0])
    for k in (0, 1, -2):
        check_op(backend, "EyeLike", [rand((3, 4))], {"k": k})
    check_op(backend, "EyeLike", [rand((3, 3))], {"dtype": DType.int32})
    check_op(backend, "EyeLike", [rand((2, 3), np.bool_)])


@pytest.mark.parametrize("start,end", [(0, None), (1, None), (-2, None), (0, -1), (2, 1)])
def test_shape_and_size(backend, start, end):
    attrs = {"start": start} if end is None else {"start": start, "end": end}
    check_op(backend, "Shape", [rand((2, 3, 4))], attrs)
    check_op(backend, "Shape", [rand((2, 3, 4))], attrs, dims={0: ("n", 3, "m")})
    check_op(backend, "Size", [rand((2, 3, 4))], dims={0: ("n", 3, 4)})
    check_op(backend, "Size", [np.array(1.0, np.float32)])


def test_graph_output_that_is_a_view_is_copied_into_its_own_buffer(backend):
    prog = check_op(backend, "Transpose", [rand((2, 3))])
    (out,) = prog.outputs
    assert out.kind is BufferKind.OUTPUT and out.base is None
    assert [k.name for k in prog.kernels] == ["copy"]


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd(backend, batch_dims):
    data = rand((2, 3, 4))
    idx = np.array([[[1], [-1]], [[0], [-2]]], I64)                    # k = 1
    check_op(backend, "GatherND", [data, idx], {"batch_dims": batch_dims})
    idx2 = np.array([[[1, 3], [0, -4]], [[2, 0], [-1, 1]]], I64)        # k = 2
    if batch_dims == 0:
        idx2 = np.array([[0, 2], [1, -1]], I64)
    check_op(backend, "GatherND", [data, idx2], {"batch_dims": batch_dims})


def test_array_feature_extractor(backend):
    check_op(backend, "ArrayFeatureExtractor", [rand((3, 5)), ints(4, 0, 2)])
    check_op(backend, "ArrayFeatureExtractor", [rand((5,)), np.array([[1], [3]], I64)])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(backend, axis):
    indices = np.array([[0, 3, -1], [2, 7, -5]], I64)
    values = np.array([0.5, 2.0], np.float32)
    check_op(backend, "OneHot", [indices, np.array(5, I64), values], {"axis": axis}, consts=[1])
    check_op(backend, "OneHot", [indices.astype(np.float32) + 0.5, np.array([4.0], np.float32),
                                 np.array([0, 1], np.int32)], {"axis": axis}, consts=[1])


@pytest.mark.parametrize("batch_axis,time_axis", [(1, 0), (0, 1)])
def test_reverse_sequence(backend, batch_axis, time_axis):
    x = rand((4, 3, 2)) if batch_axis == 1 else rand((3, 4, 2))
    check_op(backend, "ReverseSequence", [x, ints(4, 0, 2)],
             {"batch_axis": batch_axis, "time_axis": time_axis})


@pytest.mark.parametrize("sizes,axes", [((2, 7), None), ((5, 3), None), ((1,), (0,)),
                                        ((8,), (-1,))])
def test_center_crop_pad(backend, sizes, axes):
    attrs = {} if axes is None else {"axes": axes}
    check_op(backend, "CenterCropPad", [rand((4, 5)), ints(*sizes)], attrs, consts=[1])
    check_op(backend, "CenterCropPad", [rand((4, 5)), ints(*sizes)], attrs, consts=[1],
             dims={0: ("n", 5)})

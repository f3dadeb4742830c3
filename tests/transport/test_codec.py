"""Round trips of the wire codec, in memory and through channels, against the input itself."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pet.errors import PetTypeError, ProtocolError
from pet.transport import codec, local_pair

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]


def same(a, b) -> bool:
    """Structural equality that treats NaN as equal to NaN and checks types and dtypes."""
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, np.generic):
        return type(a) is type(b) and same(np.asarray(a), np.asarray(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**300), 2**300), st.floats(allow_nan=True),
    st.text(), st.binary(),
)
keys = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none(), st.binary(max_size=4))
values = st.recursive(
    st.one_of(scalars, arrays),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_encode_decode_round_trip(value):
    frame = codec.encode(value)
    assert frame.nbytes == len(frame.join())
    assert same(value, codec.decode(frame.join()))
    assert same(value, codec.decode(bytearray(frame.join())))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_round_trip_through_local_pair(value):
    a, b = local_pair(timeout=5)
    a.send(value)
    assert same(value, b.recv())
    assert a.stats.bytes_sent == b.stats.bytes_received == codec.encode(value).nbytes
    assert a.stats.messages_sent == b.stats.messages_received == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_big_endian_and_zero_d_arrays(dtype):
    base = (np.arange(60) % 7).astype(dtype).reshape(3, 4, 5)
    cases = [
        base[:, ::2, 1:],                       # non-contiguous
        base.transpose(2, 0, 1),                # Fortran-like order
        np.asarray(base[1, 2, 3]),              # 0-d
        base[:0],                               # empty
        base.astype(np.dtype(dtype).newbyteorder(">")),  # big-endian
    ]
    for arr in cases:
        out = codec.decode(codec.encode(arr).join())
        assert out.shape == arr.shape
        assert out.dtype == arr.dtype.newbyteorder("=")
        assert np.array_equal(out, arr)
    scalar = np.dtype(dtype).type(1)
    assert same(scalar, codec.decode(codec.encode(scalar).join()))


def test_received_arrays_are_writable_and_independent_of_sender():
    a, b = local_pair(timeout=5)
    x = np.arange(10)
    a.send(x)
    x[:] = -1  # the sender reusing its buffer must not change what was sent
    y = b.recv()
    assert np.array_equal(y, np.arange(10))
    y[0] = 5  # writable


@pytest.mark.parametrize("bad", [object(), {1, 2}, np.array(["a", "b"]), np.array([object()]),
                                 np.zeros(2, dtype="datetime64[s]"), lambda: 0, [1, [2, {3: complex(1, 2)}]]])
def test_types_outside_the_whitelist_are_refused(bad):
    with pytest.raises(PetTypeError):
        codec.encode(bad)


def test_nesting_depth_is_limited_on_both_sides():
    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ProtocolError, match="max_depth"):
        codec.encode(deep)
    frame = codec.encode(deep, max_depth=100).join()
    with pytest.raises(ProtocolError, match="max_depth"):
        codec.decode(frame)
    assert same(deep, codec.decode(frame, max_depth=100))


def test_frame_size_limit_on_send_and_receive():
    from pet.errors import FrameTooLarge

    a, b = local_pair(timeout=5, max_frame_size=1000)
    with pytest.raises(FrameTooLarge):
        a.send(np.zeros(1000))
    frame = codec.encode(np.zeros(1000)).join()
    with pytest.raises(FrameTooLarge):
        codec.decode(frame, max_frame_size=1000)

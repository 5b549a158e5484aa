"""TLV value bytes (codec/tlv.py value_bytes) decoded by the host's independent codec (tools/lwm2m_codec.py),
floats in particular: 4 bytes when single precision holds the value, else 8 — also beyond single
precision's range, where CPython's struct refuses ">f" (the client answered 5.00 there)."""
import sys
from pathlib import Path

import pytest

from lwm2m_mpy.codec import tlv

TOOLS = str(Path(__file__).resolve().parent.parent / "tools")
if TOOLS not in sys.path:
    sys.path.append(TOOLS)  # appended: tools/ must not shadow other modules
import lwm2m_codec as codec  # noqa: E402

FLOAT = 4


@pytest.mark.parametrize("value, size", [(2.5, 4), (0.1, 8), (3.5e38, 8), (-1e300, 8), (3.4e38, 8), (2.0 ** 100, 4),
                                         (1e-45, 8), (2.0 ** -140, 4), (float("inf"), 8), (-0.0, 4)])
def test_float_value_bytes_decode_to_the_same_float(value, size):
    data = tlv.value_bytes(value, FLOAT)
    assert len(data) == size
    assert codec.decode_tlv_value(data, "float") == value


def test_nan_goes_as_a_double_nan():
    data = tlv.value_bytes(float("nan"), FLOAT)
    back = codec.decode_tlv_value(data, "float")
    assert back != back

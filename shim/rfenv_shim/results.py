"""Converting a method's return value to the JSON of a /call answer (the contract's conversions)."""

import base64
import dataclasses
import json

from .wire import P200, P500, err_body


def _default(o):
    """json `default` hook: the conversions of the contract, else TypeError."""
    if isinstance(o, (set, frozenset)):
        return list(o)
    if isinstance(o, (bytes, bytearray, memoryview)):
        return base64.b64encode(o).decode("ascii")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if not isinstance(o, type):
        f = getattr(o, "model_dump", None)  # pydantic v2
        if f is not None and callable(f):
            return f()
        if hasattr(o, "__fields__"):  # pydantic v1
            f = getattr(o, "dict", None)
            if f is not None and callable(f):
                return f()
        f = getattr(o, "to_dict", None)
        if f is not None and callable(f):
            return f()
        # numpy arrays and scalars (and torch tensors): what evaluation code returns most often.
        # Checked by module so that an arbitrary object with a tolist() is not taken for one.
        mod = getattr(type(o), "__module__", "") or ""
        if mod.split(".")[0] in ("numpy", "torch"):
            f = getattr(o, "tolist", None)
            if f is not None and callable(f):
                return f()
    raise TypeError("object of type %s is not JSON serializable" % _typename(o))


def _typename(o):
    t = type(o)
    mod = getattr(t, "__module__", "")
    if mod in ("builtins", "__main__", "env", None, ""):
        return t.__qualname__
    return "%s.%s" % (mod, t.__qualname__)


_enc_result = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"),
                               default=_default).encode
_INF = float("inf")


def _special(x):
    if x != x:
        return "NaN"
    if x == _INF:
        return "Infinity"
    if x == -_INF:
        return "-Infinity"
    return x


def _sanitize(o):
    """Replace NaN/±Infinity (values and keys) by strings; slow path only."""
    if isinstance(o, float):
        return _special(o)
    if isinstance(o, (str, int)) or o is None:
        return o
    if isinstance(o, dict):
        return {(_special(k) if isinstance(k, float) else k): _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [_sanitize(v) for v in o]
    try:
        c = _default(o)
    except Exception:
        return o  # the final encode reports it
    if isinstance(c, str):
        return c
    return _sanitize(c)


def encode_result(name, value):
    """(prefix, body) of a method's result."""
    try:
        return P200, b'{"result":' + _enc_result(value).encode("ascii") + b"}"
    except ValueError as e:  # NaN/Infinity (or circular / huge int: reported below)
        first = e
    except Exception as e:  # TypeError (unsupported type/key), RecursionError, ...
        return P500, _not_serialisable(name, e)
    try:
        return P200, b'{"result":' + _enc_result(_sanitize(value)).encode("ascii") + b"}"
    except Exception as e:
        return P500, _not_serialisable(name, e if isinstance(e, TypeError) else first)


def _not_serialisable(name, e):
    try:
        detail = str(e)
    except Exception:
        detail = type(e).__name__
    return err_body("TypeError", "result of %s is not JSON-serialisable: %s" % (name, detail))

"""env.py's callable methods: which ones there are, how arguments bind, how /methods describes them."""

import inspect


class Method(object):
    __slots__ = ("name", "fn", "is_async", "sig", "min_pos", "max_pos", "verdicts")

    def __init__(self, name, fn, is_async, sig):
        self.name = name
        self.fn = fn
        self.is_async = is_async
        self.sig = sig
        # Whether arguments bind depends only on how many positional ones there are and which
        # keywords are named, never on values: cache bind()'s verdict by that shape.
        self.verdicts = {}
        # Fast path of bind(): with no kwargs, a positional count in [min_pos, max_pos]
        # binds exactly when inspect's bind() would.  Otherwise bind() decides.
        self.min_pos, self.max_pos = 1 << 62, -1
        if sig is None:
            return
        mn, mx = 0, 0
        for p in sig.parameters.values():
            k = p.kind
            if k is p.POSITIONAL_ONLY or k is p.POSITIONAL_OR_KEYWORD:
                mx += 1
                if p.default is p.empty:
                    mn = mx
            elif k is p.VAR_POSITIONAL:
                mx = 1 << 62
            elif k is p.KEYWORD_ONLY and p.default is p.empty:
                return  # a required keyword-only parameter: always bind()
        self.min_pos, self.max_pos = mn, mx

    def check(self, args, kwargs):
        """None if (args, kwargs) bind to the signature, else the error message."""
        if not kwargs and self.min_pos <= len(args) <= self.max_pos:
            return None
        if self.sig is None:
            return None
        shape = (len(args), frozenset(kwargs))
        verdict = self.verdicts.get(shape, False)
        if verdict is not False:
            return verdict
        try:
            self.sig.bind(*args, **kwargs)
            verdict = None
        except TypeError as e:
            verdict = "%s; signature: %s%s" % (e, self.name, self.sig)
        if len(self.verdicts) < 256:  # callers use few shapes; bound the cache against odd ones
            self.verdicts[shape] = verdict
        return verdict


def _first_doc_line(obj):
    doc = inspect.getdoc(obj)
    if not doc:
        return ""
    for line in doc.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _fmt_annotation(a):
    if a is inspect.Parameter.empty:
        return None
    if isinstance(a, str):
        return a
    try:
        return inspect.formatannotation(a)
    except Exception:
        return repr(a)


def describe(name, fn, is_async, sig, source):
    params = []
    if sig is not None:
        for p in sig.parameters.values():
            has_default = p.default is not p.empty
            try:
                default = repr(p.default) if has_default else None
            except Exception:
                default = "<unrepresentable>"
            params.append({
                "name": p.name,
                "kind": p.kind.name,
                "annotation": _fmt_annotation(p.annotation),
                "default": default,
                "has_default": has_default,
            })
    try:
        sig_s = str(sig) if sig is not None else "(...)"
    except Exception:
        sig_s = "(...)"
    return {"name": name, "signature": sig_s, "doc": _first_doc_line(fn),
            "async": is_async, "source": source, "parameters": params}


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _is_async(fn):
    return inspect.iscoroutinefunction(fn)


def collect(mod, actor):
    """(kind, [(name, callable, is_async, signature)]) of the public methods."""
    modname = mod.__name__
    out = []
    if actor is not None:
        cls = type(actor)
        seen = set()
        for klass in cls.__mro__:
            defined_here = getattr(klass, "__module__", None) == modname
            for name, attr in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)  # the nearest definition wins, even if not public
                if name.startswith("_") or not defined_here:
                    continue
                raw = attr
                if isinstance(attr, (staticmethod, classmethod)):
                    raw = attr.__func__
                if not inspect.isfunction(raw) or getattr(raw, "__module__", None) != modname:
                    continue  # not a function, or an imported one assigned in the class body
                fn = getattr(actor, name, None)
                if not callable(fn):
                    continue  # shadowed by an instance attribute
                out.append((name, fn, _is_async(fn), _signature(fn)))
        return "actor", out
    for name, obj in list(vars(mod).items()):
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if getattr(obj, "__module__", None) != modname:
            continue
        out.append((name, obj, _is_async(obj), _signature(obj)))
    return "module", out

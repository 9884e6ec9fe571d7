"""A number argument never takes a bool: ``True`` is an ``int`` in Python (and JSON's
``true`` one to pydantic's lax mode), read as ``1`` (``limit=True`` a one-row answer, said
nowhere). :data:`NUMBER` is the one check, on every number argument of the MCP tools and
the notebook API; :func:`numbers_refuse_bool` puts it on each ``int`` and ``float`` of an
argument's type, so pydantic's error names the argument (``invalid_arguments``)."""

from __future__ import annotations

import functools
import operator
import types
import typing
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not true or false")
    return value


NUMBER = BeforeValidator(_not_a_boolean)
_NUMBERS = (int, float)


def numbers_refuse_bool(annotation: Any) -> Any:
    """``annotation`` with :data:`NUMBER` on every ``int`` and ``float`` in it (alone, in a
    union, an ``Optional``, a list, a tuple, a dict's values); a union that admits ``bool``
    itself keeps taking it."""
    if annotation in _NUMBERS:
        return Annotated[annotation, NUMBER]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if not args or origin is typing.Literal:
        return annotation
    if origin is Annotated:
        inner = numbers_refuse_bool(args[0])
        return Annotated[(inner, *annotation.__metadata__)]
    if (origin is typing.Union or origin is types.UnionType) and bool in args:
        return annotation
    changed = tuple(numbers_refuse_bool(a) for a in args)
    if changed == args:
        return annotation
    if origin is typing.Union or origin is types.UnionType:
        return functools.reduce(operator.or_, changed)
    return origin[changed]

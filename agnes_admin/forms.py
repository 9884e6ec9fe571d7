"""A form derived from a pydantic model: one widget per field, its problems beside it.

The widget follows the field's annotation: a yes/no field is a checkbox (a select with
"default" when it may be None), an enum or ``Literal`` a select, a list of strings a
comma-separated text, a mapping (or anything else) JSON text, and other scalars a text
box whose value pydantic parses (so "12" reaches an ``int`` field as 12, and "twelve"
comes back as that field's problem). The model stays the one declaration: a connector's
options model or :class:`~agnes_sync.table_spec.TableSpec` become forms without a line
written per field.

Use: ``form = ModelForm(Model)``, put ``form.view`` on the page, then ``form.validate()``
returns the model instance or None, having shown every problem beside its field.
:meth:`ModelForm.show_error` places a problem found later (by a service) the same way.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

import panel as pn
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

import agnes_admin.markdown_text  # Markdown panes render HTML as text
import agnes_admin.text_inputs  # noqa: F401 - the browser never cuts what is typed
from agnes_admin.markdown_text import plain

ERROR_STYLE = {"color": "#b00020", "font-size": "90%", "margin-top": "-6px"}
NOT_SET = "(not set)"


class FieldParseError(ValueError):
    """The text typed into a field cannot be read as the field's kind of value."""


@dataclass
class FieldInput:
    """One field of a form: its widget, how its text becomes a value, and its problem."""

    name: str
    info: FieldInfo
    kind: str  # text | choice | flag | list | json
    widget: Any
    error: pn.pane.Markdown
    view: pn.Column

    def read(self) -> Any:
        """The value typed in, as Python; blank means the field's default (or None)."""
        value = self.widget.value
        if self.kind in ("choice", "flag"):
            if value is None and self.info.is_required():
                raise FieldParseError("choose a value")
            return value
        text = (value or "").strip() if isinstance(value, str) else value
        if text in ("", None):
            if self.info.is_required():
                raise FieldParseError("a value is required")
            return self.info.get_default(call_default_factory=True)
        if self.kind == "list":
            return [item.strip() for item in text.split(",") if item.strip()]
        if self.kind == "json":
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise FieldParseError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        return text

    def write(self, value: Any) -> None:
        if self.kind == "choice":
            self.widget.value = value.value if isinstance(value, Enum) else value
        elif self.kind == "flag":
            self.widget.value = value
        elif value is None:
            self.widget.value = ""
        elif self.kind == "list":
            self.widget.value = ", ".join(str(v) for v in value)
        elif self.kind == "json":
            self.widget.value = json.dumps(value) if value != {} else ""
        else:
            self.widget.value = str(value.value if isinstance(value, Enum) else value)

    def show(self, message: str | None) -> None:
        self.error.object = plain(message or "")
        self.error.visible = bool(message)


class ModelForm:
    """Widgets for the fields of ``model`` (minus ``exclude``), in declaration order.

    ``choices`` replaces a field's free text with a select of the given values;
    ``multiline`` makes text fields text areas; ``disabled`` fields are shown, not edited.
    """

    def __init__(
        self,
        model: type[BaseModel],
        *,
        exclude: Iterable[str] = (),
        choices: Mapping[str, Sequence[str]] | None = None,
        multiline: Iterable[str] = (),
        disabled: Iterable[str] = (),
        values: Mapping[str, Any] | None = None,
        title: str = "",
    ) -> None:
        self.model = model
        skipped, areas, frozen = set(exclude), set(multiline), set(disabled)
        self.fields: dict[str, FieldInput] = {}
        for name, info in model.model_fields.items():
            if name in skipped:
                continue
            offered = (choices or {}).get(name)
            self.fields[name] = _field_input(name, info, offered, name in areas, name in frozen)
        self.form_error = pn.pane.Markdown("", visible=False, styles=ERROR_STYLE)
        header = [pn.pane.Markdown(f"**{title}**")] if title else []
        self.view = pn.Column(
            *header,
            *(f.view for f in self.fields.values()),
            self.form_error,
            sizing_mode="stretch_width",
        )
        if values:
            self.set_values(values)

    # --- values -----------------------------------------------------------------------

    def set_values(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if name in self.fields:
                self.fields[name].write(value)

    def set_choices(self, name: str, options: Sequence[str]) -> None:
        field = self.fields[name]
        field.widget.options = _options(field.info, list(options))

    def watch(self, name: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(new_value)`` when field ``name`` changes."""
        self.fields[name].widget.param.watch(lambda event: callback(event.new), "value")

    def read(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The values typed in (blank fields at their default) and the fields that could
        not be read, with why."""
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, field in self.fields.items():
            try:
                values[name] = field.read()
            except FieldParseError as exc:
                problems[name] = str(exc)
        return values, problems

    def validate(self, extra: Mapping[str, Any] | None = None) -> BaseModel | None:
        """The model built from the form (plus ``extra`` values for fields not shown), or
        None with every problem shown beside its field."""
        self.clear_errors()
        values, problems = self.read()
        try:
            built = self.model.model_validate({**values, **(extra or {})})
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                problems.setdefault(name, _message(error))
            built = None
        for name, message in problems.items():
            self.show_error(name, message)
        return None if problems else built

    # --- problems ---------------------------------------------------------------------

    def show_error(self, name: str | None, message: str) -> bool:
        """Show ``message`` beside field ``name``; returns False (and shows it under the
        form) when the form has no such field."""
        if name is not None and name in self.fields:
            self.fields[name].show(message)
            return True
        shown = self.form_error.object
        self.form_error.object = f"{shown}\n\n{plain(message)}" if shown else plain(message)
        self.form_error.visible = True
        return False

    def clear_errors(self) -> None:
        for field in self.fields.values():
            field.show(None)
        self.form_error.object = ""
        self.form_error.visible = False

    @property
    def errors(self) -> dict[str, str]:
        """The problems shown now, by field ('' for the form's own)."""
        shown = {n: str(f.error.object) for n, f in self.fields.items() if f.error.visible}
        if self.form_error.visible:
            shown[""] = str(self.form_error.object)
        return shown


# --- building widgets -----------------------------------------------------------------


def _field_input(
    name: str, info: FieldInfo, offered: Sequence[str] | None, area: bool, frozen: bool
) -> FieldInput:
    annotation, optional = _unwrap_optional(info.annotation)
    label = info.title or name.replace("_", " ").capitalize()
    if not info.is_required() and not optional:
        default = info.get_default(call_default_factory=True)
    else:
        default = None
    common: dict[str, Any] = {"label": label, "disabled": frozen, "sizing_mode": "stretch_width"}
    kind = "text"
    widget: Any
    values = list(offered) if offered is not None else _choices_of(annotation)
    if values is not None:
        kind = "choice"
        widget = pn.widgets.Select(options=_options(info, values), **common)
        widget.value = default.value if isinstance(default, Enum) else default
    elif annotation is bool:
        kind = "flag"
        if optional:
            options = {NOT_SET: None, "yes": True, "no": False}
            widget = pn.widgets.Select(options=options, value=None, **common)
        else:
            widget = pn.widgets.Checkbox(value=bool(default), **common)
    elif _is_text(annotation):
        cls = pn.widgets.TextAreaInput if area else pn.widgets.TextInput
        placeholder = "" if default in (None, "") else str(default)
        widget = cls(value="", placeholder=placeholder, **common)
    elif get_origin(annotation) in (list, tuple, set):
        kind = "list"
        widget = pn.widgets.TextInput(value="", placeholder="a, b, c", **common)
    else:
        kind = "json"
        widget = pn.widgets.TextAreaInput(value="", placeholder='{"key": "value"}', **common)
    if info.description and "description" in widget.param:
        widget.description = info.description
    error = pn.pane.Markdown("", visible=False, styles=ERROR_STYLE, css_classes=["field-error"])
    return FieldInput(name, info, kind, widget, error, pn.Column(widget, error, margin=0))


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(get_args(annotation))
    return annotation, False


def _choices_of(annotation: Any) -> list[str] | None:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if get_origin(annotation) is Literal:
        return [str(arg) for arg in get_args(annotation)]
    return None


def _options(info: FieldInfo, values: list[str]) -> dict[str, Any]:
    _, optional = _unwrap_optional(info.annotation)
    options: dict[str, Any] = {NOT_SET: None} if optional or info.is_required() else {}
    options.update({value: value for value in values})
    return options


def _is_text(annotation: Any) -> bool:
    return annotation in (str, int, float) or (
        isinstance(annotation, type) and issubclass(annotation, (str, int, float))
    )


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")

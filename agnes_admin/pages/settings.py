"""Settings: scan caps, budgets, concurrency and result limits (each with its default and
the value in force, validated like the API, errors beside the field, nothing half-saved),
and the agent rails text that ``agnes init`` writes into CLAUDE.md."""

from __future__ import annotations

from typing import Any, Literal

import panel as pn
from pydantic import ByteSize, ValidationError

from agnes_admin.clicks import on_click, submit_on_enter
from agnes_admin.context import PageContext
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register
from agnes_admin.pages.access import Confirm
from agnes_mcp.server_config_admin import (
    INSTRUCTIONS_MAX_CHARS,
    CapSetting,
    ConfigUpdate,
    ServerConfig,
    ServerConfigChanged,
    ServerConfigInvalid,
    cap_settings,
    current_config,
    parse_caps,
    update_config,
)
from agnes_sync.errors import AgnesError

AlertKind = Literal["success", "danger", "info"]
GROUPS = {
    "Scan caps and budgets": ("per_query_bytes", "per_user_daily_bytes"),
    "Concurrency": (
        "concurrent_remote_queries_per_user",
        "concurrent_queries_per_user",
        "concurrent_queries",
    ),
    "Result limits": (
        "max_result_rows",
        "max_result_bytes",
        "max_snapshot_rows",
        "max_snapshot_bytes",
    ),
}


def _shown(setting: CapSetting, value: int) -> str:
    if setting.kind == "bytes":
        return f"{value} ({ByteSize(value).human_readable()})"
    return str(value)


class CapField:
    """One cap: its input, what it means, its default and value in force, its error."""

    def __init__(self, setting: CapSetting) -> None:
        self.key = setting.key
        self.input = pn.widgets.TextInput(
            label=setting.key,
            placeholder="blank: back to the default",
            width=220,
        )
        self.about = pn.pane.Markdown("", margin=(0, 10))
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 10))
        self.view = pn.Row(self.input, self.about, self.error)
        self.load(setting)

    def load(self, setting: CapSetting) -> None:
        self.input.value = str(setting.current) if setting.overridden else ""
        self.initial = self.input.value
        self.describe(setting)
        self.show_error(None)

    def describe(self, setting: CapSetting) -> None:
        """What the cap means, its default and the value in force (the input untouched)."""
        self.setting = setting
        where = "overridden here" if setting.overridden else "the default"
        self.about.object = (
            f"{setting.description}  \nDefault: {_shown(setting, setting.default)} · "
            f"In force: {_shown(setting, setting.current)} ({where})"
        )

    def now(self) -> str:
        """The value in force, as the page shows values."""
        if not self.setting.overridden:
            return "back to its default"
        return _shown(self.setting, self.setting.current)

    def change(self) -> tuple[bool, str | None]:
        """(changed?, the new value: None returns to the default)."""
        text = (self.input.value or "").strip()
        return text != self.initial.strip(), text or None

    def show_error(self, message: str | None) -> None:
        self.error.object = plain(message or "")
        self.error.visible = message is not None


class SettingsPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.message = pn.pane.Alert("", alert_type="success", visible=False)
        self.fields = {s.key: CapField(s) for s in cap_settings(ctx.services)}
        # What each save starts from: a setting changed elsewhere since (another admin, the
        # API) is not overwritten by a save from a page that never showed the change.
        self.caps_seen: ServerConfig = current_config(ctx.services)
        self.rails_seen: ServerConfig = self.caps_seen
        self.save_button = pn.widgets.Button(label="Save limits", color="primary")
        on_click(self.save_button, self.save_caps)
        submit_on_enter(self.save_button, *(field.input for field in self.fields.values()))
        self.rails = pn.widgets.TextAreaInput(
            label="Agent rails (Markdown)",
            height=360,
            sizing_mode="stretch_width",
        )
        self.rails_state = pn.pane.Markdown("")
        self.rails_error = pn.pane.Alert("", alert_type="danger", visible=False)
        # The rails' outcome shows under their buttons: the page's message is a screen
        # above, out of sight when the admin clicks here.
        self.rails_message = pn.pane.Alert("", alert_type="success", visible=False)
        self.save_rails_button = pn.widgets.Button(label="Save rails", color="primary")
        self.reset_rails_button = pn.widgets.Button(label="Reset to built-in")
        self.confirm_reset = Confirm()
        on_click(self.save_rails_button, self.save_rails)
        self.reset_rails_button.on_click(lambda _: self.ask_reset_rails())
        self._load_rails()
        sections: list[Any] = []
        for title, keys in GROUPS.items():
            sections.append(pn.pane.Markdown(f"### {title}"))
            sections.extend(self.fields[k].view for k in keys if k in self.fields)
        self.view = pn.Column(
            self.message,
            *sections,
            self.save_button,
            pn.pane.Markdown(
                "### Agent rails\nThe instructions MCP clients receive and `agnes init` "
                "writes into CLAUDE.md."
            ),
            self.rails_state,
            self.rails,
            self.rails_error,
            pn.Row(self.save_rails_button, self.reset_rails_button),
            self.confirm_reset.view,
            self.rails_message,
            sizing_mode="stretch_width",
        )

    # --- caps ---------------------------------------------------------------------------------

    def save_caps(self) -> None:
        """Validate every changed field; save them all together, or none."""
        changes = {
            key: value
            for key, field in self.fields.items()
            for changed, value in [field.change()]
            if changed
        }
        for field in self.fields.values():
            field.show_error(None)
        if not changes:
            self._say("Nothing changed.", "info")
            return
        try:
            caps = parse_caps(changes)
            update_config(
                self.ctx.services,
                self.ctx.actor(),
                ConfigUpdate(scan_caps=caps),
                seen=self.caps_seen,
            )
        except ServerConfigChanged as exc:
            # What is in force now, beside every cap (the text typed stays in the boxes).
            for setting in cap_settings(self.ctx.services):
                self.fields[setting.key].describe(setting)
            for key in exc.fields:
                if key in self.fields:
                    self.fields[key].show_error(
                        f"Changed elsewhere since this page loaded (now "
                        f"{self.fields[key].now()}). Save again to replace it with your value."
                    )
            self.caps_seen = current_config(self.ctx.services)  # a second save is meant
            self._say("Some limits were changed elsewhere; nothing was saved.", "danger")
            return
        except ServerConfigInvalid as exc:
            for key, message in exc.fields.items():
                if key in self.fields:
                    self.fields[key].show_error(message)
            self._say("Some values are not valid; nothing was saved.", "danger")
            return
        except AgnesError as exc:
            self._say(f"{exc.message} Nothing was saved.", "danger")
            return
        self._reload_caps()
        self._say(f"Saved: {', '.join(sorted(changes))}. In force now.")

    def _reload_caps(self) -> None:
        self.caps_seen = current_config(self.ctx.services)
        for setting in cap_settings(self.ctx.services):
            self.fields[setting.key].load(setting)

    # --- rails --------------------------------------------------------------------------------

    def _load_rails(self) -> None:
        config = current_config(self.ctx.services)
        self.rails_seen = config
        self.rails.value = config.agent_instructions
        self.rails_state.object = (
            "Custom text (set by an admin)."
            if config.agent_instructions_custom
            else "The built-in text."
        )

    def save_rails(self) -> None:
        self._set_rails(self.rails.value or "")

    def ask_reset_rails(self) -> None:
        """Reset asks first: it replaces the stored custom text and the text in the box."""
        self.rails_message.visible = False
        self.confirm_reset.ask(
            "Replace the agent rails with the built-in text? The custom text is removed, and "
            "so is any text typed in the box.",
            then=self.reset_rails,
        )

    def reset_rails(self) -> None:
        self._set_rails("")

    def _set_rails(self, text: str) -> None:
        self.rails_error.visible = False
        self.rails_message.visible = False
        if len(text) > INSTRUCTIONS_MAX_CHARS:
            self.rails_error.object = (
                f"The text has {len(text)} characters; the agent rails may have at most "
                f"{INSTRUCTIONS_MAX_CHARS}. Nothing was saved; your text is still here."
            )
            self.rails_error.visible = True
            return
        try:
            update = ConfigUpdate(agent_instructions=text)
        except ValidationError as exc:
            self.rails_error.object = plain(str(exc.errors()[0]["msg"]))
            self.rails_error.visible = True
            return
        try:
            update_config(self.ctx.services, self.ctx.actor(), update, seen=self.rails_seen)
        except ServerConfigChanged:
            self.rails_seen = current_config(self.ctx.services)  # a second save is meant
            self.rails_error.object = (
                "The agent rails were changed elsewhere since this page loaded; nothing was "
                "saved. Your text is still here: save again to replace the stored text with "
                "it, or reload the page to see the stored text."
            )
            self.rails_error.visible = True
            return
        except AgnesError as exc:
            self.rails_error.object = plain(f"{exc.message} Nothing was saved.")
            self.rails_error.visible = True
            return
        self._load_rails()
        self.rails_message.object = (
            "Agent rails reset to the built-in text." if not text.strip() else "Agent rails saved."
        )
        self.rails_message.visible = True

    def _say(self, text: str, kind: AlertKind = "success") -> None:
        self.message.object = plain(text)
        self.message.alert_type = kind
        self.message.visible = True


def build(ctx: PageContext) -> pn.viewable.Viewable:
    return SettingsPage(ctx).view


register(Page(slug="settings", title="Settings", order=80, build=build))

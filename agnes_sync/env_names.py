"""The one shape of an environment variable's NAME, where a setting names one.

Every ``*_env`` setting (instance.yaml, a connector's options, the admin forms and API)
names the variable that holds a secret, never the secret. A looser shape (lower case
allowed) took a token such as ``ghpAbc123`` typed into the wrong field as a name, and
every "unset variable" message then repeated the token. Upper-case letters, digits and
``_`` only (what operators write, and what no issued token looks like); a value refused
here is never shown back, as it may be the secret itself.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
ENV_NAME = re.compile(ENV_NAME_PATTERN)

EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]
"""A setting's type where it names an environment variable."""


def is_env_name(value: object) -> bool:
    """Whether ``value`` has the shape of an environment variable's name."""
    return isinstance(value, str) and ENV_NAME.match(value) is not None

"""Checks of the per-call options of ``ChatAgent`` methods (flags, output options)."""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationError


def check_flags(**flags: Any) -> None:
    """Each flag (``add_to_history``, ``display_stream``, ...) must be a real bool."""
    for name, value in flags.items():
        if type(value) is not bool:
            raise ConfigurationError(
                f"{name} must be True or False, not {value!r}",
                {"field": name, "value": repr(value)},
            )


def check_output_options(mode: Any, retries: Any) -> None:
    """``output_mode``/``max_output_retries`` given without ``response_format`` are still
    checked: a typo must not pass silently because the call happens to be unstructured."""
    if mode is None and retries is None:
        return
    from ._output_modes import check_output_mode, check_output_retries

    if mode is not None:
        check_output_mode(mode)
    if retries is not None:
        check_output_retries(retries)

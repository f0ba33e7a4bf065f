"""Tools a model can call: declare them with ``@tool`` (or ``Tool`` plus a handler), keep them
in a :class:`ToolRegistry`, and run a reply's tool calls with :meth:`ToolRegistry.execute`.

``ChatAgent`` does all of this for you (``agent.tools``, ``chat(..., tools=[...])``); this
module is for declaring tools and for running tool calls yourself.
"""

from .._config import ToolErrorMode
from ._docstrings import Docstring, parse_docstring
from ._execution import FunctionCallLike, ToolCallLike, ToolResult, serialize_result
from ._function_schema import FunctionSchema, derive_function_schema, function_schema_from_json
from ._registry import ToolRegistry
from ._tool import Tool, ToolFunction, tool

ToolErrorPolicy = ToolErrorMode  # the name this module used; one definition, in _config

__all__ = [
    "Docstring",
    "FunctionCallLike",
    "FunctionSchema",
    "Tool",
    "ToolCallLike",
    "ToolErrorMode",
    "ToolErrorPolicy",
    "ToolFunction",
    "ToolRegistry",
    "ToolResult",
    "derive_function_schema",
    "function_schema_from_json",
    "parse_docstring",
    "serialize_result",
    "tool",
]

"""A Griffe extension for the API reference: prose that follows a numpydoc ``Parameters`` list, separated by a
blank line, is read as a ``Notes`` section instead of as more parameters.

Several docstrings of the package end their parameter list with a paragraph about all of them. numpydoc puts
such text under a ``Notes`` header; without one, the numpy parser reads each paragraph's first word as a
parameter name ("The", "Parameters") and ``mkdocs build --strict`` fails. This reads them as numpydoc intends.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_PARAMETER = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*(\s*:.*)?$")
_SECTIONS = ("Parameters", "Other Parameters", "Attributes")


def add_notes_header(text: str) -> str:
    """``text`` with ``Notes`` / ``-----`` inserted before the first unindented paragraph after a blank line in
    a parameter-like section."""
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for k, line in enumerate(lines):
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        if line.strip() in _SECTIONS and set(nxt.strip()) == {"-"}:
            inside = True
        elif line and not line.startswith(" ") and set(nxt.strip()) == {"-"}:
            inside = False  # another section starts
        elif (inside and line and not line.startswith(" ") and k > 0 and not lines[k - 1].strip()
              and not _PARAMETER.match(line) and set(line.strip()) != {"-"}):
            out += ["Notes", "-----"]
            inside = False
        out.append(line)
    return "\n".join(out)


class NotesAfterParameters(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = add_notes_header(obj.docstring.value)

"""The ABI loader's C preprocessor: pcpp with errors collected as :class:`Unsupported` (file:line)
instead of printed, absolute include paths kept, ``#pragma`` passed through for the scrubber,
and the opened headers recorded; plus :func:`expand` for evaluating one macro afterwards.
"""
from __future__ import annotations

from typing import Any, Iterable

from pcpp import Action, OutputDirective, Preprocessor

from . import Unsupported


class _Preprocessor(Preprocessor):
    """pcpp with errors collected (file:line) instead of printed, and absolute paths kept."""

    def __init__(self, errors: list[Unsupported], opened: list[str]) -> None:
        super().__init__()
        self.line_directive = None
        self.rewrite_paths = []
        self.errors, self.opened = errors, opened

    def add_path(self, path: str) -> None:
        self.path.append(path)  # pcpp would also add a cwd-relative rewrite of file names

    def on_error(self, file: str, line: int, msg: str) -> None:
        self.errors.append(Unsupported(file or "<input>", line or 0, msg))
        self.return_code += 1

    def on_file_open(self, is_system_include: bool, includepath: str) -> Any:
        handle = super().on_file_open(is_system_include, includepath)
        if includepath not in self.opened:
            self.opened.append(includepath)
        return handle

    def on_include_not_found(self, is_malformed: bool, is_system_include: bool, curdir: str,
                             includepath: str) -> str:
        d = self.lastdirective
        self.on_error(d.source, d.lineno, f"include file {includepath!r} not found "
                                          f"(searched {', '.join(self.path) or 'nothing'})")
        raise OutputDirective(Action.IgnoreAndRemove)

    def on_directive_unknown(self, directive: Any, toks: list, ifpassthru: bool,
                             precedingtoks: list) -> bool | None:
        text = "".join(t.value for t in toks).strip()
        if directive.value == "pragma":
            return None  # passed through; the scrubber handles #pragma pack
        if directive.value == "error":
            self.on_error(directive.source, directive.lineno, f"#error {text}")
        elif directive.value != "warning":
            self.on_error(directive.source, directive.lineno,
                          f"unsupported directive #{directive.value}")
        return True


def make_preprocessor(include_dirs: Iterable[str], predefined: dict[str, str],
                      errors: list[Unsupported], opened: list[str]) -> _Preprocessor:
    pp = _Preprocessor(errors, opened)
    for d in include_dirs:
        pp.add_path(d)
    for name, value in predefined.items():
        pp.define(f"{name} {value}")
    return pp


def expand(pp: Preprocessor, text: str) -> str:
    """Macro-expand a C fragment with the preprocessor's current macro table."""
    return "".join(t.value for t in pp.expand_macros(pp.tokenize(text)))

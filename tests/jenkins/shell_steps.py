"""Find every sh/bat/powershell step in Groovy source and what script it runs.

Used by the guard test: a shell step may only run a constant, i.e. a single-quoted literal (no Groovy
interpolation is possible) or a `libraryResource('...')` script. A double-quoted string with `$` anywhere
in a shell step's arguments is Groovy interpolation into shell text, the anti-pattern we forbid.
"""

import re
from dataclasses import dataclass

STEP = re.compile(r"(?<![\w.$])(sh|bat|powershell|pwsh)\b[ \t]*(?=[('\"A-Za-z_])(?![A-Za-z_]\w*\s*=[^=])")
SINGLE = r"'(?:[^'\\\n]|\\.)*'"
TRIPLE_SINGLE = r"'''.*?'''"
CONSTANT = re.compile(rf"\s*(?:{TRIPLE_SINGLE}|{SINGLE}|libraryResource\(\s*{SINGLE}\s*\))\s*", re.S)


@dataclass(frozen=True)
class ShellStep:
    line: int
    step: str
    arguments: str
    script: str | None

    def problems(self) -> list[str]:
        found = []
        if self.script is None or not CONSTANT.fullmatch(self.script):
            found.append(f"runs {self.script!r}, not a single-quoted constant or libraryResource('...')")
        for literal in re.findall(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"', _without_single_quoted(self.arguments)):
            if "$" in literal:
                found.append(f"interpolates {literal} into shell text")
        return found


def _without_single_quoted(text: str) -> str:
    return re.sub(rf"{TRIPLE_SINGLE}|{SINGLE}", "''", text, flags=re.S)


def _scan(text: str, start: int, stop) -> int:
    """Index of the first character at depth 0 outside quotes for which stop(char, depth) holds, else len(text)."""
    depth, i, quote = 0, start, None
    while i < len(text):
        if quote is not None:
            if text[i] == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i, quote = i + len(quote), None
                continue
            i += 1
            continue
        q = next((q for q in ("'''", '"""', "'", '"') if text.startswith(q, i)), None)
        if q:
            quote, i = q, i + len(q)
            continue
        if stop(text[i], depth):
            return i
        depth += text[i] in "([{"
        depth -= text[i] in ")]}"
        i += 1
    return len(text)


def _argument_text(source: str, start: int) -> str:
    """The argument list: up to the matching ')' if the step uses parentheses, else to the end of the line."""
    if source[start] == "(":
        return source[start + 1:_scan(source, start + 1, lambda c, d: c == ")" and d == 0)]
    return source[start:_scan(source, start, lambda c, d: c == "\n" and d == 0)]


def _script_argument(arguments: str) -> str | None:
    """The script: the `script:` named argument, else the first positional one."""
    parts, i = [], 0
    while i <= len(arguments):
        end = _scan(arguments, i, lambda c, d: c == "," and d == 0)
        parts.append(arguments[i:end].strip())
        i = end + 1
    for part in parts:
        named = re.match(r"(\w+)\s*:(?!:)\s*", part)
        if named and named.group(1) == "script":
            return part[named.end():]
        if not named:
            return part
    return None


def shell_steps(source: str) -> list[ShellStep]:
    steps = []
    for match in STEP.finditer(source):
        line_start = source.rfind("\n", 0, match.start()) + 1
        if source[line_start:match.start()].lstrip().startswith("//"):
            continue
        arguments = _argument_text(source, match.end())
        steps.append(ShellStep(source.count("\n", 0, match.start()) + 1, match.group(1), arguments, _script_argument(arguments)))
    return steps

"""A small renderer of the Go-template subset the rayweave Helm chart uses, for tests (no helm binary here).

It is not Helm: it knows exactly the constructs of cluster/deploy/helm/rayweave/templates and refuses anything
else with an error naming it, so a template that grows beyond the subset fails a test instead of rendering
wrongly. The subset: `{{/* comments */}}`, whitespace trimming (`{{-`, `-}}`), `define`/`end` (in files whose
name starts with `_`), `if`/`else`/`end` with Go's truth (empty, zero and false are false), output pipelines
whose first command is a field (`.Values.a.b`, `.Release.Name`, `.Chart.AppVersion`, `.`), a string or integer
literal, `include "name" .` or `toYaml X`, followed by `| quote`, `| toYaml`, `| nindent N`, `| indent N`.
`toYaml` sorts keys and has no trailing newline, as Helm's does; the tests compare parsed YAML, not text.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TemplateError(ValueError):
    """A construct outside the supported subset, or a reference to a missing value."""


@dataclass
class _Node:
    kind: str  # "text", "out", "if", "define"
    text: str = ""
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


def _tokens(source: str, name: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", s) with Go's whitespace trimming applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        if out and out[-1][0] == "trim-next":
            out.pop()
            text = text.lstrip(" \t\r\n")
        out.append(("text", text))
        action = match.group(2)
        if not (action.startswith("/*") and action.endswith("*/")):
            out.append(("action", action))
        if match.group(3):
            out.append(("trim-next", ""))
        pos = match.end()
    tail = source[pos:]
    if out and out[-1][0] == "trim-next":
        out.pop()
        tail = tail.lstrip(" \t\r\n")
    out.append(("text", tail))
    if "{{" in "".join(t for k, t in out if k == "text"):
        raise TemplateError(f"{name}: an unclosed action")
    return out


def _parse(tokens: list[tuple[str, str]], name: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[tuple[_Node, list[_Node]]] = []
    current = root
    for kind, value in tokens:
        if kind == "text":
            if value:
                current.append(_Node("text", value))
            continue
        word = value.split(None, 1)[0] if value else ""
        if word == "if":
            node = _Node("if", value[2:].strip())
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif word == "define":
            node = _Node("define", shlex.split(value)[1])
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif word == "else" and value == "else":
            if not stack or stack[-1][0].kind != "if":
                raise TemplateError(f"{name}: else outside if")
            current = stack[-1][0].orelse
        elif word == "end":
            if not stack:
                raise TemplateError(f"{name}: end without a block")
            _node, current = stack.pop()
        elif word in {"range", "with", "template", "block", "else", "tpl", "required", "fail"}:
            raise TemplateError(f"{name}: {word!r} is outside the subset this renderer knows")
        else:
            current.append(_Node("out", value))
    if stack:
        raise TemplateError(f"{name}: {stack[-1][0].kind} without end")
    return root


def _truth(value: Any) -> bool:
    return value not in (None, False, 0, "") and value != {} and value != []


def to_yaml(value: Any) -> str:
    """Helm's toYaml: block style, sorted keys, no trailing newline."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n").removesuffix("\n...")


class Renderer:
    """Renders a chart's templates with given values (`Values`, `Release`, `Chart` as Helm names them)."""

    def __init__(self, chart_dir: Path, values: dict[str, Any], release: str) -> None:
        chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
        self.context = {
            "Values": values,
            "Release": {"Name": release, "Namespace": "default", "Service": "Helm"},
            "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
        }
        self.templates: dict[str, list[_Node]] = {}
        self.defines: dict[str, list[_Node]] = {}
        for path in sorted((chart_dir / "templates").iterdir()):
            nodes = _parse(_tokens(path.read_text(encoding="utf-8"), path.name), path.name)
            for node in nodes:
                if node.kind == "define":
                    self.defines[node.text] = node.body
            if not path.name.startswith("_"):
                self.templates[path.name] = nodes

    def render(self) -> dict[str, str]:
        """Each template's output (templates whose name starts with `_` hold definitions only)."""
        return {name: self._run(nodes, self.context, name) for name, nodes in self.templates.items()}

    def manifests(self) -> list[dict[str, Any]]:
        """Every Kubernetes object the chart renders (empty documents dropped), in template order."""
        docs: list[dict[str, Any]] = []
        for text in self.render().values():
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return docs

    def _run(self, nodes: list[_Node], dot: Any, name: str) -> str:
        parts: list[str] = []
        for node in nodes:
            if node.kind == "text":
                parts.append(node.text)
            elif node.kind == "if":
                branch = node.body if _truth(self._pipeline(node.text, dot, name)) else node.orelse
                parts.append(self._run(branch, dot, name))
            elif node.kind == "out":
                value = self._pipeline(node.text, dot, name)
                parts.append(value if isinstance(value, str) else _go_string(value))
        return "".join(parts)

    def _pipeline(self, text: str, dot: Any, name: str) -> Any:
        commands = [part.strip() for part in text.split("|")]
        value = self._command(commands[0], dot, name)
        for command in commands[1:]:
            words = shlex.split(command)
            if words == ["quote"]:
                value = json.dumps(_go_string(value))
            elif words == ["toYaml"]:
                value = to_yaml(value)
            elif len(words) == 2 and words[0] in ("nindent", "indent"):
                pad = " " * int(words[1])
                indented = "\n".join(pad + line for line in _go_string(value).split("\n"))
                value = ("\n" if words[0] == "nindent" else "") + indented
            else:
                raise TemplateError(f"{name}: the function {command!r} is outside the subset")
        return value

    def _command(self, text: str, dot: Any, name: str) -> Any:
        words = shlex.split(text)
        if words[0] == "include" and len(words) == 3 and words[2] == ".":
            if words[1] not in self.defines:
                raise TemplateError(f"{name}: include of an undefined template {words[1]!r}")
            return self._run(self.defines[words[1]], dot, name)
        if words[0] == "toYaml" and len(words) == 2:
            return to_yaml(self._field(words[1], dot, name))
        if len(words) != 1:
            raise TemplateError(f"{name}: the command {text!r} is outside the subset")
        if text.startswith('"'):
            return words[0]
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return self._field(text, dot, name)

    def _field(self, ref: str, dot: Any, name: str) -> Any:
        if not ref.startswith("."):
            raise TemplateError(f"{name}: {ref!r} is neither a field nor a literal")
        value = dot
        for part in [p for p in ref.split(".") if p]:
            if not isinstance(value, dict) or part not in value:
                raise TemplateError(f"{name}: {ref} is not in the values (missing {part!r})")
            value = value[part]
        return value


def _go_string(value: Any) -> str:
    """How Go's text/template prints a value: true/false in lower case, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

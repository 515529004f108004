"""Markdown documentation of a plugin version: its manifest facts and one section per node.

The node sections are the node-reference pages of `nodes.docgen` (ports, types, params, behaviour, an example
document), so a plugin's docs read like the built-in library's.
"""

from __future__ import annotations

from collections.abc import Sequence

from nodes.catalog import Catalog
from nodes.docgen import generate_docs, node_page_path
from nodes.plugins.manifest import PluginManifest
from nodes.plugins.remote import PluginNodeDefinition

__all__ = ["plugin_markdown"]


def _demote(page: str) -> str:
    # Node pages start at "#"; inside the plugin page they become sections one level down.
    lines = []
    in_code = False
    for line in page.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if line.startswith("#") and not in_code else line)
    return "\n".join(lines)


def plugin_markdown(manifest: PluginManifest, definitions: Sequence[PluginNodeDefinition]) -> str:
    """One Markdown page documenting a plugin version and every node it defines."""
    lines = [f"# Plugin `{manifest.name}` {manifest.version}", ""]
    if manifest.description:
        lines += [manifest.description, ""]
    deps = ", ".join(f"`{n} {s or '(any)'}`" for n, s in sorted(manifest.dependencies.items())) or "none"
    reqs = ", ".join(f"`{r}`" for r in manifest.requirements) or "none"
    lines += [
        "| | |",
        "|---|---|",
        f"| modules | {', '.join(f'`{m}`' for m in manifest.modules)} |",
        f"| requirements | {reqs} |",
        f"| plugin dependencies | {deps} |",
        f"| node types | {len(definitions)} |",
        "",
    ]
    pages = generate_docs(Catalog(definitions))
    for definition in sorted(definitions, key=lambda d: d.spec.id):
        page = pages[node_page_path(definition.spec)]
        # Drop the "generated" marker line: this page is generated as a whole.
        body = "\n".join(line for line in page.splitlines() if not line.startswith("<!--"))
        lines += [_demote(body).strip(), ""]
    return "\n".join(lines).rstrip() + "\n"

"""`rayweave plugins`: install, list, remove, search, publish, document and scaffold plugins.

```
rayweave plugins list [--json]
rayweave plugins install SOURCE [--index LOC] [--force] [--json]   SOURCE: a directory, an archive, NAME[==VERSION]
rayweave plugins remove NAME [VERSION] [--json]
rayweave plugins search [QUERY] --index LOC [--json]
rayweave plugins publish DIR --index DIR|s3://URL [--force] [--json]
rayweave plugins docs NAME [--version RANGE] [--path DIR] [--out FILE]
rayweave plugins new NAME [--dir DIR] [--json]
```
Plugins install into `{RAYWEAVE_HOME}/plugins/<name>/<version>/`. `--index` defaults to `RAYWEAVE_PLUGIN_INDEX`
(a directory or an http(s) URL). Exit status: 0 on success, 1 when the operation failed, 2 on bad usage.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodes.plugins import PluginError, PluginPackage
from serve.cli.context import settings_of
from serve.cli.options import JsonOption

if TYPE_CHECKING:
    from cluster.settings import Settings
    from nodes.plugins.home import PluginHome

INDEX_ENV = "RAYWEAVE_PLUGIN_INDEX"
IndexOption = Annotated[
    str | None,
    typer.Option(
        "--index", help=f"Plugin index: a directory, an s3:// URL or an http(s) URL (default: {INDEX_ENV})."
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _home(settings: Settings) -> PluginHome:
    from nodes.plugins.home import PluginHome

    return PluginHome(settings.home)


def _describe(package: PluginPackage) -> dict[str, Any]:
    manifest = package.manifest
    return {
        "name": manifest.name,
        "version": manifest.version,
        "description": manifest.description,
        "origin": package.origin,
        "path": str(package.root),
        "modules": list(manifest.modules),
        "dependencies": dict(manifest.dependencies),
    }


def list_plugins(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List installed plugins, and those found in RAYWEAVE_PLUGIN_DIRS and installed distributions."""
    from nodes.plugins.discovery import discover

    settings = settings_of(ctx)
    try:
        installed = _home(settings).installed()
    except PluginError as exc:
        raise _fail(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="rayweave-plugins-") as scratch:
        found = discover(settings.plugin_dirs, extract_dir=Path(scratch))
    known = {p.ref for p in installed}
    packages = installed + [p for p in found.packages if p.ref not in known]
    if as_json:
        typer.echo(
            json.dumps({"plugins": [_describe(p) for p in packages], "problems": found.problems}, indent=2)
        )
        return
    if not packages:
        typer.echo("no plugins installed; `rayweave plugins install SOURCE` installs one")
    for p in packages:
        typer.echo(f"{p.ref:30} {p.origin:12} {p.manifest.description}")
    for problem in found.problems:
        typer.echo(f"warning: {problem}", err=True)


def _install_from_index(home: Any, index: Any, name: str, spec: str, force: bool, done: list[str]) -> None:
    """Install NAME within SPEC from the index, after the plugins it needs that are not installed yet."""
    from nodes.plugins.errors import PluginNotFoundError

    entry = index.find(name, spec)
    for dep, dep_spec in sorted(entry.dependencies.items()):
        try:
            home.get(dep, dep_spec)
        except PluginNotFoundError:
            _install_from_index(home, index, dep, dep_spec, False, done)
    with tempfile.TemporaryDirectory(prefix="rayweave-download-") as scratch:
        archive = index.download(entry, Path(scratch))
        done.append(home.install(archive, replace=force).ref)


def install(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A plugin directory, an archive, a first-party plugin (ml, nlp), or NAME[==VERSION] from the index."
        ),
    ],
    index: IndexOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a version that is already installed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Install a plugin version (its plugin dependencies must be installed, or be in the index)."""
    from nodes.objectstore import S3Options
    from nodes.plugins.firstparty import firstparty_path
    from nodes.plugins.index import PluginIndex, parse_requirement

    settings = settings_of(ctx)
    index = index or settings.plugin_index
    home = _home(settings)
    done: list[str] = []
    try:
        shipped = None if Path(source).exists() else firstparty_path(source)
        if Path(source).exists():
            done.append(home.install(Path(source), replace=force).ref)
        elif shipped is not None:  # a first-party plugin shipped with rayweave, before any index
            done.append(home.install(shipped, replace=force).ref)
        else:
            if not index:
                raise _fail(
                    f"{source!r} is not a file or directory; to install from an index give --index or set {INDEX_ENV}",
                    2,
                )
            name, spec = parse_requirement(source)
            found = PluginIndex(index, s3=S3Options.of(settings))
            _install_from_index(home, found, name, spec, force, done)
    except PluginError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"installed": done}))
    else:
        for ref in done:
            typer.echo(f"installed {ref}")


def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    version: Annotated[str | None, typer.Argument(help="Version to remove (default: every version).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Remove an installed plugin version (refused while other installed plugins need it)."""
    try:
        removed = _home(settings_of(ctx)).remove(name, version)
    except PluginError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"removed": removed}))
    else:
        for ref in removed:
            typer.echo(f"removed {ref}")


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Text to look for in names and descriptions.")] = "",
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search a plugin index."""
    from nodes.objectstore import S3Options
    from nodes.plugins.index import PluginIndex

    settings = settings_of(ctx)
    index = index or settings.plugin_index
    if not index:
        raise _fail(f"give --index or set {INDEX_ENV}", 2)
    try:
        entries = PluginIndex(index, s3=S3Options.of(settings)).search(query)
    except PluginError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"plugins": [e.model_dump() for e in entries]}, indent=2))
        return
    for e in entries:
        typer.echo(f"{e.ref:30} {e.description}")
    if not entries:
        typer.echo(f"no plugin in {index} matches {query!r}")


def publish(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The plugin directory to publish.")],
    index: Annotated[
        str, typer.Option("--index", help="The index to publish into: a directory or an s3:// URL.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite a published version.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Build a plugin's archive into an index (a directory or an s3:// URL) and add its entry (with sha256) to
    index.json."""
    from nodes.objectstore import S3Options
    from nodes.plugins.index import publish as publish_plugin

    try:
        entry = publish_plugin(directory, index, replace=force, s3=S3Options.of(settings_of(ctx)))
    except PluginError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(entry.model_dump()))
    else:
        typer.echo(f"published {entry.ref} to {index.rstrip('/')}/{entry.archive} (sha256 {entry.sha256})")


def _find_package(settings: Settings, name: str, version: str, path: Path | None) -> PluginPackage:
    from nodes.plugins.discovery import discover
    from nodes.plugins.manifest import open_plugin_dir

    if path is not None:
        return open_plugin_dir(path)
    try:
        return _home(settings).get(name, version)
    except PluginError:
        found = discover(settings.plugin_dirs).packages
        matching = [p for p in found if p.name == name and (not version or p.version == version)]
        if not matching:
            raise
        return matching[-1]


def docs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    version: Annotated[str, typer.Option("--version", help="Version range, e.g. '==1.2.0'.")] = "",
    path: Annotated[
        Path | None, typer.Option("--path", help="Document this plugin directory instead.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown here instead of stdout.")
    ] = None,
) -> None:
    """Generate Markdown documentation of every node of a plugin (reads it inside its Ray runtime env)."""
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from nodes.plugins.docs import plugin_markdown
    from nodes.plugins.loader import load_plugins

    settings = settings_of(ctx)
    try:
        package = _find_package(settings, name, version, path)
        others = [p for p in _home(settings).installed() if p.name != package.name]
    except PluginError as exc:
        raise _fail(str(exc)) from None
    connection = ensure_ray(settings)
    try:
        report = load_plugins([package], None, available=[package, *others])
    finally:
        if connection.started_here:
            shutdown_ray()
    if package.ref in report.failed:
        raise _fail(str(report.failed[package.ref]))
    text = plugin_markdown(package.manifest, report.loaded[package.ref])
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


def new(
    name: Annotated[str, typer.Argument(help="Plugin name (lowercase, digits, '-', '_').")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the plugin directory.")] = Path(
        "."
    ),
    as_json: JsonOption = False,
) -> None:
    """Create a new plugin with one node, its test and its docs page."""
    from nodes.plugins.scaffold import new_plugin

    try:
        root = new_plugin(name, directory)
    except PluginError as exc:
        raise _fail(str(exc), 2) from None
    if as_json:
        typer.echo(json.dumps({"path": str(root)}))
    else:
        typer.echo(f"created {root}; run its tests with `cd {root} && python -m pytest`")


def register(app: typer.Typer) -> None:
    """Add `rayweave plugins ...` to the `rayweave` app."""
    plugins_app = typer.Typer(help="Install, publish and write plugins.", no_args_is_help=True)
    plugins_app.command("list")(list_plugins)
    plugins_app.command("install")(install)
    plugins_app.command("remove")(remove)
    plugins_app.command("search")(search)
    plugins_app.command("publish")(publish)
    plugins_app.command("docs")(docs)
    plugins_app.command("new")(new)
    app.add_typer(plugins_app, name="plugins")

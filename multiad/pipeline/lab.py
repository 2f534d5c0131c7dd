"""``python -m multiad.pipeline.lab [RESULTS_DIR]`` (``make lab``): the live heatmap
explorer in JupyterLab.

Writes ``RESULTS_DIR/explore.ipynb`` from the template ``book/lab/explore.ipynb`` (its
``parameters`` cell set to RESULTS_DIR, no outputs) unless that notebook is already there
(``--fresh`` rewrites it), then runs JupyterLab in this process on 127.0.0.1 with the
notebook open. Run its cells (Run ▸ Run All Cells) to get the explorer
(``multiad.pipeline.explore_widgets.widget_explorer``). Ctrl+C, or File ▸ Shut Down,
stops the server.

Offline by construction: the widgets' front end is the ``@jupyter-widgets/jupyterlab-manager``
extension that ``jupyterlab_widgets`` (installed with ipywidgets 8, from PyPI) puts into
``<venv>/share/jupyter/labextensions``; no CDN is involved, and JupyterLab's news feed and
update check are switched off. Arguments this module does not know (``--ServerApp.…``,
``--LabApp.…``) go to JupyterLab unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "book" / "lab" / "explore.ipynb"
NOTEBOOK = "explore.ipynb"  # written into the results folder
DEFAULT_RESULTS = "results/demo"
HOST = "127.0.0.1"
# the runs the explorer shows (as multiad.pipeline.explore.find_explorer_runs, which would import
# torch into the server process)
RUN_GLOB = "runs/*/seed*/explorer.npz"
OFFLINE_ARGS = ("--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly")  # no PyPI queries from the server


def explorer_notebook(results_dir: str | Path, template: Path = TEMPLATE) -> dict[str, Any]:
    """The template notebook with its ``parameters`` cell pointed at ``results_dir``."""
    nb = json.loads(template.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{template}: expected one cell tagged 'parameters', got {len(cells)}")
    path = str(Path(results_dir).resolve())
    cells[0]["source"] = ("# the results folder (written by python -m multiad.pipeline.lab)\n"
                          f"results_dir = {json.dumps(path)}")
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def write_notebook(results_dir: str | Path, out: str | Path | None = None,
                   fresh: bool = False) -> tuple[Path, bool]:
    """Write the explorer notebook (default ``RESULTS_DIR/explore.ipynb``) unless it exists
    and ``fresh`` is False; returns (its path, whether it was written)."""
    path = Path(out) if out is not None else Path(results_dir) / NOTEBOOK
    if path.exists() and not fresh:
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(explorer_notebook(results_dir), indent=1, ensure_ascii=False)
                   + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path, True


def server_root(notebook: Path, cwd: Path | None = None) -> Path:
    """JupyterLab's root folder: the working directory when it holds the notebook, else
    the notebook's folder."""
    cwd = (cwd or Path.cwd()).resolve()
    nb = notebook.resolve()
    return cwd if nb.is_relative_to(cwd) else nb.parent


def lab_argv(notebook: Path, root: Path, port: int, token: str | None = None,
             open_browser: bool = True, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """JupyterLab's command line: loopback only, the notebook as the start page, offline."""
    rel = notebook.resolve().relative_to(root.resolve()).as_posix()
    argv = [f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}",
            f"--ServerApp.root_dir={root}", f"--LabApp.default_url=/lab/tree/{rel}",
            f"--ServerApp.open_browser={open_browser}", *OFFLINE_ARGS]
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers, CI: loopback and a token
        argv.append("--ServerApp.allow_root=True")
    return argv + list(extra)


_IP_KEYS = ("--ip", "--ServerApp.ip", "--NotebookApp.ip")
_TOKEN_KEYS = ("--IdentityProvider.token", "--ServerApp.token", "--NotebookApp.token")


def _option(extra: list[str], keys: tuple[str, ...]) -> list[str]:
    """The values ``extra`` gives to any of ``keys`` (``--key=value`` or ``--key value``)."""
    found = []
    for i, arg in enumerate(extra):
        key, sep, value = arg.partition("=")
        if key in keys:
            found.append(value if sep else (extra[i + 1] if i + 1 < len(extra) else ""))
    return found


def exposure(token: str | None, extra: list[str]) -> list[str]:
    """Why this server could be reached without a secret: an address other than loopback,
    or an empty token. Empty when it is private (127.0.0.1 and a token)."""
    problems = []
    for ip in _option(extra, _IP_KEYS):
        if ip not in ("127.0.0.1", "localhost", "::1") and not ip.startswith("127."):
            problems.append(f"address {ip or '(empty: every interface)'} is not loopback")
    tokens = _option(extra, _TOKEN_KEYS) + ([token] if token is not None else [])
    if any(t.strip().strip("'\"") == "" for t in tokens):
        problems.append("an empty token lets anyone who reaches the port run code")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multiad.pipeline.lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir", nargs="?", default=DEFAULT_RESULTS,
                   help=f"a results folder with {RUN_GLOB} (default {DEFAULT_RESULTS})")
    p.add_argument("--notebook", help=f"where to write the notebook (RESULTS_DIR/{NOTEBOOK})")
    p.add_argument("--fresh", action="store_true", help="rewrite an existing notebook")
    p.add_argument("--port", type=int, default=8888, help="first port to try (8888)")
    p.add_argument("--token", help="the server's token (default: a random one, printed)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--write-only", action="store_true",
                   help="write the notebook, print its path, start no server")
    p.add_argument("--i-know-this-exposes-my-machine", dest="exposed", action="store_true",
                   help="allow a non-loopback address or an empty token (anyone who reaches "
                        "the server can run code as you)")
    args, extra = p.parse_known_args(argv)
    problems = exposure(args.token, extra)
    if problems and not args.exposed:
        print("multiad.pipeline.lab: refused: " + "; ".join(problems) + ". The explorer's server "
              "runs code; it listens on 127.0.0.1 with a random token by default. Pass "
              "--i-know-this-exposes-my-machine if you mean it", file=sys.stderr)
        return 2
    results = Path(args.results_dir)
    if not any(results.glob(RUN_GLOB)):
        print(f"multiad.pipeline.lab: no evaluated run under {results} (no {RUN_GLOB}): run "
              "`make reproduce` (results/demo) or `multiad run`, or name another results "
              "folder: make lab LAB_RESULTS=results/smoke", file=sys.stderr)
        return 2
    notebook, written = write_notebook(results, args.notebook, args.fresh)
    print(f"notebook: {notebook} ({'written' if written else 'kept; --fresh rewrites it'})",
          flush=True)
    if args.write_only:
        return 0
    from jupyterlab.labapp import LabApp

    root = server_root(notebook)
    print(f"JupyterLab on http://{HOST}:{args.port}/ (root {root}); run the notebook's cells "
          "(Run > Run All Cells); Ctrl+C stops the server", flush=True)
    # always a token: a Jupyter config file that empties it does not open the server
    token = args.token if args.token is not None else secrets.token_hex(24)
    LabApp.launch_instance(argv=lab_argv(notebook, root, args.port, token,
                                         not args.no_browser, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The book's table of every method's settings, from the code itself (the method registry
and each method's configuration section), so the page cannot drift from what runs:
``python -m multiad.methods.settings [OUT.md]`` (``make book`` writes
``book/_generated/method_settings.md``)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from multiad.config import RunConfig
from multiad.methods import METHODS


def _value(v: object) -> str:
    return ", ".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def settings_markdown() -> str:
    """A markdown table: method, kind, reference teacher, reference schedule, its settings."""
    cfg = RunConfig()
    lines = ["| method | kind | teacher | schedule | settings (`--set SECTION.KEY=…`) | "
             "reference |", "| --- | --- | --- | --- | --- | --- |"]
    for spec in METHODS.values():
        section = getattr(cfg, spec.section)
        settings = "; ".join(f"`{spec.section}.{f.name}` {_value(getattr(section, f.name))}"
                             for f in dataclasses.fields(section))
        schedule = ", ".join(f"{k} {_value(v)}" for k, v in spec.schedule.items()) \
            if spec.trained else f"one pass (batch {spec.schedule.get('batch_size', '—')})"
        lines.append(f"| {spec.title} (`{spec.name}`) | {spec.kind} | `{spec.backbone}` | "
                     f"{schedule} | {settings} | {spec.reference} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = settings_markdown()
    if argv:
        out = Path(argv[0])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

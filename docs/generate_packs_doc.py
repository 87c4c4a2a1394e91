"""Write docs/packs.md from the shipped packs: what each reproduces, its sources, its approximations.

    python docs/generate_packs_doc.py          # rewrite docs/packs.md
    python docs/generate_packs_doc.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from socialcredit.policy.lint import lint, summarize
from socialcredit.policy.load import load_policy, pack_names

TARGET = Path(__file__).parent / "packs.md"


def render() -> str:
    lines = [
        "# Policy packs",
        "",
        "Generated from `src/socialcredit/policy/packs/*.toml` by `docs/generate_packs_doc.py`; the",
        "comments at the top of each pack say more. `socialcredit policy show NAME` prints a pack in",
        "full, `socialcredit policy lint NAME` what the linter thinks of it.",
        "",
    ]
    for name in pack_names():
        policy = load_policy(name)
        meta = policy.document.policy
        counts = summarize(lint(policy))
        lines += [
            f"## `{name}` — {meta.title}",
            "",
            meta.summary,
            "",
            f"Version {policy.version}; calendar {meta.timezone}; {len(policy.event_types)} event types, "
            f"{len(policy.rules)} rules, {len(policy.lists)} lists, {len(policy.measures)} measures. "
            f"Linter: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} notes.",
            "",
            "Sources:",
            "",
            *[f"- {source}" for source in meta.sources],
            "",
            "Approximations:",
            "",
            *[f"- {note}" for note in meta.approximations],
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        return 0 if TARGET.exists() and TARGET.read_text(encoding="utf-8") == text else 1
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

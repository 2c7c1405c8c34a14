"""Where the lab finds the checkout it runs from: tools/, examples/ and ../shared.

The lab is installed editable from a graysteps checkout (`pip install -e ./lab`);
it is never installed on a Jenkins agent, so its files sit in that checkout.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "tools"
EXAMPLES = REPO_ROOT / "examples"
SHARED = REPO_ROOT.parent / "shared"

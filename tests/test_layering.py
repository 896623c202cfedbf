"""carton_format is pure Python: it must import and work without torch installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_format_layer_imports_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import carton_format as cf, carton_format.cli\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        f"print(cf.validate({str(ROOT / 'tests/data/original/test.carton')!r}).ok)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_format_layer_never_imports_the_runtime() -> None:
    for path in (ROOT / "carton_format").rglob("*.py"):
        text = path.read_text()
        assert "import carton_runtime" not in text and "from carton_runtime" not in text, path

"""Imports point down only: console (wiring) -> slas -> exceptions -> transactions -> console.lib."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"console.lib": 0, "transactions": 1, "exceptions": 2, "slas": 3, "console": 4}


def layer_of(module: str) -> int | None:
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return LAYERS[name]
    return None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_upward_imports():
    violations = []
    for package in ("console", "transactions", "exceptions", "slas"):
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            own = layer_of(module)
            for lineno, target in imported_modules(path):
                target_layer = layer_of(target)
                if target_layer is not None and target_layer > own:
                    violations.append(f"{path.relative_to(ROOT)}:{lineno} imports {target}")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from exceptions.services import x\nimport console.views\n")
    assert [t for _, t in imported_modules(bad)] == ["exceptions.services", "console.views"]
    assert layer_of("console.lib.audit") == 0 and layer_of("console.views") == 4

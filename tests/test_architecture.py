"""The shape of the code, checked: imports point down only (console (wiring) -> slas -> exceptions -> transactions ->
console.lib), no app reaches into another's entry points, no import circles inside an app, and every app has the
same layout (STYLE.md). Each checker is a function of a source tree, tested below on small synthetic trees."""

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from console.lib.capabilities import APP_LABEL, CAPABILITIES

ROOT = Path(__file__).resolve().parents[1]
APPS = ("console", "transactions", "exceptions", "slas")
LAYERS = {"console.lib": 0, "transactions": 1, "exceptions": 2, "slas": 3, "console": 4}

# Across apps, only a lower app's services, selectors, choices, signals, models and brief serializers are used; its
# entry points are its own (console's root urlconf includes app urlconfs by dotted string, which imports nothing).
ENTRY_POINTS = frozenset({"views", "forms", "tasks", "urls"})

# The layout every app shares (STYLE.md "Layout of an app"): name -> "module", "package" or "either" (a module
# becomes a package past ~800 lines). Apps add pure modules (correlation.py), charts.py, filters.py, signals.py...
SHAPE = {
    "apps": "module",
    "models": "either",
    "services": "either",
    "selectors": "either",
    "views": "package",
    "urls": "module",
    "admin": "module",
    "forms": "either",
    "tasks": "either",
    "api": "package",
}
# A module named like one of the above with a qualifier is the same thing in a second place (process_views.py,
# console_urls.py, manage_forms.py, correlation_service.py): it belongs inside the one module or package.
KIND_TEXT = {"module": "module", "package": "package", "either": "module or package"}
SECOND_PLACE = re.compile(r"^[a-z0-9_]+_(views|urls|forms|services?|selectors|tasks)$")

# `"console.view_audit"` spelled out anywhere but here ties a module to a string the top layer owns.
CAPABILITIES_MODULE = "console.lib.capabilities"
CAPABILITY_LITERAL = re.compile(rf"^{APP_LABEL}\.({'|'.join(map(re.escape, CAPABILITIES))})$")

# One Bootstrap form mixin, and navigation registered where an app starts up.
FORM_MIXIN_MODULE = "console.lib.forms"
BOOTSTRAP_CLASSES = re.compile(r"\bform-(control|select)\b")
NAVIGATION_MODULE = "console.lib.navigation"


# ---- Reading a tree -------------------------------------------------------------------------------------------------


def module_index(root: Path, packages: tuple[str, ...] = APPS) -> dict[str, Path]:
    """Every module under the packages, by dotted name (a package by its own name, for its __init__.py)."""
    index = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            index[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return index


def module_of(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return LAYERS[name]
    return None


def app_of(module: str) -> str | None:
    """The app a module belongs to; console.lib counts as its own, the bottom layer every app shares."""
    if layer_of(module) == LAYERS["console.lib"]:
        return "console.lib"
    top = module.split(".", 1)[0]
    return top if top in APPS else None


@dataclass(frozen=True)
class Import:
    lineno: int
    module: str  # absolute, relative imports resolved
    names: tuple[str, ...]  # what `from module import ...` takes; empty for `import module`
    relative: bool
    module_level: bool  # runs when the module is imported (not inside a function, not under TYPE_CHECKING)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str = "") -> list[Import]:
    """The imports of a file; `module` (its dotted name) resolves relative ones."""
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(child.lineno, alias.name, (), False, module_level) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                names = tuple(alias.name for alias in child.names)
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)] if child.level > 1 else base
                    target = ".".join([*base, child.module] if child.module else base)
                    found.append(Import(child.lineno, target, names, True, module_level))
                else:
                    found.append(Import(child.lineno, child.module or "", names, False, module_level))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for part in child.body:
                    visit(ast.Module(body=[part], type_ignores=[]), False)
                for part in child.orelse:
                    visit(ast.Module(body=[part], type_ignores=[]), module_level)
            else:
                visit(child, module_level)

    visit(ast.parse(path.read_text(), filename=str(path)), True)
    return sorted(found, key=lambda imp: imp.lineno)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for each absolute import of a file."""
    return [(imp.lineno, imp.module) for imp in imports_of(path) if not imp.relative]


def targets(imp: Import, index: dict[str, Path]) -> list[str]:
    """The modules an import loads: `from pkg import name` loads `pkg.name` when that is a module of the tree."""
    if not imp.names:
        return [imp.module]
    submodules = [f"{imp.module}.{name}" for name in imp.names if f"{imp.module}.{name}" in index]
    return submodules if len(submodules) == len(imp.names) else [imp.module, *submodules]


def _all_imports(root: Path, index: dict[str, Path]) -> Iterator[tuple[str, Path, Import]]:
    for module, path in index.items():
        for imp in imports_of(path, module):
            yield module, path, imp


def _where(root: Path, path: Path, lineno: int) -> str:
    return f"{path.relative_to(root)}:{lineno}"


# ---- Checkers -------------------------------------------------------------------------------------------------------


def upward_imports(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    index = module_index(root, packages)
    violations = []
    for module, path, imp in _all_imports(root, index):
        own = layer_of(module)
        for target in targets(imp, index):
            target_layer = layer_of(target)
            if own is not None and target_layer is not None and target_layer > own:
                violations.append(f"{_where(root, path, imp.lineno)} imports {target}")
    return violations


def relative_imports(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    index = module_index(root, packages)
    return [
        f"{_where(root, path, imp.lineno)} imports {imp.module} relatively"
        for _, path, imp in _all_imports(root, index)
        if imp.relative
    ]


def entry_point_imports(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    """Imports of another app's views, forms, tasks or urls (at any depth: `x.api.views` too)."""
    index = module_index(root, packages)
    violations = []
    for module, path, imp in _all_imports(root, index):
        for target in targets(imp, index):
            other = app_of(target)
            if other in {None, "console.lib", app_of(module)}:
                continue
            if ENTRY_POINTS & set(target.split(".")[1:]):
                violations.append(f"{_where(root, path, imp.lineno)} imports {target}")
    return violations


def import_circles(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    """Cycles among one app's module-level imports (imports inside functions run later, so they cannot deadlock)."""
    index = module_index(root, packages)
    graph: dict[str, set[str]] = {module: set() for module in index}
    for module, _, imp in _all_imports(root, index):
        if not imp.module_level:
            continue
        for target in targets(imp, index):
            if target in index and target != module and app_of(target) == app_of(module):
                graph[module].add(target)
    return [" -> ".join([*cycle, cycle[0]]) for cycle in _cycles(graph)]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), each starting at its least name."""
    counter, stack, on_stack = [0], [], set()
    low: dict[str, int] = {}
    order: dict[str, int] = {}
    components: list[list[str]] = []

    def connect(node: str) -> None:
        order[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in order:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], order[succ])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            connect(node)
    return [_cycle_through(graph, set(component), component[0]) for component in sorted(components)]


def _cycle_through(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """A shortest path from `start` back to itself inside one component, to name in the failure message."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    return paths[node]
                if succ not in paths:
                    paths[succ] = [*paths[node], succ]
                    following.append(succ)
        frontier = following
    return [start]


def shape_problems(root: Path, apps: tuple[str, ...] = APPS) -> list[str]:
    problems = []
    for app in apps:
        for name, kind in SHAPE.items():
            is_module, is_package = (root / app / f"{name}.py").is_file(), (root / app / name / "__init__.py").is_file()
            if not (is_module or is_package):
                problems.append(f"{app}/ has no {name} ({KIND_TEXT[kind]})")
            elif (kind == "package" and not is_package) or (kind == "module" and not is_module):
                problems.append(f"{app}/{name} should be a {kind}")
        for path in sorted((root / app).glob("*.py")):
            if match := SECOND_PLACE.match(path.stem):
                home = "services" if match.group(1) == "service" else match.group(1)
                problems.append(f"{app}/{path.name} belongs in {app}/{home}")
    return problems


def _string_literals(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def capability_literals(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    return [
        f"{_where(root, path, lineno)} spells {text!r}"
        for module, path in module_index(root, packages).items()
        if module != CAPABILITIES_MODULE
        for lineno, text in _string_literals(path)
        if CAPABILITY_LITERAL.match(text)
    ]


def second_form_mixins(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    """Classes or code outside console/lib/forms.py that put Bootstrap's form classes on widgets."""
    found = []
    for module, path in module_index(root, packages).items():
        if module == FORM_MIXIN_MODULE:
            continue
        for lineno, text in _string_literals(path):
            if BOOTSTRAP_CLASSES.search(text):
                found.append(f"{_where(root, path, lineno)} sets {text!r} on widgets")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.startswith("Bootstrap"):
                found.append(f"{_where(root, path, node.lineno)} defines {node.name}")
    return found


def navigation_outside_apps_py(root: Path, packages: tuple[str, ...] = APPS) -> list[str]:
    found = []
    for module, path in module_index(root, packages).items():
        if path.name == "apps.py" or module == NAVIGATION_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "register_nav_item":
                    found.append(f"{_where(root, path, node.lineno)} registers navigation")
    return found


# ---- The project ----------------------------------------------------------------------------------------------------


def test_no_upward_imports():
    violations = upward_imports(ROOT)
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_no_relative_imports():
    violations = relative_imports(ROOT)
    assert not violations, "relative imports (write the absolute name):\n" + "\n".join(violations)


def test_no_app_imports_another_apps_views_forms_tasks_or_urls():
    violations = entry_point_imports(ROOT)
    assert not violations, "imports of another app's entry points:\n" + "\n".join(violations)


def test_no_import_circles_inside_an_app():
    circles = import_circles(ROOT)
    assert not circles, "module-level import circles:\n" + "\n".join(circles)


def test_every_app_has_the_same_shape():
    problems = shape_problems(ROOT)
    assert not problems, "apps out of shape (STYLE.md, layout of an app):\n" + "\n".join(problems)


def test_capability_names_come_from_console_lib_capabilities():
    violations = capability_literals(ROOT)
    assert not violations, "use the constants of console/lib/capabilities.py:\n" + "\n".join(violations)


def test_one_bootstrap_form_mixin():
    found = second_form_mixins(ROOT)
    assert not found, "use console.lib.forms.BootstrapFormMixin:\n" + "\n".join(found)


def test_navigation_is_registered_in_apps_py_only():
    found = navigation_outside_apps_py(ROOT)
    assert not found, "register navigation in the app's AppConfig.ready:\n" + "\n".join(found)


# ---- The checkers, on synthetic trees -------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in {Path(name).parts[0] for name in files}:
        for folder in [root / package, *(p for p in (root / package).rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
    return root


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from exceptions.services import x\nimport console.views\n")
    assert [t for _, t in imported_modules(bad)] == ["exceptions.services", "console.views"]
    assert layer_of("console.lib.audit") == 0 and layer_of("console.views") == 4


def test_the_checker_sees_upward_imports_also_when_relative_or_lazy(tmp_path):
    root = _tree(
        tmp_path,
        {
            "transactions/services.py": "def f():\n    from exceptions.selectors import g\n",
            "transactions/selectors.py": "import transactions.models\n",
            "console/lib/audit.py": "from .. import views\n",
            "console/views.py": "from console.lib import audit\n",
        },
    )
    assert upward_imports(root) == [
        "console/lib/audit.py:1 imports console.views",
        "transactions/services.py:2 imports exceptions.selectors",
    ]
    assert relative_imports(root) == ["console/lib/audit.py:1 imports console relatively"]


def test_relative_imports_resolve_from_modules_and_packages(tmp_path):
    root = _tree(tmp_path, {"exceptions/services/cases.py": "from . import rules\nfrom ..selectors import x\n"})
    (root / "exceptions/services/__init__.py").write_text("from .cases import case_assign\n")
    assert [i.module for i in imports_of(root / "exceptions/services/cases.py", "exceptions.services.cases")] == [
        "exceptions.services",
        "exceptions.selectors",
    ]
    assert [i.module for i in imports_of(root / "exceptions/services/__init__.py", "exceptions.services")] == [
        "exceptions.services.cases"
    ]


def test_the_checker_sees_imports_of_another_apps_entry_points(tmp_path):
    root = _tree(
        tmp_path,
        {
            "exceptions/receivers.py": "from transactions.tasks import correlate\nfrom transactions import views\n",
            "exceptions/services.py": "from exceptions.tasks import notify\nfrom transactions.selectors import x\n",
            "console/urls.py": "from transactions.api.urls import router\nURLS = 'transactions.urls'\n",
            "transactions/tasks.py": "",
            "transactions/views.py": "",
            "transactions/selectors.py": "",
        },
    )
    assert entry_point_imports(root) == [
        "console/urls.py:1 imports transactions.api.urls",
        "exceptions/receivers.py:1 imports transactions.tasks",
        "exceptions/receivers.py:2 imports transactions.views",
    ]


def test_the_checker_sees_a_circle_but_not_a_lazy_import(tmp_path):
    root = _tree(
        tmp_path,
        {
            "console/celery.py": "from console.periodic import JOBS\n",
            "console/periodic.py": "import console.tasks\n",
            "console/tasks.py": "from console import celery\n",
            "console/settings.py": "from console import apps\n\ndef load():\n    from console import celery\n",
            "console/apps.py": "import typing\nif typing.TYPE_CHECKING:\n    from console import settings\n",
            "transactions/services.py": "def f():\n    from transactions import selectors\n",
            "transactions/selectors.py": "from transactions import services\n",
        },
    )
    assert import_circles(root) == ["console.celery -> console.periodic -> console.tasks -> console.celery"]


def test_a_package_that_imports_its_own_name_from_a_submodule_is_a_circle(tmp_path):
    root = _tree(tmp_path, {"exceptions/services/cases.py": "from exceptions.services import helper\n"})
    (root / "exceptions/services/__init__.py").write_text("from exceptions.services.cases import case_assign\n")
    assert import_circles(root) == ["exceptions.services -> exceptions.services.cases -> exceptions.services"]


def test_the_checker_sees_an_app_out_of_shape(tmp_path):
    complete = {f"{name}/__init__.py" if kind == "package" else f"{name}.py": "" for name, kind in SHAPE.items()}
    root = _tree(tmp_path, {f"slas/{name}": "" for name in complete})
    assert shape_problems(root, ("slas",)) == []
    (root / "slas/services.py").rename(root / "slas/workflow.py")
    (root / "slas/views/__init__.py").unlink()
    (root / "slas/views").rmdir()
    (root / "slas/views.py").write_text("")
    (root / "slas/process_views.py").write_text("")
    (root / "slas/calendar_service.py").write_text("")
    assert shape_problems(root, ("slas",)) == [
        "slas/ has no services (module or package)",
        "slas/views should be a package",
        "slas/calendar_service.py belongs in slas/services",
        "slas/process_views.py belongs in slas/views",
    ]


def test_the_checker_sees_a_capability_spelled_out(tmp_path):
    root = _tree(
        tmp_path,
        {
            "console/lib/capabilities.py": 'VIEW_AUDIT = "console.view_audit"\n',
            "exceptions/views.py": 'NEEDED = "console.act_on_cases"\nOTHER = "console.view_auditentry"\n',
        },
    )
    assert capability_literals(root) == ["exceptions/views.py:1 spells 'console.act_on_cases'"]


def test_the_checker_sees_a_second_form_mixin_and_navigation_outside_apps_py(tmp_path):
    root = _tree(
        tmp_path,
        {
            "console/lib/forms.py": 'class BootstrapFormMixin:\n    css = "form-control form-control-sm"\n',
            "exceptions/forms.py": 'class BootstrapMixin:\n    css = "form-select"\n',
            "exceptions/apps.py": "register_nav_item('Operations', 'Queues', 'queue-list', None)\n",
            "exceptions/views.py": "from console.lib import navigation\nnavigation.register_nav_item('a', 'b', 'c')\n",
        },
    )
    assert second_form_mixins(root) == [
        "exceptions/forms.py:2 sets 'form-select' on widgets",
        "exceptions/forms.py:1 defines BootstrapMixin",
    ]
    assert navigation_outside_apps_py(root) == ["exceptions/views.py:2 registers navigation"]

from __future__ import annotations

import subprocess
import sys

import med
import med.errors
import med.mailbox_settings
import med.model


def test_all_is_sorted_and_complete() -> None:
    assert med.__all__ == sorted(med.__all__)
    public = {n for n in dir(med) if not n.startswith("_")} - {
        "errors",
        "model",
        "service",
        "backends",
        "permissions",
        "config",
        "ical",
        "quoting",
        "auth",
        "assistant",
        "mailbox_settings",
        "scheduling",
        "planner",
        "daysheet",
        "folder_cache",
        "files",
    }
    assert public == set(med.__all__)


def test_every_model_type_and_error_is_exported() -> None:
    assert set(med.model.__all__) <= set(med.__all__)
    assert set(med.mailbox_settings.__all__) <= set(med.__all__)
    assert set(med.errors.__all__) <= set(med.__all__)
    assert "DelegateSession" in med.__all__


def test_every_error_is_a_med_error_with_a_title() -> None:
    for name in med.errors.__all__:
        cls = getattr(med.errors, name)
        assert issubclass(cls, med.MedError)
        assert cls.__doc__ and cls.title


def test_importing_med_loads_no_backend_library_ui_or_lab() -> None:
    code = (
        "import sys, med\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('exchangelib', 'O365', 'textual', 'fastapi', 'requests') or m.startswith('exlab')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

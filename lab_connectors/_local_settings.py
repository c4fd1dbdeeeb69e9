"""Checks of the local connector's settings and handles, each failing with a clear message."""

from __future__ import annotations

import math
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from sciwm.connector import Handle
from sciwm.errors import ConnectorError

_FUNCTION_REF = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def check_function_ref(function: Any) -> str:
    if function is None:
        raise ConnectorError(
            "the local connector needs the setting 'function', the callable to run, e.g. "
            '[connector.settings] function = "mypackage.experiments:run"'
        )
    if not isinstance(function, str) or not _FUNCTION_REF.fullmatch(function):
        raise ConnectorError(
            f"local connector setting function={function!r} is not an import path; write it "
            "as 'package.module:function' (a colon before the function name)"
        )
    return function


def check_python(python: Any) -> str:
    if python is None:
        return sys.executable
    found = shutil.which(str(python))
    if found is None:
        raise ConnectorError(
            f"local connector setting python={python!r}: no such executable; give the path "
            "of a Python interpreter (or leave it out to use the one running sciwm)"
        )
    return found


def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConnectorError(
            f"local connector setting {name}={value!r} is invalid; give a number of seconds > 0"
        )
    return float(value)


def unpack(handle: Handle) -> tuple[Path, str]:
    try:
        exp_dir, experiment_id = Path(handle["dir"]), str(handle["experiment_id"])
        int(handle["pid"]), float(handle["started_at"])
    except (KeyError, TypeError, ValueError):
        raise ConnectorError(
            f"{handle!r} is not a local connector handle (it needs experiment_id, dir, pid "
            "and started_at); pass the handle that submit returned"
        ) from None
    if not exp_dir.is_dir():
        raise ConnectorError(
            f"the directory of experiment {experiment_id}, {exp_dir}, does not exist; was the "
            "connector's workdir moved or deleted?"
        )
    return exp_dir, experiment_id

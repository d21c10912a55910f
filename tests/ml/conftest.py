"""Fixtures of the ML tests: synthetic matches (tests/ml/synthetic.py) and a temporary MLflow store."""

from __future__ import annotations

import pandas as pd
import pytest

from .synthetic import synthetic_matches


@pytest.fixture(scope="session")
def matches() -> pd.DataFrame:
    return synthetic_matches()


@pytest.fixture(scope="session")
def tracking(tmp_path_factory) -> dict[str, str]:
    """One temporary SQLite tracking store and artifact root for the ML tests (creating the schema takes
    seconds, so it is shared; tests keep apart by experiment and registered-model names)."""
    root = tmp_path_factory.mktemp("mlflow")
    return {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_location": str(root / "artifacts")}

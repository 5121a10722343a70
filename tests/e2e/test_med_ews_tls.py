"""TLS verification: on by default, and the CA bundle option."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from bridge.serving import ServerThread
from exlab import Lab
from exlab.graph.tls import LabTls, ensure_tls
from exlab.server import create_app
from med import DelegateSession, ItemQuery, Unreachable
from tests.e2e.conftest import ASSISTENZ, CHEF, backend_for


@pytest.fixture
def tls_lab(demo_template: Path, tmp_path: Path) -> Iterator[tuple[str, LabTls]]:
    path = tmp_path / "lab.sqlite"
    shutil.copyfile(demo_template, path)
    lab = Lab.open(path)
    tls = ensure_tls(tmp_path / "tls")
    with ServerThread(create_app(lab), name="tls-lab", **tls.uvicorn_options()) as server:
        yield server.url("/EWS/Exchange.asmx"), tls
    lab.close()


async def test_unknown_ca_is_refused_and_the_ca_bundle_makes_it_work(tls_lab) -> None:
    url, tls = tls_lab
    server = SimpleNamespace(url=url)
    refused = DelegateSession(backend_for(server, ASSISTENZ))  # type: ignore[arg-type]
    with pytest.raises(Unreachable, match="CA bundle"):
        await refused.default_folder(CHEF, "inbox")
    await refused.close()
    trusted = DelegateSession(
        backend_for(server, ASSISTENZ, ca_bundle=str(tls.ca_file))  # type: ignore[arg-type]
    )
    inbox = await trusted.default_folder(CHEF, "inbox")
    assert len((await trusted.items(inbox, ItemQuery(limit=2))).items) == 2
    await trusted.close()

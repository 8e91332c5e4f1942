"""SVG snapshots of the main screens: seeded demo data, a frozen clock, UTC.

The reference pictures are the README's own screenshots, so they cannot go stale: a visible
change to the app fails here until `python -m tracedesk.ui.screenshots` refreshes them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tracedesk.ui.screenshots import SCENES, Scene, render_scene, seed_demo_database

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shots") / "demo.db"
    seed_demo_database(path)
    return path


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("scene", SCENES, ids=lambda scene: scene.name)
async def test_screen_matches_its_screenshot(scene: Scene, demo_db: Path, utc, tmp_path):
    svg = await render_scene(demo_db, scene)
    expected = (SCREENSHOTS / f"{scene.name}.svg").read_text(encoding="utf-8")
    if svg != expected:
        actual = tmp_path / f"{scene.name}.svg"
        actual.write_text(svg, encoding="utf-8")
        pytest.fail(f"the {scene.name} screen no longer matches screenshots/{scene.name}.svg; "
                    f"see {actual}, and if the change is intended run "
                    "`python -m tracedesk.ui.screenshots`")


async def test_a_snapshot_sees_a_one_cell_change(demo_db: Path, utc):
    """The comparison is sensitive: the same scene one column narrower differs."""
    scene = SCENES[0]
    narrower = Scene(scene.name, (scene.size[0] - 1, scene.size[1]), scene.steps, scene.caption)
    assert await render_scene(demo_db, narrower) != await render_scene(demo_db, scene)

"""Feature values and labels on artifacts: dtype checks, categorical values as label links
of the feature's type, one transaction per call, and the run they were added in."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import AnnotationError
from lakeline.instance import Instance
from lakeline.models import ArtifactULabel, FeatureValue
from sqlalchemy import func, select


@pytest.fixture
def annotated(instance: Instance, tmp_path: Path) -> ll.Artifact:
    cell_type = ll.ULabel(name="CellTypeHandLabel", is_type=True).save()
    tissue = ll.ULabel(name="Tissue", is_type=True).save()
    ll.save(
        [
            *(ll.ULabel(name=n, type=cell_type) for n in ("T cell", "B cell", "NK cell")),
            ll.ULabel(name="liver", type=tissue),
            ll.ULabel(name="T cell", type=tissue),  # same name, other type
            ll.Feature(name="cell_type", dtype="cat[ULabel[CellTypeHandLabel]]"),
            ll.Feature(name="temperature", dtype=float, unit="°C"),
            ll.Feature(name="n_cells", dtype=int),
            ll.Feature(name="donor", dtype=str),
            ll.Feature(name="healthy", dtype=bool),
            ll.Feature(name="sampled_on", dtype=date),
            ll.Feature(name="measured_at", dtype=datetime),
            ll.Feature(name="params", dtype=dict),
            ll.Feature(name="doses", dtype=list[float]),
            ll.Feature(name="tissues", dtype="list[cat[ULabel[Tissue]]]"),
        ]
    )
    path = tmp_path / "obs.csv"
    path.write_text("a\n1\n")
    return ll.Artifact(path, key="sc/obs.csv").save()


def _count(instance: Instance, model: type) -> int:
    with instance.sessions.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_add_and_get_values(annotated: ll.Artifact) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    annotated.features.add_values(
        {
            "temperature": 37.5,
            "cell_type": ["T cell", "B cell"],
            "n_cells": 1200,
            "donor": "D1",
            "healthy": True,
            "sampled_on": date(2026, 1, 2),
            "measured_at": when,
            "params": {"k": [1, 2]},
            "doses": [0.5, 1, 2.5],
            "tissues": ["liver", "T cell"],
        }
    )
    assert annotated.features.get_values() == {
        "cell_type": ["B cell", "T cell"],
        "donor": "D1",
        "doses": [0.5, 1.0, 2.5],
        "healthy": True,
        "measured_at": when,
        "n_cells": 1200,
        "params": {"k": [1, 2]},
        "sampled_on": date(2026, 1, 2),
        "temperature": 37.5,
        "tissues": ["T cell", "liver"],
    }
    # a new value replaces the old one; categorical labels accumulate (without duplicates)
    annotated.features.add_values({"temperature": 30, "doses": [1.0], "cell_type": "T cell"})
    values = annotated.features.get_values()
    assert values["temperature"] == 30.0 and values["doses"] == [1.0]
    assert values["cell_type"] == ["B cell", "T cell"]
    labels = annotated.labels.get(feature="cell_type")
    assert [(x.name, x.type.name) for x in labels] == [  # type: ignore[union-attr]
        ("B cell", "CellTypeHandLabel"),
        ("T cell", "CellTypeHandLabel"),
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temperature": "hot"}, r"value 'hot' \(str\) does not fit feature 'temperature' of "
                                 r"dtype float: pass a number"),
        ({"n_cells": 2.5}, r"value 2.5 \(float\) does not fit feature 'n_cells' of dtype int: "
                           r"pass an integer, or make the feature's dtype float or num"),
        ({"healthy": 1}, r"feature 'healthy' of dtype bool: pass True or False"),
        ({"temperature": float("nan")}, r"pass a finite number"),
        ({"measured_at": datetime(2026, 1, 1)}, r"timezone-aware"),
        ({"sampled_on": "2026-13-01"}, r"'2026-13-01'.*'sampled_on'.*'YYYY-MM-DD'"),
        ({"doses": 1.0}, r"feature 'doses' of dtype list\[float\]: pass a list"),
        ({"cell_type": "T-cell"}, r"'T-cell' is not a CellTypeHandLabel label, as feature "
                                  r"'cell_type' requires: create it with"),
        ({"cell_type": "liver"}, r"'liver' is not a CellTypeHandLabel label"),
        ({"weight": 3}, r"no feature named 'weight': create it with "
                        r"ll.Feature\(name='weight', dtype=...\).save\(\)"),
        ({"donor": "x" * 513}, r"str values hold at most 512 characters"),
    ],
)  # fmt: skip
def test_bad_values_are_clear_errors_and_write_nothing(
    annotated: ll.Artifact, instance: Instance, values: dict[str, object], message: str
) -> None:
    with pytest.raises(AnnotationError, match=message):
        annotated.features.add_values({"temperature": 1.0, "cell_type": "NK cell", **values})
    assert annotated.features.get_values() == {}
    assert _count(instance, FeatureValue) == 0 and _count(instance, ArtifactULabel) == 0


def test_a_label_of_the_wrong_type_writes_nothing(
    annotated: ll.Artifact, instance: Instance
) -> None:
    """A ULabel record of another type as a categorical value, in a call with valid values:
    one line naming the label, its type, the feature and what it takes; nothing written."""
    liver = ll.ULabel.get(name="liver")
    with pytest.raises(
        AnnotationError,
        match=r"^label 'liver' is of type 'Tissue'; feature 'cell_type' takes "
        r"'CellTypeHandLabel' labels: pass a CellTypeHandLabel label$",
    ):
        annotated.features.add_values({"temperature": 30.0, "cell_type": ["T cell", liver]})
    with pytest.raises(AnnotationError, match=r"label 'liver' is of type 'Tissue'"):
        annotated.labels.add(
            [ll.ULabel.get(name="T cell", type__name="CellTypeHandLabel"), liver],
            feature="cell_type",
        )
    assert annotated.features.get_values() == {} and annotated.labels.get().count() == 0
    assert _count(instance, FeatureValue) == 0 and _count(instance, ArtifactULabel) == 0


def test_labels_add_get_and_wrong_type(annotated: ll.Artifact) -> None:
    liver = ll.ULabel.get(name="liver")
    t_cell = ll.ULabel.get(name="T cell", type__name="CellTypeHandLabel")
    annotated.labels.add(liver)
    with pytest.raises(
        AnnotationError,
        match=r"label 'liver' is of type 'Tissue'; feature "
        r"'cell_type' takes 'CellTypeHandLabel' labels",
    ):
        annotated.labels.add([t_cell, liver], feature="cell_type")
    annotated.labels.add(t_cell, feature=ll.Feature.get(name="cell_type"))
    annotated.labels.add(t_cell, feature="cell_type")  # again: nothing new
    assert [x.name for x in annotated.labels.get()] == ["T cell", "liver"]
    assert annotated.features.get_values() == {"cell_type": "T cell"}
    with pytest.raises(AnnotationError, match=r"dtype float, not a categorical"):
        annotated.labels.add(t_cell, feature="temperature")
    with pytest.raises(AnnotationError, match=r"save label 'new'"):
        annotated.labels.add(ll.ULabel(name="new"))
    with pytest.raises(AnnotationError, match=r"save the artifact"):
        ll.Artifact(Path(annotated.path), key="other.csv").features.add_values({"donor": "x"})


def test_values_and_labels_record_the_run(annotated: ll.Artifact, instance: Instance) -> None:
    @ll.tracked(key="annotate")
    def annotate() -> None:
        annotated.features.add_values({"donor": "D2", "cell_type": "NK cell"})
        annotated.labels.add(ll.ULabel.get(name="liver"))

    annotate()
    annotated.features.add_values({"n_cells": 5})
    run = ll.Run.get(transform__key="annotate")
    with instance.sessions.read() as session:
        values = dict(session.execute(select(FeatureValue.value_str, FeatureValue.run_id)).all())
        links = set(session.execute(select(ArtifactULabel.run_id)).scalars())
        untracked = session.scalar(select(FeatureValue.run_id).where(FeatureValue.value_int == 5))
    assert values == {"D2": run.id, None: None}
    assert links == {run.id} and untracked is None


def test_deleting_the_artifact_removes_its_annotations(
    annotated: ll.Artifact, instance: Instance
) -> None:
    annotated.features.add_values({"donor": "D3", "cell_type": "B cell"})
    annotated.delete()
    assert _count(instance, FeatureValue) == 0 and _count(instance, ArtifactULabel) == 0
    assert ll.ULabel.filter(name="B cell").count() == 1

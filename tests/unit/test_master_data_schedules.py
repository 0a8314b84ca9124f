"""The daily master-data sweeps are Schedules beside the posting run, an hour before it,
so the night's postings find the day's new consultants and customer changes."""

from __future__ import annotations

from contracts.master_data import ConsultantSyncInput, CustomerSyncInput, ProjectSyncInput
from workers.schedules import _schedules
from workers.settings import TemporalSettings


def test_the_sweeps_run_daily_an_hour_before_posting_one_per_psa() -> None:
    wanted = _schedules(TemporalSettings(), ["US01"], 1, 1, "UTC", (), ["default", "kantata"])
    customers = wanted["d2r-master-data-customers-daily"]
    assert customers.spec.calendars[0].hour[0].start == 0
    assert customers.action.id == "master-data-customers"  # type: ignore[attr-defined]
    assert isinstance(customers.action.args[0], CustomerSyncInput)  # type: ignore[attr-defined]
    for psa in ("default", "kantata"):
        consultants = wanted[f"d2r-master-data-consultants-daily-{psa}"]
        data = consultants.action.args[0]  # type: ignore[attr-defined]
        assert isinstance(data, ConsultantSyncInput) and data.psa_instance == psa
        projects = wanted[f"d2r-master-data-projects-daily-{psa}"].action.args[0]  # type: ignore[attr-defined]
        assert isinstance(projects, ProjectSyncInput) and projects.psa_instance == psa
    # asked for nothing: no master-data schedules (the other Schedules are unchanged)
    assert not [k for k in _schedules(TemporalSettings(), ["US01"], 1, 1, "UTC") if "master-data" in k]

"""A rule's `Notify(to={"team"})` reaches the team the host names, as a matrix entry does."""

import pytest

import taskflow as tf
from taskflow.automation import Automation, Notify, On, Rule, Trigger
from taskflow.domain.matrix import NotificationMatrix
from taskflow.kinds.ticket import SupportTicket

CARL = tf.Actor("carl", "cust")
LEAD, OUTSIDER = tf.UserRef("acme", "lead"), tf.UserRef("zeta", "zed")
TELL_TEAM = [Rule("tell-team", Trigger(On.OPENED), (Notify("new $number", to={"team"}),))]


def _service(**more):
    registry = tf.default_registry()
    return tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
        **more,
    )


def _open(service):
    data = SupportTicket(name="Carl", email="carl@cust.example", description="It jams")
    return service.open(CARL, "support_ticket", tf.NewTask("Printer", "acme", data)).task


def _told(service):
    return [n.recipient for n in service.notifier.sent if n.event == "rule:tell-team"]


def test_the_team_of_the_services_matrix_hears_a_rules_notification():
    matrix = NotificationMatrix([], team=lambda task: [LEAD, OUTSIDER])
    service = _service(policy=matrix)
    automation = Automation(service, TELL_TEAM, company="acme")
    _open(service)
    assert _told(service) == [LEAD]  # zed's company is no party of the ticket
    # A dry run names the team too: a ticket opened by a unit of work committed by hand.
    uow = service.unit_of_work()
    data = SupportTicket(name="Carl", email="carl@cust.example", description="again")
    event = uow.open(CARL, "support_ticket", tf.NewTask("Again", "acme", data)).events[0]
    uow.commit()
    (firing,) = automation.dry_run(event)
    assert firing.steps[0].notified == (LEAD,)


def test_an_automation_may_name_its_own_team_lookup():
    service = _service()
    Automation(service, TELL_TEAM, company="acme", team=lambda task: [LEAD])
    _open(service)
    assert _told(service) == [LEAD]


def test_a_team_lookup_that_is_not_callable_is_refused_naming_it():
    with pytest.raises(tf.InvalidPayload, match="team") as caught:
        Automation(_service(), TELL_TEAM, company="acme", team=[LEAD])
    assert caught.value.field == "team"
